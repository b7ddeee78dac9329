"""Write the course notebooks 01-06 from the cell lists below (nbformat).

Run from the repository root::

    .venv/bin/python tools/build_notebooks.py            # all notebooks
    .venv/bin/python tools/build_notebooks.py 03 04      # some of them

A code cell whose source is unchanged keeps the outputs the notebook already holds, so prose
and timing edits do not throw away the stored full-run outputs. Execute a notebook afterwards
to refresh its outputs (see notebooks/README.md).
"""

import sys
from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"

# Measured on the 2-core CPU machine while other jobs shared it (see notebooks/README.md).
TIMES = {
    "01": ("about 10 s", "about 10 s"),
    "02": ("about 15 s", "about 15 s"),
    "03": ("about 20 s", "about 15 s"),
    "04": ("about 5 minutes", "about 40 s"),
    "05": ("about 30 s with a saved model (about 5 minutes when it must train one)", "about 40 s"),
    "06": ("about 20 s with a saved model (about 5 minutes when it must train one)", "about 40 s"),
}

SETUP = '''import os

# Before TensorFlow and OpenCV load: keep their C++ log lines out of the notebook.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
%matplotlib inline
%config InlineBackend.figure_formats = ["jpeg"]
'''


def md(text):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text):
    return nbformat.v4.new_code_cell(text.strip("\n"))


def header(number, title, teaches):
    full, smoke = TIMES[number]
    return md(f"""
# {number} · {title}

{teaches.strip()}

**Run time** on a 2-core CPU without a GPU: full run {full}; smoke run (`SIAMESE_TF_SMOKE=1`, what CI
runs) {smoke}. Label convention everywhere: **1 = same person, 0 = different**.
""")


# --------------------------------------------------------------------------------------------
# 01 data collection
# --------------------------------------------------------------------------------------------

