# %% [markdown]
# # 02 · Preprocessing and pairs
#
# A Siamese network learns from *pairs* of images with a label: 1 when both show the same person,
# 0 when not. This notebook prepares them with `siamese_tf.datasets`, `siamese_tf.augmentations`
# and `siamese_tf.samplers`:
#
# - load Labeled Faces in the Wild (LFW) photos, cut the face, convert to gray, resize and scale
#   to [0, 1];
# - augment them (small shifts, rotations, light changes);
# - split the *people* into training, validation and test groups that share nobody (LFW's folds);
# - draw balanced same/different pairs, and serve reproducible training batches.
#
# **Run time** on a 2-core CPU without a GPU: full run about 15 s; smoke run (`SIAMESE_TF_SMOKE=1`, what CI
# runs) about 15 s. Label convention everywhere: **1 = same person, 0 = different**.

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
from siamese_tf.plots import plot_pairs
from siamese_tf.samplers import PairBatches, make_pairs
from siamese_tf.studies.faces import fold_pair_indices, load_lfw, load_lfw_folds

# %% [markdown]
# ## Parameters
#
# LFW's own folds split its people: folds 1-7 train, fold 8 chooses thresholds, fold 9 is the test,
# as in `04`, `05` and `make demo`. Smoke mode keeps 60 training people.

# %%
IMAGE_SIZE = (64, 64)                    # (height, width) of the network's input
CHANNELS = 1                             # gray
TRAIN_FOLDS = range(1, 8)
MAX_TRAIN_PEOPLE = settings.pick(None, 60)
VALIDATION_FOLD, TEST_FOLD = 8, 9
NUM_PAIRS = 1000                         # a fixed pair set, as for validation or testing
PAIRS_PER_EPOCH = settings.pick(2048, 256)
BATCH_SIZE = 32
SEED = 0

# %% [markdown]
# ## 1. Load and preprocess
#
# `load_lfw` reads LFW as users download it, a folder or the zip, one folder per person;
# `load_lfw_folds` finds it (`locate_lfw`), reads the official lists of each fold's people and
# pairs (`read_lfw_people`, `read_lfw_pairs`) and loads the people of the folds asked for. Every
# photo is decoded with OpenCV, cut with the one face crop of the package (`lfw_face_crop`: the
# central 120 x 120 of the 250 x 250 photo, where the deep-funneled alignment puts the face;
# capture and verification cut the same region around a detected face), converted to `CHANNELS`
# channels, resized with area interpolation (good for shrinking) and scaled to float32 in [0, 1].

# %%
# NBVAL_IGNORE_OUTPUT
lfw = load_lfw_folds(TRAIN_FOLDS, [VALIDATION_FOLD, TEST_FOLD], image_size=IMAGE_SIZE, channels=CHANNELS,
                     max_train_people=MAX_TRAIN_PEOPLE, whole_folds=True)
faces = lfw.images
print("network input:", faces.images.shape, faces.images.dtype,
      f"values {faces.images.min():.2f}..{faces.images.max():.2f}")
counts = np.bincount(faces.labels)
print(f"{faces.num_classes:,} people: {', '.join(faces.class_names[:4])}, ...")
print(f"photos per person: {int((counts == 1).sum()):,} people have one, {int((counts >= 2).sum()):,} two or more, "
      f"at most {counts.max()} ({faces.class_names[counts.argmax()]})")

# %% [markdown]
# Most LFW people have a single photo: they can only ever be the *other* person of a pair. A whole
# photo and its crop at the network's input size, for three people of the test fold:

# %%
shown = sorted(name for name, _ in lfw.people[TEST_FOLD - 1])[:3]
whole = load_lfw(lfw.files.images, image_size=None, channels=3, crop=None, people=shown)
first_whole = np.searchsorted(whole.labels, np.arange(3))  # images are stored person by person
first_input = [faces.class_names.index(name) for name in shown]
first_input = np.searchsorted(faces.labels, first_input)
print("whole photo:", whole.images.shape[1:], "| network input:", faces.images.shape[1:])
plot_pairs(whole.images[first_whole], faces.images[first_input], labels=np.ones(3))

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
photo = faces.images[first_input[0]]
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
# LFW's folds are such a split, the one every published LFW result uses; for your own face set,
# `siamese_tf.datasets.split_by_identity` draws one at random.

# %%
# NBVAL_IGNORE_OUTPUT
train = lfw.train
validation = lfw.people_set([name for name, _ in lfw.people[VALIDATION_FOLD - 1]])
test = lfw.people_set([name for name, _ in lfw.people[TEST_FOLD - 1]])
for name, part in (("train", train), ("validation", validation), ("test", test)):
    print(f"{name:10s} {part.num_classes:5,d} people, {len(part):5,d} images: {', '.join(part.class_names[:3])}, ...")

# %%
assert not set(train.class_names) & set(validation.class_names)
assert not set(train.class_names) & set(test.class_names)
assert not set(validation.class_names) & set(test.class_names)
assert train.num_classes + validation.num_classes + test.num_classes == faces.num_classes

# %% [markdown]
# ## 4. Balanced pairs
#
# Most random pairs of images show two different people (with 4,000 people, nearly all of them). A
# network fed such pairs learns to answer "different" and is almost always right. `make_pairs`
# draws half same pairs (two *distinct* photos of one person with two or more) and half different
# pairs (two people).
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
# Validation and test pairs are not drawn: LFW lists 300 same and 300 different pairs in each
# fold (`pairs.txt`), so every result on a fold is measured on the same 600 pairs.
# `fold_pair_indices` finds their photos among those loaded.

# %%
pairs = lfw.pairs
test_first, test_second, test_labels = fold_pair_indices(faces, pairs, TEST_FOLD)
print(f"fold {TEST_FOLD}: {len(test_labels)} pairs, {int(test_labels.sum())} same, first: "
      f"{pairs.fold(TEST_FOLD)[0]}")
plot_pairs(faces.images[test_first[::150]], faces.images[test_second[::150]], labels=test_labels[::150])

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
# `siamese_tf.pipelines.PairPipeline` serves the same pairs with the images gathered and warped
# by TensorFlow inside `tf.data` (what `04` trains with).

# %%
batches.dataset().element_spec

# %% [markdown]
# How long does one epoch of augmented pairs take to prepare in Python? Compare it with training:
# a step of 32 pairs takes about 0.15 s on this CPU.

# %%
# NBVAL_IGNORE_OUTPUT
started = time.perf_counter()
for step in range(batches.steps_per_epoch):
    batches.batch(epoch=0, step=step)
seconds = time.perf_counter() - started
print(f"{batches.steps_per_epoch} batches ({PAIRS_PER_EPOCH} augmented pairs) in {seconds:.2f} s")
