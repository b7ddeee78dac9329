# %% [markdown]
# # 06 · Real-time verification
#
# The seeds end with an app: a webcam loop that, on a key press, saves the current frame as the
# input image, compares it with the person's validation images and prints *verified* or not. This
# notebook runs that loop with `siamese_tf.verification.Verifier`:
#
# - a saved model (with its two thresholds) and a folder of validation images of *you*;
# - frames from a camera or, when none opens (and always in smoke mode), from a stand-in clip of
#   Labeled Faces in the Wild (LFW) photos on a webcam-sized canvas: you (an LFW person the network
#   never saw), then other people, taking turns;
# - each frame cropped, verified and shown with matplotlib (`cv2.imshow` does not exist in the
#   headless OpenCV build).
#
# **Run time** on a 2-core CPU without a GPU: full run about 4.5 minutes, training included; smoke run
# (`SIAMESE_TF_SMOKE=1`, what CI runs) about 30 s. Label convention everywhere: **1 = same person, 0 = different**.

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

from siamese_tf import settings
from siamese_tf.captures import FrameSource, crop_face, save_image_atomic
from siamese_tf.datasets import read_image
from siamese_tf.errors import CameraUnavailableError
from siamese_tf.models import save_model
from siamese_tf.plots import plot_verification
from siamese_tf.studies.faces import ClassProxyRecipe, locate_lfw, stand_in_frames, train_lfw_verification_model
from siamese_tf.verification import Verifier
from siamese_tf.verification_apps import DEFAULT_FACE_MARGIN

# %% [markdown]
# ## Parameters

# %%
TRY_CAMERA = settings.pick(True, False)   # smoke mode always plays the stand-in clip
CAMERA_INDEX = 0
MAX_FRAMES = 10                           # frames to verify before the loop ends
CROP_SIZE = (100, 100)                    # (height, width) of the saved crops, as the seeds
FACE_MARGIN = DEFAULT_FACE_MARGIN         # room around the detected face: the crop LFW's training faces had
REFERENCE_IMAGES = 5                      # validation images of you
YOU = "Junichiro_Koizumi"                 # LFW fold 9: never trained on, never used for thresholds
OTHERS = ["Alvaro_Uribe", "Jack_Straw", "Rudolph_Giuliani"]   # other fold 9 people
TRAINING_MINUTES = settings.pick(4.0, 0.5)
TRAIN_FOLDS = settings.pick(range(1, 8), [1])            # LFW folds whose people train
MAX_TRAIN_PEOPLE = settings.pick(None, 60)
VALIDATION_FOLD = 8                       # whose people choose both thresholds

WORK_DIR = Path(tempfile.mkdtemp(prefix="siamese_course_06_"))
APPLICATION_DIR = WORK_DIR / "application_data"      # the seeds' folder names
VERIFICATION_DIR = APPLICATION_DIR / "verification_images"
INPUT_DIR = APPLICATION_DIR / "input_image"

# %% [markdown]
# ## 1. A saved model with its thresholds
#
# The app loads a saved model. To stand alone, this notebook makes one in a single call:
# `train_lfw_verification_model` trains the contrastive network of `04` (section 8) on the people
# of LFW folds 1-7 for `TRAINING_MINUTES`, then chooses both thresholds of `05` on fold 8's people,
# the verification threshold with `REFERENCE_IMAGES` images per person, as the app enrols. (`make
# demo` makes the same kind of model in about 9 minutes as `models/face_verification.keras`: to use
# it, skip this cell and set `model_path` to it.)

# %%
# NBVAL_IGNORE_OUTPUT
recipe = ClassProxyRecipe(minutes=TRAINING_MINUTES) if not settings.smoke_mode() else ClassProxyRecipe.smoke()
model, training = train_lfw_verification_model(train_folds=TRAIN_FOLDS, validation_folds=(VALIDATION_FOLD,),
                                               recipe=recipe, max_train_people=MAX_TRAIN_PEOPLE,
                                               references=REFERENCE_IMAGES, method="contrastive", verbose=2)
