"""Load image data sets for Siamese training: identity folders, role folders, zip archives.

Two layouts are understood:

* **Identity folders** (ORL faces, Omniglot, signatures): one folder per identity/class holding
  that identity's images. The folder may be a directory on disk or a ``.zip`` archive with the same
  layout, read directly from the archive. Nested layouts such as Omniglot's
  ``alphabet/character/*.png`` work too: every folder that directly holds files is a class, named by
  its path relative to the root (``"Greek/character01"``).
* **Role folders** (the seed face-verification app): ``anchor/``, ``positive/``, ``negative/``.

Everything is returned as an :class:`ImageSet` of float32 images in [0, 1], shape (N, H, W, C).
Files that cannot be decoded are skipped with one ``warnings.warn`` and listed in
``ImageSet.skipped``; they never disappear silently.

Label convention for pairs built from these sets (see :mod:`siamese_tf.samplers`): 1 = same.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
import zipfile
import zlib
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.errors import SiameseDataError

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "DECODE_THREADS",
    "DEFAULT_IMAGE_SIZE",
    "IGNORED_NAMES",
    "MAX_IMAGE_PIXELS",
    "DOCUMENTATION_PATTERN",
    "FileTree",
    "ImageCollection",
    "ImageSet",
    "check_image_size",
    "class_counts_for_splits",
    "decode_image_bytes",
    "load_anchor_positive_negative",
    "load_identity_folders",
    "load_role_folders",
    "make_image_dataset",
    "natural_sort_key",
    "read_image",
    "resize_images",
    "resolve_archive",
    "select_and_relabel",
    "split_by_identity",
]

DEFAULT_IMAGE_SIZE = (64, 64)
DECODE_THREADS = 2
# macOS and Windows add these to folders and zips; they are never data.
IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_IGNORED_FOLDERS = {"__MACOSX"}
# Documentation beside the identity folders (the ORL zip has orl_faces/README): listed in
# ImageSet.skipped but not warned about, since it is expected there.
DOCUMENTATION_PATTERN = re.compile(r"^(readme|license|licence|copying|citation)([._-].*)?$|\.(txt|md|rst|pdf|html?)$",
                                    re.IGNORECASE)


def natural_sort_key(text: object) -> tuple[tuple[tuple[int, int, str], ...], str]:
    """Sort key that orders embedded numbers by value: ``s2`` before ``s10``."""
    parts = re.split(r"(\d+)", str(text))
    # (kind, number, text) triples never compare an int with a str; the raw text breaks ties.
    key = tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in parts if part)
    return key, str(text)


def select_and_relabel(labels: ArrayLike, chosen: ArrayLike, num_groups: int,
                       what: str = "class") -> tuple[list[int], np.ndarray, np.ndarray]:
    """Keep the items of the ``chosen`` groups (classes, writers), renumbered ``0..k-1`` in the order given.

    Returns ``(chosen as a list, indices of the kept items, their new labels)``; repeated or
    out-of-range group indices raise ``ValueError`` naming the bad index.
    """
    chosen = [int(index) for index in np.asarray(chosen).reshape(-1)]
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"{what}_indices must be distinct, got {chosen}")
    for index in chosen:
        if not 0 <= index < num_groups:
            raise ValueError(f"{what} index {index} is out of range 0..{num_groups - 1}")
    new_label_of = np.full(num_groups, -1, dtype=np.int64)
    new_label_of[chosen] = np.arange(len(chosen))
    keep = np.flatnonzero(new_label_of[labels] >= 0)
    return chosen, keep, new_label_of[labels[keep]]


class ImageCollection:
    """What every set of images shares: ``images``, an (N, H, W, C) float32 array in [0, 1].

    The base of :class:`ImageSet` and of the case studies' sets (e.g. signatures).
    """

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image, (height, width, channels)."""
        return tuple(self.images.shape[1:])


