"""Collect face images from a camera, a video file or an image folder (headless OpenCV).

The seed face-verification app grabbed webcam frames, cropped a 250 x 250 region and saved it under
a uuid name in ``data/anchor`` or ``data/positive``. This module does the same without a window
(``cv2.imshow`` does not exist in the headless build): :class:`FrameSource` yields RGB frames,
:func:`crop_center` / :func:`crop_face` cut the region, :func:`save_image_atomic` writes it, and
:func:`capture_images` ties them together with a progress bar.

A machine without a camera still works: pass a video file or a folder of images as the source.
"""

from __future__ import annotations

import os

# Quiet OpenCV's V4L2/FFmpeg chatter about missing cameras; must be set before cv2 loads.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import uuid  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

from siamese_tf.datasets import IGNORED_NAMES, check_image_size, decode_image_bytes, natural_sort_key  # noqa: E402
from siamese_tf.errors import CameraUnavailableError, SiameseDataError  # noqa: E402
from siamese_tf.settings import progress_bar, write_private_atomic  # noqa: E402

__all__ = [
    "CAMERA_TIMEOUT_MS",
    "DEFAULT_CROP_SIZE",
    "FrameSource",
    "capture_images",
    "crop_center",
    "crop_face",
    "detect_face",
    "face_region",
    "save_image_atomic",
    "to_uint8",
    "write_y4m",
]

DEFAULT_CROP_SIZE = (250, 250)
# How long OpenCV may wait to open a camera or read a frame before giving up, in milliseconds.
CAMERA_TIMEOUT_MS = 5000

try:  # the Python-level switch works even when cv2 was imported before this module
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
except AttributeError:
    pass


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """Any integer depth (scaled by its maximum) or float in [0, 1] -> uint8."""
    if frame.dtype == np.uint8:
        return frame
    if np.issubdtype(frame.dtype, np.integer):
        scaled = frame.astype(np.float64) * (255.0 / np.iinfo(frame.dtype).max)
    else:
        scaled = np.clip(frame.astype(np.float64), 0.0, 1.0) * 255.0
    return scaled.round().astype(np.uint8)


def _to_rgb_uint8(frame):
    """BGR/BGRA/gray frame of any depth (as OpenCV decodes it) -> RGB uint8."""
    frame = to_uint8(frame)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame[..., 0], cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class FrameSource:
    """RGB uint8 frames from a camera index, a video file or a folder of images.

    Use as a context manager and iterate::

        with FrameSource("clip.avi") as frames:
            for frame in frames:
                ...

    Args:
        source: an int camera index (or a string of digits), a video file path, or a folder of
            images (read in natural name order; unreadable files are skipped with a warning and
            counted in :attr:`skipped`, their names in :attr:`skipped_files`).

    Raises:
        FileNotFoundError: a path that does not exist.
        CameraUnavailableError: from :meth:`open` when the camera cannot be opened.
    """

    def __init__(self, source: int | str | os.PathLike) -> None:
        if isinstance(source, str) and source.strip().isdigit():
            source = int(source.strip())
        if isinstance(source, bool) or not isinstance(source, (int, np.integer, str, os.PathLike)):
            raise ValueError(f"source must be a camera index, a video file or an image folder, got {source!r}")
        if isinstance(source, (int, np.integer)):
            if source < 0:
                raise ValueError(f"camera index must be >= 0, got {source}")
            self.kind = "camera"
            self.source = int(source)
        else:
            path = Path(source).expanduser()
            if path.is_dir():
                self.kind = "folder"
            elif path.is_file():
                self.kind = "video"
            else:
                raise FileNotFoundError(f"frame source not found: {path} (expected a video file or an image folder)")
            self.source = path
        self.skipped = 0
        self.skipped_files = []
        self.frames_read = 0
        self._capture = None
        self._files = None

    def __repr__(self) -> str:
        return f"FrameSource({self.source!r}, kind={self.kind!r})"

    @property
    def is_open(self) -> bool:
        return self._capture is not None or self._files is not None

    def open(self) -> FrameSource:
        """Open the source; a camera that does not open raises :class:`CameraUnavailableError` at once."""
        if self.is_open:
            return self
        if self.kind == "folder":
            self._files = sorted(
                (file for file in self.source.iterdir()
                 if file.is_file() and file.name not in IGNORED_NAMES and not file.name.startswith(".")),
                key=lambda file: natural_sort_key(file.name),
            )
            return self
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, CAMERA_TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, CAMERA_TIMEOUT_MS]
        if self.kind == "camera":
            capture = cv2.VideoCapture(self.source, cv2.CAP_ANY, timeouts)
            if not capture.isOpened():
                capture.release()
                raise CameraUnavailableError(
                    f"camera {self.source} could not be opened (no camera, busy, or no permission); "
                    "use a video file or a folder of images as the source instead"
                )
        else:
            capture = cv2.VideoCapture(str(self.source), cv2.CAP_ANY, timeouts)
            if not capture.isOpened():
                capture.release()
                raise ValueError(f"{self.source}: OpenCV cannot open it as a video")
        self._capture = capture
        return self

    def close(self) -> None:
        """Release the camera or video file."""
        if self._capture is not None:
            self._capture.release()
        self._capture = None
        self._files = None

    def __enter__(self) -> FrameSource:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: cv2 may already be gone
            pass

    def __iter__(self) -> Iterator[np.ndarray]:
        self.open()
        if self.kind == "folder":
            yield from self._iterate_folder()
            return
        while self._capture is not None:
            ok, frame = self._capture.read()
            if not ok or frame is None:
                return
            self.frames_read += 1
            yield _to_rgb_uint8(frame)

    def _iterate_folder(self):
        for file in list(self._files or []):
            frame = decode_image_bytes(np.fromfile(str(file), dtype=np.uint8))
            if frame is None:
                self.skipped += 1
                self.skipped_files.append(str(file))
                warnings.warn(f"{file}: not a readable image, skipped", stacklevel=3)
                continue
            self.frames_read += 1
            yield _to_rgb_uint8(frame)


