# %% [markdown]
# # 06 · Real-time verification
#
# The seeds end with an app: a webcam loop that, on a key press, saves the current frame as the
# input image, compares it with the person's validation images and prints *verified* or not. This
# notebook runs that loop with `siamese_tf.verification.Verifier`:
#
# - a saved model (with its two thresholds) and a folder of validation images of *you*;
# - frames from a camera or, when none opens (and always in smoke mode), from a stand-in clip of
#   ORL photos: you, then other people, taking turns;
# - each frame cropped, verified and shown with matplotlib (`cv2.imshow` does not exist in the
#   headless OpenCV build).
#
# **Run time** on a 2-core CPU without a GPU: full run about 1 minute, training included; smoke run
# (`SIAMESE_TF_SMOKE=1`, what CI runs) about 15 s. Label convention everywhere: **1 = same person, 0 = different**.

# %%
import os

# Before TensorFlow and OpenCV load: keep their C++ log lines out of the notebook.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# %matplotlib inline
# %config InlineBackend.figure_formats = ["jpeg"]

import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from siamese_tf import metrics, settings
from siamese_tf.augmentations import Augmenter
from siamese_tf.captures import FrameSource, crop_face, save_image_atomic
from siamese_tf.datasets import load_identity_folders, read_image, split_by_identity
from siamese_tf.errors import CameraUnavailableError
from siamese_tf.models import build_siamese_model, save_model
from siamese_tf.plots import plot_verification
from siamese_tf.samplers import ClassBalancedBatches, make_pairs
from siamese_tf.studies.faces import locate_face_data, reference_rule_scores
from siamese_tf.training import compile_siamese, train_siamese
from siamese_tf.verification import Verifier, choose_verification_threshold

# %% [markdown]
# ## Parameters

# %%
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

# %% [markdown]
# ## 1. A saved model with its thresholds
#
# The app loads a saved model. To stand alone, this notebook makes one: the network and the two
# thresholds of `05_evaluation_and_thresholds.ipynb`, in four short cells. (With a model of your
# own, skip them and set `model_path` to it.)

# %%
faces = load_identity_folders(locate_face_data(), image_size=IMAGE_SIZE)
train, validation, test = split_by_identity(faces, fractions=(16 / 30, 4 / 30, 10 / 30), seed=SEED)
print("test people (never trained on):", ", ".join(test.class_names))

# %%
# NBVAL_IGNORE_OUTPUT
settings.seed_everything(SEED)
model = build_siamese_model("small_cnn", HEAD, (*IMAGE_SIZE, 1), embedding_dim=EMBEDDING_DIM, normalize=True,
                            name="face_verification")
compile_siamese(model, mode="in_batch")
batches = ClassBalancedBatches(train.images, train.labels, classes_per_batch=8, images_per_class=4,
                               steps_per_epoch=STEPS_PER_EPOCH, seed=SEED, augment=Augmenter())
history = train_siamese(model, batches, NUM_EPOCHS, verbose=2)

# %%
(validation_first, validation_second), validation_labels = make_pairs(
    validation.images, validation.labels, VALIDATION_PAIRS, seed=SEED)
detection_threshold = metrics.calibrate(model, validation_first, validation_second, validation_labels)
fractions, attempts = reference_rule_scores(model, validation, REFERENCE_IMAGES, detection_threshold, seed=SEED)
model.thresholds["verification"] = choose_verification_threshold(fractions, attempts)
model_path = save_model(model, WORK_DIR / "face_verification.keras")
print(model_path.name, "saved with thresholds", sorted(model.thresholds))

# %% [markdown]
# ## 2. Enrol: validation images of you
#
# A test person plays *you*: the network never saw them. Their first `REFERENCE_IMAGES` photos go
# into `verification_images/`, cropped exactly as the camera frames will be (the same face finder
# and margin): inputs and references must look alike apart from the person.

# %%
photos = load_identity_folders(locate_face_data(), image_size=None)   # full-size frames for the stand-in
YOU = test.class_names[0]
your_photos = photos.images[photos.labels == photos.class_names.index(YOU)]
for photo in your_photos[:REFERENCE_IMAGES]:
    save_image_atomic(crop_face(photo, CROP_SIZE, margin=FACE_MARGIN), VERIFICATION_DIR)

verifier = Verifier.from_folder(model_path, VERIFICATION_DIR)
print(f"you are {YOU}: {len(verifier.validation_images)} validation images of shape "
      f"{verifier.validation_images.shape[1:]}, {verifier.skipped} skipped")

# %% [markdown]
# ## 3. The camera, or its stand-in
#
# The stand-in clip is a folder of numbered frames: your other photos, each followed by a photo of
# another test person. A real camera shows whoever sits in front of it.

# %%
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

# %%
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

# %% [markdown]
# ## 4. The verification loop
#
# For every frame: cut the face, write it as the input image (as the seeds' app does, so the file
# can be inspected afterwards), read it back at the network's input size, and verify it against the
# enrolled images. The model's stored thresholds decide.

# %%
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

# %% [markdown]
# What the camera saw, with the decision on top (green: verified):

# %%
# NBVAL_IGNORE_OUTPUT
figure, axes = plt.subplots(1, len(session), figsize=(1.3 * len(session), 2.2))
for axis, (frame, _, result) in zip(np.atleast_1d(axes), session):
    axis.imshow(frame)
    axis.set_title("verified" if result.verified else "rejected", fontsize=9,
                   color="tab:green" if result.verified else "tab:red")
    axis.axis("off")