@dataclass
class ImageSet(ImageCollection):
    """Images with integer class labels.

    Attributes:
        images: float32 array (N, H, W, C) with values in [0, 1].
        labels: int64 array (N,), values in ``0 .. num_classes - 1``.
        class_names: name of each class; ``class_names[label]`` names an image's class.
        paths: where each image came from (a file path, or ``archive.zip/member`` for zips).
        skipped: ``(path, reason)`` for every file that was found but not used, and every folder
            that holds no file.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.class_names = list(self.class_names)
        self.paths = [str(path) for path in self.paths]
        self.skipped = list(self.skipped)
        if self.images.ndim != 4:
            raise ValueError(f"images must have shape (N, H, W, C), got {self.images.shape}")
        if len(self.images) != len(self.labels) or len(self.images) != len(self.paths):
            raise ValueError(
                f"images ({len(self.images)}), labels ({len(self.labels)}) and paths ({len(self.paths)}) "
                "must have the same length"
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(
                f"labels must lie in 0..{len(self.class_names) - 1} (one per class name), "
                f"got {self.labels.min()}..{self.labels.max()}"
            )

    @property
    def num_classes(self) -> int:
        """Number of classes (identities)."""
        return len(self.class_names)


    def subset(self, indices: ArrayLike) -> ImageSet:
        """A new ImageSet with the images at ``indices``; class names and labels are kept as they are."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) and (indices.min() < -len(self) or indices.max() >= len(self)):
            raise IndexError(f"subset indices must lie in 0..{len(self) - 1}, got {indices.min()}..{indices.max()}")
        return ImageSet(
            images=self.images[indices],
            labels=self.labels[indices],
            class_names=list(self.class_names),
            paths=[self.paths[index] for index in indices],
            skipped=list(self.skipped),
        )

    def select_classes(self, class_indices: ArrayLike) -> ImageSet:
        """A new ImageSet with only the given classes, relabelled ``0..k-1`` in the order given."""
        class_indices, keep, new_labels = select_and_relabel(self.labels, class_indices, self.num_classes, "class")
        return ImageSet(
            images=self.images[keep],
            labels=new_labels,
            class_names=[self.class_names[index] for index in class_indices],
            paths=[self.paths[index] for index in keep],
            skipped=list(self.skipped),
        )

    def resized(self, image_size: Sequence[int]) -> ImageSet:
        """A new ImageSet with every image resized to ``(height, width)`` (:func:`resize_images`);
        itself when the images already have that size."""
        image_size = check_image_size(image_size, allow_none=False)
        if self.images.shape[1:3] == image_size:
            return self
        return ImageSet(images=resize_images(self.images, image_size), labels=self.labels.copy(),
                        class_names=list(self.class_names), paths=list(self.paths), skipped=list(self.skipped))

    def counts(self) -> dict[str, int]:
        """Number of images per class, as ``{class_name: count}`` in class order."""
        per_class = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(count) for name, count in zip(self.class_names, per_class)}