def _check_size(size):
    return check_image_size(size, name="size", allow_none=False)


def _crop_with_padding(frame, top, left, height, width, pad_value=0):
    """Region ``[top, top + height) x [left, left + width)``, padded where it leaves the frame."""
    frame_height, frame_width = frame.shape[:2]
    output = np.full((height, width) + frame.shape[2:], pad_value, dtype=frame.dtype)
    source_top, source_left = max(top, 0), max(left, 0)
    source_bottom, source_right = min(top + height, frame_height), min(left + width, frame_width)
    if source_bottom > source_top and source_right > source_left:
        output[source_top - top: source_bottom - top, source_left - left: source_right - left] = \
            frame[source_top:source_bottom, source_left:source_right]
    return output


def crop_center(frame: ArrayLike, size: tuple[int, int] = DEFAULT_CROP_SIZE, pad_value: float = 0) -> np.ndarray:
    """Cut a centred ``size = (height, width)`` region; a smaller frame is padded with ``pad_value``."""
    frame = np.asarray(frame)
    if frame.ndim not in (2, 3):
        raise ValueError(f"frame must have shape (H, W) or (H, W, C), got {frame.shape}")
    height, width = _check_size(size)
    top = (frame.shape[0] - height) // 2
    left = (frame.shape[1] - width) // 2
    return _crop_with_padding(frame, top, left, height, width, pad_value)


_cascade = None


def _face_cascade():
    global _cascade
    if _cascade is None:
        cascade_path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        cascade = cv2.CascadeClassifier(cascade_path)
        if cascade.empty():
            raise RuntimeError(f"could not load OpenCV's face detector from {cascade_path}")
        _cascade = cascade
    return _cascade


def detect_face(frame: ArrayLike, min_size: tuple[int, int] = (30, 30)) -> tuple[int, int, int, int] | None:
    """The largest frontal face as ``(x, y, width, height)`` in pixels, or None when there is none.

    Uses the Haar cascade shipped with OpenCV (``cv2.data.haarcascades``). ``frame`` is RGB or gray.
    """
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[..., 0]
    frame = to_uint8(frame)
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    faces = _face_cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=tuple(min_size))
    if len(faces) == 0:
        return None
    x, y, width, height = max(faces, key=lambda box: int(box[2]) * int(box[3]))
    return int(x), int(y), int(width), int(height)


def face_region(frame: ArrayLike, box: tuple[int, int, int, int], size: tuple[int, int] = DEFAULT_CROP_SIZE,
                margin: float = 0.2, pad_value: float = 0) -> np.ndarray:
    """The region around a face ``box = (x, y, width, height)``, not yet resized.

    The box is grown by ``margin`` of its size on every side, widened to the aspect ratio of
    ``size = (height, width)`` and padded with ``pad_value`` where it leaves the frame.
    """
    frame = np.asarray(frame)
    height, width = _check_size(size)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    x, y, box_width, box_height = box
    scale = max(box_width * (1 + 2 * margin) / width, box_height * (1 + 2 * margin) / height)
    region_height, region_width = max(1, round(height * scale)), max(1, round(width * scale))
    center_x, center_y = x + box_width / 2.0, y + box_height / 2.0
    return _crop_with_padding(frame, round(center_y - region_height / 2.0), round(center_x - region_width / 2.0),
                              region_height, region_width, pad_value)


def crop_face(frame: ArrayLike, size: tuple[int, int] = DEFAULT_CROP_SIZE, margin: float = 0.2,
              pad_value: float = 0) -> np.ndarray:
    """Crop around the largest detected face and resize to ``size``; :func:`crop_center` if none.

    The region is :func:`face_region`: the face box grown by ``margin`` of its size on every side,
    widened to the aspect ratio of ``size`` and padded where it leaves the frame.
    """
    frame = np.asarray(frame)
    height, width = _check_size(size)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    box = detect_face(frame)
    if box is None:
        return crop_center(frame, size, pad_value)
    region = face_region(frame, box, size, margin, pad_value)
    return cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA)


