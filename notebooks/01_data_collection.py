# %% [markdown]
# # 01 · Collecting faces: anchor, positive, negative
#
# The face-verification seed notebooks start by filling three folders: `data/anchor` and
# `data/positive` with webcam crops of *you*, and `data/negative` with faces of other people from a
# public face set. This notebook does the same with `siamese_tf.captures`:
#
# - look for a camera, and fall back to a stand-in when there is none (servers, CI);
# - cut a face region from every frame and save it under a unique name, atomically;
# - fill `negative/` from a public face set and read the three folders back.
#
# The public face set is Labeled Faces in the Wild (LFW), as in the seeds. Without a camera (or in
# smoke mode) one LFW person, Junichiro Koizumi, plays *you*: his photos on a webcam-sized canvas
# make the stand-in clip. He belongs to LFW's fold 9, whose people the later notebooks never train
# on, so he stays a stranger to the network, as you are.
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

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from siamese_tf import settings
from siamese_tf.captures import FrameSource, capture_images, detect_face, save_image_atomic
from siamese_tf.datasets import load_role_folders
from siamese_tf.errors import CameraUnavailableError
from siamese_tf.plots import plot_pairs
from siamese_tf.studies.faces import load_lfw, locate_lfw, read_lfw_people, stand_in_frames

# %% [markdown]
# ## Parameters
#
# Everything you might change sits in this cell. `settings.pick(full, smoke)` returns the first
# value normally and the second in smoke mode (`SIAMESE_TF_SMOKE=1`): CI never waits for a camera.
# The collection goes to a fresh temporary folder; point `COLLECTION_DIR` at `Path("data")` to keep
# your own captures.

# %%
TRY_CAMERA = settings.pick(True, False)  # smoke mode goes straight to the stand-in
CAMERA_INDEX = 0                         # the first camera OpenCV finds
YOU = "Junichiro_Koizumi"                # the LFW person who plays you (fold 9: never trained on)
FRAMES_PER_CLIP = 20                     # frames in each stand-in clip (his photos 1-20 and 21-40)
IMAGES_PER_ROLE = 20                     # anchors and positives to save (the seeds took about 300)
NEGATIVE_PEOPLE = settings.pick(300, 30)  # LFW people of the training folds, one photo each
TRAIN_FOLDS = range(1, 8)                # where the negatives come from: the people 04 trains on
CROP = "face"                            # "face" (around the detected face) or "center" (fixed box)
SAVED_SIZE = (100, 100)                  # (height, width) of the saved crops, as the seeds
INPUT_SIZE = (64, 64)                    # what the network of 04 reads

WORK_DIR = Path(tempfile.mkdtemp(prefix="siamese_course_01_"))
COLLECTION_DIR = WORK_DIR / "data"

# %% [markdown]
# ## 1. Is there a camera?
#
# `FrameSource` takes a camera index, a video file or a folder of images and yields RGB frames.
# Opening a camera that is not there raises `CameraUnavailableError` at once (no hanging, no
# window: `cv2.imshow` does not exist in the headless OpenCV build, so frames are shown with
# matplotlib below).

# %%
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
    print(f"A stand-in clip made from LFW photos of {YOU} plays the camera.")

# %% [markdown]
# ## 2. The stand-in: LFW photos on a webcam-sized canvas
#
# LFW holds 13,233 photos of 5,749 people from news pictures, 250 x 250 pixels, colour, each
# centred on a face (the shared copy: the 11,450 photos of View 2's first 9 folds). `locate_lfw`
# finds the photos (folder or zip, as downloaded) and the official people and pairs lists.
#
# A webcam stream is many slightly different frames: the head turns, the light changes.
# `stand_in_frames` puts each of your photos, enlarged, in the middle of a gray 640 x 480 frame:
# one clip for the anchor session (his photos 1-20) and one for the positive session (21-40), each
# a folder of numbered frames, which `FrameSource` plays in name order, exactly like a video.

# %%
files = locate_lfw()
frames, _ = stand_in_frames(files.images, [YOU], 2 * FRAMES_PER_CLIP)
clip_folders = {}
for role, clip_frames in (("anchor", frames[:FRAMES_PER_CLIP]), ("positive", frames[FRAMES_PER_CLIP:])):
    clip_folders[role] = WORK_DIR / f"clip_{role}"
    for frame_number, frame in enumerate(clip_frames):
        save_image_atomic(frame, clip_folders[role], prefix=f"{frame_number:04d}_", extension=".png")

with FrameSource(clip_folders["anchor"]) as clip:
    first_frames = [frame for _, frame in zip(range(4), clip)]
print(f"{len(first_frames)} frames read; each is RGB uint8 of shape {first_frames[0].shape}")

# %% [markdown]
# ## 3. Capture anchors and positives
#
# `capture_images(source, folder, count, crop=...)` is the seed's collection loop without the
# window: read a frame, cut the face region, write it under a uuid name (to a temporary file that
# is then renamed, so no reader ever sees half an image). `crop="face"` looks for the largest face
# with OpenCV's Haar cascade and falls back to the centre box when it finds none.

# %%
print("face box (x, y, width, height) in the first frame:", detect_face(first_frames[0]))

# %%
saved = {}
for role in ("anchor", "positive"):
    source = FrameSource(CAMERA_INDEX) if camera_found else clip_folders[role]
    saved[role] = capture_images(source, COLLECTION_DIR / role, IMAGES_PER_ROLE, crop=CROP, size=SAVED_SIZE,
                                 progress=False)
{role: len(paths) for role, paths in saved.items()}

