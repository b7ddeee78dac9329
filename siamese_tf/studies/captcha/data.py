"""Chinese-character CAPTCHAs (CICC-style, SiameseCCR): GB2312 characters, CJK fonts, rendering,
split plans, files and the crops the networks see.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.errors import SiameseDataError

if TYPE_CHECKING:
    from PIL import ImageFont

__all__ = [
    "CROP_SIZE",
    "CaptchaFont",
    "CaptchaSplit",
    "DEFAULT_FONT_DIRS",
    "DEFAULT_HELD_OUT_FONT",
    "FONT_DIRS_VARIABLE",
    "IMAGE_SIZE",
    "KNOWN_CJK_FONTS",
    "LEVEL_ROWS",
    "LEVEL_SIZES",
    "NoCJKFontError",
    "PAPER_SIZES",
    "SPLITS",
    "center_crop",
    "grid_corners",
    "grid_crops",
    "check_images",
    "covered_characters",
    "find_cjk_fonts",
    "gb2312_characters",
    "generate_captcha_dataset",
    "gray",
    "load_captcha_metadata",
    "load_captcha_split",
    "plan_captcha_dataset",
    "render_captcha",
    "render_split_in_memory",
]


IMAGE_SIZE = 48


LEVEL_ROWS = {1: range(16, 56), 2: range(56, 88)}


LEVEL_SIZES = {1: 3755, 2: 3008}


FONT_DIRS_VARIABLE = "SIAMESE_TF_FONT_DIRS"


DEFAULT_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")


# (face name, file name, face index inside the collection). The order is the preference order.
KNOWN_CJK_FONTS = (
    ("WenQuanYi Micro Hei", "wqy-microhei.ttc", 0),
    ("WenQuanYi Zen Hei", "wqy-zenhei.ttc", 0),
    ("AR PL UMing CN", "uming.ttc", 0),
    ("AR PL UKai CN", "ukai.ttc", 0),
    ("Noto Sans CJK SC", "NotoSansCJK-Regular.ttc", 2),
    ("Noto Serif CJK SC", "NotoSerifCJK-Regular.ttc", 2),
)


DEFAULT_HELD_OUT_FONT = "AR PL UKai CN"


SPLITS = ("train", "test_a", "test_b", "support_a", "support_b", "test_b_held_out_font", "support_b_held_out_font")


PAPER_SIZES = {"train_per_character": 4, "test_a": 10_000, "test_b": 10_000}


class NoCJKFontError(FileNotFoundError):
    """No CJK font was found; the message lists the files and folders searched."""


def gb2312_characters(level: int) -> list[str]:
    """The GB2312 level-1 (3,755) or level-2 (3,008) Chinese characters, in code order."""
    if level not in LEVEL_ROWS:
        raise ValueError(f"GB2312 level must be 1 or 2, got {level!r}")
    characters = []
    for row in LEVEL_ROWS[level]:
        for column in range(1, 95):
            try:
                characters.append(bytes([0xA0 + row, 0xA0 + column]).decode("gb2312"))
            except UnicodeDecodeError:
                continue  # the end of row 55 is unassigned
    return characters


@dataclasses.dataclass(frozen=True)
class CaptchaFont:
    """A CJK font face: display name, file and face index inside a .ttc collection."""

    name: str
    path: str
    index: int = 0

    def load(self, size: int) -> ImageFont.FreeTypeFont:
        from PIL import ImageFont

        return ImageFont.truetype(self.path, size, index=self.index)


def _font_dirs(search_dirs):
    if search_dirs is None:
        extra = [part for part in os.environ.get(FONT_DIRS_VARIABLE, "").split(os.pathsep) if part]
        search_dirs = list(extra) + list(DEFAULT_FONT_DIRS)
    return [Path(directory).expanduser() for directory in search_dirs]


def find_cjk_fonts(search_dirs: Iterable[str | os.PathLike] | None = None,
                   names: Iterable[str] | None = None) -> list[CaptchaFont]:
    """Installed CJK fonts from :data:`KNOWN_CJK_FONTS`, searched in ``search_dirs``.

    Args:
        search_dirs: folders searched recursively; default ``SIAMESE_TF_FONT_DIRS`` (os.pathsep
            separated) then the usual system and user font folders.
        names: keep only these face names (all must be found).

    Raises:
        NoCJKFontError: none found (or a named one missing); the message lists what was looked for.
    """
    directories = _font_dirs(search_dirs)
    found = []
    for name, file_name, index in KNOWN_CJK_FONTS:
        for directory in directories:
            matches = sorted(directory.rglob(file_name)) if directory.is_dir() else []
            if matches:
                found.append(CaptchaFont(name, str(matches[0]), index))
                break
    if names is not None:
        missing = [name for name in names if name not in {font.name for font in found}]
        if missing:
            raise NoCJKFontError(
                f"CJK font(s) {missing} not found; found {[font.name for font in found]} in "
                f"{[str(d) for d in directories]}"
            )
        found = [font for font in found if font.name in names]
    if not found:
        raise NoCJKFontError(
            "No CJK font found. Looked for "
            + ", ".join(f"{file_name} ({name})" for name, file_name, _ in KNOWN_CJK_FONTS)
            + f" under {[str(d) for d in directories]}. Install one, e.g. "
            "`apt-get install fonts-wqy-microhei fonts-wqy-zenhei fonts-arphic-ukai fonts-arphic-uming`, "
            f"or point {FONT_DIRS_VARIABLE} at a folder holding one."
        )
    return found


def _glyph_bitmap(loaded_font, character):
    mask = loaded_font.getmask(character)
    return mask.size, bytes(mask)


def covered_characters(font: CaptchaFont, characters: Iterable[str], size: int = 32) -> list[str]:
    """The characters of ``characters`` that ``font`` draws (not its "missing glyph" box)."""
    loaded = font.load(size)
    missing_glyphs = {_glyph_bitmap(loaded, code) for code in ("\ue000", "\U0010fffd")}
    return [character for character in characters if _glyph_bitmap(loaded, character) not in missing_glyphs]


_LOADED_FONTS = {}


def _random_colours(rng):
    """A light background and a dark text colour (RGB), so the character stays readable."""
    background = rng.integers(150, 256, size=3)
    text = rng.integers(0, 110, size=3)
    return tuple(int(v) for v in background), tuple(int(v) for v in text)


def render_captcha(character: str, font: CaptchaFont, rng: np.random.Generator | int | Sequence[int] | None,
                   image_size: int = IMAGE_SIZE, max_rotation: float = 30.0,
                   font_size_range: tuple[int, int] = (28, 40), noise_points: tuple[int, int] = (20, 60),
                   noise_lines: tuple[int, int] = (1, 3)) -> np.ndarray:
    """Draw one CAPTCHA image: a uint8 (image_size, image_size, 3) RGB array.

    Random background/text colour, font size in ``font_size_range``, rotation in
    ``±max_rotation`` degrees, position (the whole character stays inside), a number of noise
    points and noise lines drawn from the given (low, high) ranges. Randomness only from ``rng``.
    """
    from PIL import Image, ImageDraw

    if not isinstance(character, str) or len(character) != 1:
        raise ValueError(f"character must be a single character, got {character!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    background, text_colour = _random_colours(rng)
    font_size = int(rng.integers(font_size_range[0], font_size_range[1] + 1))
    key = (font, font_size)
    if key not in _LOADED_FONTS:  # loading a large .ttc costs more than drawing a character
        _LOADED_FONTS[key] = font.load(font_size)
    loaded = _LOADED_FONTS[key]
    # Draw the glyph as a mask on a roomy canvas, rotate it, cut it to its ink, then place it.
    canvas_size = 2 * font_size
    mask = Image.new("L", (canvas_size, canvas_size), 0)
    ImageDraw.Draw(mask).text((canvas_size // 2, canvas_size // 2), character, fill=255, font=loaded, anchor="mm")
    mask = mask.rotate(float(rng.uniform(-max_rotation, max_rotation)), resample=Image.BILINEAR, expand=True)
    box = mask.getbbox()
    image = Image.new("RGB", (image_size, image_size), background)
    if box is not None:
        mask = mask.crop(box)
        limit = image_size - 2
        if max(mask.size) > limit:  # a large rotated glyph is shrunk to fit
            factor = limit / max(mask.size)
            mask = mask.resize((max(1, round(mask.width * factor)), max(1, round(mask.height * factor))),
                               Image.BILINEAR)
        left = int(rng.integers(0, image_size - mask.width + 1))
        top = int(rng.integers(0, image_size - mask.height + 1))
        image.paste(Image.new("RGB", mask.size, text_colour), (left, top), mask)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(noise_lines[0], noise_lines[1] + 1))):
        points = [tuple(int(v) for v in rng.integers(0, image_size, size=2)) for _ in range(2)]
        draw.line(points, fill=tuple(int(v) for v in rng.integers(0, 256, size=3)), width=1)
    pixels = np.array(image)
    count = int(rng.integers(noise_points[0], noise_points[1] + 1))
    rows, columns = rng.integers(0, image_size, size=(2, count))
    pixels[rows, columns] = rng.integers(0, 256, size=(count, 3))
    return pixels


def _choose_characters(characters, scale, rng):
    count = max(2, round(len(characters) * scale))
    keep = np.sort(rng.choice(len(characters), size=min(count, len(characters)), replace=False))
    return [characters[i] for i in keep]


def plan_captcha_dataset(scale: float = 1.0, seed: int = 0, fonts: Iterable[CaptchaFont] | None = None,
                         held_out_font: str | None = DEFAULT_HELD_OUT_FONT,
                         train_per_character: int = PAPER_SIZES["train_per_character"],
                         test_a_size: int | None = None, test_b_size: int | None = None, check_coverage: bool = True,
                         ) -> tuple[list[tuple[str, int, str, int, int, CaptchaFont]], dict[str, Any]]:
    """Decide every image of the data set without drawing any: returns ``(plan, metadata)``.

    ``plan`` is a list of ``(split, image_number, character, label, level, font)``. Characters
    that a font in use does not draw are dropped (counted in ``metadata["dropped_characters"]``).
    Test sizes default to the paper's 10,000 times ``scale``.
    """
    if not (isinstance(scale, (int, float)) and 0 < scale <= 1):
        raise ValueError(f"scale must be a number in (0, 1], got {scale!r}")
    if not isinstance(train_per_character, int) or train_per_character < 1:
        raise ValueError(f"train_per_character must be a positive integer, got {train_per_character!r}")
    fonts = list(fonts) if fonts is not None else find_cjk_fonts()
    if not fonts:
        raise ValueError("fonts is empty: pass at least one CaptchaFont")
    held_out = None
    if held_out_font is not None:
        held_out = [font for font in fonts if font.name == held_out_font]
        if not held_out:
            raise ValueError(f"held_out_font {held_out_font!r} is not among the fonts {[f.name for f in fonts]}")
        held_out = held_out[0]
        training_fonts = [font for font in fonts if font is not held_out]
        if not training_fonts:
            raise ValueError(f"Holding out {held_out_font!r} leaves no font for training; install another CJK font")
    else:
        training_fonts = fonts
    rng = np.random.default_rng([seed, 999])
    level_1 = _choose_characters(gb2312_characters(1), scale, rng)
    level_2 = _choose_characters(gb2312_characters(2), scale, rng)
    dropped = 0
    if check_coverage:
        for font in fonts:
            covered_1 = set(covered_characters(font, level_1))
            covered_2 = set(covered_characters(font, level_2))
            dropped += len(level_1) - len(covered_1) + len(level_2) - len(covered_2)
            level_1 = [c for c in level_1 if c in covered_1]
            level_2 = [c for c in level_2 if c in covered_2]
    characters = level_1 + level_2
    label_of = {character: label for label, character in enumerate(characters)}
    test_a_size = round(PAPER_SIZES["test_a"] * scale) if test_a_size is None else int(test_a_size)
    test_b_size = round(PAPER_SIZES["test_b"] * scale) if test_b_size is None else int(test_b_size)

    def font_for(split_rng, split):
        if split.endswith("held_out_font"):
            return held_out
        return training_fonts[int(split_rng.integers(len(training_fonts)))]

    plan = []
    for split_number, split in enumerate(SPLITS):
        if split.endswith("held_out_font") and held_out is None:
            continue
        split_rng = np.random.default_rng([seed, split_number, 10**6])
        pool = level_1 if split in ("train", "test_a", "support_a") else level_2
        if split == "train":
            chosen = [c for c in pool for _ in range(train_per_character)]
        elif split.startswith("support"):
            chosen = list(pool)
        else:
            size = test_a_size if split == "test_a" else test_b_size
            chosen = [pool[i] for i in split_rng.integers(0, len(pool), size=size)]
        for image_number, character in enumerate(chosen):
            plan.append((split, image_number, character, label_of[character],
                         1 if character in level_1 else 2, font_for(split_rng, split)))
    metadata = {
        "scale": scale, "seed": seed, "image_size": IMAGE_SIZE,
        "fonts": [dataclasses.asdict(font) for font in fonts],
        "training_fonts": [font.name for font in training_fonts],
        "held_out_font": held_out.name if held_out else None,
        "characters": characters, "num_level_1": len(level_1), "num_level_2": len(level_2),
        "dropped_characters": dropped,
        "split_sizes": {split: sum(1 for row in plan if row[0] == split) for split in SPLITS},
    }
    return plan, metadata


def generate_captcha_dataset(output_dir: str | os.PathLike, scale: float = 1.0, seed: int = 0,
                             fonts: Iterable[CaptchaFont] | None = None,
                             held_out_font: str | None = DEFAULT_HELD_OUT_FONT,
                             train_per_character: int = PAPER_SIZES["train_per_character"],
                             test_a_size: int | None = None, test_b_size: int | None = None, progress: bool = True,
                             overwrite: bool = False, render_seed: int | None = None) -> dict[str, Any]:
    """Write the CAPTCHA data set: ``<output_dir>/<split>/<n>.png``, ``index.csv``, ``metadata.json``.

    See the module docstring for the splits. ``scale`` in (0, 1] keeps that share of the GB2312
    characters and of the test sizes (``scale=1`` is the paper's size: 15,020 training images).
    ``fonts`` defaults to every font :func:`find_cjk_fonts` finds; ``held_out_font`` (a face name
    or None) is kept out of every split except the ``*_held_out_font`` ones. Returns the metadata.

    ``render_seed`` (default: ``seed``) draws the images alone: the same ``seed`` with another
    ``render_seed`` keeps every character, font and split of the plan and draws every image anew.
    That is a validation set for a model trained on the ``seed`` data set: its test A holds new
    CAPTCHAs of the training characters, like the real test A, so recipes can be chosen on it.

    An existing data set with the same settings is reused (its metadata returned) unless
    ``overwrite``; one with other settings raises ``FileExistsError``.
    """
    output_dir = Path(output_dir)
    if render_seed is not None and (isinstance(render_seed, bool) or not isinstance(render_seed, (int, np.integer))
                                    or render_seed < 0):
        raise ValueError(f"render_seed must be a non-negative integer or None, got {render_seed!r}")
    plan, metadata = plan_captcha_dataset(scale, seed, fonts, held_out_font, train_per_character,
                                          test_a_size, test_b_size)
    if render_seed is not None and render_seed != seed:
        metadata["render_seed"] = int(render_seed)  # only when it differs: earlier data sets stay valid
    else:
        render_seed = seed
    metadata_path = output_dir / "metadata.json"
    if metadata_path.exists() and not overwrite:
        existing = json.loads(metadata_path.read_text())
        if existing == metadata:
            return existing
        raise FileExistsError(f"{output_dir} holds a CAPTCHA data set with other settings; pass overwrite=True")
    split_numbers = {split: number for number, split in enumerate(SPLITS)}
    rows = []
    iterator = plan
    if progress:
        from siamese_tf.settings import progress_bar

        iterator = progress_bar(plan, desc="CAPTCHAs", unit="img", mininterval=1.0)
    for split in {row[0] for row in plan}:
        (output_dir / split).mkdir(parents=True, exist_ok=True)
    for split, image_number, character, label, level, font in iterator:
        rng = np.random.default_rng([render_seed, split_numbers[split], image_number])
        pixels = render_captcha(character, font, rng)
        relative = f"{split}/{image_number:05d}.png"
        if not cv2.imwrite(str(output_dir / relative), pixels[:, :, ::-1]):
            raise OSError(f"Could not write {output_dir / relative}")
        rows.append((split, relative, character, label, level, font.name))
    with open(output_dir / "index.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("split", "path", "character", "label", "level", "font"))
        writer.writerows(rows)
    # Metadata last: its presence marks a finished data set.
    metadata_path.write_text(json.dumps(metadata, ensure_ascii=False, indent=1))
    return metadata


@dataclasses.dataclass
class CaptchaSplit:
    """Images of one split: ``images`` (N, 48, 48, C) float32 in [0, 1], ``labels`` (N,) indices
    into ``characters``, and each image's ``fonts`` and ``paths``; ``skipped`` counts unreadable files."""

    images: np.ndarray
    labels: np.ndarray
    characters: list[str]
    fonts: list[str]
    paths: list[str]
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.labels)


