"""Face data: where the ORL / AT&T faces are found, and Labeled Faces in the Wild (LFW).

LFW (Huang, Ramesh, Berg & Learned-Miller 2007) is read as users get it from the official site:
the images as a folder or a zip (``lfw/``, ``lfw-deepfunneled/`` or ``lfw_funneled/`` holding
``<Name>/<Name>_NNNN.jpg``, 250x250 colour), and View 2's ``pairs.txt`` and ``people.txt``
(the ten people-disjoint folds of the protocol; any number of folds is read). Every LFW image is
cut to the central face region by one function, :func:`lfw_face_crop` (``LFW_CENTER_CROP``),
before it is resized: the same for training and evaluation.

Fold numbers are 1-based, as in LFW's own texts ("fold 9" is the ninth fold of ``pairs.txt``).
Label convention: 1 = same person, 0 = different.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np

from siamese_tf import settings
from siamese_tf.captures import crop_center
from siamese_tf.datasets import FileTree, ImageSet, load_identity_folders
from siamese_tf.errors import SiameseDataError
from siamese_tf.labels import DIFFERENT_LABEL, SAME_LABEL

__all__ = [
    "FACE_DATA_CANDIDATES",
    "LFW_CENTER_CROP",
    "LFW_FACE_FRACTION",
    "LFW_IMAGE_SIZE",
    "LFW_SHARED_FILES",
    "LFW_TOP_FOLDERS",
    "LFW_USER_FOLDERS",
    "CenterCrop",
    "LFWFiles",
    "LFWFolds",
    "LFWPair",
    "LFWPairs",
    "central_square",
    "fold_pair_images",
    "fold_pair_indices",
    "lfw_face_crop",
    "lfw_image_name",
    "load_lfw",
    "load_lfw_folds",
    "locate_face_data",
    "locate_lfw",
    "read_lfw_pairs",
    "read_lfw_people",
    "stand_in_frames",
]


FACE_DATA_CANDIDATES = (
    "faces/orl_faces_s1-s30.zip",
    "faces/orl_faces",
    "faces/att_faces",
    "orl_faces",
    "att_faces",
)


def locate_face_data(data_dir: str | os.PathLike | None = None) -> Path:
    """Find the ORL / AT&T faces under ``data_dir`` (a zip or an extracted folder)."""
    root = settings.data_dir(data_dir)
    for candidate in FACE_DATA_CANDIDATES:
        if (root / candidate).exists():
            return root / candidate
    raise SiameseDataError(
        f"No ORL faces found under {root}; looked for {', '.join(FACE_DATA_CANDIDATES)}. "
        f"Set SIAMESE_TF_DATA_DIR or pass --data-dir (the shared copy is ../shared/data)."
    )


# --- LFW: the face crop ----------------------------------------------------------------------------

LFW_IMAGE_SIZE = (250, 250)
# LFW's images are the OpenCV Viola-Jones face box enlarged 2.2 times and scaled to 250x250, so the
# detected face is the central 250 / 2.2 = 114 px. The deep-funneled (aligned) images keep it there:
# the mean of 800 of them has the eyes at rows ~105-115 and the mouth at ~155, all centred. The
# central 120 px (0.48) keeps brows to chin and cheek to cheek with a few pixels of margin, and drops
# the hair, the background and the shoulders, which differ from photo to photo of one person.
# Measured on View 2's folds 1-8 (never fold 9), 64x64 gray, mean AUC of the HOG baseline: 0.711 at
# 0.40 and 0.48, 0.701 at 0.56, 0.681 at 0.64, 0.651 at 0.80, 0.633 uncropped (raw pixels: 0.64-0.66
# for all); 0.48 is the widest crop at the best figure.
LFW_FACE_FRACTION = 0.48


def lfw_face_crop(image: np.ndarray, fraction: float = LFW_FACE_FRACTION) -> np.ndarray:
    """The central face region of an LFW image: the middle ``fraction`` of its height and width.

    With the default 0.48 a 250x250 LFW image gives its central 120x120 pixels (rows and columns
    65-184), which hold the face of a (deep-)funneled image from the brows to the chin. Works on
    ``(H, W)`` or ``(H, W, C)`` arrays of any dtype and only selects pixels, so it can run on the
    decoded file before anything else (:func:`load_lfw` does, through the loader's ``crop`` hook).
    Apply it to every image, for training and for evaluation alike, before resizing.

    Raises:
        ValueError: ``fraction`` is not in (0, 1], or ``image`` is not 2-D or 3-D.
    """
    fraction = _check_fraction(fraction)
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {image.shape}")
    height, width = image.shape[:2]
    size = (max(1, int(round(height * fraction))), max(1, int(round(width * fraction))))
    return crop_center(image, size)


def _check_fraction(fraction):
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.integer, np.floating)) \
            or not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must be a number in (0, 1] (the share of the height and width kept), "
                         f"got {fraction!r}")
    return float(fraction)


@dataclass(frozen=True)
class CenterCrop:
    """A centre crop keeping the middle ``fraction`` of the height and width: :func:`lfw_face_crop`
    with its setting bundled, so it can be passed around, compared and recorded (its ``repr``)."""

    fraction: float = LFW_FACE_FRACTION

    def __post_init__(self) -> None:
        object.__setattr__(self, "fraction", _check_fraction(self.fraction))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return lfw_face_crop(image, self.fraction)

    def box(self, height: int = LFW_IMAGE_SIZE[0], width: int = LFW_IMAGE_SIZE[1]) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of the region kept from a ``height`` x ``width`` image."""
        crop_height = max(1, int(round(height * self.fraction)))
        crop_width = max(1, int(round(width * self.fraction)))
        return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width


# The crop every LFW image gets (training and evaluation): the central 120x120 of 250x250.
LFW_CENTER_CROP = CenterCrop(LFW_FACE_FRACTION)


# --- LFW: images -------------------------------------------------------------------------------------

# The top folders of the official archives: lfw.tgz, lfw-deepfunneled.tgz / .zip, lfw-funneled.tgz.
LFW_TOP_FOLDERS = ("lfw", "lfw-deepfunneled", "lfw_funneled")
_IMAGE_NUMBER = re.compile(r"_(\d+)$")


def central_square(image: np.ndarray) -> np.ndarray:
    """The central square of an image (ORL's 112x92 portraits: rows 10-101), like LFW's centre crop.

    A crop for :func:`siamese_tf.datasets.load_identity_folders` (it only selects pixels).
    """
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top:top + side, left:left + side]