def _to_unit_float(image):
    """Scale an integer or float image to float32 in [0, 1]."""
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float32) / float(np.iinfo(image.dtype).max)
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def decode_image_bytes(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray | None:
    """Decode encoded image bytes with OpenCV as stored (depth, channels, alpha); None if undecodable.

    JPEGs are turned upright by their EXIF orientation (phone photos); other formats keep their
    alpha channel, which ``IMREAD_UNCHANGED`` preserves but which also skips EXIF orientation.
    """
    data = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if data.size == 0:
        return None
    is_jpeg = data.size >= 2 and data[0] == 0xFF and data[1] == 0xD8
    flags = (cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) if is_jpeg else cv2.IMREAD_UNCHANGED
    decoded = cv2.imdecode(data, flags)
    if decoded is None or decoded.size == 0:
        return None
    return decoded


# Larger images are refused before decoding: an 8000x8000 photo would take over 500 MB as float32.
MAX_IMAGE_PIXELS = 40_000_000


def _check_pixel_count(data, label):
    """Read the width and height from the image header (Pillow, no decoding) and refuse huge images."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit speaks below
            with Image.open(io.BytesIO(data.tobytes())) as header:
                width, height = header.size
    except Image.DecompressionBombError as error:
        raise SiameseDataError(f"{label}: far more pixels than the limit of {MAX_IMAGE_PIXELS:,} ({error})") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return  # a format Pillow does not know: OpenCV decides below
    if width * height > MAX_IMAGE_PIXELS:
        raise SiameseDataError(
            f"{label}: {width}x{height} is {width * height:,} pixels, more than the limit of {MAX_IMAGE_PIXELS:,}; "
            f"scale it down first"
        )


def _check_distortion(shape, target_size, max_distortion, label):
    height, width = shape
    target_height, target_width = target_size
    aspect_change = (width / height) / (target_width / target_height)
    enlargement = max(target_height / height, target_width / width)
    if max(aspect_change, 1 / aspect_change) > max_distortion or enlargement > max_distortion:
        raise SiameseDataError(
            f"{label}: a {height}x{width} image cannot stand in for a {target_height}x{target_width} one "
            f"(aspect ratio off by {max(aspect_change, 1 / aspect_change):.1f}x, enlarged {enlargement:.1f}x; "
            f"at most {max_distortion:g}x allowed)"
        )


def read_image(source: str | os.PathLike | bytes | bytearray | memoryview,
               image_size: Sequence[int] | None = None, channels: int = 1, name: str | None = None,
               max_distortion: float | None = None,
               crop: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Decode one image with OpenCV into float32 (H, W, C) in [0, 1].

    Args:
        source: a file path, or the encoded bytes of an image (any format OpenCV reads: PNG, JPEG,
            PGM, BMP, TIFF, ...).
        image_size: ``(height, width)`` to resize to with ``cv2.INTER_AREA``, or None to keep the size.
        channels: 1 for grayscale or 3 for RGB, whatever the file itself stores. Transparent pixels
            are composited onto white.
        name: what to call ``source`` in error messages when it is bytes.
        max_distortion: refuse (``SiameseDataError``) an image whose aspect ratio differs from
            ``image_size``'s by more than this factor, or that would be enlarged more than this
            factor: a 3x3 icon or a 10x4000 strip is not a face to score. None resizes anything.
        crop: a function that cuts the region to keep out of the decoded pixel array, ``(H, W)`` or
            ``(H, W, C)`` as stored in the file (any dtype, OpenCV channel order), and returns a
            non-empty array of the same rank; applied right after decoding, before the conversion to
            float, gray or RGB and the resize (so it must only select pixels, never change their
            values; e.g. ``siamese_tf.studies.faces.lfw_face_crop``). Cropping first is also faster.

    Raises:
        FileNotFoundError: the path does not exist.
        SiameseDataError: the data is empty, cannot be decoded, has more than
            :data:`MAX_IMAGE_PIXELS` pixels or is too distorted (the message names the file).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if crop is not None and not callable(crop):
        raise ValueError(f"crop must be a function of the pixel array or None, got {crop!r}")
    target_size = check_image_size(image_size)
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<image bytes>"
        data = np.frombuffer(bytes(source), dtype=np.uint8)
    else:
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        # np.fromfile + imdecode also copes with non-ASCII paths, which cv2.imread does not everywhere.
        data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise SiameseDataError(f"{label}: the file is empty")
    _check_pixel_count(data, label)
    decoded = decode_image_bytes(data)
    if decoded is None:
        raise SiameseDataError(f"{label}: OpenCV cannot decode it as an image")
    if crop is not None:
        decoded = _apply_crop(crop, decoded, label)
    image = _to_unit_float(decoded)
    if image.ndim == 3 and image.shape[2] == 4:
        color, alpha = image[..., :3], image[..., 3:4]
        image = color * alpha + (1.0 - alpha)
    elif image.ndim == 3 and image.shape[2] == 2:  # gray + alpha
        gray, alpha = image[..., :1], image[..., 1:2]
        image = (gray * alpha + (1.0 - alpha))[..., 0]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if channels == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif channels == 3 and image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif channels == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if target_size is not None and max_distortion is not None:
        _check_distortion(image.shape[:2], target_size, max_distortion, label)
    if target_size is not None and image.shape[:2] != target_size:
        image = cv2.resize(image, (target_size[1], target_size[0]), interpolation=cv2.INTER_AREA)
    if image.ndim == 2:
        image = image[..., np.newaxis]
    return np.ascontiguousarray(np.clip(image, 0.0, 1.0), dtype=np.float32)


def resize_images(images: ArrayLike, image_size: Sequence[int]) -> np.ndarray:
    """(N, H, W, C) images resized to ``image_size`` = ``(height, width)`` with ``cv2.INTER_AREA``,
    as the loaders resize: a set loaded large and resized here matches one loaded at that size
    (LFW 128x128 -> 64x64 against 64x64 directly: mean difference 4e-8). float32, channels kept.
    """
    image_size = check_image_size(image_size, allow_none=False)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), got {images.shape}")
    if images.shape[1:3] == image_size:
        return images
    resized = np.empty((len(images), *image_size, images.shape[3]), dtype=np.float32)
    for index, image in enumerate(images):
        # OpenCV drops a single channel axis: put it back through reshape.
        resized[index] = cv2.resize(image, (image_size[1], image_size[0]),
                                    interpolation=cv2.INTER_AREA).reshape(resized.shape[1:])
    return resized


def _apply_crop(crop, decoded, label):
    cropped = crop(decoded)
    if not isinstance(cropped, np.ndarray) or cropped.ndim != decoded.ndim or cropped.size == 0:
        shape = getattr(cropped, "shape", type(cropped).__name__)
        raise SiameseDataError(
            f"{label}: the crop turned its {decoded.shape} pixels into {shape}; "
            f"a crop must return a non-empty array of the same rank"
        )
    return cropped


def check_image_size(image_size: Sequence[int] | None, name: str = "image_size",
                     allow_none: bool = True) -> tuple[int, int] | None:
    """``(height, width)`` as two positive ints; errors name the argument ``name``."""
    if image_size is None and allow_none:
        return None
    try:
        height, width = (int(value) for value in image_size)
    except (TypeError, ValueError):
        expected = "(height, width) or None" if allow_none else "(height, width)"
        raise ValueError(f"{name} must be {expected}, got {image_size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"{name} must be positive, got {image_size!r}")
    return (height, width)


def _looks_like_a_zip(path):
    """A file that starts like a zip but whose directory is gone (``is_zipfile`` says no): truncated."""
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _ancestor_folders(names):
    """Every folder above the '/'-separated file names, as strings (``a/b/c.png``: ``a``, ``a/b``)."""
    found = set()
    for name in names:
        end = name.rfind("/")
        while end > 0:
            folder = name[:end]
            if folder in found:
                break  # its own ancestors are in already
            found.add(folder)
            end = name.rfind("/", 0, end)
    return found


class FileTree:
    """Files of a folder on disk or of a zip archive, addressed by '/'-separated relative paths.

    ``files`` lists the files (system clutter such as ``.DS_Store`` and ``__MACOSX/`` left out);
    ``folders`` every folder, including those that hold no file (a zip lists those only when it
    has an entry for the folder itself).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"data set not found: {self.path}")
        self._zip = None
        self._zip_lock = threading.Lock()
        folders = set()
        if self.path.is_dir():
            self.files = []
            for entry in self.path.rglob("*"):
                relative = PurePosixPath(entry.relative_to(self.path).as_posix())
                if entry.is_file():
                    self.files.append(relative)
                elif entry.is_dir():
                    folders.add(relative)
            self.files.sort()
        elif zipfile.is_zipfile(self.path) or _looks_like_a_zip(self.path):
            try:
                self._zip = zipfile.ZipFile(self.path)
                infos = self._zip.infolist()
                self.files = sorted(PurePosixPath(info.filename) for info in infos if not info.is_dir())
                folders.update(PurePosixPath(info.filename) for info in infos if info.is_dir())
            except (zipfile.BadZipFile, OSError) as error:
                raise SiameseDataError(
                    f"{self.path}: not a readable zip archive: truncated (an interrupted download or copy?) or "
                    f"damaged ({error})"
                ) from error
        else:
            raise SiameseDataError(f"{self.path}: expected a folder or a .zip archive")
        self.files = [
            file
            for file in self.files
            if file.name not in IGNORED_NAMES
            and not file.name.startswith("._")
            and not (set(file.parts) & _IGNORED_FOLDERS)
        ]
        # Plain strings here: pathlib would take over a second for LFW's 11,450 files.
        self._holding = _ancestor_folders(file.as_posix() for file in self.files)
        folders = {folder.as_posix() for folder in folders} | self._holding
        self.folders = sorted(PurePosixPath(folder) for folder in folders
                              if not any(part in _IGNORED_FOLDERS for part in folder.split("/")))

    def empty_folders(self, root: str | PurePosixPath = PurePosixPath()) -> list[PurePosixPath]:
        """The topmost folders below ``root`` that hold no file at any depth."""
        prefix = PurePosixPath(root).as_posix() + "/" if PurePosixPath(root).parts else ""
        empty = {folder.as_posix() for folder in self.folders} - self._holding
        return [PurePosixPath(folder) for folder in sorted(empty)
                if folder.startswith(prefix) and folder.rsplit("/", 1)[0] not in empty]

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> FileTree:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def display_path(self, relative: str | PurePosixPath) -> str:
        return os.path.join(str(self.path), *PurePosixPath(relative).parts)

    def read_bytes(self, relative: str | PurePosixPath) -> bytes:
        if self._zip is None:
            return (self.path / relative).read_bytes()
        try:
            with self._zip_lock:  # one ZipFile handle shared by the decode threads
                return self._zip.read(str(relative))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
            # One damaged member must not end the whole load: callers skip or fail naming it.
            raise SiameseDataError(f"{self.display_path(relative)}: damaged inside the archive ({error})") from error

    def under(self, root: PurePosixPath) -> list[tuple[PurePosixPath, PurePosixPath]]:
        """``(file, path relative to root)`` for every file below the folder ``root``."""
        depth = len(root.parts)
        return [(file, PurePosixPath(*file.parts[depth:])) for file in self.files
                if len(file.parts) > depth and file.parts[:depth] == root.parts]

    def content_root(self) -> PurePosixPath:
        """The folder holding the data: descend through single wrapper folders (``orl_faces/``).

        A lone folder is a wrapper only when it holds folders itself; a lone folder of files is
        the data (one class, or one role), not something to descend into.
        """
        root = PurePosixPath()
        while True:
            relatives = [relative for _, relative in self.under(root)]
            has_direct_files = any(len(relative.parts) == 1 for relative in relatives)
            top_folders = {relative.parts[0] for relative in relatives if len(relative.parts) > 1}
            lone_folder_has_folders = len(top_folders) == 1 and any(len(relative.parts) > 2 for relative in relatives)
            if has_direct_files or not lone_folder_has_folders:
                return root
            root = root / top_folders.pop()