def load_captcha_metadata(dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``metadata.json`` of a data set written by :func:`generate_captcha_dataset`."""
    path = Path(dataset_dir) / "metadata.json"
    if not path.exists():
        raise FileNotFoundError(f"No CAPTCHA data set at {dataset_dir} (missing {path.name}); "
                                "run siamese_tf.studies.captcha.generate_captcha_dataset first")
    return json.loads(path.read_text())


def load_captcha_split(dataset_dir: str | os.PathLike, split: str, gray: bool = True) -> CaptchaSplit:
    """Read one split back (see :class:`CaptchaSplit`); unreadable PNGs are skipped with a warning."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {SPLITS}")
    dataset_dir = Path(dataset_dir)
    metadata = load_captcha_metadata(dataset_dir)
    images, labels, fonts, paths = [], [], [], []
    skipped = 0
    with open(dataset_dir / "index.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["split"] != split:
                continue
            path = dataset_dir / row["path"]
            pixels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
            if pixels is None:
                warnings.warn(f"Skipping unreadable CAPTCHA image {path}")
                skipped += 1
                continue
            pixels = pixels[:, :, None] if gray else pixels[:, :, ::-1]
            images.append(pixels)
            labels.append(int(row["label"]))
            fonts.append(row["font"])
            paths.append(str(path))
    if not images and not skipped and metadata["split_sizes"].get(split, 0) == 0:
        raise SiameseDataError(f"Split {split!r} of {dataset_dir} is empty")
    if skipped:
        warnings.warn(f"Skipped {skipped} unreadable images in split {split!r} of {dataset_dir}")
    channels = 1 if gray else 3
    array = (np.stack(images).astype(np.float32) / 255.0 if images
             else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, channels), np.float32))
    return CaptchaSplit(array, np.asarray(labels, np.int64), metadata["characters"], fonts, paths, skipped)