def lfw_image_name(name: str, number: int) -> str:
    """The relative name of image ``number`` (1-based) of a person: ``George_W_Bush/George_W_Bush_0010.jpg``."""
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or number < 1:
        raise ValueError(f"LFW image numbers are whole numbers from 1, got {number!r}")
    return f"{name}/{name}_{int(number):04d}.jpg"


def _lfw_root(tree):
    """The folder of ``tree`` that holds the person folders.

    The official top folders (:data:`LFW_TOP_FOLDERS`) wherever they are (a download folder may hold
    ``lfw/`` beside ``pairs.txt``; Kaggle copies nest ``lfw-deepfunneled/lfw-deepfunneled/``: the one
    holding the most files, then the deepest, wins); otherwise the person folders are at the top
    (after single wrapper folders).
    """
    candidates = [folder for folder in tree.folders if folder.name in LFW_TOP_FOLDERS]
    if not candidates:
        return tree.content_root()
    names = [file.as_posix() for file in tree.files]

    def files_below(folder):
        prefix = folder.as_posix() + "/"
        return sum(name.startswith(prefix) for name in names)

    return max(candidates, key=lambda folder: (files_below(folder), len(folder.parts)))


def _resolve_crop(crop):
    if crop is None or isinstance(crop, CenterCrop):
        return crop
    if isinstance(crop, (int, float, np.integer, np.floating)) and not isinstance(crop, bool):
        return CenterCrop(float(crop))
    if callable(crop):
        return crop
    raise ValueError(f"crop must be a CenterCrop, a fraction in (0, 1], a function of the pixels or None, "
                     f"got {crop!r}")