plt.show()

# %% [markdown]
# One decision in detail: the input and the validation images, each framed green when it is a
# detection. First a frame of you, then one of somebody else.

# %%
# NBVAL_IGNORE_OUTPUT
for _, input_image, result in session[:2]:
    display(plot_verification(input_image, verifier.validation_images, result))

# %%
# NBVAL_IGNORE_OUTPUT
if source == clip_dir:
    truth = np.array([person == YOU for person in clip_people[:len(session)]])
    decisions = np.array([result.verified for _, _, result in session])
    print(f"{np.sum(decisions == truth)} of {len(session)} frames decided right "
          f"({np.sum(decisions & truth)} of {truth.sum()} of you verified, "
          f"{np.sum(decisions & ~truth)} of {np.sum(~truth)} others let in)")

# %% [markdown]
# ## 5. The app: enrol, verify, identify, forget, with the faces encrypted
#
# The loop above writes every crop as a plain image file, like the seeds. The app keeps them in an
# encrypted gallery instead (`siamese_tf.galleries.Gallery`: every crop, embedding and name
# encrypted with a key kept in a 0600 file or `SIAMESE_TF_GALLERY_KEY`). `FaceVerificationApp` does
# the four things the web page offers, with the model's own thresholds. The stand-in camera shows
# each photo on a gray background, as a webcam would.

# %%
from siamese_tf.galleries import Gallery
from siamese_tf.verification_apps import FaceVerificationApp


def on_camera_background(photo):
    """A photo in the middle of a gray 240x320 camera frame (RGB uint8)."""
    frame = np.full((240, 320, 3), 128, np.uint8)
    gray = (np.asarray(photo)[..., 0] * 255).round().astype(np.uint8)
    top, left = (240 - gray.shape[0]) // 2, (320 - gray.shape[1]) // 2
    frame[top:top + gray.shape[0], left:left + gray.shape[1]] = gray[..., None]
    return frame


app = FaceVerificationApp(model, Gallery(WORK_DIR / "gallery"), face_margin=FACE_MARGIN)
print(app.enrol(YOU, [on_camera_background(photo) for photo in your_photos[:REFERENCE_IMAGES]]).message)
for name in others[:2]:
    their_photos = photos.images[photos.labels == photos.class_names.index(name)]
    print(app.enrol(name, [on_camera_background(photo) for photo in their_photos[:REFERENCE_IMAGES]]).message)

# %% [markdown]
# Verify you and someone else against your gallery, then ask who is in front of the camera:

# %%
# NBVAL_IGNORE_OUTPUT
print(app.verify(YOU, on_camera_background(your_photos[-1])).message)
stranger = photos.images[photos.labels == photos.class_names.index(others[-1])][-1]
print(app.verify(YOU, on_camera_background(stranger)).message)
print(app.identify(on_camera_background(your_photos[-2])).message)

# %% [markdown]
# Nothing in the gallery folder is a readable image, and forgetting a person removes every file of
# theirs (the event log keeps only a random id and counts):

# %%
stored = [path for path in app.gallery.root.rglob("*") if path.is_file()]
plain = [path for path in stored if path.read_bytes()[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1")]
print(f"{len(stored)} files in the gallery, {len(plain)} of them plain images")
removed = app.forget(others[0])
print(f"forgot {others[0]}: {removed['images']} images, {removed['embeddings']} embedding file;",
      "enrolled now:", ", ".join(app.gallery.names()))

# %% [markdown]
# The same app as a web page, with the live camera, **Enrol**, **Verify**, **Who is this?** and a
# **Forget** button per person. It opens below when this notebook runs for real (not in smoke
# mode) and serves on 127.0.0.1 only; `page.close()` in the last cell stops it. From a terminal:
#
# ```bash
# python -m siamese_tf app --model models/face_verification.keras --gallery data/gallery
# ```

# %%
# NBVAL_IGNORE_OUTPUT
page = None
if not settings.smoke_mode():
    from siamese_tf.web_apps import launch_app

    page = launch_app(app, port=7861, model_name=model_path.name, enrol_images=REFERENCE_IMAGES, inline=True,
                      block=False)
else:
    print("Smoke mode: the web page is not started.")

# %% [markdown]
# ## Running it live
#
# With a camera this loop runs as it is; the seeds' key presses become the frame count (set
# `MAX_FRAMES` higher, and stop the cell to end). From a terminal, one image at a time:
#
# ```bash
# python -m siamese_tf verify --model models/face_verification.keras --image input.jpg \
#     --references application_data/verification_images
# ```
#
# The model here was trained on 16 ORL people. To verify yourself, collect your own anchor and
# positive images (`01_data_collection.ipynb`), train on them together with a public face set, and
# choose the thresholds on validation people as in `05`.

# %% [markdown]
# ## Clean up
#
# Everything this notebook wrote (camera frames, face crops, the application folders, the gallery) lives in
# `WORK_DIR`, a scratch folder of the system's temporary directory. Face images are personal
# data, so it is deleted here rather than left behind; to keep your own captures, point the
# capture step at a folder you chose (for example `data/anchor`) instead.

# %%
if page is not None:
    page.close()
shutil.rmtree(WORK_DIR, ignore_errors=True)
print("scratch folder removed:", not WORK_DIR.exists())