def notebook_01():
    return [
        header("01", "Collecting faces: anchor, positive, negative", """
The face-verification seed notebooks start by filling three folders: `data/anchor` and
`data/positive` with webcam crops of *you*, and `data/negative` with faces of other people from a
public face set. This notebook does the same with `siamese_tf.captures`:

- look for a camera, and fall back to a stand-in when there is none (servers, CI);
- cut a face region from every frame and save it under a unique name, atomically;
- fill `negative/` from a public face set and read the three folders back.

One subject of the ORL / AT&T faces plays *you*; the other subjects are the public face set.
"""),
        code(SETUP + '''
import tempfile
import warnings
from pathlib import Path

import numpy as np

from siamese_tf import settings
from siamese_tf.augmentations import augment_image
from siamese_tf.captures import FrameSource, capture_images, detect_face, save_image_atomic
from siamese_tf.datasets import load_identity_folders, load_role_folders
from siamese_tf.errors import CameraUnavailableError
from siamese_tf.pipelines import locate_face_data
from siamese_tf.plots import plot_pairs
'''),
        md("""
## Parameters

Everything you might change sits in this cell. `settings.pick(full, smoke)` returns the first
value normally and the second in smoke mode (`SIAMESE_TF_SMOKE=1`): CI never waits for a camera.
The collection goes to a fresh temporary folder; point `COLLECTION_DIR` at `Path("data")` to keep
your own captures.
"""),
        code('''
TRY_CAMERA = settings.pick(True, False)  # smoke mode goes straight to the stand-in
CAMERA_INDEX = 0                         # the first camera OpenCV finds
YOU = "s1"                               # the ORL subject who plays you
FRAMES_PER_CLIP = 20                     # frames in each stand-in clip
IMAGES_PER_ROLE = 20                     # anchors and positives to save (the seeds took about 300)
CROP = "face"                            # "face" (around the detected face) or "center" (fixed box)
SAVED_SIZE = (112, 92)                   # (height, width) of the saved crops: ORL's own size
SEED = 0

WORK_DIR = Path(tempfile.mkdtemp(prefix="siamese_course_01_"))
COLLECTION_DIR = WORK_DIR / "data"
'''),
        md("""
## 1. Is there a camera?

`FrameSource` takes a camera index, a video file or a folder of images and yields RGB frames.
Opening a camera that is not there raises `CameraUnavailableError` at once (no hanging, no
window: `cv2.imshow` does not exist in the headless OpenCV build, so frames are shown with
matplotlib below).
"""),
        code('''
# NBVAL_IGNORE_OUTPUT
camera_found = False
if TRY_CAMERA:
    try:
        with FrameSource(CAMERA_INDEX):
            camera_found = True
        print(f"Camera {CAMERA_INDEX} opens: anchors and positives come from it.")
    except CameraUnavailableError as error:
        print(f"No camera: {error}")
else:
    print("Smoke mode: not looking for a camera.")
if not camera_found:
    print("A stand-in clip made from ORL photos plays the camera.")
'''),
        md("""
## 2. The stand-in: ORL faces

The ORL / AT&T database has 10 photos of each of its subjects (30 here), 112 x 92 pixels, gray.
`load_identity_folders` reads it straight from the zip: one folder per person. With
`image_size=None` the photos keep their size.
"""),
        code('''
faces = load_identity_folders(locate_face_data(), image_size=None)
you = faces.select_classes([faces.class_names.index(YOU)])
others = faces.select_classes([label for label, name in enumerate(faces.class_names) if name != YOU])
print(f"{faces.num_classes} subjects, {len(faces)} photos of shape {faces.image_shape}")
print(f"{YOU} plays you ({len(you)} photos); {others.num_classes} other subjects give {len(others)} photos")
'''),
        md("""
A webcam stream is many slightly different frames: the head moves, the light changes. The
stand-in clips imitate that with `augment_image` (a small random shift, rotation, zoom and
brightness change) on your photos: one clip for the anchor session (photos 1-5) and one for the
positive session (photos 6-10). Each clip is a folder of numbered frames, which `FrameSource`
plays in name order, exactly like a video.
"""),
        code('''
rng = np.random.default_rng(SEED)
clip_folders = {}
for role, photos in (("anchor", you.images[:5]), ("positive", you.images[5:])):
    clip_folders[role] = WORK_DIR / f"clip_{role}"
    for frame_number in range(FRAMES_PER_CLIP):
        frame = augment_image(photos[frame_number % len(photos)], rng)
        save_image_atomic(frame, clip_folders[role], prefix=f"{frame_number:04d}_", extension=".png")

with FrameSource(clip_folders["anchor"]) as clip:
    first_frames = [frame for _, frame in zip(range(4), clip)]
print(f"{len(first_frames)} frames read; each is RGB uint8 of shape {first_frames[0].shape}")
'''),
        md("""
## 3. Capture anchors and positives

`capture_images(source, folder, count, crop=...)` is the seed's collection loop without the
window: read a frame, cut the face region, write it under a uuid name (to a temporary file that
is then renamed, so no reader ever sees half an image). `crop="face"` looks for the largest face
with OpenCV's Haar cascade and falls back to the centre box when it finds none.
"""),
        code('''
print("face box (x, y, width, height) in the first photo:", detect_face(you.images[0]))
'''),
        code('''
saved = {}
for role in ("anchor", "positive"):
    source = FrameSource(CAMERA_INDEX) if camera_found else clip_folders[role]
    saved[role] = capture_images(source, COLLECTION_DIR / role, IMAGES_PER_ROLE, crop=CROP, size=SAVED_SIZE,
                                 progress=False)
{role: len(paths) for role, paths in saved.items()}
'''),
        md("""
With a real camera, move your head and change the light between captures: the network can only
learn to ignore what it has seen vary. The command line does the same job:

```bash
python -m siamese_tf capture --source 0 --output data/anchor --count 300
python -m siamese_tf capture --source clip.mp4 --output data/positive --count 300 --every-nth 3
```

## 4. Negatives from a public face set

The seeds used Labeled Faces in the Wild for `negative/`. Here the other ORL subjects play that
part. They go through the same capture and crop as your images: if only your crops had black
borders or a different zoom, a network could learn to spot the crop instead of the face.
"""),
        code('''
public_faces = WORK_DIR / "public_faces"
for photo in others.images:
    save_image_atomic(photo, public_faces, extension=".png")
saved["negative"] = capture_images(public_faces, COLLECTION_DIR / "negative", len(others), crop=CROP,
                                   size=SAVED_SIZE, progress=False)
print(len(saved["negative"]), "negatives")
'''),
        md("""
## 5. Read the collection back

`load_role_folders` reads `anchor/`, `positive/` and `negative/` and resizes every image to the
network's input size. A file that is not an image is skipped with a warning and counted, never
silently dropped: we plant one to see it.
"""),
        code('''
(COLLECTION_DIR / "negative" / "notes.jpg").write_text("not an image")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    roles = load_role_folders(COLLECTION_DIR, image_size=(56, 46))
for role, image_set in roles.items():
    print(f"{role:8s} {len(image_set):3d} images of shape {image_set.image_shape}, skipped {len(image_set.skipped)}")
print(f"{len(caught)} warning; it names the file: {'notes.jpg' in str(caught[0].message)}")
'''),
        code('''
assert len(roles["anchor"]) == len(roles["positive"]) == IMAGES_PER_ROLE
assert len(roles["negative"]) == len(others)
assert 0.0 <= roles["anchor"].images.min() and roles["anchor"].images.max() <= 1.0
'''),
        md("""
The seed notebooks pair every anchor with a positive (label 1, same person) and with a negative
(label 0, someone else). Top row: anchors; bottom row: the image each is paired with.
"""),
        code('''
count = 8
plot_pairs(roles["anchor"].images[:count], roles["positive"].images[:count], labels=np.ones(count))
'''),
        code('''
plot_pairs(roles["anchor"].images[:count], roles["negative"].images[:count], labels=np.zeros(count))
'''),
        md("""
## What next

`02_preprocessing_and_pairs.ipynb` turns face folders into training pairs. It works on the ORL
identity folders directly (one folder per person), which generalises the seeds' anchor/positive
/negative layout: pairs of *any* two people, so the network learns "same person?" instead of
"is this you?".
"""),
    ]