def load_lfw(
    path: str | os.PathLike,
    image_size: Sequence[int] | None = (64, 64),
    channels: int = 1,
    crop: CenterCrop | float | Callable[[np.ndarray], np.ndarray] | None = LFW_CENTER_CROP,
    people: Collection[str] | None = None,
    min_images: int = 1,
) -> ImageSet:
    """Load LFW images as users get them: a folder or a zip of ``<Name>/<Name>_NNNN.jpg``.

    The person folders may sit in ``lfw/``, ``lfw-deepfunneled/`` or ``lfw_funneled/`` (found at any
    depth) or directly in ``path``. Every image is cut with ``crop`` right after decoding (default
    :data:`LFW_CENTER_CROP`, the central 120x120 of 250x250), then converted and resized to
    ``image_size`` (:func:`siamese_tf.datasets.load_identity_folders` does the reading, in threads).

    Args:
        path: the folder or ``.zip``.
        image_size: ``(height, width)`` after the crop; None keeps the cropped size.
        channels: 1 (gray) or 3 (RGB).
        crop: a :class:`CenterCrop`, a fraction for one, any function of the pixel array that only
            selects pixels, or None for the whole 250x250 image.
        people: read only these people (their images alone are decoded: the fast way to load the
            people of some folds, e.g. ``pairs.people([9])``). A name without a folder raises
            ``SiameseDataError``.
        min_images: leave out people with fewer image files (a deliberate filter, so no warning;
            people that fall below it because files are unreadable are dropped with a warning).

    Returns:
        An :class:`~siamese_tf.datasets.ImageSet`: class names are the person names (natural
        order), ``paths`` are relative names ``Name/Name_NNNN.jpg`` (see :func:`lfw_image_name`),
        ``skipped`` lists unreadable files and empty folders (each also named in a warning).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        SiameseDataError: no person folders or no readable images, or a requested person is missing.
    """
    if isinstance(min_images, bool) or not isinstance(min_images, (int, np.integer)) or min_images < 1:
        raise ValueError(f"min_images must be a positive integer, got {min_images!r}")
    crop = _resolve_crop(crop)
    if isinstance(people, str):
        raise ValueError(f"people must be a collection of person names, not one string: {people!r}")
    wanted = None if people is None else {str(name) for name in people}
    if wanted is not None and not wanted:
        raise ValueError("people is empty: pass None to read everyone, or some person names")
    with FileTree(path) as tree:
        root = _lfw_root(tree)
        classes = wanted
        if min_images > 1:
            counts = {}
            for _, relative in tree.under(root):
                if len(relative.parts) == 2:
                    counts[relative.parts[0]] = counts.get(relative.parts[0], 0) + 1
            enough = {name for name, count in counts.items() if count >= min_images}
            classes = enough if wanted is None else {name for name in wanted if name in enough or name not in counts}
            if not classes:
                raise SiameseDataError(f"{tree.display_path(root)}: nobody has {min_images} or more image files")
        image_set = load_identity_folders(tree, image_size, channels, min_images_per_class=min_images,
                                          crop=crop, classes=classes, root=root)
    relative_paths = [f"{image_set.class_names[label]}/{PurePosixPath(display.replace(os.sep, '/')).name}"
                      for label, display in zip(image_set.labels, image_set.paths)]
    return ImageSet(images=image_set.images, labels=image_set.labels, class_names=image_set.class_names,
                    paths=relative_paths, skipped=image_set.skipped)


# --- LFW: pairs.txt and people.txt -------------------------------------------------------------------

class LFWPair(NamedTuple):
    """One pair of ``pairs.txt``: image ``number1`` of ``name1`` and image ``number2`` of ``name2``
    (numbers 1-based, as in the file); ``label`` 1 for a matched (same person) pair, 0 otherwise."""

    name1: str
    number1: int
    name2: str
    number2: int
    label: int


