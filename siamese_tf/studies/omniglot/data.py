"""Omniglot data: the background/evaluation sets, alphabet splits, rotations as new classes and
Lake's 20 official one-shot runs.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from siamese_tf.datasets import (
    FileTree,
    ImageSet,
    load_identity_folders,
    natural_sort_key,
    read_image,
)
from siamese_tf.errors import SiameseDataError

__all__ = [
    "BACKGROUND_SMALL_FILES",
    "HELD_OUT_ALPHABETS",
    "LakeRun",
    "OMNIGLOT_IMAGE_SIZE",
    "ROTATION_SEPARATOR",
    "add_rotations",
    "alphabet_of",
    "class_alphabets",
    "drawer_of",
    "find_background_small",
    "load_background_small",
    "load_omniglot",
    "read_lake_runs",
    "split_alphabets",
]


HELD_OUT_ALPHABETS = ("Balinese", "Early_Aramaic")


BACKGROUND_SMALL_FILES = ("images_background_small1.zip", "images_background_small2.zip")


OMNIGLOT_IMAGE_SIZE = (105, 105)


ROTATION_SEPARATOR = "@rot"


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff"}


_DRAWER_PATTERN = re.compile(r"_(\d+)\.[A-Za-z]+$")


def _check_source(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Omniglot data not found: {path}")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise SiameseDataError(
            f"{path}: not a readable zip archive (truncated download or another file type); "
            "download it again (siamese_tf.downloads.download)"
        )
    return path


def find_background_small(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Paths of the two minimal background archives under ``<data_dir>/omniglot/``.

    ``data_dir`` defaults to :func:`siamese_tf.settings.data_dir`.

    Raises:
        FileNotFoundError: naming every missing archive.
    """
    from siamese_tf import settings

    folder = settings.data_dir(data_dir) / "omniglot"
    paths = [folder / name for name in BACKGROUND_SMALL_FILES]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise FileNotFoundError(
            f"Omniglot archives not found: {', '.join(missing)} (download them with "
            "siamese_tf.downloads.download('omniglot_background_small1') and '...small2')"
        )
    return paths


