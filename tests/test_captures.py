"""Tests for siamese_tf.captures (headless: video files and image folders stand in for a camera)."""

import time
import uuid
import zipfile

import cv2
import numpy as np
import pytest

from siamese_tf.captures import (
    FrameSource,
    capture_images,
    crop_center,
    crop_face,
    detect_face,
    save_image_atomic,
)
from siamese_tf.errors import CameraUnavailableError

FRAME_HEIGHT, FRAME_WIDTH = 240, 320
FACE_TOP, FACE_LEFT = 40, 200  # where the 112x92 ORL face is pasted: right of centre


@pytest.fixture(scope="module")
def orl_faces(shared_data_dir):
    """Twelve 112x92 uint8 ORL faces (subjects s1-s3, four images each)."""
    faces = []
    with zipfile.ZipFile(shared_data_dir / "faces" / "orl_faces_s1-s30.zip") as archive:
        for subject in (1, 2, 3):
            for number in (1, 2, 3, 4):
                data = np.frombuffer(archive.read(f"orl_faces/s{subject}/{number}.pgm"), np.uint8)
                faces.append(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE))
    return faces


def scene_with_face(face):
    """An RGB frame: mid-gray background with the face pasted off-centre, a red bar on the left."""
    frame = np.full((FRAME_HEIGHT, FRAME_WIDTH, 3), 128, dtype=np.uint8)
    frame[FACE_TOP: FACE_TOP + face.shape[0], FACE_LEFT: FACE_LEFT + face.shape[1]] = face[..., None]
    frame[:, :20] = (255, 0, 0)
    return frame


@pytest.fixture()
def face_video(tmp_path, orl_faces):
    path = tmp_path / "faces.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (FRAME_WIDTH, FRAME_HEIGHT))
    assert writer.isOpened()
    frames = [scene_with_face(face) for face in orl_faces]
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path, frames


def test_video_frames_come_back_as_rgb(face_video):
    path, written = face_video
    with FrameSource(path) as source:
        frames = list(source)
    assert len(frames) == len(written) and source.frames_read == len(written)
    for frame, original in zip(frames, written):
        assert frame.shape == (FRAME_HEIGHT, FRAME_WIDTH, 3) and frame.dtype == np.uint8
        assert np.abs(frame.astype(int) - original).mean() < 6  # MJPG is lossy, but close
    left_bar = frames[0][:, 2:18].reshape(-1, 3).mean(axis=0)
    assert left_bar[0] > 200 and left_bar[2] < 60  # red stays in the first (R) channel


def test_capture_center_crops_from_a_video(face_video, tmp_path):
    path, _ = face_video
    output = tmp_path / "data" / "anchor"
    saved = capture_images(path, output, count=5, crop="center", size=(64, 80), progress=False)
    assert len(saved) == 5 and len(set(saved)) == 5
    assert sorted(p.name for p in output.iterdir()) == sorted(p.name for p in saved)  # no temp files
    for file in saved:
        uuid.UUID(file.stem)  # uuid names, as the seed app used
        image = cv2.imread(str(file))
        assert image.shape == (64, 80, 3)


def test_capture_stops_when_the_source_ends(face_video, tmp_path):
    path, _ = face_video
    with pytest.warns(UserWarning, match="4 of 10"):
        saved = capture_images(path, tmp_path / "out", count=10, every_nth=3, progress=False, prefix="pos_")
    assert len(saved) == 4  # frames 0, 3, 6, 9 of 12
    assert all(file.name.startswith("pos_") for file in saved)


def test_face_crop_centres_on_the_face(face_video, tmp_path):
    path, written = face_video
    box = detect_face(written[0])
    assert box is not None
    x, y, width, height = box
    centre_x, centre_y = x + width / 2, y + height / 2
    assert FACE_LEFT < centre_x < FACE_LEFT + 92 and FACE_TOP < centre_y < FACE_TOP + 112

    saved = capture_images(path, tmp_path / "faces", count=3, crop="face", size=(100, 100), progress=False)
    def background_share_in_middle(image):
        """Share of the middle 40x40 pixels that are the flat 128 background."""
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        middle = gray[30:70, 30:70].astype(int)
        return np.mean(np.abs(middle - 128) <= 3)

    # The face crop's middle is face; the centre crop's middle (columns 140-180) is background.
    assert background_share_in_middle(cv2.imread(str(saved[0]))) < 0.2
    assert background_share_in_middle(crop_center(written[0], (100, 100))) > 0.9
    assert crop_face(written[0], size=(50, 60)).shape == (50, 60, 3)