@dataclass(frozen=True)
class LFWPairs:
    """The folds of an LFW ``pairs.txt``.

    Attributes:
        folds: per fold, its pairs in file order (the matched ones first).
        pairs_per_fold: matched pairs per fold, as the header says (the same number of mismatched).
        source: the file read.
        line_numbers: per fold, the line of the file each pair came from.
    """

    folds: list[list[LFWPair]]
    pairs_per_fold: int
    source: str
    line_numbers: list[list[int]]

    @property
    def num_folds(self) -> int:
        return len(self.folds)

    def check_fold(self, number: int) -> int:
        """``number`` as an int when it names a fold (1 .. num_folds); ``ValueError`` otherwise."""
        if isinstance(number, bool) or not isinstance(number, (int, np.integer)) \
                or not 1 <= number <= self.num_folds:
            raise ValueError(f"fold numbers run from 1 to {self.num_folds} ({self.source} has "
                             f"{self.num_folds} folds; LFW counts folds from 1), got {number!r}")
        return int(number)

    def fold(self, number: int) -> list[LFWPair]:
        """The pairs of fold ``number`` (1-based)."""
        return self.folds[self.check_fold(number) - 1]

    def labels(self, number: int) -> np.ndarray:
        """The labels (1 = same) of fold ``number``'s pairs, as int64."""
        return np.asarray([pair.label for pair in self.fold(number)], dtype=np.int64)

    def location(self, number: int, index: int) -> str:
        """``"pairs.txt line 57"``: where pair ``index`` (0-based) of fold ``number`` was read."""
        return f"{self.source} line {self.line_numbers[self.check_fold(number) - 1][index]}"

    def people(self, folds: Collection[int] | None = None) -> set[str]:
        """The names of the people in the pairs of ``folds`` (fold numbers; default all)."""
        numbers = range(1, self.num_folds + 1) if folds is None else [self.check_fold(number) for number in folds]
        return {name for number in numbers for pair in self.folds[number - 1] for name in (pair.name1, pair.name2)}