# --------------------------------------------------------------------------------------------
# 02 preprocessing and pairs
# --------------------------------------------------------------------------------------------

def notebook_02():
    return [
        header("02", "Preprocessing and pairs", """
A Siamese network learns from *pairs* of images with a label: 1 when both show the same person,
0 when not. This notebook prepares them with `siamese_tf.datasets`, `siamese_tf.augmentations`
and `siamese_tf.samplers`:

- load face images, convert to gray, resize and scale to [0, 1];
- augment them (small shifts, rotations, light changes);
- split the *people* into training, validation and test groups that share nobody;
- draw balanced same/different pairs, and serve reproducible training batches.
"""),
        code(SETUP + '''
import time

import numpy as np

from siamese_tf import settings
from siamese_tf.augmentations import Augmenter
from siamese_tf.datasets import load_identity_folders, split_by_identity
from siamese_tf.pipelines import locate_face_data
from siamese_tf.plots import plot_pairs
from siamese_tf.samplers import PairBatches, make_pairs
'''),
        md("""
## Parameters

The split gives 16 people to training, 4 to validation (for choosing thresholds) and 10 to the
test, as `make demo` does. Only the timing at the end shrinks in smoke mode.
"""),
        code('''
IMAGE_SIZE = (56, 46)                    # (height, width): half of ORL's 112 x 92, same aspect ratio
CHANNELS = 1                             # gray
SPLIT_FRACTIONS = (16 / 30, 4 / 30, 10 / 30)
NUM_PAIRS = 1000                         # a fixed pair set, as for validation or testing
PAIRS_PER_EPOCH = settings.pick(2048, 256)
BATCH_SIZE = 32
SEED = 0
'''),
        md("""
## 1. Load and preprocess

`load_identity_folders` reads one folder per person, from a folder or straight from a zip.
Every image is decoded with OpenCV, converted to `CHANNELS` channels, resized with area
interpolation (good for shrinking) and scaled to float32 in [0, 1].
"""),
        code('''
original = load_identity_folders(locate_face_data(), image_size=None)
faces = load_identity_folders(locate_face_data(), image_size=IMAGE_SIZE, channels=CHANNELS)
print("original:", original.images.shape, original.images.dtype)
print("network input:", faces.images.shape, faces.images.dtype,
      f"values {faces.images.min():.2f}..{faces.images.max():.2f}")
print(faces.num_classes, "people:", ", ".join(faces.class_names[:6]), "...")
print("images per person:", sorted(set(faces.counts().values())))
'''),
        md("""
Photo 1 (top) and photo 2 (bottom) of eight people, at the network's input size:
"""),
        code('''
first_photos = np.searchsorted(faces.labels, np.arange(8))  # images are stored person by person
plot_pairs(faces.images[first_photos], faces.images[first_photos + 1], labels=np.ones(8))
'''),
        md("""
## 2. Augmentation

Ten photos per person is little. `Augmenter` makes every use of a photo a little different: a
random mirror, a small rotation, shift and zoom (one affine warp with replicated borders) and a
brightness and contrast change. It is a callable `(image, rng) -> image`, so the same
generator state always gives the same result. `Augmenter.koch()` holds the distortions of Koch
et al. (2015) for Omniglot characters.
"""),
        code('''
augmenter = Augmenter()
augmenter
'''),
        code('''
rng = np.random.default_rng(SEED)
photo = faces.images[0]
augmented = np.stack([augmenter(photo, rng) for _ in range(8)])
print("shape kept:", augmented.shape[1:] == photo.shape, "| values in [0, 1]:",
      bool(augmented.min() >= 0 and augmented.max() <= 1))
plot_pairs(np.repeat(photo[None], 8, axis=0), augmented)
'''),
        md("""
## 3. An identity-disjoint split

A verification system meets people it has never seen: the person who enrols tomorrow. To measure
that, no person may appear in two splits. Splitting *images* at random would put photos of the
same people in training and test, and the test would report a number no new user ever gets.
"""),
        code('''
train, validation, test = split_by_identity(faces, fractions=SPLIT_FRACTIONS, seed=SEED)
for name, part in (("train", train), ("validation", validation), ("test", test)):
    print(f"{name:10s} {part.num_classes:2d} people, {len(part):3d} images: {', '.join(part.class_names)}")
'''),
        code('''
assert not set(train.class_names) & set(validation.class_names)
assert not set(train.class_names) & set(test.class_names)
assert not set(validation.class_names) & set(test.class_names)
assert train.num_classes + validation.num_classes + test.num_classes == faces.num_classes
'''),
        md("""
## 4. Balanced pairs

Most random pairs of images show two different people (with 16 people, 15 in 16). A network fed
such pairs learns to answer "different" and is right 94% of the time. `make_pairs` draws half
same pairs (two *distinct* photos of one person) and half different pairs (two people).

The seeds built their pairs from folders instead: anchor + positive -> 1, anchor + negative -> 0.
That teaches one question, "is this you?". Pairs over many people teach the general one, "are
these the same person?", which also works for people enrolled later.
"""),
        code('''
(first_images, second_images), pair_labels = make_pairs(train.images, train.labels, NUM_PAIRS, seed=SEED)
print(first_images.shape, second_images.shape, pair_labels.shape, pair_labels.dtype)
print(f"same pairs: {int(pair_labels.sum())}, different pairs: {int((pair_labels == 0).sum())}")
'''),
        code('''
plot_pairs(first_images[:8], second_images[:8], labels=pair_labels[:8])
'''),
        md("""
## 5. Training batches that can be replayed

`PairBatches` serves new pairs every epoch, augmented, in batches. Epoch `e` is drawn from
`(seed, e)` alone, so a run that stops and resumes at epoch 7 sees the very batches an
uninterrupted run would have seen: that is what makes checkpoint/resume in
`04_training.ipynb` exact.
"""),
        code('''
batches = PairBatches(train.images, train.labels, PAIRS_PER_EPOCH, BATCH_SIZE, seed=SEED, augment=augmenter)
(batch_first, batch_second), batch_labels = batches.batch(epoch=3, step=0)
print("one batch:", batch_first.shape, batch_second.shape, batch_labels.shape)
'''),
        code('''
(again_first, _), again_labels = batches.batch(epoch=3, step=0)
(next_first, _), _ = batches.batch(epoch=4, step=0)
assert np.array_equal(batch_first, again_first) and np.array_equal(batch_labels, again_labels)
assert not np.array_equal(batch_first, next_first)
print("epoch 3 replays exactly; epoch 4 differs")
'''),
        md("""
For Keras, `batches.dataset()` wraps them in a `tf.data.Dataset` (autotune off and a fixed
prefetch: autotune made `fit` stall for tens of seconds at the end of each run on small CPUs).
"""),
        code('''
batches.dataset().element_spec
'''),
        md("""
How long does one epoch of augmented pairs take to prepare? Compare it with training: a step of
32 pairs takes about 0.35 s on this CPU, so the data side is not what slows training down.
"""),
        code('''
# NBVAL_IGNORE_OUTPUT
started = time.perf_counter()
for step in range(batches.steps_per_epoch):
    batches.batch(epoch=0, step=step)
seconds = time.perf_counter() - started
print(f"{batches.steps_per_epoch} batches ({PAIRS_PER_EPOCH} augmented pairs) in {seconds:.2f} s")
'''),
    ]