def save_image_atomic(image: ArrayLike, folder: str | os.PathLike, prefix: str = "", extension: str = ".jpg") -> Path:
    """Write an RGB (or gray) image under a random unique name (uuid4) and return its path.

    The image is encoded, written to a temporary file in ``folder`` and renamed into place, so a
    reader never sees a half-written file. Float images are taken to be in [0, 1].
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {image.shape}")
    if not extension.startswith("."):
        extension = "." + extension
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    ok, encoded = cv2.imencode(extension, image)
    if not ok:
        raise ValueError(f"OpenCV cannot encode an image of shape {image.shape} as {extension}")
    # uuid4 is random: uuid1 would put this machine's network address and the time in every name.
    return write_private_atomic(folder / f"{prefix}{uuid.uuid4()}{extension}", encoded.tobytes())


def capture_images(source: FrameSource | int | str | os.PathLike, output_dir: str | os.PathLike, count: int,
                   crop: str = "center", size: tuple[int, int] = DEFAULT_CROP_SIZE, every_nth: int = 1,
                   progress: bool = True, prefix: str = "") -> list[Path]:
    """Save ``count`` cropped frames from a camera, video or image folder into ``output_dir``.

    Args:
        source: a :class:`FrameSource`, or anything it accepts (camera index, video, folder).
        output_dir: folder for the images (created if needed), e.g. ``data/anchor``.
        count: how many images to save.
        crop: ``"center"`` (the seed app's fixed region), ``"face"`` (around the detected face,
            centre crop when none is found) or ``"none"`` (whole frame resized to ``size``).
        size: ``(height, width)`` of the saved images.
        every_nth: keep one frame in ``every_nth`` (spreads a capture over a video).
        progress: show a tqdm progress bar.
        prefix: file-name prefix.

    Returns:
        The saved paths. When the source ends first, fewer are returned and a warning says how many.

    Raises:
        SiameseDataError: the source gave no frame at all.
        KeyboardInterrupt: Ctrl-C; its ``saved`` attribute lists the images written before it.
    """
    if not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if not isinstance(every_nth, (int, np.integer)) or every_nth < 1:
        raise ValueError(f"every_nth must be a positive integer, got {every_nth!r}")
    croppers = {
        "center": lambda frame: crop_center(frame, size),
        "face": lambda frame: crop_face(frame, size),
        "none": lambda frame: cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA),
    }
    if crop not in croppers:
        raise ValueError(f"crop must be one of {sorted(croppers)}, got {crop!r}")
    _check_size(size)
    frames = source if isinstance(source, FrameSource) else FrameSource(source)
    saved = []
    try:
        with frames, progress_bar(total=count, desc=f"capturing into {output_dir}", unit="image",
                                  disable=not progress) as bar:
            for frame_number, frame in enumerate(frames):
                if frame_number % every_nth:
                    continue
                saved.append(save_image_atomic(croppers[crop](frame), output_dir, prefix=prefix))
                bar.update(1)
                if len(saved) >= count:
                    break
    except KeyboardInterrupt as interrupt:
        interrupt.saved = saved  # what is on disk, for the caller to report (every file is whole)
        raise
    if not saved:
        raise SiameseDataError(f"{frames.source}: no image frames to read (an empty folder, an empty video or a "
                               f"camera that gave no frame); nothing was saved")
    if len(saved) < count:
        warnings.warn(f"{frames.source} ended after {len(saved)} of {count} requested images", stacklevel=2)
    return saved


def write_y4m(frames: ArrayLike | list[np.ndarray], path: str | os.PathLike, fps: int = 10) -> Path:
    """Write RGB uint8 frames (N, H, W, 3) as an uncompressed YUV4MPEG2 (4:2:0) video.

    Chromium plays such a file as a fake camera (``--use-file-for-fake-video-capture=PATH``), which
    is how the app's browser test shows faces to the page. Height and width must be even.
    """
    frames = [np.asarray(frame) for frame in frames]
    if not frames:
        raise ValueError("write_y4m needs at least one frame")
    height, width = frames[0].shape[:2]
    if any(frame.shape != (height, width, 3) or frame.dtype != np.uint8 for frame in frames):
        raise ValueError(f"every frame must be RGB uint8 of shape {(height, width, 3)}; got "
                         f"{sorted({(frame.shape, str(frame.dtype)) for frame in frames})}")
    if height % 2 or width % 2:
        raise ValueError(f"4:2:0 video needs an even height and width, got {height}x{width}")
    if not isinstance(fps, (int, np.integer)) or fps < 1:
        raise ValueError(f"fps must be a positive integer, got {fps!r}")
    path = Path(path)
    with open(path, "wb") as output:
        output.write(f"YUV4MPEG2 W{width} H{height} F{int(fps)}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in frames:
            # OpenCV's I420 layout is the Y plane, then U and V at half resolution: what 4:2:0 stores.
            planes = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
            output.write(b"FRAME\n")
            output.write(planes.tobytes())
    return path
