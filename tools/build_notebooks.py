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

# Wall-clock times measured on the 2-core CPU machine (see notebooks/README.md).
TIMES = {
    "01": ("about 15 s", "about 10 s"),
    "02": ("about 10 s", "about 10 s"),
    "03": ("about 30 s", "about 15 s"),
    "04": ("about 4.5 minutes", "about 20 s"),
    "05": ("about 1 minute, training included", "about 15 s"),
    "06": ("about 1 minute, training included", "about 15 s"),
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
from siamese_tf.studies.faces import locate_face_data
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
from siamese_tf.studies.faces import locate_face_data
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
32 pairs takes 0.4 to 0.7 s on this CPU, so the data side is not what slows training down.
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
from siamese_tf.studies.faces import locate_face_data
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


# --------------------------------------------------------------------------------------------
# 04 training
# --------------------------------------------------------------------------------------------

MODELS_DIR_CODE = """MODELS_DIR = settings.pick(Path(os.environ.get("SIAMESE_TF_MODELS_DIR", "../models")),  # the repository's models/
                         Path(tempfile.mkdtemp(prefix="siamese_course_models_")))       # smoke runs keep nothing"""


def notebook_04():
    return [
        header("04", "Training a Siamese network", """
The seeds train their Siamese network on (anchor, other) pairs with binary cross-entropy: the L1
head outputs the probability that the pair is the same person, and the label says whether it is.
This notebook trains that network on ORL faces with `siamese_tf.training`:

- one parameter picks the head, and with it the loss: `"l1"` (probability, binary cross-entropy,
  as the seeds) or `"euclidean"` / `"cosine"` (a distance, contrastive loss);
- training runs on the GPU when there is one, and checkpoints every epoch: we pull the plug
  half-way and resume exactly where it stopped;
- training curves, a first look at people the network never saw, and the saved model;
- an option that scores far more pairs per step: in-batch training.
"""),
        code(SETUP + """
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from siamese_tf import metrics, settings
from siamese_tf.augmentations import Augmenter
from siamese_tf.datasets import load_identity_folders, split_by_identity
from siamese_tf.models import build_siamese_model, save_model
from siamese_tf.studies.faces import locate_face_data
from siamese_tf.plots import plot_roc, plot_score_histogram, plot_training_curves
from siamese_tf.samplers import ClassBalancedBatches, PairBatches, make_pairs
from siamese_tf.training import compile_siamese, train_siamese
"""),
        md("""
## Parameters

A step of 32 pairs takes 0.4 to 0.7 s on this 2-core CPU, so the full run trains for a few
minutes; smoke mode trains a handful of steps, only to prove that everything runs.
"""),
        code("""
HEAD = "l1"                 # "l1": sigmoid(Dense(|a - b|)) + binary cross-entropy (the seeds)
                            # "euclidean" or "cosine": a distance + the contrastive loss
EMBEDDING = "small_cnn"     # "koch" is the seeds' 39-million-parameter network: too slow for a CPU course
IMAGE_SIZE = (56, 46)
EMBEDDING_DIM = 64
NUM_EPOCHS = settings.pick(8, 2)
STOP_AFTER_EPOCHS = settings.pick(4, 1)   # the simulated crash
PAIRS_PER_EPOCH = settings.pick(1024, 64)
BATCH_SIZE = 32
VALIDATION_PAIRS = settings.pick(400, 64)
TEST_PAIRS = settings.pick(1000, 100)
LEARNING_RATE = 1e-3
IN_BATCH_HEAD = "euclidean"               # the option at the end
IN_BATCH_STEPS_PER_EPOCH = settings.pick(32, 4)
SEED = 0
""" + MODELS_DIR_CODE + """
CHECKPOINT_DIR = MODELS_DIR / "face_verification_checkpoints"
"""),
        md("""
## 1. Devices

TensorFlow places the work on a GPU by itself when it sees one; nothing in the code changes.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
print("TensorFlow", tf.__version__, "| Keras", keras.__version__)
print("devices:", ", ".join(device.name for device in tf.config.list_logical_devices()))
gpus = tf.config.list_physical_devices("GPU")
print(f"training on {len(gpus)} GPU(s)" if gpus else "no GPU: training runs on the CPU")
"""),
        md("""
## 2. Data

ORL faces, split by person (as in `02_preprocessing_and_pairs.ipynb`): the network trains on 16
people, the 4 validation people watch over training, and the 10 test people stay unseen until
the end.
"""),
        code("""
settings.seed_everything(SEED)
faces = load_identity_folders(locate_face_data(), image_size=IMAGE_SIZE)
train, validation, test = split_by_identity(faces, fractions=(16 / 30, 4 / 30, 10 / 30), seed=SEED)
print("train:", ", ".join(train.class_names))
print("validation:", ", ".join(validation.class_names))
print("test:", ", ".join(test.class_names))
"""),
        code("""
train_batches = PairBatches(train.images, train.labels, PAIRS_PER_EPOCH, BATCH_SIZE, seed=SEED, augment=Augmenter())
validation_pairs = make_pairs(validation.images, validation.labels, VALIDATION_PAIRS, seed=SEED)
test_pairs = make_pairs(test.images, test.labels, TEST_PAIRS, seed=SEED + 1)
"""),
        md("""
## 3. Model and loss

`build_siamese_model` joins an embedding network and a head; `compile_siamese` picks the loss that
fits the head: binary cross-entropy for a probability, the contrastive loss for a distance.
"""),
        code("""
def new_model():
    model = build_siamese_model(EMBEDDING, HEAD, (*IMAGE_SIZE, 1), embedding_dim=EMBEDDING_DIM,
                                name="face_verification")
    return compile_siamese(model, learning_rate=LEARNING_RATE)


model = new_model()
print(f"{model.count_params():,} parameters | head output: {model.output_kind} | loss: {model.loss.name}")
"""),
        md("""
## 4. Train, stop, resume

`train_siamese(..., checkpoint_dir=...)` backs the model and optimizer up at the end of every
epoch and keeps the best model (lowest validation loss) as `best.keras`. To see the backup at
work we stop the run after `STOP_AFTER_EPOCHS` epochs, as a crash or a closed laptop would (the
small callback below raises `KeyboardInterrupt`, which is also what the notebook's stop button
does).
"""),
        code("""
class StopAfterEpochs(keras.callbacks.Callback):
    \"\"\"Interrupt training once `epochs` epochs have finished (and been backed up).\"\"\"

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epochs:
            raise KeyboardInterrupt(f"simulated stop after {epoch} epochs")
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
try:
    train_siamese(model, train_batches, NUM_EPOCHS, validation_pairs=validation_pairs,
                  checkpoint_dir=CHECKPOINT_DIR, callbacks=[StopAfterEpochs(STOP_AFTER_EPOCHS)], verbose=2)
except KeyboardInterrupt as stop:
    print("stopped:", stop)
epochs_before_the_stop = model.history.history
"""),
        code("""
print(sorted(path.name for path in CHECKPOINT_DIR.iterdir()))
"""),
        md("""
A new process knows nothing of the old model, so we build everything again from scratch and call
`train_siamese` with the same `checkpoint_dir`: it restores weights, optimizer and epoch number
from `backup/` and runs only the missing epochs. `PairBatches` draws epoch `e` from `(seed, e)`,
so the resumed run sees the very pairs the uninterrupted one would have seen. When training
ends normally the backup is removed; `best.keras` stays.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
model = new_model()
train_batches = PairBatches(train.images, train.labels, PAIRS_PER_EPOCH, BATCH_SIZE, seed=SEED, augment=Augmenter())
resumed = train_siamese(model, train_batches, NUM_EPOCHS, validation_pairs=validation_pairs,
                        checkpoint_dir=CHECKPOINT_DIR, verbose=2)
"""),
        code("""
assert len(resumed.history["loss"]) == NUM_EPOCHS - STOP_AFTER_EPOCHS  # only the missing epochs ran
print(sorted(path.name for path in CHECKPOINT_DIR.iterdir()))
"""),
        md("""
## 5. Training curves

Both halves of the run together. Training loss should fall; the validation curves are measured on
people the network does not train on, so they are the honest ones (and noisy: 4 people).
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
history = {key: epochs_before_the_stop[key] + resumed.history[key] for key in resumed.history}
plot_training_curves(history)
"""),
        md("""
## 6. A first look at unseen people

Similarities (higher = same) of the test pairs: same-person pairs should sit to the right of
different-person pairs. How well they separate, as the area under the ROC curve (1.0 = perfectly,
0.5 = a coin). Choosing a decision threshold is the topic of `05_evaluation_and_thresholds.ipynb`.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
(test_first, test_second), test_labels = test_pairs
test_similarities = model.similarity_pairs(test_first, test_second)
print(f"test ROC AUC: {metrics.roc_auc(test_similarities, test_labels):.3f}")
plot_score_histogram(test_similarities, test_labels)
"""),
        md("""
## 7. Save

One `.keras` file holds the embedding network, the head and (after `05`) the chosen thresholds.
The command line uses it directly:
`python -m siamese_tf verify --model models/face_verification.keras --image me.jpg --references data/verification_images`.
"""),
        code("""
model_path = save_model(model, MODELS_DIR / "face_verification.keras")
print(model_path.name, "saved")
"""),
        md("""
## 8. Option: in-batch training

Pair training embeds two images for every pair it scores: 32 pairs cost 64 embeddings. In-batch
training embeds a batch of single images once (here 8 people x 4 photos) and scores **every** pair
in it: 32 embeddings give 496 pairs, 112 of them same-person pairs. `ClassBalancedBatches` serves
such batches and `compile_siamese(..., mode="in_batch")` picks the matching loss. With a distance
head (contrastive loss on unit-length embeddings) this recipe usually learns far faster on a CPU;
we train it for as many steps as the run above and compare both on the test people.
"""),
        code("""
in_batch_batches = ClassBalancedBatches(train.images, train.labels, classes_per_batch=8, images_per_class=4,
                                        steps_per_epoch=IN_BATCH_STEPS_PER_EPOCH, seed=SEED, augment=Augmenter())
print(f"{in_batch_batches.batch_size} images -> {in_batch_batches.pairs_per_batch} pairs per step")
in_batch_model = build_siamese_model(EMBEDDING, IN_BATCH_HEAD, (*IMAGE_SIZE, 1), embedding_dim=EMBEDDING_DIM,
                                     normalize=True, name="face_verification_in_batch")
compile_siamese(in_batch_model, learning_rate=LEARNING_RATE, mode="in_batch")
print(f"head output: {in_batch_model.output_kind} | loss: {in_batch_model.loss.name}")
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
in_batch_history = train_siamese(in_batch_model, in_batch_batches, NUM_EPOCHS, verbose=2)
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
in_batch_similarities = in_batch_model.similarity_pairs(test_first, test_second)
for name, similarities in (("pairs, " + HEAD, test_similarities), ("in-batch, " + IN_BATCH_HEAD, in_batch_similarities)):
    equal_error, _ = metrics.equal_error_rate(similarities, test_labels)
    print(f"{name:22s} test AUC {metrics.roc_auc(similarities, test_labels):.3f}, equal error rate {equal_error:.3f}")
plot_roc({f"pairs, {HEAD}": (test_similarities, test_labels),
          f"in-batch, {IN_BATCH_HEAD}": (in_batch_similarities, test_labels)}, title="ROC on the 10 test people")
"""),
        code("""
print(save_model(in_batch_model, MODELS_DIR / "face_verification_in_batch.keras").name, "saved")
"""),
    ]


# --------------------------------------------------------------------------------------------
# 05 evaluation and thresholds
# --------------------------------------------------------------------------------------------

TRAIN_IN_BATCH_CODE = """# NBVAL_IGNORE_OUTPUT
settings.seed_everything(SEED)
model = build_siamese_model("small_cnn", HEAD, (*IMAGE_SIZE, 1), embedding_dim=EMBEDDING_DIM, normalize=True,
                            name="face_verification")
compile_siamese(model, mode="in_batch")
batches = ClassBalancedBatches(train.images, train.labels, classes_per_batch=8, images_per_class=4,
                               steps_per_epoch=STEPS_PER_EPOCH, seed=SEED, augment=Augmenter())
history = train_siamese(model, batches, NUM_EPOCHS, verbose=2)"""


def notebook_05():
    return [
        header("05", "Evaluation and choosing thresholds", """
A Siamese network outputs a score; an application needs a yes/no. The seeds' app used two
thresholds: a **detection threshold** (does the input match *one* of the person's validation
images?) and a **verification threshold** (does it match enough of them?). This notebook measures
a trained network on people it never saw and chooses both thresholds properly:

- ROC curve, area under it (AUC), equal error rate (EER), score histograms;
- thresholds chosen on the *validation* people only, by accuracy, EER or a target false accept
  rate, and stored inside the model;
- the test people used once, at the end; N-way one-shot identification on them.
"""),
        code(SETUP + """
from pathlib import Path
import tempfile

import numpy as np

from siamese_tf import metrics, settings
from siamese_tf.augmentations import Augmenter
from siamese_tf.datasets import load_identity_folders, split_by_identity
from siamese_tf.models import build_siamese_model, load_model, save_model
from siamese_tf.studies.faces import locate_face_data, reference_rule_scores
from siamese_tf.plots import plot_n_way_task, plot_roc, plot_score_histogram
from siamese_tf.samplers import ClassBalancedBatches, make_pairs, sample_n_way_tasks
from siamese_tf.training import compile_siamese, train_siamese
from siamese_tf.verification import choose_verification_threshold
"""),
        md("""
## Parameters

The notebook trains its own network (the in-batch recipe of `04_training.ipynb`, section 8: a
distance head, contrastive loss), so it runs on its own. To evaluate a model you saved instead,
replace the training cell by `model = load_model("../models/face_verification.keras")`, trained on
the same split.
"""),
        code("""
HEAD = "euclidean"                        # similarity = -distance; "l1" gives probabilities
IMAGE_SIZE = (56, 46)
EMBEDDING_DIM = 64
NUM_EPOCHS = settings.pick(8, 2)
STEPS_PER_EPOCH = settings.pick(32, 4)
VALIDATION_PAIRS = settings.pick(800, 120)
TEST_PAIRS = settings.pick(2000, 200)
TARGET_FAR = 0.01                         # for the "far" threshold: at most 1 impostor in 100 accepted
REFERENCE_IMAGES = 5                      # the app's validation images per person
N_WAY = 10
NUM_TASKS = settings.pick(1000, 50)
SEED = 0
""" + MODELS_DIR_CODE),
        md("""
## 1. Data and a trained network

The same split by person as in `02` and `04`: 16 training, 4 validation, 10 test people.
"""),
        code("""
faces = load_identity_folders(locate_face_data(), image_size=IMAGE_SIZE)
train, validation, test = split_by_identity(faces, fractions=(16 / 30, 4 / 30, 10 / 30), seed=SEED)
print(f"validation people: {', '.join(validation.class_names)} | test people: {', '.join(test.class_names)}")
"""),
        code(TRAIN_IN_BATCH_CODE),
        md("""
## 2. Scores on validation and test pairs

`similarity_pairs` turns head outputs into similarities, higher = same: a probability head's
output as it is, a distance negated. Everything below works on that scale.
"""),
        code("""
(validation_first, validation_second), validation_labels = make_pairs(
    validation.images, validation.labels, VALIDATION_PAIRS, seed=SEED)
(test_first, test_second), test_labels = make_pairs(test.images, test.labels, TEST_PAIRS, seed=SEED + 1)
validation_similarities = model.similarity_pairs(validation_first, validation_second)
test_similarities = model.similarity_pairs(test_first, test_second)
assert validation_labels.mean() == 0.5 and test_labels.mean() == 0.5
print("validation and test pairs: half of each are same-person pairs (label 1)")
"""),
        md("""
## 3. ROC, AUC and EER

Every threshold trades false accepts (an impostor gets in: the false accept rate, FAR) against
false rejects (you are turned away: FRR). The ROC curve shows all the trades at once; its area
(AUC) is the chance that a random same pair scores above a random different pair. The equal error
rate is the point where FAR = FRR: one number to compare models by.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
for name, similarities, labels in (("validation", validation_similarities, validation_labels),
                                   ("test", test_similarities, test_labels)):
    equal_error, _ = metrics.equal_error_rate(similarities, labels)
    print(f"{name:10s} AUC {metrics.roc_auc(similarities, labels):.3f} | EER {equal_error:.3f}")
plot_roc({"validation people": (validation_similarities, validation_labels),
          "test people": (test_similarities, test_labels)})
"""),
        md("""
## 4. Choosing the detection threshold, on validation people only

The threshold is a setting of the model, so it must be chosen like any other setting: on data
that the final test does not use. Choosing it on the test pairs would make the test report how
well the threshold fits *those* pairs. Three ways to choose:

- `"accuracy"`: the most validation pairs right;
- `"eer"`: where false accepts and false rejects are equally frequent;
- `"far"`: the most true accepts while at most `TARGET_FAR` of impostors get in (security first).
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
choices = {}
for method in ("accuracy", "eer", "far"):
    choices[method] = metrics.choose_threshold(validation_similarities, validation_labels, method=method,
                                               target_far=TARGET_FAR if method == "far" else None)
    on_test = metrics.binary_metrics(test_similarities, test_labels, choices[method])
    print(f"{method:8s} threshold {choices[method]:+.3f} -> on test people: accuracy {on_test['accuracy']:.3f}, "
          f"FAR {on_test['false_accept_rate']:.3f}, FRR {on_test['false_reject_rate']:.3f}")
"""),
        md("""
Four validation people make an easy, small exam: their scores usually separate better than the
test people's, so a threshold chosen on them can be a little off for new people. A real system
calibrates on many more people than it takes to train a course model.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
plot_score_histogram(validation_similarities, validation_labels, threshold=choices["accuracy"])
"""),
        md("""
`metrics.calibrate` does the choice and stores it in `model.thresholds`, which is saved inside the
`.keras` file, so an application loads the model and its thresholds together.
"""),
        code("""
detection_threshold = metrics.calibrate(model, validation_first, validation_second, validation_labels,
                                        method="accuracy")
print(sorted(model.thresholds), "| method:", model.thresholds["method"])
assert model.thresholds["detection"] == detection_threshold
"""),
        md("""
## 5. The verification threshold: N validation images

The app compares the input with each of the person's `REFERENCE_IMAGES` validation images,
counts the *detections* (similarity above the detection threshold) and verifies the input when
the fraction of detections exceeds the verification threshold. One lucky match is not enough;
neither must every photo match.

`reference_rule_scores` plays that game on the validation people: each person's first 5 photos
are the references, each of their other photos is a genuine attempt (label 1), and as many photos
of the other people are impostor attempts (label 0). We pick the fraction that gets most attempts
right.
"""),
        code("""
validation_fractions, validation_attempts = reference_rule_scores(
    model, validation, REFERENCE_IMAGES, detection_threshold, seed=SEED)
verification_threshold = choose_verification_threshold(validation_fractions, validation_attempts)
model.thresholds["verification"] = verification_threshold
print(f"{len(validation_attempts)} validation attempts ({int(validation_attempts.sum())} genuine)")
print(sorted(model.thresholds))
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
print(f"detection threshold {detection_threshold:+.3f}, verification threshold {verification_threshold:.2f}")
test_fractions, test_attempts = reference_rule_scores(model, test, REFERENCE_IMAGES, detection_threshold, seed=SEED)
on_test = metrics.binary_metrics(test_fractions, test_attempts, verification_threshold)
print(f"test people, {len(test_attempts)} attempts: accuracy {on_test['accuracy']:.3f}, "
      f"FAR {on_test['false_accept_rate']:.3f}, FRR {on_test['false_reject_rate']:.3f}")
"""),
        md("""
## 6. The test people, once

`evaluate_verification` gives the whole report for the stored detection threshold.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
report = metrics.evaluate_verification(model, test_first, test_second, test_labels)
{name: round(value, 3) for name, value in report.items()}
"""),
        md("""
## 7. N-way one-shot identification

The other classic use of a Siamese network (Koch et al. 2015): show it one photo each of N
people it has never seen and a new photo of one of them; it answers with the most similar one.
Chance is 1/N.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
metrics.evaluate_n_way(model, test.images, test.labels, n_way=N_WAY, num_tasks=NUM_TASKS, seed=SEED)
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
query, supports, correct = sample_n_way_tasks(test.labels, N_WAY, 1, seed=SEED + 3)
task_embeddings = model.embed(np.concatenate([test.images[query], test.images[supports[0]]]))
task_similarities = model.similarity_to_library(task_embeddings[:1], task_embeddings[1:])[0]
plot_n_way_task(test.images[query[0]], test.images[supports[0]], task_similarities, int(correct[0]))
"""),
        md("""
## 8. Save the model with its thresholds
"""),
        code("""
model_path = save_model(model, MODELS_DIR / "face_verification_calibrated.keras")
reloaded = load_model(model_path)
assert reloaded.thresholds == model.thresholds
print(model_path.name, "holds", sorted(reloaded.thresholds))
"""),
    ]


# --------------------------------------------------------------------------------------------
# 06 real-time verification
# --------------------------------------------------------------------------------------------

def notebook_06():
    return [
        header("06", "Real-time verification", """
The seeds end with an app: a webcam loop that, on a key press, saves the current frame as the
input image, compares it with the person's validation images and prints *verified* or not. This
notebook runs that loop with `siamese_tf.verification.Verifier`:

- a saved model (with its two thresholds) and a folder of validation images of *you*;
- frames from a camera or, when none opens (and always in smoke mode), from a stand-in clip of
  ORL photos: you, then other people, taking turns;
- each frame cropped, verified and shown with matplotlib (`cv2.imshow` does not exist in the
  headless OpenCV build).
"""),
        code(SETUP + """
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from siamese_tf import metrics, settings
from siamese_tf.augmentations import Augmenter
from siamese_tf.captures import FrameSource, crop_face, save_image_atomic
from siamese_tf.datasets import load_identity_folders, read_image, split_by_identity
from siamese_tf.errors import CameraUnavailableError
from siamese_tf.models import build_siamese_model, save_model
from siamese_tf.studies.faces import locate_face_data, reference_rule_scores
from siamese_tf.plots import plot_verification
from siamese_tf.samplers import ClassBalancedBatches, make_pairs
from siamese_tf.training import compile_siamese, train_siamese
from siamese_tf.verification import Verifier, choose_verification_threshold
"""),
        md("""
## Parameters
"""),
        code("""
TRY_CAMERA = settings.pick(True, False)   # smoke mode always plays the stand-in clip
CAMERA_INDEX = 0
MAX_FRAMES = 10                           # frames to verify before the loop ends
CROP_SIZE = (112, 92)                     # (height, width) cut around the face: ORL's shape
FACE_MARGIN = 0.1                         # room around the detected face, as a share of its size
REFERENCE_IMAGES = 5                      # validation images of you
HEAD = "euclidean"                        # the network, trained below as in 05
IMAGE_SIZE = (56, 46)
EMBEDDING_DIM = 64
NUM_EPOCHS = settings.pick(8, 2)
STEPS_PER_EPOCH = settings.pick(32, 4)
VALIDATION_PAIRS = settings.pick(800, 120)
SEED = 0

WORK_DIR = Path(tempfile.mkdtemp(prefix="siamese_course_06_"))
APPLICATION_DIR = WORK_DIR / "application_data"      # the seeds' folder names
VERIFICATION_DIR = APPLICATION_DIR / "verification_images"
INPUT_DIR = APPLICATION_DIR / "input_image"
"""),
        md("""
## 1. A saved model with its thresholds

The app loads a saved model. To stand alone, this notebook makes one: the network and the two
thresholds of `05_evaluation_and_thresholds.ipynb`, in four short cells. (With a model of your
own, skip them and set `model_path` to it.)
"""),
        code("""
faces = load_identity_folders(locate_face_data(), image_size=IMAGE_SIZE)
train, validation, test = split_by_identity(faces, fractions=(16 / 30, 4 / 30, 10 / 30), seed=SEED)
print("test people (never trained on):", ", ".join(test.class_names))
"""),
        code(TRAIN_IN_BATCH_CODE),
        code("""
(validation_first, validation_second), validation_labels = make_pairs(
    validation.images, validation.labels, VALIDATION_PAIRS, seed=SEED)
detection_threshold = metrics.calibrate(model, validation_first, validation_second, validation_labels)
fractions, attempts = reference_rule_scores(model, validation, REFERENCE_IMAGES, detection_threshold, seed=SEED)
model.thresholds["verification"] = choose_verification_threshold(fractions, attempts)
model_path = save_model(model, WORK_DIR / "face_verification.keras")
print(model_path.name, "saved with thresholds", sorted(model.thresholds))
"""),
        md("""
## 2. Enrol: validation images of you

A test person plays *you*: the network never saw them. Their first `REFERENCE_IMAGES` photos go
into `verification_images/`, cropped exactly as the camera frames will be (the same face finder
and margin): inputs and references must look alike apart from the person.
"""),
        code("""
photos = load_identity_folders(locate_face_data(), image_size=None)   # full-size frames for the stand-in
YOU = test.class_names[0]
your_photos = photos.images[photos.labels == photos.class_names.index(YOU)]
for photo in your_photos[:REFERENCE_IMAGES]:
    save_image_atomic(crop_face(photo, CROP_SIZE, margin=FACE_MARGIN), VERIFICATION_DIR)

verifier = Verifier.from_folder(model_path, VERIFICATION_DIR)
print(f"you are {YOU}: {len(verifier.validation_images)} validation images of shape "
      f"{verifier.validation_images.shape[1:]}, {verifier.skipped} skipped")
"""),
        md("""
## 3. The camera, or its stand-in

The stand-in clip is a folder of numbered frames: your other photos, each followed by a photo of
another test person. A real camera shows whoever sits in front of it.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
source = None
if TRY_CAMERA:
    try:
        with FrameSource(CAMERA_INDEX):
            source = CAMERA_INDEX
        print(f"Camera {CAMERA_INDEX} opens: look into it.")
    except CameraUnavailableError as error:
        print(f"No camera: {error}")
else:
    print("Smoke mode: not looking for a camera.")
if source is None:
    print("The stand-in clip plays the camera.")
"""),
        code("""
others = [name for name in test.class_names if name != YOU]
clip_dir, clip_people = WORK_DIR / "stand_in_camera", []
for turn, photo in enumerate(your_photos[REFERENCE_IMAGES:]):
    impostor = others[turn % len(others)]
    impostor_photo = photos.images[photos.labels == photos.class_names.index(impostor)][turn]
    for person, frame in ((YOU, photo), (impostor, impostor_photo)):
        save_image_atomic(frame, clip_dir, prefix=f"{len(clip_people):03d}_", extension=".png")
        clip_people.append(person)
if source is None:
    source = clip_dir
print("stand-in clip:", " ".join(clip_people))
"""),
        md("""
## 4. The verification loop

For every frame: cut the face, write it as the input image (as the seeds' app does, so the file
can be inspected afterwards), read it back at the network's input size, and verify it against the
enrolled images. The model's stored thresholds decide.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
height, width, channels = verifier.model.input_image_shape
session = []
with FrameSource(source) as frames:
    for frame_number, frame in zip(range(MAX_FRAMES), frames):
        input_path = save_image_atomic(crop_face(frame, CROP_SIZE, margin=FACE_MARGIN), INPUT_DIR)
        input_image = read_image(input_path, image_size=(height, width), channels=channels)
        result = verifier.verify(input_image)
        session.append((frame, input_image, result))
        who = f" ({clip_people[frame_number]})" if source == clip_dir else ""
        print(f"frame {frame_number}{who}: {'VERIFIED' if result.verified else 'not verified'}, "
              f"{result.detections}/{len(result.similarities)} detections")
"""),
        md("""
What the camera saw, with the decision on top (green: verified):
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
figure, axes = plt.subplots(1, len(session), figsize=(1.3 * len(session), 2.2))
for axis, (frame, _, result) in zip(np.atleast_1d(axes), session):
    axis.imshow(frame)
    axis.set_title("verified" if result.verified else "rejected", fontsize=9,
                   color="tab:green" if result.verified else "tab:red")
    axis.axis("off")
plt.show()
"""),
        md("""
One decision in detail: the input and the validation images, each framed green when it is a
detection. First a frame of you, then one of somebody else.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
for _, input_image, result in session[:2]:
    display(plot_verification(input_image, verifier.validation_images, result))
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
if source == clip_dir:
    truth = np.array([person == YOU for person in clip_people[:len(session)]])
    decisions = np.array([result.verified for _, _, result in session])
    print(f"{np.sum(decisions == truth)} of {len(session)} frames decided right "
          f"({np.sum(decisions & truth)} of {truth.sum()} of you verified, "
          f"{np.sum(decisions & ~truth)} of {np.sum(~truth)} others let in)")
"""),
        md("""
## Running it live

With a camera this loop runs as it is; the seeds' key presses become the frame count (set
`MAX_FRAMES` higher, and stop the cell to end). From a terminal, one image at a time:

```bash
python -m siamese_tf verify --model models/face_verification.keras --image input.jpg --references application_data/verification_images
```

The model here was trained on 16 ORL people. To verify yourself, collect your own anchor and
positive images (`01_data_collection.ipynb`), train on them together with a public face set, and
choose the thresholds on validation people as in `05`.
"""),
    ]


NOTEBOOKS = {
    "01": ("01_data_collection.ipynb", notebook_01),
    "02": ("02_preprocessing_and_pairs.ipynb", notebook_02),
    "03": ("03_l1dist_layer.ipynb", notebook_03),
    "04": ("04_training.ipynb", notebook_04),
    "05": ("05_evaluation_and_thresholds.ipynb", notebook_05),
    "06": ("06_real_time_verification.ipynb", notebook_06),
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