def _decode_all(tree, relative_paths, image_size, channels, crop=None):
    """Decode files in parallel; return (images, skipped) in input order (None for a failed file)."""

    def decode(relative):
        display = tree.display_path(relative)
        try:
            return read_image(tree.read_bytes(relative), image_size, channels, name=display, crop=crop), None
        except (SiameseDataError, OSError, cv2.error, zipfile.BadZipFile, EOFError) as error:
            return None, (display, str(error))

    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as executor:
        results = list(executor.map(decode, relative_paths))
    return [image for image, _ in results], [problem for _, problem in results if problem is not None]


def _stack(images, source):
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        examples = sorted(shapes)[:3]
        raise SiameseDataError(
            f"{source}: images have different sizes {examples}; pass image_size=(height, width) to resize them"
        )
    return np.stack(images).astype(np.float32, copy=False)


def _warn_skipped(skipped, source, stacklevel=3):
    if skipped:
        listed = "; ".join(f"{path} ({reason})" for path, reason in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        warnings.warn(f"{source}: skipped {len(skipped)} file(s) that are not usable images: {listed}{more}",
                      stacklevel=stacklevel)


def load_identity_folders(
    path: str | os.PathLike | FileTree,
    image_size: Sequence[int] | None = DEFAULT_IMAGE_SIZE,
    channels: int = 1,
    min_images_per_class: int = 1,
    max_classes: int | None = None,
    max_images_per_class: int | None = None,
    *,
    crop: Callable[[np.ndarray], np.ndarray] | None = None,
    classes: Collection[str] | None = None,
    root: str | PurePosixPath | None = None,
) -> ImageSet:
    """Load a data set laid out as one folder per identity, from a folder or a ``.zip``.

    A root that holds nothing but one folder (``orl_faces/`` inside the ORL zip) is descended into.
    Every folder below the root that directly holds files is one class, named by its path relative
    to the root with ``/`` separators (``s1`` for ORL, ``Greek/character01`` for Omniglot); classes
    are in natural order (``s2`` before ``s10``) and so are the files inside each. Folders that
    hold no file at all are listed in ``skipped`` with a warning naming them.

    Args:
        path: folder or ``.zip`` archive, or a :class:`FileTree` already open on one (left open).
        image_size: ``(height, width)`` every image is resized to; None keeps the files' size (they
            must then all agree).
        channels: 1 (grayscale) or 3 (RGB).
        min_images_per_class: classes with fewer usable images are dropped with a warning.
        max_classes: keep only the first this many usable classes (natural order).
        max_images_per_class: read only the first this many files of each class.
        crop: applied to every decoded image before it is converted and resized (see
            :func:`read_image`); the same function for every image.
        classes: read only the classes with these names (the others are never decoded); they
            keep the natural order. A name that is not there raises ``SiameseDataError``.
        root: the folder inside ``path`` that holds the identity folders (``"lfw"``); default:
            found by descending through single wrapper folders.

    Returns:
        An :class:`ImageSet`; files that could not be decoded are listed in ``skipped``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        SiameseDataError: no identity folders or no readable images under ``path``, or a name of
            ``classes`` without a folder.
    """
    for argument, value in (("min_images_per_class", min_images_per_class),
                            ("max_classes", max_classes), ("max_images_per_class", max_images_per_class)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{argument} must be a positive integer, got {value!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if crop is not None and not callable(crop):
        raise ValueError(f"crop must be a function of the pixel array or None, got {crop!r}")
    if isinstance(classes, str):
        raise ValueError(f"classes must be a collection of class names, not one string: {classes!r}")
    wanted_classes = None if classes is None else {str(name) for name in classes}
    check_image_size(image_size)
    if isinstance(path, FileTree):
        return _load_identity_tree(path, image_size, channels, min_images_per_class, max_classes,
                                   max_images_per_class, crop, wanted_classes, root)
    with FileTree(path) as tree:
        return _load_identity_tree(tree, image_size, channels, min_images_per_class, max_classes,
                                   max_images_per_class, crop, wanted_classes, root)


def _load_identity_tree(tree, image_size, channels, min_images_per_class, max_classes, max_images_per_class,
                        crop, wanted_classes, root):
    """The body of :func:`load_identity_folders` on an open :class:`FileTree`."""
    root = tree.content_root() if root is None else PurePosixPath(root)
    files_by_class = {}
    skipped, documentation = [], []
    for file, relative in tree.under(root):
        if len(relative.parts) == 1:
            if DOCUMENTATION_PATTERN.search(relative.name):
                documentation.append((tree.display_path(file), "documentation file beside the identity folders"))
            else:
                skipped.append((tree.display_path(file), "file outside the identity folders"))
            continue
        files_by_class.setdefault(relative.parent.as_posix(), []).append(file)
    empty = [(tree.display_path(folder), "folder holding no files") for folder in tree.empty_folders(root)]
    listed_empty = ", ".join(display for display, _ in empty[:10]) + (
        f" and {len(empty) - 10} more" if len(empty) > 10 else "")
    if not files_by_class:
        raise SiameseDataError(
            f"{tree.display_path(root)}: no identity folders with images found "
            "(expected one subfolder per identity holding its images"
            + (f"; these folders hold no files: {listed_empty})" if empty else ")")
        )
    if empty:
        warnings.warn(f"{tree.path}: skipped {len(empty)} folder(s) holding no files: {listed_empty}", stacklevel=3)
    candidate_names = sorted(files_by_class, key=natural_sort_key)
    if wanted_classes is not None:
        missing = sorted(wanted_classes - set(files_by_class), key=natural_sort_key)
        if missing:
            listed = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise SiameseDataError(
                f"{tree.display_path(root)}: {len(missing)} of the {len(wanted_classes)} requested class(es) "
                f"have no folder there: {listed}"
            )
        candidate_names = [name for name in candidate_names if name in wanted_classes]
    kept_names, kept_images, kept_paths, too_small = [], [], [], []
    position = 0
    wanted = max_classes or len(candidate_names)
    # Decode class batches until enough classes are usable, so max_classes does not read everything.
    while len(kept_names) < wanted and position < len(candidate_names):
        batch_names = candidate_names[position: position + wanted - len(kept_names)]
        position += len(batch_names)
        batch_files = []
        for class_name in batch_names:
            files = sorted(files_by_class[class_name], key=lambda file: natural_sort_key(file.name))
            batch_files.append(files[:max_images_per_class] if max_images_per_class else files)
        flat_files = [file for files in batch_files for file in files]
        images, problems = _decode_all(tree, flat_files, image_size, channels, crop)
        skipped.extend(problems)
        start = 0
        for class_name, files in zip(batch_names, batch_files):
            class_images = images[start: start + len(files)]
            class_paths = flat_files[start: start + len(files)]
            start += len(files)
            usable = [(image, tree.display_path(file)) for image, file in zip(class_images, class_paths)
                      if image is not None]
            if len(usable) < min_images_per_class:
                too_small.append((class_name, len(usable)))
                continue
            kept_names.append(class_name)
            kept_images.append([image for image, _ in usable])
            kept_paths.append([display for _, display in usable])
    _warn_skipped(skipped, tree.path, stacklevel=4)
    if too_small:
        listed = ", ".join(f"{name} ({count})" for name, count in too_small[:10])
        warnings.warn(
            f"{tree.path}: dropped {len(too_small)} class(es) with fewer than {min_images_per_class} "
            f"usable image(s): {listed}",
            stacklevel=3,
        )
    if not kept_names:
        raise SiameseDataError(f"{tree.path}: no readable images found in any identity folder")
    all_images = [image for images in kept_images for image in images]
    labels = np.concatenate([np.full(len(images), label, dtype=np.int64)
                             for label, images in enumerate(kept_images)])
    return ImageSet(
        images=_stack(all_images, tree.path),
        labels=labels,
        class_names=kept_names,
        paths=[path for paths in kept_paths for path in paths],
        skipped=documentation + empty + skipped,
    )


def load_role_folders(path: str | os.PathLike, roles: Sequence[str] = ("anchor", "positive", "negative"),
                      image_size: Sequence[int] | None = DEFAULT_IMAGE_SIZE, channels: int = 1) -> dict[str, ImageSet]:
    """Load the seed face-app layout ``data/anchor``, ``data/positive``, ``data/negative``.

    Args:
        path: the folder (or ``.zip``) holding one subfolder per role.
        roles: names of the role subfolders to read.
        image_size, channels: as in :func:`read_image`.

    Returns:
        ``{role: ImageSet}``, each ImageSet with one class named after the role (all labels 0).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        SiameseDataError: a role folder is missing or holds no readable image (the message names it).
    """
    if isinstance(roles, str) or not roles:
        raise ValueError(f"roles must be a non-empty sequence of folder names, got {roles!r}")
    check_image_size(image_size)
    result = {}
    with FileTree(path) as tree:
        root = tree.content_root()
        for role in roles:
            role_root = root / role
            files = sorted(
                (file for file, relative in tree.under(role_root) if len(relative.parts) == 1),
                key=lambda file: natural_sort_key(file.name),
            )
            role_display = tree.display_path(role_root)
            if not files:
                raise SiameseDataError(f"role folder {role_display} is missing or empty")
            images, skipped = _decode_all(tree, files, image_size, channels)
            _warn_skipped(skipped, role_display)
            usable = [(image, tree.display_path(file)) for image, file in zip(images, files) if image is not None]
            if not usable:
                raise SiameseDataError(f"role folder {role_display} holds no readable image")
            result[role] = ImageSet(
                images=_stack([image for image, _ in usable], role_display),
                labels=np.zeros(len(usable), dtype=np.int64),
                class_names=[role],
                paths=[display for _, display in usable],
                skipped=skipped,
            )
    return result


# The name used in docs/DESIGN.md.
load_anchor_positive_negative = load_role_folders


def resolve_archive(path: str | os.PathLike) -> Path:
    """Return the existing folder or ``.zip`` for ``path`` (``faces`` also finds ``faces.zip``)."""
    path = Path(path).expanduser()
    if path.exists():
        return path
    with_zip = path.with_name(path.name + ".zip")
    if with_zip.exists():
        return with_zip
    raise FileNotFoundError(f"data set not found: {path} (nor {with_zip})")


def class_counts_for_splits(num_classes: int, fractions: ArrayLike) -> np.ndarray:
    raw = np.asarray(fractions, dtype=np.float64) * num_classes
    counts = np.maximum(np.floor(raw).astype(np.int64), 1)
    while counts.sum() < num_classes:
        counts[np.argmax(raw - counts)] += 1
    while counts.sum() > num_classes:
        shrinkable = np.where(counts > 1, counts - raw, -np.inf)
        counts[np.argmax(shrinkable)] -= 1
    return counts


def split_by_identity(image_set: ImageSet, fractions: Sequence[float] = (0.6, 0.2, 0.2),
                      seed: int | None = 0) -> tuple[ImageSet, ...]:
    """Split into identity-disjoint ImageSets (no class appears in two splits).

    Classes are shuffled with ``seed`` and divided in proportion to ``fractions`` (each split gets
    at least one class). Each split keeps only its classes, relabelled ``0..k-1`` in the original
    class order, with the matching ``class_names``.

    Raises:
        ValueError: fractions are not positive or do not sum to 1, or there are fewer classes than
            splits.
    """
    fractions = [float(value) for value in fractions]
    if not fractions or any(value <= 0 for value in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
    if image_set.num_classes < len(fractions):
        raise ValueError(
            f"cannot split {image_set.num_classes} class(es) into {len(fractions)} identity-disjoint splits"
        )
    order = np.random.default_rng(seed).permutation(image_set.num_classes)
    counts = class_counts_for_splits(image_set.num_classes, fractions)
    splits, start = [], 0
    for count in counts:
        splits.append(image_set.select_classes(sorted(order[start: start + count])))
        start += count
    return tuple(splits)


def make_image_dataset(images: ArrayLike, labels: ArrayLike | None = None, batch_size: int = 64) -> tf.data.Dataset:
    """A batched, cached ``tf.data.Dataset`` of images (and labels) with autotune off and prefetch(2).

    Autotune is disabled because it made ``fit``/``predict`` stall for tens of seconds on this kind of
    machine (see ENVIRONMENT_NOTES, trap 1).
    """
    import tensorflow as tf

    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    images = np.asarray(images, dtype=np.float32)
    if labels is None:
        dataset = tf.data.Dataset.from_tensor_slices(images)
    else:
        labels = np.asarray(labels)
        if len(labels) != len(images):
            raise ValueError(f"images ({len(images)}) and labels ({len(labels)}) must have the same length")
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.batch(batch_size).cache().prefetch(2).with_options(options)