def test_detect_face_none_and_crop_face_falls_back_to_centre():
    blank = np.full((120, 160, 3), 90, dtype=np.uint8)
    blank[50:70, 70:90] = 10
    assert detect_face(blank) is None
    np.testing.assert_array_equal(crop_face(blank, (40, 40)), crop_center(blank, (40, 40)))


def test_crop_center_by_hand():
    frame = np.arange(6 * 8).reshape(6, 8)
    np.testing.assert_array_equal(crop_center(frame, (2, 4)), frame[2:4, 2:6])
    small = np.array([[1, 2], [3, 4]])
    padded = crop_center(small, (4, 3))
    # Rows: (2 - 4) // 2 = -1 -> one pad row above; columns: (2 - 3) // 2 = -1 -> one pad column left.
    np.testing.assert_array_equal(padded, [[0, 0, 0], [0, 1, 2], [0, 3, 4], [0, 0, 0]])
    rgb = np.ones((10, 10, 3), dtype=np.uint8)
    assert crop_center(rgb, (4, 6)).shape == (4, 6, 3)
    with pytest.raises(ValueError, match="size"):
        crop_center(rgb, (0, 4))


def test_save_image_atomic_round_trip(tmp_path):
    image = np.zeros((4, 5, 3), dtype=np.uint8)
    image[..., 0] = 200  # red in RGB
    image[1, 2] = (10, 20, 30)
    path = save_image_atomic(image, tmp_path / "new" / "folder", prefix="a_", extension=".png")
    assert path.parent == tmp_path / "new" / "folder" and path.name.startswith("a_") and path.suffix == ".png"
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], image)
    float_path = save_image_atomic(np.full((3, 3, 1), 0.5, dtype=np.float32), tmp_path / "new" / "folder",
                                   extension="png")
    np.testing.assert_array_equal(cv2.imread(str(float_path), cv2.IMREAD_GRAYSCALE), 128)
    assert len(list((tmp_path / "new" / "folder").iterdir())) == 2  # no temporary files left


def test_image_folder_source_skips_unreadable_files(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for number, value in ((10, 100), (2, 20), (1, 10)):
        cv2.imwrite(str(folder / f"frame{number}.png"), np.full((8, 8), value, dtype=np.uint8))
    (folder / "frame5.png").write_bytes(b"broken")
    with pytest.warns(UserWarning, match="frame5.png"):
        with FrameSource(folder) as source:
            frames = list(source)
    assert [int(frame[0, 0, 0]) for frame in frames] == [10, 20, 100]  # natural order
    assert frames[0].shape == (8, 8, 3)
    assert source.skipped == 1 and source.skipped_files[0].endswith("frame5.png")


def test_missing_camera_fails_fast_with_advice():
    started = time.monotonic()
    with pytest.raises(CameraUnavailableError, match="video file"):
        FrameSource(99).open()
    with pytest.raises(CameraUnavailableError):
        capture_images("99", "/nonexistent-never-created", count=1, progress=False)
    assert time.monotonic() - started < 10


def test_bad_sources_and_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.avi"):
        FrameSource(tmp_path / "nowhere.avi")
    with pytest.raises(ValueError, match="camera index"):
        FrameSource(-1)
    (tmp_path / "notes.txt").write_text("not a video")
    with pytest.raises(ValueError, match="notes.txt"):
        FrameSource(tmp_path / "notes.txt").open()
    with pytest.raises(ValueError, match="crop"):
        capture_images(tmp_path, tmp_path / "out", count=1, crop="square")
    with pytest.raises(ValueError, match="count"):
        capture_images(tmp_path, tmp_path / "out", count=0)