def _numbered_lines(path):
    """``(line number, fields)`` for every non-blank line; fields split on tabs or spaces."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SiameseDataError(f"{path}: not a text file in UTF-8 ({error})") from error
    return [(number, line.split()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _whole_number(text, path, line_number, what, minimum=1):
    try:
        value = int(text)
    except ValueError:
        raise SiameseDataError(f"{path} line {line_number}: {what} {text!r} is not a whole number") from None
    if value < minimum:
        raise SiameseDataError(f"{path} line {line_number}: {what} must be at least {minimum}, got {value}")
    return value


def read_lfw_pairs(path: str | os.PathLike) -> LFWPairs:
    """Read an LFW ``pairs.txt`` (View 2) into its folds.

    The first line gives the number of folds and the number of matched pairs per fold (``10\\t300``
    officially; any numbers are read). Each fold is that many matched lines ``name n1 n2`` followed
    by as many mismatched lines ``name1 n1 name2 n2``. A header of one number (View 1's
    ``pairsDevTrain.txt``) reads as one fold. Blank lines are ignored; fields may be separated by
    tabs or spaces.

    Raises:
        FileNotFoundError: the file does not exist.
        SiameseDataError: a malformed header or line, a number that is not a positive whole number,
            a mismatched pair naming one person twice, or lines that disagree with the header (too
            few, too many, or a mismatched line where a matched one is due); the message names the
            file and the line.
    """
    path = Path(path)
    lines = _numbered_lines(path)
    if not lines:
        raise SiameseDataError(f"{path}: empty; expected a header 'folds pairs_per_fold' and the pairs")
    header_line, header = lines[0]
    if len(header) not in (1, 2):
        raise SiameseDataError(f"{path} line {header_line}: the header must be 'folds pairs_per_fold' "
                               f"(e.g. '10 300'), got {' '.join(header)!r}")
    if len(header) == 2:
        num_folds = _whole_number(header[0], path, header_line, "the number of folds")
        per_fold = _whole_number(header[1], path, header_line, "the number of pairs per fold")
    else:
        num_folds, per_fold = 1, _whole_number(header[0], path, header_line, "the number of pairs")
    promised = f"the header (line {header_line}) promises {num_folds} fold(s) of {per_fold} matched + {per_fold} " \
               f"mismatched pairs"
    body = iter(lines[1:])
    folds, line_numbers = [], []
    for fold in range(1, num_folds + 1):
        pairs, numbers = [], []
        for label, expected_fields, kind in ((SAME_LABEL, 3, "matched"), (DIFFERENT_LABEL, 4, "mismatched")):
            for index in range(per_fold):
                try:
                    line_number, fields = next(body)
                except StopIteration:
                    raise SiameseDataError(
                        f"{path}: ends at line {lines[-1][0]} inside fold {fold} ({kind} pair {index + 1}); "
                        f"{promised}"
                    ) from None
                if len(fields) != expected_fields:
                    layout = "'name n1 n2'" if expected_fields == 3 else "'name1 n1 name2 n2'"
                    raise SiameseDataError(
                        f"{path} line {line_number}: expected {kind} pair {index + 1} of fold {fold} as {layout}, "
                        f"got {len(fields)} field(s) {' '.join(fields)!r} ({promised})"
                    )
                # Matched lines are "name n1 n2", mismatched ones "name1 n1 name2 n2".
                name1, name2 = fields[0], fields[0] if expected_fields == 3 else fields[2]
                number1, number2 = (_whole_number(fields[position], path, line_number, "image number")
                                    for position in ((1, 2) if expected_fields == 3 else (1, 3)))
                if expected_fields == 3:
                    if number1 == number2:
                        raise SiameseDataError(f"{path} line {line_number}: a matched pair of one image with "
                                               f"itself ({name1} {number1})")
                else:
                    if name1 == name2:
                        raise SiameseDataError(f"{path} line {line_number}: a mismatched pair names one person "
                                               f"twice ({name1})")
                pairs.append(LFWPair(name1, number1, name2, number2, label))
                numbers.append(line_number)
        folds.append(pairs)
        line_numbers.append(numbers)
    extra = next(body, None)
    if extra is not None:
        raise SiameseDataError(f"{path} line {extra[0]}: more lines than the header says; {promised}")
    return LFWPairs(folds=folds, pairs_per_fold=per_fold, source=str(path), line_numbers=line_numbers)


def read_lfw_people(path: str | os.PathLike) -> list[list[tuple[str, int]]]:
    """Read an LFW ``people.txt`` (View 2): per fold, ``(name, number of images)`` in file order.

    The first line gives the number of folds; each fold is a line with its number of people
    followed by that many lines ``name count``. A file whose second line is already ``name count``
    (View 1's ``peopleDevTrain.txt``, whose header is the number of people) reads as one fold.

    Raises:
        FileNotFoundError: the file does not exist.
        SiameseDataError: a malformed line, a count that is not a positive whole number, a person
            listed twice in one fold, or lines that disagree with the counts (the message names the
            file and the line).
    """
    path = Path(path)
    lines = _numbered_lines(path)
    if not lines:
        raise SiameseDataError(f"{path}: empty; expected a header with the number of folds")
    header_line, header = lines[0]
    if len(header) != 1:
        raise SiameseDataError(f"{path} line {header_line}: the header must be the number of folds, "
                               f"got {' '.join(header)!r}")
    header_value = _whole_number(header[0], path, header_line, "the number of folds")
    view1 = len(lines) > 1 and len(lines[1][1]) == 2
    position = 1
    folds = []
    for fold in range(1, (1 if view1 else header_value) + 1):
        if view1:
            count, count_line = header_value, header_line
        else:
            if position >= len(lines):
                raise SiameseDataError(f"{path}: ends at line {lines[-1][0]} before fold {fold}; the header "
                                       f"(line {header_line}) promises {header_value} folds")
            count_line, fields = lines[position]
            if len(fields) != 1:
                hint = f" (does the count of fold {fold - 1} disagree with its lines?)" if fold > 1 else ""
                raise SiameseDataError(f"{path} line {count_line}: expected the number of people of fold {fold}, "
                                       f"got {' '.join(fields)!r}{hint}")
            count = _whole_number(fields[0], path, count_line, f"the number of people of fold {fold}")
            position += 1
        people, seen = [], set()
        for index in range(count):
            if position >= len(lines):
                raise SiameseDataError(f"{path}: ends at line {lines[-1][0]} inside fold {fold}: line {count_line} "
                                       f"promises {count} people, found {index}")
            line_number, fields = lines[position]
            position += 1
            if len(fields) != 2:
                raise SiameseDataError(f"{path} line {line_number}: expected person {index + 1} of {count} of fold "
                                       f"{fold} as 'name count', got {' '.join(fields)!r}")
            name = fields[0]
            images = _whole_number(fields[1], path, line_number, f"the number of images of {name}")
            if name in seen:
                raise SiameseDataError(f"{path} line {line_number}: {name} is listed twice in fold {fold}")
            seen.add(name)
            people.append((name, images))
        folds.append(people)
    if position < len(lines):
        raise SiameseDataError(f"{path} line {lines[position][0]}: more lines than the counts say "
                               f"({len(folds)} fold(s) of {', '.join(str(len(people)) for people in folds)} people)")
    return folds


def _image_index(image_set):
    """``{(person, number): image index}`` from the ``Name/Name_NNNN.jpg`` paths of a loaded set."""
    index = {}
    for position, (label, path) in enumerate(zip(image_set.labels, image_set.paths)):
        stem = PurePosixPath(str(path).replace(os.sep, "/")).stem
        match = _IMAGE_NUMBER.search(stem)
        if match:
            index.setdefault((image_set.class_names[label], int(match.group(1))), position)
    return index


def fold_pair_indices(image_set: ImageSet, pairs: LFWPairs | Sequence[tuple[str, int, str, int, int]],
                      fold: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map LFW pairs to indices of a loaded set: ``(first_indices, second_indices, labels)``, int64.

    Args:
        image_set: images loaded by :func:`load_lfw` (class names are person names, files are
            ``Name_NNNN.jpg`` with 1-based numbers).
        pairs: an :class:`LFWPairs` with ``fold`` the fold number (1-based), or a sequence of
            ``(name1, number1, name2, number2, label)`` pairs (one fold's list, ``LFWPair`` or tuples).

    Raises:
        SiameseDataError: a pair names an image that is not loaded (the message names the file and
            line of the pair, or its position, and the missing image).
    """
    if isinstance(pairs, LFWPairs):
        if fold is None:
            raise ValueError(f"pass fold=1..{pairs.num_folds} to pick the fold of {pairs.source}")
        fold_pairs = pairs.fold(fold)

        def where(position):
            return pairs.location(fold, position)
    else:
        if fold is not None:
            raise ValueError("fold is only for LFWPairs; a list of pairs is one fold already")
        fold_pairs = list(pairs)

        def where(position):
            return f"pair {position + 1} of {len(fold_pairs)}"
    index = _image_index(image_set)
    loaded_people = set(image_set.class_names)
    first, second, labels = [], [], []
    for position, pair in enumerate(fold_pairs):
        try:
            name1, number1, name2, number2, label = pair
        except (TypeError, ValueError):
            raise ValueError(f"{where(position)}: a pair is (name1, number1, name2, number2, label), got {pair!r}") \
                from None
        if label not in (SAME_LABEL, DIFFERENT_LABEL):
            raise ValueError(f"{where(position)}: label must be 1 (same) or 0 (different), got {label!r}")
        found = []
        for name, number in ((name1, number1), (name2, number2)):
            key = (str(name), int(number))
            if key not in index:
                if name not in loaded_people:
                    reason = f"{name} is not among the {len(loaded_people)} people loaded (load_lfw(people=...) " \
                             f"must include everyone in the pairs)"
                else:
                    numbers = sorted(number for person, number in index if person == name)
                    reason = f"{name} has image(s) {numbers} loaded"
                raise SiameseDataError(
                    f"{where(position)}: pair {name1} {number1} / {name2} {number2} names "
                    f"{lfw_image_name(str(name), int(number))}, which is not loaded; {reason}"
                )
            found.append(index[key])
        first.append(found[0])
        second.append(found[1])
        labels.append(int(label))
    return (np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64),
            np.asarray(labels, dtype=np.int64))