# %% [markdown]
# With a real camera, move your head and change the light between captures: the network can only
# learn to ignore what it has seen vary. The command line does the same job:
#
# ```bash
# python -m siamese_tf capture --source 0 --output data/anchor --count 300
# python -m siamese_tf capture --source clip.mp4 --output data/positive --count 300 --every-nth 3
# ```
#
# ## 4. Negatives from a public face set
#
# The seeds filled `negative/` with Labeled Faces in the Wild; so do we, one photo each of
# `NEGATIVE_PEOPLE` people of LFW's training folds (`read_lfw_people` reads the official people
# list; `load_lfw(..., crop=None, image_size=None)` keeps the whole 250 x 250 photo). They go
# through the same capture and crop as your images: if only your crops had black borders or a
# different zoom, a network could learn to spot the crop instead of the face.

# %%
# NBVAL_IGNORE_OUTPUT
people = read_lfw_people(files.people)
negative_people = sorted(name for fold in TRAIN_FOLDS for name, _ in people[fold - 1])[:NEGATIVE_PEOPLE]
public = load_lfw(files.images, image_size=None, channels=3, crop=None, people=negative_people)
first_photos = np.searchsorted(public.labels, np.arange(public.num_classes))  # photos are stored person by person
public_faces = WORK_DIR / "public_faces"
for photo in public.images[first_photos]:
    save_image_atomic(photo, public_faces, extension=".png")
saved["negative"] = capture_images(public_faces, COLLECTION_DIR / "negative", len(first_photos), crop=CROP,
                                   size=SAVED_SIZE, progress=False)
print(f"{len(saved['negative'])} negatives, photos {public.image_shape}: {', '.join(public.class_names[:3])}, ...")

# %% [markdown]
# ## 5. Read the collection back
#
# `load_role_folders` reads `anchor/`, `positive/` and `negative/` and resizes every image to the
# network's input size. A file that is not an image is skipped with a warning and counted, never
# silently dropped: we plant one to see it.

# %%
# NBVAL_IGNORE_OUTPUT
(COLLECTION_DIR / "negative" / "notes.jpg").write_text("not an image")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    roles = load_role_folders(COLLECTION_DIR, image_size=INPUT_SIZE)
for role, image_set in roles.items():
    print(f"{role:8s} {len(image_set):3d} images of shape {image_set.image_shape}, skipped {len(image_set.skipped)}")
print(f"{len(caught)} warning; it names the file: {'notes.jpg' in str(caught[0].message)}")

# %%
assert len(roles["anchor"]) == len(roles["positive"]) == IMAGES_PER_ROLE
assert len(roles["negative"]) == NEGATIVE_PEOPLE
assert 0.0 <= roles["anchor"].images.min() and roles["anchor"].images.max() <= 1.0

# %% [markdown]
# The seed notebooks pair every anchor with a positive (label 1, same person) and with a negative
# (label 0, someone else). Top row: anchors; bottom row: the image each is paired with.

# %%
count = 8
plot_pairs(roles["anchor"].images[:count], roles["positive"].images[:count], labels=np.ones(count))

# %%
plot_pairs(roles["anchor"].images[:count], roles["negative"].images[:count], labels=np.zeros(count))

# %% [markdown]
# ## 6. Keeping captures safe: the encrypted gallery
#
# Plain JPEG files of faces are biometric data anyone with the folder can read. To keep captures,
# store them in an encrypted gallery (`siamese_tf.galleries.Gallery`), the store the app
# (`06_real_time_verification.ipynb`, `python -m siamese_tf app`) uses: every crop, and the name,
# encrypted with a key from `SIAMESE_TF_GALLERY_KEY` or a key file created with mode 0600.

# %%
from siamese_tf.galleries import Gallery

gallery = Gallery(WORK_DIR / "gallery")
stored = gallery.add_images("you", (roles["anchor"].images * 255).round().astype(np.uint8))
files = [path for path in gallery.root.rglob("*") if path.is_file()]
readable = [path for path in files if path.read_bytes()[:3] in (b"\x89PN", b"\xff\xd8\xff")]
print(f"stored {stored} anchors in {len(files)} files; {len(readable)} of them are readable images")
print("back from the gallery, decrypted in memory:", gallery.load_images("you").shape)
removed = gallery.forget("you")
print(f"forgot 'you': {removed['images']} images removed; enrolled now: {gallery.names()}")

# %% [markdown]
# ## What next
#
# `02_preprocessing_and_pairs.ipynb` turns face folders into training pairs. It works on LFW's
# identity folders directly (one folder per person), which generalises the seeds' anchor/positive
# /negative layout: pairs of *any* two people, so the network learns "same person?" instead of
# "is this you?".

# %% [markdown]
# ## Clean up
#
# Everything this notebook wrote (camera frames, face crops, the application folders) lives in
# `WORK_DIR`, a scratch folder of the system's temporary directory. Face images are personal
# data, so it is deleted here rather than left behind; to keep your own captures, store them in an
# encrypted gallery in a folder you chose (section 6) rather than as plain files.

# %%
shutil.rmtree(WORK_DIR, ignore_errors=True)
print("scratch folder removed:", not WORK_DIR.exists())
