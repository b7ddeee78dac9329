# %% [markdown]
# # 02 · Preprocessing and pairs
#
# A Siamese network learns from *pairs* of images with a label: 1 when both show the same person,
# 0 when not. This notebook prepares them with `siamese_tf.datasets`, `siamese_tf.augmentations`
# and `siamese_tf.samplers`:
#
# - load face images, convert to gray, resize and scale to [0, 1];
# - augment them (small shifts, rotations, light changes);
# - split the *people* into training, validation and test groups that share nobody;
# - draw balanced same/different pairs, and serve reproducible training batches.
#
# **Run time** on a 2-core CPU without a GPU: full run about 10 s; smoke run (`SIAMESE_TF_SMOKE=1`, what CI
# runs) about 10 s. Label convention everywhere: **1 = same person, 0 = different**.

# %%
import os

# Before TensorFlow and OpenCV load: keep their C++ log lines out of the notebook.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# %matplotlib inline
# %config InlineBackend.figure_formats = ["jpeg"]

import time

import numpy as np

from siamese_tf import settings
from siamese_tf.augmentations import Augmenter
from siamese_tf.datasets import load_identity_folders, split_by_identity
from siamese_tf.plots import plot_pairs
from siamese_tf.samplers import PairBatches, make_pairs
from siamese_tf.studies.faces import locate_face_data

# %% [markdown]
# ## Parameters
#
# The split gives 16 people to training, 4 to validation (for choosing thresholds) and 10 to the
# test, as `make demo` does. Only the timing at the end shrinks in smoke mode.

# %%
IMAGE_SIZE = (56, 46)                    # (height, width): half of ORL's 112 x 92, same aspect ratio
CHANNELS = 1                             # gray
SPLIT_FRACTIONS = (16 / 30, 4 / 30, 10 / 30)
NUM_PAIRS = 1000                         # a fixed pair set, as for validation or testing
PAIRS_PER_EPOCH = settings.pick(2048, 256)
BATCH_SIZE = 32
SEED = 0

# %% [markdown]
# ## 1. Load and preprocess
#
# `load_identity_folders` reads one folder per person, from a folder or straight from a zip.
# Every image is decoded with OpenCV, converted to `CHANNELS` channels, resized with area
# interpolation (good for shrinking) and scaled to float32 in [0, 1].

# %%
original = load_identity_folders(locate_face_data(), image_size=None)
faces = load_identity_folders(locate_face_data(), image_size=IMAGE_SIZE, channels=CHANNELS)
print("original:", original.images.shape, original.images.dtype)
print("network input:", faces.images.shape, faces.images.dtype,
      f"values {faces.images.min():.2f}..{faces.images.max():.2f}")
print(faces.num_classes, "people:", ", ".join(faces.class_names[:6]), "...")
print("images per person:", sorted(set(faces.counts().values())))

# %% [markdown]
# Photo 1 (top) and photo 2 (bottom) of eight people, at the network's input size:

# %%
first_photos = np.searchsorted(faces.labels, np.arange(8))  # images are stored person by person
plot_pairs(faces.images[first_photos], faces.images[first_photos + 1], labels=np.ones(8))

# %% [markdown]
# ## 2. Augmentation
#
# Ten photos per person is little. `Augmenter` makes every use of a photo a little different: a
# random mirror, a small rotation, shift and zoom (one affine warp with replicated borders) and a
# brightness and contrast change. It is a callable `(image, rng) -> image`, so the same
# generator state always gives the same result. `Augmenter.koch()` holds the distortions of Koch
# et al. (2015) for Omniglot characters.

# %%
augmenter = Augmenter()
augmenter

# %%
rng = np.random.default_rng(SEED)
photo = faces.images[0]
augmented = np.stack([augmenter(photo, rng) for _ in range(8)])
print("shape kept:", augmented.shape[1:] == photo.shape, "| values in [0, 1]:",
      bool(augmented.min() >= 0 and augmented.max() <= 1))
plot_pairs(np.repeat(photo[None], 8, axis=0), augmented)

# %% [markdown]
# ## 3. An identity-disjoint split
#
# A verification system meets people it has never seen: the person who enrols tomorrow. To measure
# that, no person may appear in two splits. Splitting *images* at random would put photos of the
# same people in training and test, and the test would report a number no new user ever gets.

# %%
train, validation, test = split_by_identity(faces, fractions=SPLIT_FRACTIONS, seed=SEED)
for name, part in (("train", train), ("validation", validation), ("test", test)):
    print(f"{name:10s} {part.num_classes:2d} people, {len(part):3d} images: {', '.join(part.class_names)}")

# %%
assert not set(train.class_names) & set(validation.class_names)
assert not set(train.class_names) & set(test.class_names)
assert not set(validation.class_names) & set(test.class_names)
assert train.num_classes + validation.num_classes + test.num_classes == faces.num_classes

# %% [markdown]
# ## 4. Balanced pairs
#
# Most random pairs of images show two different people (with 16 people, 15 in 16). A network fed
# such pairs learns to answer "different" and is right 94% of the time. `make_pairs` draws half
# same pairs (two *distinct* photos of one person) and half different pairs (two people).
#
# The seeds built their pairs from folders instead: anchor + positive -> 1, anchor + negative -> 0.
# That teaches one question, "is this you?". Pairs over many people teach the general one, "are
# these the same person?", which also works for people enrolled later.

# %%
(first_images, second_images), pair_labels = make_pairs(train.images, train.labels, NUM_PAIRS, seed=SEED)
print(first_images.shape, second_images.shape, pair_labels.shape, pair_labels.dtype)
print(f"same pairs: {int(pair_labels.sum())}, different pairs: {int((pair_labels == 0).sum())}")

# %%
plot_pairs(first_images[:8], second_images[:8], labels=pair_labels[:8])

# %% [markdown]
# ## 5. Training batches that can be replayed
#
# `PairBatches` serves new pairs every epoch, augmented, in batches. Epoch `e` is drawn from
# `(seed, e)` alone, so a run that stops and resumes at epoch 7 sees the very batches an
# uninterrupted run would have seen: that is what makes checkpoint/resume in
# `04_training.ipynb` exact.

# %%
batches = PairBatches(train.images, train.labels, PAIRS_PER_EPOCH, BATCH_SIZE, seed=SEED, augment=augmenter)
(batch_first, batch_second), batch_labels = batches.batch(epoch=3, step=0)
print("one batch:", batch_first.shape, batch_second.shape, batch_labels.shape)

# %%
(again_first, _), again_labels = batches.batch(epoch=3, step=0)
(next_first, _), _ = batches.batch(epoch=4, step=0)
assert np.array_equal(batch_first, again_first) and np.array_equal(batch_labels, again_labels)
assert not np.array_equal(batch_first, next_first)
print("epoch 3 replays exactly; epoch 4 differs")

# %% [markdown]
# For Keras, `batches.dataset()` wraps them in a `tf.data.Dataset` (autotune off and a fixed
# prefetch: autotune made `fit` stall for tens of seconds at the end of each run on small CPUs).

# %%
batches.dataset().element_spec

# %% [markdown]
# How long does one epoch of augmented pairs take to prepare? Compare it with training: a step of
# 32 pairs takes 0.4 to 0.7 s on this CPU, so the data side is not what slows training down.

# %%
# NBVAL_IGNORE_OUTPUT
started = time.perf_counter()
for step in range(batches.steps_per_epoch):
    batches.batch(epoch=0, step=step)
seconds = time.perf_counter() - started
print(f"{batches.steps_per_epoch} batches ({PAIRS_PER_EPOCH} augmented pairs) in {seconds:.2f} s")