# --- LFW: where the files are --------------------------------------------------------------------------

class LFWFiles(NamedTuple):
    """Where LFW's images (folder or zip), ``pairs.txt`` and ``people.txt`` are."""

    images: Path
    pairs: Path
    people: Path


# The shared copy of this setup (View 2's first 9 folds only).
LFW_SHARED_FILES = ("faces/lfw/lfw-deepfunneled_folds1-9.zip", "faces/lfw/pairs_folds1-9.txt",
                    "faces/lfw/people_folds1-9.txt")
# Where users' copies are looked for (below the data directory): what ``python -m siamese_tf download
# lfw_deepfunneled`` (and lfw_pairs, lfw_people) writes, or an extracted folder beside the two texts.
LFW_USER_FOLDERS = (".", "lfw", "faces/lfw", "faces")
_LFW_USER_IMAGES = ("lfw-deepfunneled.zip", "lfw-deepfunneled", "lfw_funneled", "lfw")


def locate_lfw(data_dir: str | os.PathLike | None = None) -> LFWFiles:
    """Find LFW under the data directory (``data_dir``, else ``SIAMESE_TF_DATA_DIR``, else ``./data``).

    Users' layout first (the full ten folds): ``lfw-deepfunneled.zip`` (or an extracted
    ``lfw-deepfunneled/``, ``lfw_funneled/``, ``lfw/``) with ``pairs.txt`` and ``people.txt`` beside it,
    in the data directory itself or in ``lfw/``, ``faces/lfw/`` or ``faces/`` below it. Then the
    shared copy of this setup: ``faces/lfw/lfw-deepfunneled_folds1-9.zip``, ``pairs_folds1-9.txt``,
    ``people_folds1-9.txt`` (nine folds).

    Raises:
        SiameseDataError: nothing complete was found (the message lists what was looked for).
    """
    root = settings.data_dir(data_dir)
    for folder in LFW_USER_FOLDERS:
        base = root / folder
        if not ((base / "pairs.txt").is_file() and (base / "people.txt").is_file()):
            continue
        for images in _LFW_USER_IMAGES:
            if (base / images).exists():
                return LFWFiles((base / images), base / "pairs.txt", base / "people.txt")
    shared = [root / name for name in LFW_SHARED_FILES]
    if all(path.is_file() for path in shared):
        return LFWFiles(*shared)
    raise SiameseDataError(
        f"No LFW found under {root}: looked for {' or '.join(_LFW_USER_IMAGES)} with pairs.txt and people.txt in "
        f"{', '.join(LFW_USER_FOLDERS)}, and for {', '.join(LFW_SHARED_FILES)}. Download it with "
        f"'python -m siamese_tf download lfw_deepfunneled --allow-unverified' (and lfw_pairs, lfw_people), "
        f"or set SIAMESE_TF_DATA_DIR."
    )