def load_omniglot(sources: str | os.PathLike | Sequence[str | os.PathLike],
                  image_size: tuple[int, int] = OMNIGLOT_IMAGE_SIZE, invert: bool = False,
                  max_images_per_class: int | None = None) -> ImageSet:
    """Load Omniglot background/evaluation sets (zips or folders) into one :class:`ImageSet`.

    Every character folder is one class named ``"Alphabet/characterNN"``. A character that appears
    in more than one source (Greek and Latin are in both minimal background sets) is kept once,
    from the first source; its other copies are listed in ``skipped`` with the reason.

    Args:
        sources: one path or a list of paths (``images_background.zip``, an extracted folder, ...).
        image_size: ``(height, width)``; 105x105 is the original size.
        invert: make strokes 1 and the background 0 (helps small conv nets with zero padding).
        max_images_per_class: read at most this many drawers per character.

    Raises:
        FileNotFoundError: a source does not exist.
        SiameseDataError: a source is not a readable zip/folder or holds no character folders.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    sources = [_check_source(source) for source in sources]
    if not sources:
        raise ValueError("sources must name at least one Omniglot archive or folder")
    all_images, all_labels, all_paths, class_names, skipped = [], [], [], [], []
    seen = {}
    for source in sources:
        loaded = load_identity_folders(source, image_size=image_size, channels=1,
                                       max_images_per_class=max_images_per_class)
        skipped.extend(loaded.skipped)
        for label, name in enumerate(loaded.class_names):
            if name.count("/") != 1:
                raise SiameseDataError(
                    f"{source}: class folder {name!r} is not laid out as alphabet/character"
                )
            members = np.flatnonzero(loaded.labels == label)
            if name in seen:
                skipped.extend((loaded.paths[index], f"duplicate of character {name} from {seen[name]}")
                               for index in members)
                continue
            seen[name] = source
            all_images.append(loaded.images[members])
            all_labels.append(np.full(len(members), len(class_names)))
            all_paths.extend(loaded.paths[index] for index in members)
            class_names.append(name)
    images = np.concatenate(all_images)
    if invert:
        images = 1.0 - images
    return ImageSet(images, np.concatenate(all_labels), class_names, all_paths, skipped)


def load_background_small(data_dir: str | os.PathLike | None = None, image_size: tuple[int, int] = OMNIGLOT_IMAGE_SIZE,
                          invert: bool = False, max_images_per_class: int | None = None) -> ImageSet:
    """Both minimal background sets (8 distinct alphabets, 242 distinct characters x 20 drawers)."""
    return load_omniglot(find_background_small(data_dir), image_size, invert, max_images_per_class)


def alphabet_of(class_name: str) -> str:
    """The alphabet of a class name ``"Alphabet/characterNN"`` (rotations keep their alphabet)."""
    return str(class_name).split("/", 1)[0]


def class_alphabets(image_set: ImageSet) -> np.ndarray:
    """Alphabet name of every class of ``image_set``, as a numpy string array."""
    return np.array([alphabet_of(name) for name in image_set.class_names])


def drawer_of(path: str | os.PathLike) -> int:
    """Drawer number from an Omniglot file name (``0108_07.png`` -> 7); -1 when there is none."""
    match = _DRAWER_PATTERN.search(PurePosixPath(str(path).replace("\\", "/")).name)
    return int(match.group(1)) if match else -1


def split_alphabets(image_set: ImageSet,
                    held_out: str | Iterable[str] = HELD_OUT_ALPHABETS) -> tuple[ImageSet, ImageSet]:
    """Split into (training set, held-out set) by alphabet; both relabelled from 0.

    Raises:
        ValueError: an alphabet in ``held_out`` is not in the set, or nothing is left to train on.
    """
    held_out = (held_out,) if isinstance(held_out, str) else tuple(held_out)
    alphabets = class_alphabets(image_set)
    unknown = sorted(set(held_out) - set(alphabets))
    if unknown:
        raise ValueError(f"held-out alphabets {unknown} are not in the set; it has {sorted(set(alphabets))}")
    held = np.isin(alphabets, held_out)
    if held.all():
        raise ValueError("every alphabet is held out; nothing is left for training")
    return image_set.select_classes(np.flatnonzero(~held)), image_set.select_classes(np.flatnonzero(held))


def add_rotations(image_set: ImageSet, angles: Iterable[int] = (90, 180, 270)) -> ImageSet:
    """Add each character rotated by ``angles`` (multiples of 90 degrees) as new classes.

    A rotated character is a different character (a "6" is not a "9"), which multiplies the
    number of training classes; class names get a suffix ``"@rot90"``.
    """
    angles = tuple(int(angle) for angle in angles)
    for angle in angles:
        if angle % 90 or angle % 360 == 0:
            raise ValueError(f"rotation angles must be multiples of 90 degrees other than 0, got {angle}")
    if image_set.images.shape[1] != image_set.images.shape[2]:
        raise ValueError(f"rotations as classes need square images, got {image_set.image_shape}")
    images, labels, paths = [image_set.images], [image_set.labels], list(image_set.paths)
    class_names = list(image_set.class_names)
    for position, angle in enumerate(angles, start=1):
        # np.rot90 turns counter-clockwise by 90 degrees per k.
        images.append(np.rot90(image_set.images, k=(angle // 90) % 4, axes=(1, 2)))
        labels.append(image_set.labels + position * image_set.num_classes)
        paths.extend(f"{path}{ROTATION_SEPARATOR}{angle}" for path in image_set.paths)
        class_names.extend(f"{name}{ROTATION_SEPARATOR}{angle}" for name in image_set.class_names)
    return ImageSet(np.concatenate(images), np.concatenate(labels), class_names, paths, image_set.skipped)


@dataclass
class LakeRun:
    """One run of Lake's one-shot benchmark: ``support_images[k]`` is ``training/class{k+1}``,
    ``query_images[i]`` is ``test/item{i+1}`` and ``correct_positions[i]`` the index of its class."""

    name: str
    support_images: np.ndarray
    query_images: np.ndarray
    correct_positions: np.ndarray
    support_paths: list[str]
    query_paths: list[str]


def _resolve_in_runs(tree, run_folder, named, labels_path, line_number):
    """Find a file named in class_labels.txt: relative to the runs root (official layout) or to
    the run's own folder."""
    named = PurePosixPath(named.replace("\\", "/"))
    files = set(tree.files)
    for candidate in (run_folder.parent / named, run_folder / named):
        candidate = PurePosixPath(*[part for part in candidate.parts if part not in ("", ".")])
        if candidate in files:
            return candidate
    raise SiameseDataError(
        f"{labels_path}, line {line_number}: names {named}, which is not in {tree.path}"
    )