# --------------------------------------------------------------------------------------------
# 03 the L1Dist layer
# --------------------------------------------------------------------------------------------

def notebook_03():
    return [
        header("03", "The L1 distance layer, from scratch", """
The heart of the seed notebooks' Siamese network is a tiny custom Keras layer, `L1Dist`: it takes
the embeddings of the two images and returns their absolute difference, feature by feature. A
dense layer with a sigmoid turns that into the probability that both images show the same person
(Koch et al. 2015: `p = sigmoid(sum_j alpha_j |h1_j - h2_j| + bias)`).

This is the one notebook where we write the code ourselves, as the lesson: we build the layer,
check it by hand, check its gradient, use it in a model, and then assert that it agrees exactly
with the package's `siamese_tf.layers.L1Dist` and `siamese_tf.heads.L1SimilarityHead`.
"""),
        code(SETUP + """
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from siamese_tf import settings
from siamese_tf.datasets import load_identity_folders
from siamese_tf.embeddings import small_cnn_embedding
from siamese_tf.heads import L1SimilarityHead
from siamese_tf.layers import L1Dist
from siamese_tf.models import SiameseModel, load_model, save_model
from siamese_tf.pipelines import locate_face_data
from siamese_tf.samplers import PairBatches, make_pairs
"""),
        md("""
## Parameters

Only the short training run at the end shrinks in smoke mode.
"""),
        code("""
IMAGE_SIZE = (56, 46)
EMBEDDING_DIM = 64
TRAINING_STEPS = settings.pick(30, 3)    # batches of the short training run
BATCH_SIZE = 32
SEED = 0

settings.seed_everything(SEED)           # same initial weights on every run
"""),
        md("""
## 1. The layer

A Keras layer needs one method, `call`. Ours takes the two embeddings and returns `|a - b|`,
written with `keras.ops` so that it runs on any Keras backend. It has no weights: all the learning
happens in the embedding network before it and the dense layer after it.
"""),
        code("""
class CourseL1Dist(keras.layers.Layer):
    \"\"\"Element-wise L1 distance |a - b| between two embeddings of the same shape.\"\"\"

    def call(self, anchor_embedding, validation_embedding):
        return ops.abs(anchor_embedding - validation_embedding)
"""),
        md("""
## 2. Check it by hand

Two four-feature embeddings, and their distance worked out on paper:
`|1 - 0.5| = 0.5`, `|-2 - 2| = 4`, `|3.5 - 3.5| = 0`, `|0 - (-1)| = 1`.
"""),
        code("""
anchor = np.array([[1.0, -2.0, 3.5, 0.0]], dtype="float32")
other = np.array([[0.5, 2.0, 3.5, -1.0]], dtype="float32")
by_hand = np.array([[0.5, 4.0, 0.0, 1.0]], dtype="float32")

course_layer = CourseL1Dist()
ours = ops.convert_to_numpy(course_layer(anchor, other))
print(ours)
assert np.array_equal(ours, by_hand)
"""),
        md("""
## 3. Check it against the package

`siamese_tf.layers.L1Dist` is the same idea, hardened: it accepts `layer(a, b)` or
`layer([a, b])`, rejects anything but two tensors of one shape with a message that says so, and is
registered for saving. On the same inputs the two must agree exactly, on the hand example and on
random embeddings; a distance is also symmetric and zero between an embedding and itself.
"""),
        code("""
package_layer = L1Dist()
assert np.array_equal(ops.convert_to_numpy(package_layer(anchor, other)), by_hand)
assert np.array_equal(ops.convert_to_numpy(package_layer([anchor, other])), by_hand)

rng = np.random.default_rng(SEED)
first = rng.normal(size=(8, EMBEDDING_DIM)).astype("float32")
second = rng.normal(size=(8, EMBEDDING_DIM)).astype("float32")
ours = ops.convert_to_numpy(course_layer(first, second))
theirs = ops.convert_to_numpy(package_layer(first, second))
assert np.array_equal(ours, theirs)
assert np.array_equal(ours, ops.convert_to_numpy(course_layer(second, first)))
assert not ops.convert_to_numpy(course_layer(first, first)).any()
print("CourseL1Dist == siamese_tf.layers.L1Dist on", ours.shape, "embeddings")
"""),
        code("""
try:
    package_layer(first, second[:, :10])
except ValueError as error:
    print("ValueError:", error)
"""),
        md("""
## 4. The gradient

Training pushes gradients through the layer. The derivative of `|a - b|` with respect to `a` is
the sign of `a - b`: +1, -1, and at the tie in feature 3 TensorFlow uses 0. So for the
hand example we expect `[1, -1, 0, 1]`, from both layers.
"""),
        code("""
anchor_tensor = tf.constant(anchor)
for layer in (course_layer, package_layer):
    with tf.GradientTape() as tape:
        tape.watch(anchor_tensor)
        total = tf.reduce_sum(layer(anchor_tensor, tf.constant(other)))
    gradient = tape.gradient(total, anchor_tensor).numpy()
    print(f"{type(layer).__name__:12s} gradient: {gradient}")
    assert np.array_equal(gradient, [[1.0, -1.0, 0.0, 1.0]])
"""),
        md("""
## 5. The seed's Siamese model, with our layer

Two image inputs go through **one** embedding network (the same weights for both: that is what
makes it Siamese), our layer measures the distance, and a dense sigmoid layer gives the
probability of "same". Keras traces `call` with symbolic inputs to find the output shape, so a
two-input layer needs no `compute_output_shape` (if you write one, its arguments must be named
after `call`'s: `anchor_embedding_shape`, `validation_embedding_shape`).
"""),
        code("""
embedding = small_cnn_embedding((*IMAGE_SIZE, 1), embedding_dim=EMBEDDING_DIM)
anchor_input = keras.Input((*IMAGE_SIZE, 1), name="anchor_image")
validation_input = keras.Input((*IMAGE_SIZE, 1), name="validation_image")
distances = CourseL1Dist(name="l1_distance")(embedding(anchor_input), embedding(validation_input))
probability = keras.layers.Dense(1, activation="sigmoid", name="classifier")(distances)
course_model = keras.Model([anchor_input, validation_input], probability, name="course_siamese")
print("distances:", distances.shape, "| probability:", probability.shape)
print(f"{course_model.count_params():,} parameters, {embedding.count_params():,} of them in the embedding")
"""),
        md("""
The package builds the same network as `SiameseModel(embedding, L1SimilarityHead())`: the head
is our layer plus the dense sigmoid layer, kept apart from the embedding so that a gallery can be
embedded once. Give it the same embedding network and the same dense weights, and it must score
real face pairs exactly as our model does.
"""),
        code("""
head = L1SimilarityHead()
package_model = SiameseModel(embedding, head)  # the same embedding object: shared weights
head.classifier.set_weights(course_model.get_layer("classifier").get_weights())

faces = load_identity_folders(locate_face_data(), image_size=IMAGE_SIZE)
(first_images, second_images), pair_labels = make_pairs(faces.images, faces.labels, 16, seed=SEED)
course_scores = ops.convert_to_numpy(course_model([first_images, second_images], training=False))[:, 0]
package_scores = package_model.score_pairs(first_images, second_images)
assert np.allclose(course_scores, package_scores, atol=1e-6)
assert np.all(np.abs(package_scores - 0.5) < 0.1)  # untrained: no opinion yet
print(len(package_scores), "face pairs scored alike, all close to 0.5 before training")
"""),
        md("""
## 6. It trains

A few steps with binary cross-entropy (label 1 = same) on pairs from `PairBatches`, exactly as
the seeds train. `04_training.ipynb` does this properly with the package's `compile_siamese` and
`train_siamese`; here we only want to see the loss move.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
course_model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
batches = PairBatches(faces.images, faces.labels, TRAINING_STEPS * BATCH_SIZE, BATCH_SIZE, seed=SEED)
history = course_model.fit(batches.dataset(), epochs=2, shuffle=False, verbose=0)
print("loss per epoch:", np.round(history.history["loss"], 3))
"""),
        md("""
Training changed the shared embedding network, so the package model (same embedding, dense
weights copied again) still agrees with ours.
"""),
        code("""
head.classifier.set_weights(course_model.get_layer("classifier").get_weights())
course_scores = ops.convert_to_numpy(course_model([first_images, second_images], training=False))[:, 0]
assert np.allclose(course_scores, package_model.score_pairs(first_images, second_images), atol=1e-5)
"""),
        md("""
## 7. Saving a model with a custom layer

A `.keras` file stores each layer's class name and config. To load it again Keras must find the
class: `siamese_tf` registers its layers (`@keras.saving.register_keras_serializable`), so a saved
`SiameseModel` loads with no extra arguments. Our `CourseL1Dist` is not registered; a model using
it loads only with `custom_objects={"CourseL1Dist": CourseL1Dist}`.
"""),
        code("""
print(keras.saving.get_registered_name(L1Dist), "|", keras.saving.get_registered_name(L1SimilarityHead))
path = save_model(package_model, Path(tempfile.mkdtemp()) / "course_03.keras")
reloaded = load_model(path)
assert np.allclose(reloaded.score_pairs(first_images, second_images),
                   package_model.score_pairs(first_images, second_images), atol=1e-6)
print(type(reloaded).__name__, "reloaded; scores unchanged")
"""),
    ]