def stand_in_frames(path: str | os.PathLike, people: Sequence[str], images_per_person: int | Sequence[int],
                    frame_size: tuple[int, int] = (480, 640), face_scale: float = 1.5,
                    background: int = 128) -> tuple[np.ndarray, list[str]]:
    """Camera-like frames of LFW people: what a webcam would show, for tests and the app's benchmark.

    Each of a person's first ``images_per_person`` LFW images (or that many of each, in order)
    is scaled by ``face_scale`` and centred on a gray ``frame_size = (height, width)`` canvas,
    like a face in front of a webcam. Returns the frames (N, H, W, 3) uint8 RGB and the person of
    each frame.
    """
    import cv2

    counts = ([int(images_per_person)] * len(people) if isinstance(images_per_person, (int, np.integer))
              else [int(count) for count in images_per_person])
    if len(counts) != len(people) or min(counts, default=0) < 1:
        raise ValueError(f"images_per_person must be a positive count for each of the {len(people)} people, "
                         f"got {images_per_person!r}")
    height, width = frame_size
    frames, names = [], []
    with FileTree(path) as tree:
        root = _lfw_root(tree)
        for name, count in zip(people, counts):
            for number in range(1, count + 1):
                member = root / lfw_image_name(name, number)
                try:
                    data = tree.read_bytes(member)
                except (KeyError, FileNotFoundError):
                    raise SiameseDataError(f"{tree.display_path(member)}: no such image ({name} has fewer than "
                                           f"{count} images here)") from None
                image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                if image is None:
                    raise SiameseDataError(f"{tree.display_path(member)}: OpenCV cannot decode it")
                image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                side = round(image.shape[0] * face_scale)
                if side > min(height, width):
                    raise ValueError(f"face_scale {face_scale} makes a {side}px face, larger than the "
                                     f"{height}x{width} frame")
                image = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
                frame = np.full((height, width, 3), background, np.uint8)
                top, left = (height - side) // 2, (width - side) // 2
                frame[top:top + side, left:left + side] = image
                frames.append(frame)
                names.append(name)
    return np.stack(frames), names