def render_split_in_memory(characters: Sequence[str], fonts: Sequence[CaptchaFont], seed: int = 0,
                           gray: bool = True) -> np.ndarray:
    """Draw one image per character (cycling over ``fonts``) without writing files: (N, 48, 48, C) float32."""
    if not characters:
        raise ValueError("characters is empty")
    images = []
    for number, character in enumerate(characters):
        pixels = render_captcha(character, fonts[number % len(fonts)], np.random.default_rng([seed, number]))
        images.append(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[:, :, None] if gray else pixels)
    return np.stack(images).astype(np.float32) / 255.0


def gray(images: ArrayLike) -> np.ndarray:
    """RGB images (N, H, W, 3) in [0, 1] to gray (N, H, W, 1), OpenCV's weights."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"Expected RGB images (N, H, W, 3), got shape {images.shape}")
    return (images @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


CROP_SIZE = 44


def check_images(images: ArrayLike, name: str = "images") -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"{name} must have shape (N, H, W, C), got {images.shape}")
    return images


def center_crop(images: ArrayLike, size: int = CROP_SIZE) -> np.ndarray:
    """The centre ``size`` x ``size`` window of each image (N, H, W, C)."""
    images = check_images(images)
    [(top, left)] = grid_corners(images.shape[1:3], size, grid=1)
    return images[:, top:top + size, left:left + size]


def grid_crops(images: ArrayLike, size: int = CROP_SIZE, grid: int = 3) -> np.ndarray:
    """``grid`` x ``grid`` windows of ``size`` x ``size`` per image, their corners spread evenly from the
    top left to the bottom right window: (grid * grid, N, size, size, C). ``grid`` 1 is :func:`center_crop`.

    Training takes random ``size`` crops, so every window here is one the network saw the like of.
    """
    images = check_images(images)
    return np.stack([images[:, top:top + size, left:left + size]
                     for top, left in grid_corners(images.shape[1:3], size, grid)])


def grid_corners(image_shape: tuple[int, int], size: int = CROP_SIZE, grid: int = 3) -> list[tuple[int, int]]:
    """Top-left corners ``(top, left)`` of the windows of :func:`grid_crops`, row by row."""
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
        raise ValueError(f"grid must be a positive integer, got {grid!r}")
    height, width = image_shape
    if size > min(height, width):
        raise ValueError(f"crop size {size} is larger than the images ({height}x{width})")
    if grid == 1:
        return [((height - size) // 2, (width - size) // 2)]  # the centre window, as center_crop
    tops = np.rint(np.linspace(0, height - size, grid)).astype(int)
    lefts = np.rint(np.linspace(0, width - size, grid)).astype(int)
    return [(int(top), int(left)) for top in tops for left in lefts]