NOTEBOOKS = {
    "01": ("01_data_collection.ipynb", notebook_01),
    "02": ("02_preprocessing_and_pairs.ipynb", notebook_02),
    "03": ("03_l1dist_layer.ipynb", notebook_03),
}


def build(number):
    name, make_cells = NOTEBOOKS[number]
    path = NOTEBOOKS_DIR / name
    notebook = nbformat.v4.new_notebook()
    notebook.cells = make_cells()
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    if path.exists():  # keep outputs of code cells whose source did not change
        old_cells = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
        old_by_source = {}
        for cell in old_cells:
            old_by_source.setdefault(cell.source, cell)
        for cell in notebook.cells:
            if cell.cell_type == "code" and cell.source in old_by_source:
                old = old_by_source[cell.source]
                cell.outputs = old.outputs
                cell.execution_count = old.execution_count
    for index, cell in enumerate(notebook.cells):
        cell.id = f"c{number}-{index:02d}"
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return path


def main(arguments):
    numbers = arguments or sorted(NOTEBOOKS)
    for number in numbers:
        if number not in NOTEBOOKS:
            raise SystemExit(f"unknown notebook {number!r}; choose from {sorted(NOTEBOOKS)}")
        print("wrote", build(number))


if __name__ == "__main__":
    main(sys.argv[1:])