print(f"trained {training['epochs']} epochs on {training['train_people']:,} people")

# %%
model_path = save_model(model, WORK_DIR / "face_verification.keras")
print(model_path.name, "saved with thresholds", sorted(model.thresholds))

# %% [markdown]
# ## 2. Enrol: validation images of you
#
# An LFW person of fold 9 plays *you*: the network never saw him, nor did the thresholds.
# `stand_in_frames` puts his photos in the middle of gray 640 x 480 frames, as a webcam would show
# him. His first `REFERENCE_IMAGES` frames go into `verification_images/`, cropped exactly as the
# camera frames will be (the same face finder and margin): inputs and references must look alike
# apart from the person.

# %%
files = locate_lfw()
your_frames, _ = stand_in_frames(files.images, [YOU], REFERENCE_IMAGES + MAX_FRAMES)
for frame in your_frames[:REFERENCE_IMAGES]:
    save_image_atomic(crop_face(frame, CROP_SIZE, margin=FACE_MARGIN), VERIFICATION_DIR)

verifier = Verifier.from_folder(model_path, VERIFICATION_DIR)
print(f"you are {YOU}: {len(verifier.validation_images)} validation images, {verifier.skipped} skipped")

# %% [markdown]
# ## 3. The camera, or its stand-in
#
# The stand-in clip is a folder of numbered frames: your other photos, each followed by a photo of
# another fold 9 person. A real camera shows whoever sits in front of it.

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
other_frames, other_names = stand_in_frames(files.images, OTHERS, REFERENCE_IMAGES + MAX_FRAMES)
clip_dir, clip_people = WORK_DIR / "stand_in_camera", []
for turn, frame in enumerate(your_frames[REFERENCE_IMAGES:]):
    impostor = (turn % len(OTHERS)) * (REFERENCE_IMAGES + MAX_FRAMES) + turn // len(OTHERS)  # people take turns
    for person, shown in ((YOU, frame), (other_names[impostor], other_frames[impostor])):
        save_image_atomic(shown, clip_dir, prefix=f"{len(clip_people):03d}_", extension=".png")
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
# the four things the web page offers, with the model's own thresholds, on the same stand-in
# camera frames.

# %%
from siamese_tf.galleries import Gallery
from siamese_tf.verification_apps import FaceVerificationApp


def frames_of(name):
    """The stand-in camera frames of one of the other people."""
    return other_frames[[index for index, other in enumerate(other_names) if other == name]]


app = FaceVerificationApp(model, Gallery(WORK_DIR / "gallery"), face_margin=FACE_MARGIN)
print(app.enrol(YOU, your_frames[:REFERENCE_IMAGES]).message)
for name in OTHERS[:2]:
    print(app.enrol(name, frames_of(name)[:REFERENCE_IMAGES]).message)

# %% [markdown]
# Verify you and someone else against your gallery, then ask who is in front of the camera:

# %%
# NBVAL_IGNORE_OUTPUT
print(app.verify(YOU, your_frames[-1]).message)
print(app.verify(YOU, frames_of(OTHERS[-1])[-1]).message)
print(app.identify(your_frames[-2]).message)

# %% [markdown]
# Nothing in the gallery folder is a readable image, and forgetting a person removes every file of
# theirs (the event log keeps only a random id and counts):

# %%
stored = [path for path in app.gallery.root.rglob("*") if path.is_file()]
plain = [path for path in stored if path.read_bytes()[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1")]
print(f"{len(stored)} files in the gallery, {len(plain)} of them plain images")
removed = app.forget(OTHERS[0])
print(f"forgot {OTHERS[0]}: {removed['images']} images, {removed['embeddings']} embedding file;",
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
# The model here trained for a few minutes on LFW's folds 1-7 and verifies people it never saw,
# you included: no retraining is needed to enrol someone. To verify yourself, collect your own
# anchor images (`01_data_collection.ipynb`) and enrol them; for a stronger model, train longer
# (`python -m siamese_tf train`, `make demo`) and choose the thresholds on validation people as in
# `05`.

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