def read_lake_runs(path: str | os.PathLike, image_size: tuple[int, int] = OMNIGLOT_IMAGE_SIZE,
                   invert: bool = False) -> list[LakeRun]:
    """Read Lake's one-shot runs (``all_runs.zip`` or its extracted folder) into :class:`LakeRun` s.

    Each run folder holds ``class_labels.txt`` whose lines read ``runNN/test/itemKK.png
    runNN/training/classKK.png`` (paths relative to the runs root or to the run folder), and the
    images it names. Support images are ordered ``class01..classNN``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        SiameseDataError: no ``class_labels.txt``, a malformed label line, a line that names a file
            that is not there, an undecodable image, or a truncated archive (messages name the file).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Omniglot runs not found: {path}")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise SiameseDataError(f"{path}: not a readable zip archive (truncated download or another file type)")
    runs = []
    with FileTree(path) as tree:
        label_files = sorted((file for file in tree.files if file.name == "class_labels.txt"),
                             key=natural_sort_key)
        if not label_files:
            raise SiameseDataError(f"{path}: no runNN/class_labels.txt found; is this Lake's all_runs layout?")

        def load(relative):
            display = tree.display_path(relative)
            try:
                data = tree.read_bytes(relative)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise SiameseDataError(f"{display}: cannot be read ({error})") from error
            return read_image(data, image_size, channels=1, name=display)

        for labels_file in label_files:
            labels_path = tree.display_path(labels_file)
            run_folder = labels_file.parent
            try:
                text = tree.read_bytes(labels_file).decode("utf-8")
            except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as error:
                raise SiameseDataError(f"{labels_path}: cannot be read ({error})") from error
            query_files, support_of_query = [], []
            for line_number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                fields = line.split()
                if len(fields) != 2:
                    raise SiameseDataError(
                        f"{labels_path}, line {line_number}: expected 'test/itemKK.png training/classKK.png', "
                        f"got {line.strip()!r}"
                    )
                query_files.append(_resolve_in_runs(tree, run_folder, fields[0], labels_path, line_number))
                support_of_query.append(_resolve_in_runs(tree, run_folder, fields[1], labels_path, line_number))
            if not query_files:
                raise SiameseDataError(f"{labels_path}: no label lines")
            support_files = sorted(set(support_of_query), key=natural_sort_key)
            training_folder = support_of_query[0].parent
            # Every training image of the run is a candidate, even one no query belongs to.
            support_files = sorted(set(support_files) | {file for file in tree.files
                                                         if file.parent == training_folder
                                                         and file.suffix.lower() in _IMAGE_SUFFIXES},
                                   key=natural_sort_key)
            position_of = {file: position for position, file in enumerate(support_files)}
            runs.append(LakeRun(
                name=run_folder.name or str(path),
                support_images=np.stack([load(file) for file in support_files]),
                query_images=np.stack([load(file) for file in query_files]),
                correct_positions=np.array([position_of[file] for file in support_of_query], np.int64),
                support_paths=[tree.display_path(file) for file in support_files],
                query_paths=[tree.display_path(file) for file in query_files],
            ))
    if invert:
        for run in runs:
            run.support_images, run.query_images = 1.0 - run.support_images, 1.0 - run.query_images
    return runs