def fold_pair_images(image_set: ImageSet, pairs: LFWPairs, fold: int
                     ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """One fold's official pairs as ``((first_images, second_images), labels)`` (1 = same), the
    form :meth:`siamese_tf.models.SiameseModel.similarity_pairs` and the training functions take.

    Raises:
        SiameseDataError: a pair names an image that ``image_set`` does not hold (see
            :func:`fold_pair_indices`).
    """
    first, second, labels = fold_pair_indices(image_set, pairs, fold)
    return (image_set.images[first], image_set.images[second]), labels


class LFWFolds(NamedTuple):
    """LFW loaded for training on some folds and scoring others (:func:`load_lfw_folds`)."""

    images: ImageSet  # every loaded photo: the training people and the scored folds' people
    pairs: LFWPairs
    people: list[list[tuple[str, int]]]  # people.txt: each fold's (name, image count)
    train: ImageSet  # the training people only (sorted by name)
    files: LFWFiles  # where the photos and lists were found

    def people_set(self, names: Collection[str]) -> ImageSet:
        """The loaded photos of ``names`` (sorted), one class per person.

        Raises:
            SiameseDataError: a name that was not loaded.
        """
        index = {name: label for label, name in enumerate(self.images.class_names)}
        missing = sorted(set(names) - set(index))
        if missing:
            raise SiameseDataError(f"{len(missing)} of the people asked for were not loaded, e.g. {missing[:3]}")
        return self.images.select_classes([index[name] for name in sorted(set(names))])


def load_lfw_folds(train_folds: Collection[int], scored_folds: Collection[int],
                   image_size: Sequence[int] | None = (64, 64), channels: int = 1,
                   max_train_people: int | None = None, whole_folds: bool = False,
                   data_dir: str | os.PathLike | None = None) -> LFWFolds:
    """Load LFW (:func:`locate_lfw`) for training on the people of ``train_folds`` (people.txt) and
    scoring the pairs of ``scored_folds``: every photo of those people, cut by :func:`load_lfw`.

    ``max_train_people`` keeps the first training people by name (quick runs); ``whole_folds`` loads
    every person of the scored folds (people.txt), not only those in their pairs.

    Raises:
        ValueError: a fold that is not in the files, or a fold both trained on and scored.
        SiameseDataError: LFW is not found, or a file is broken (the message names it).
    """
    files = locate_lfw(data_dir)
    pairs = read_lfw_pairs(files.pairs)
    people = read_lfw_people(files.people)
    train_folds, scored_folds = [int(fold) for fold in train_folds], [int(fold) for fold in scored_folds]
    for fold in [*train_folds, *scored_folds]:
        if not 1 <= fold <= min(len(people), pairs.num_folds):
            raise ValueError(f"fold {fold} is not in {files.pairs} and {files.people} (folds 1-{len(people)})")
    overlap = sorted(set(train_folds) & set(scored_folds))
    if overlap:
        raise ValueError(f"fold(s) {overlap} cannot be both trained on and scored: LFW's protocol keeps them apart")
    train_people = sorted(name for fold in train_folds for name, _ in people[fold - 1])[:max_train_people]
    scored_people = ({name for fold in scored_folds for name, _ in people[fold - 1]} if whole_folds
                     else pairs.people(scored_folds))
    images = load_lfw(files.images, image_size=image_size, channels=channels,
                      people=set(train_people) | scored_people)
    index = {name: label for label, name in enumerate(images.class_names)}
    train = images.select_classes([index[name] for name in train_people])
    return LFWFolds(images, pairs, people, train, files)
