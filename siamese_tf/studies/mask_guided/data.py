"""Mask-guided data: synthetic chairlift domains (image + one binary mask per class), a loader for real
ones, and the image-mask pairs.

Class ids: 0 = closed, 1 = open. Pair labels: 1 = same (the image shows the state its mask shows), 0 = different.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.datasets import natural_sort_key, read_image
from siamese_tf.errors import SiameseDataError
from siamese_tf.labels import DIFFERENT_LABEL, SAME_LABEL

__all__ = [
    "CANVAS",
    "CLASS_NAMES",
    "CLOSED",
    "ChairliftDomain",
    "IMAGE_SUFFIXES",
    "MaskGuidedData",
    "OPEN",
    "OPEN_FRACTION_RANGE",
    "SPLITS",
    "check_data",
    "generate_chairlift_data",
    "image_mask_pairs",
    "load_mask_domains",
    "make_domain",
    "mask_overlay",
    "render_image",
    "render_mask",
    "validation_pairs",
]


CLASS_NAMES = ("closed", "open")


CLOSED, OPEN = 0, 1


CANVAS = 200  # the generator draws at 200x200, the paper's image size, then resizes


OPEN_FRACTION_RANGE = (0.15, 0.5)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff")


SPLITS = ("train", "validation", "test")


@dataclass
class MaskGuidedData:
    """Images of several domains with each domain's two binary masks.

    Attributes:
        images: (N, H, W, 3) float32 in [0, 1].
        class_ids: (N,) int, 0 = closed, 1 = open.
        domain_ids: (N,) int, index into ``domain_names`` and ``masks``.
        masks: (D, 2, H, W, 3) float32 of 0/1, ``masks[d, c]`` is domain d's mask of class c
            (white bar on black, repeated to 3 channels so images and masks share one network).
        domain_names: D names.
        class_names: ``("closed", "open")``.
        skipped: number of unreadable files a loader skipped (with a warning each).
    """

    images: np.ndarray
    class_ids: np.ndarray
    domain_ids: np.ndarray
    masks: np.ndarray
    domain_names: tuple[str, ...]
    class_names: tuple[str, ...] = CLASS_NAMES
    skipped: int = 0
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.float32)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        self.domain_ids = np.asarray(self.domain_ids, dtype=np.int64).reshape(-1)
        self.masks = np.asarray(self.masks, dtype=np.float32)
        self.domain_names = tuple(self.domain_names)
        count = len(self.images)
        if self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3), got shape {self.images.shape}")
        if len(self.class_ids) != count or len(self.domain_ids) != count:
            raise ValueError(
                f"{count} images but {len(self.class_ids)} class ids and {len(self.domain_ids)} domain ids"
            )
        expected_masks = (len(self.domain_names), 2) + self.images.shape[1:]
        if self.masks.shape != expected_masks:
            raise ValueError(
                f"masks must have shape {expected_masks} (domains, classes, H, W, 3), got {self.masks.shape}"
            )
        if count and (self.class_ids.min() < 0 or self.class_ids.max() > 1):
            raise ValueError(f"class ids must be 0 (closed) or 1 (open), got values {np.unique(self.class_ids)}")
        if count and (self.domain_ids.min() < 0 or self.domain_ids.max() >= len(self.domain_names)):
            raise ValueError(
                f"domain ids must lie in [0, {len(self.domain_names)}), got values {np.unique(self.domain_ids)}"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    @property
    def flat_masks(self) -> np.ndarray:
        """Every domain's masks as one (2 * domains, H, W, 3) array: row ``2 * domain + class``."""
        return self.masks.reshape((-1,) + self.image_shape)

    def subset(self, indices: ArrayLike) -> MaskGuidedData:
        """The images at ``indices`` (all domains and masks kept, so domain ids stay valid)."""
        indices = np.asarray(indices, dtype=np.int64)
        return MaskGuidedData(
            self.images[indices], self.class_ids[indices], self.domain_ids[indices], self.masks,
            self.domain_names, self.class_names, self.skipped,
            [self.paths[i] for i in indices] if self.paths else [],
        )

    def select_domains(self, domain_ids: int | str | Sequence[int | str]) -> MaskGuidedData:
        """Only the images of ``domain_ids`` (names or ids); domain numbering is kept."""
        wanted = {self._domain_id(d) for d in np.atleast_1d(domain_ids).tolist()}
        return self.subset(np.flatnonzero(np.isin(self.domain_ids, sorted(wanted))))

    def _domain_id(self, domain):
        if isinstance(domain, str):
            if domain not in self.domain_names:
                raise ValueError(f"Unknown domain {domain!r}; known: {list(self.domain_names)}")
            return self.domain_names.index(domain)
        if not 0 <= int(domain) < len(self.domain_names):
            raise ValueError(f"domain id {domain!r} is out of range [0, {len(self.domain_names)})")
        return int(domain)

    def counts(self) -> list[dict[str, Any]]:
        """Per-domain image counts: list of dicts {domain, closed, open, total}."""
        rows = []
        for domain_id, name in enumerate(self.domain_names):
            in_domain = self.domain_ids == domain_id
            closed = int(np.sum(in_domain & (self.class_ids == CLOSED)))
            opened = int(np.sum(in_domain & (self.class_ids == OPEN)))
            rows.append({"domain": name, "closed": closed, "open": opened, "total": closed + opened})
        return rows


@dataclass
class ChairliftDomain:
    """Everything fixed for one chairlift: geometry, camera, scene, weather, class balance."""

    name: str
    seed: int
    seat_count: int
    seat_width: float
    seat_y: float
    backrest_height: float
    frame_y: float
    hanger_bend: float
    bar_thickness: int
    closed_bar_y: float
    open_bar_y: float
    footrest: bool
    carrier_color: tuple[float, float, float]
    bar_color: tuple[float, float, float]
    homography: np.ndarray
    background: np.ndarray
    light_gain: float
    tint: tuple[float, float, float]
    occupancy: float
    weather: dict[str, float]
    open_fraction: float


def _random_color(rng, low=0.0, high=1.0):
    return tuple(float(v) for v in rng.uniform(low, high, 3))


def _render_background(rng):
    """A static outdoor scene: sky gradient, ground, a ridge line, trees and pylons."""
    sky_top, sky_bottom = np.array(_random_color(rng, 0.35, 0.9)), np.array(_random_color(rng, 0.6, 1.0))
    ground = np.array(_random_color(rng, 0.55, 0.95))  # mostly snow, tinted
    horizon = int(rng.uniform(60, 140))
    rows = np.linspace(0, 1, CANVAS)[:, None, None]
    image = (sky_top * (1 - rows) + sky_bottom * rows) * np.ones((CANVAS, CANVAS, 3))
    image[horizon:] = ground * (0.85 + 0.15 * rng.random((CANVAS - horizon, 1, 1)))
    # A mountain ridge: a random polyline above the horizon, filled down to it.
    xs = np.linspace(0, CANVAS, 7)
    ridge = horizon - rng.uniform(5, 50, len(xs))
    polygon = np.array([[0, horizon]] + [[x, y] for x, y in zip(xs, ridge)] + [[CANVAS, horizon]], np.int32)
    cv2.fillPoly(image, [polygon], _random_color(rng, 0.3, 0.7))
    for _ in range(int(rng.integers(3, 12))):  # fir trees
        x, base, height = rng.uniform(0, CANVAS), rng.uniform(horizon - 5, CANVAS), rng.uniform(15, 45)
        tree = np.array([[x - height / 4, base], [x + height / 4, base], [x, base - height]], np.int32)
        cv2.fillPoly(image, [tree], _random_color(rng, 0.0, 0.35))
    for _ in range(int(rng.integers(0, 3))):  # pylons and station beams
        x = int(rng.uniform(0, CANVAS))
        cv2.line(image, (x, 0), (x + int(rng.uniform(-20, 20)), CANVAS), _random_color(rng, 0.1, 0.5),
                 int(rng.integers(3, 9)))
    return image.astype(np.float32)


def _random_homography(rng):
    """The domain's camera: corners of the canvas moved by up to 25 px, then scaled and shifted."""
    source = np.float32([[0, 0], [CANVAS, 0], [CANVAS, CANVAS], [0, CANVAS]])
    destination = source + rng.uniform(-25, 25, source.shape).astype(np.float32)
    scale = rng.uniform(0.8, 1.05)
    centre = np.float32([CANVAS / 2, CANVAS / 2])
    destination = (destination - centre) * scale + centre + rng.uniform(-12, 12, 2).astype(np.float32)
    return cv2.getPerspectiveTransform(source, destination.astype(np.float32))


def make_domain(seed: int, name: str | None = None) -> ChairliftDomain:
    """Draw one chairlift domain from ``seed`` (same seed, same chairlift)."""
    rng = np.random.default_rng([int(seed), 7919])
    seat_count = int(rng.integers(2, 7))
    seat_y = float(rng.uniform(120, 140))
    frame_y = float(rng.uniform(55, 75))
    backrest_height = float(rng.uniform(25, 45))
    weather_kinds = ("clear", "snow", "rain", "fog", "glare")
    weights = rng.dirichlet(np.ones(len(weather_kinds)) * 0.8)
    return ChairliftDomain(
        name=name or f"chairlift_{seed:03d}",
        seed=int(seed),
        seat_count=seat_count,
        seat_width=float(min(150.0, seat_count * rng.uniform(24, 34))),
        seat_y=seat_y,
        backrest_height=backrest_height,
        frame_y=frame_y,
        hanger_bend=float(rng.uniform(-20, 20)),
        bar_thickness=int(rng.integers(3, 6)),
        closed_bar_y=float(seat_y - rng.uniform(18, 32)),
        open_bar_y=float(frame_y - rng.uniform(12, 30)),
        footrest=bool(rng.random() < 0.7),
        carrier_color=_random_color(rng, 0.05, 0.8),
        bar_color=_random_color(rng, 0.0, 0.6) if rng.random() < 0.7 else _random_color(rng, 0.6, 1.0),
        homography=_random_homography(rng),
        background=_render_background(rng),
        light_gain=float(rng.uniform(0.55, 1.15)),
        tint=_random_color(rng, 0.85, 1.1),
        occupancy=float(rng.uniform(0.2, 0.9)),
        weather=dict(zip(weather_kinds, weights.tolist())),
        open_fraction=float(rng.uniform(*OPEN_FRACTION_RANGE)),
    )


def _bar_polylines(domain, class_id, lift=0.0):
    """Canonical polylines of the safety bar (arms, crossbar, footrest) for a class.

    ``lift`` in [0, 1) moves the bar part of the way towards the other position (a bar that is
    still moving), so the classes are not perfectly rigid templates.
    """
    half = domain.seat_width / 2
    left, right = CANVAS / 2 - half, CANVAS / 2 + half
    pivot_y = domain.frame_y + 8
    target = domain.open_bar_y if class_id == OPEN else domain.closed_bar_y
    other = domain.closed_bar_y if class_id == OPEN else domain.open_bar_y
    bar_y = target + lift * (other - target)
    inset = 6
    lines = [
        [(left, pivot_y), (left + inset, bar_y)],
        [(right, pivot_y), (right - inset, bar_y)],
        [(left + inset, bar_y), (right - inset, bar_y)],
    ]
    if domain.footrest:
        # Footrest rods hang from the crossbar: down to the skis when closed, short when open.
        drop = (domain.seat_y + 32 - bar_y) if class_id == CLOSED else 18.0
        drop = drop * (1 - lift) + lift * (18.0 if class_id == CLOSED else domain.seat_y + 32 - bar_y)
        for x in (CANVAS / 2 - half / 2, CANVAS / 2 + half / 2):
            lines.append([(x, bar_y), (x, bar_y + drop)])
            lines.append([(x - 8, bar_y + drop), (x + 8, bar_y + drop)])
    return lines


def _carrier_polygons(domain):
    """Canonical filled polygons (backrest, seat) and polylines (hanger, frame, side rods)."""
    half = domain.seat_width / 2
    left, right = CANVAS / 2 - half, CANVAS / 2 + half
    top = domain.seat_y - domain.backrest_height
    backrest = [(left, top), (right, top), (right, domain.seat_y), (left, domain.seat_y)]
    seat = [(left - 4, domain.seat_y), (right + 4, domain.seat_y), (right + 8, domain.seat_y + 9),
            (left - 8, domain.seat_y + 9)]
    centre = CANVAS / 2
    hanger = [(centre, -10), (centre + domain.hanger_bend, domain.frame_y / 2), (centre, domain.frame_y)]
    frame = [(left, domain.frame_y), (right, domain.frame_y)]
    rods = [[(left, domain.frame_y), (left - 4, domain.seat_y)], [(right, domain.frame_y), (right + 4, domain.seat_y)]]
    return [backrest, seat], [hanger, frame] + rods


def _transform(points, homography, swing=None):
    """Map canonical points through the per-image swing (a small rigid move) and the camera."""
    points = np.asarray(points, np.float32).reshape(-1, 1, 2)
    if swing is not None:
        points = cv2.transform(points, swing)
    return cv2.perspectiveTransform(points, homography).reshape(-1, 2)


def _polyline(canvas, points, color, thickness):
    cv2.polylines(canvas, [np.round(points).astype(np.int32)], False, color, int(thickness), cv2.LINE_AA)


def render_mask(domain: ChairliftDomain, class_id: int) -> np.ndarray:
    """The domain's binary mask of ``class_id`` at 200x200: white bar on black, float32 0/1 (H, W)."""
    if class_id not in (CLOSED, OPEN):
        raise ValueError(f"class_id must be 0 (closed) or 1 (open), got {class_id!r}")
    mask = np.zeros((CANVAS, CANVAS), np.uint8)
    for line in _bar_polylines(domain, class_id):
        points = np.round(_transform(line, domain.homography)).astype(np.int32)
        cv2.polylines(mask, [points], False, 255, domain.bar_thickness + 2)  # a little wider: a rough prior
    return (mask > 127).astype(np.float32)


def _draw_person(canvas, rng, x, seat_y, transform):
    jacket, trousers, helmet = _random_color(rng), _random_color(rng, 0, 0.5), _random_color(rng)
    body = [(x - 9, seat_y - 34), (x + 9, seat_y - 34), (x + 11, seat_y), (x - 11, seat_y)]
    cv2.fillPoly(canvas, [np.round(transform(body)).astype(np.int32)], jacket, cv2.LINE_AA)
    for side in (-5, 5):
        _polyline(canvas, transform([(x + side, seat_y), (x + side * 1.4, seat_y + 30)]), trousers, 6)
    head = transform([(x, seat_y - 42)])[0]
    cv2.circle(canvas, tuple(int(v) for v in np.round(head)), 8, helmet, -1, cv2.LINE_AA)


def _apply_weather(image, domain, rng):
    kinds = list(domain.weather)
    kind = kinds[int(rng.choice(len(kinds), p=np.array(list(domain.weather.values()))))]
    if kind == "snow":
        count = int(rng.integers(80, 400))
        for x, y, r in zip(rng.uniform(0, CANVAS, count), rng.uniform(0, CANVAS, count), rng.integers(1, 3, count)):
            cv2.circle(image, (int(x), int(y)), int(r), (1.0, 1.0, 1.0), -1)
    elif kind == "rain":
        slant = rng.uniform(-6, 6)
        for x, y in zip(rng.uniform(0, CANVAS, 150), rng.uniform(0, CANVAS, 150)):
            cv2.line(image, (int(x), int(y)), (int(x + slant), int(y + 12)), (0.75, 0.78, 0.82), 1)
    elif kind == "fog":
        strength = rng.uniform(0.2, 0.55)
        image[:] = image * (1 - strength) + strength * 0.9
    elif kind == "glare":
        centre = rng.uniform(0, CANVAS, 2)
        yy, xx = np.mgrid[0:CANVAS, 0:CANVAS]
        glow = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * rng.uniform(20, 60) ** 2))
        image[:] = image + rng.uniform(0.3, 0.8) * glow[..., None]
    return kind


def render_image(domain: ChairliftDomain, class_id: int, rng: np.random.Generator) -> np.ndarray:
    """One registered 200x200 RGB image of ``domain`` with the bar in ``class_id``'s position."""
    if class_id not in (CLOSED, OPEN):
        raise ValueError(f"class_id must be 0 (closed) or 1 (open), got {class_id!r}")
    # The carrier swings a little around its hanger and the camera shakes: registration is rough.
    angle = rng.normal(0, 1.5)
    swing = cv2.getRotationMatrix2D((CANVAS / 2, 0), angle, 1.0)
    swing[:, 2] += rng.normal(0, 1.5, 2)

    def transform(points):
        return _transform(points, domain.homography, swing)

    image = domain.background.copy()
    polygons, lines = _carrier_polygons(domain)
    darker = tuple(0.7 * c for c in domain.carrier_color)
    cv2.fillPoly(image, [np.round(transform(polygons[0])).astype(np.int32)], darker, cv2.LINE_AA)
    cv2.fillPoly(image, [np.round(transform(polygons[1])).astype(np.int32)], domain.carrier_color, cv2.LINE_AA)
    for line in lines:
        _polyline(image, transform(line), domain.carrier_color, 4)
    seat_step = domain.seat_width / domain.seat_count
    for seat in range(domain.seat_count):
        if rng.random() < domain.occupancy:
            x = CANVAS / 2 - domain.seat_width / 2 + seat_step * (seat + 0.5) + rng.normal(0, 2)
            _draw_person(image, rng, x, domain.seat_y, transform)
    lift = rng.uniform(0, 0.15) if rng.random() < 0.3 else 0.0
    for line in _bar_polylines(domain, class_id, lift):
        _polyline(image, transform(line), domain.bar_color, domain.bar_thickness)
    # Occluders in front of the bar: skis and poles held up, a passer-by in the foreground.
    for _ in range(int(rng.poisson(0.8))):
        start, end = rng.uniform(20, 180, 2), rng.uniform(20, 180, 2)
        _polyline(image, np.array([start, end]), _random_color(rng), int(rng.integers(2, 5)))
    if rng.random() < 0.15:
        x = rng.uniform(0, CANVAS)
        cv2.ellipse(image, (int(x), CANVAS), (int(rng.uniform(15, 30)), int(rng.uniform(50, 90))), 0, 180, 360,
                    _random_color(rng), -1, cv2.LINE_AA)
        cv2.circle(image, (int(x), int(CANVAS - rng.uniform(70, 100))), int(rng.uniform(10, 15)),
                   _random_color(rng), -1, cv2.LINE_AA)
    _apply_weather(image, domain, rng)
    gain = domain.light_gain * rng.uniform(0.85, 1.15)
    image = image * gain * np.asarray(domain.tint, np.float32)
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.2))
    image = image + rng.normal(0, rng.uniform(0.01, 0.04), image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def _resize(image, image_size):
    if image.shape[:2] == tuple(image_size):
        return image
    return cv2.resize(image, (image_size[1], image_size[0]), interpolation=cv2.INTER_AREA)


def _mask_channels(mask, image_size):
    # INTER_AREA then threshold keeps a thin bar visible at small sizes (any touched pixel is white).
    small = _resize(mask.astype(np.float32), image_size)
    binary = (small > 0.2).astype(np.float32)
    return np.repeat(binary[..., None], 3, axis=-1)


def _split_class_ids(count, open_fraction, rng):
    opened = int(round(count * open_fraction))
    class_ids = np.array([OPEN] * opened + [CLOSED] * (count - opened), np.int64)
    rng.shuffle(class_ids)
    return class_ids


def _check_count(value, name, allow_zero=False):
    if not isinstance(value, (int, np.integer)) or value < (0 if allow_zero else 1):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}")


def generate_chairlift_data(num_domains: int = 12, train_per_domain: int = 100, validation_per_domain: int = 40,
                            test_per_domain: int = 100, image_size: tuple[int, int] = (64, 64), seed: int = 0,
                            first_domain: int = 0, output_dir: str | os.PathLike | None = None,
                            progress: bool = True) -> dict[str, Any]:
    """Generate ``num_domains`` synthetic chairlifts with train / validation / test splits.

    Args:
        num_domains: number of chairlifts (the paper has 20).
        train_per_domain, validation_per_domain, test_per_domain: images per domain and split
            (the paper trains on 100 per chairlift); each domain's open fraction applies to all.
        image_size: (height, width) of the returned images and masks; drawn at 200x200 then
            resized with ``cv2.INTER_AREA``.
        seed: the data set's seed; domain ``k`` is ``make_domain(seed * 1000 + first_domain + k)``,
            so ``first_domain`` gives fresh, never-seen chairlifts from the same seed.
        output_dir: when given, also write PNGs in the :func:`load_mask_domains` layout under
            ``output_dir/<split>/`` and an ``index.csv`` (split, domain, class, path).
        progress: show a tqdm progress bar.

    Returns:
        dict ``{"train", "validation", "test"}`` -> :class:`MaskGuidedData` (same domains and
        masks in each), plus ``"domains"`` -> the list of :class:`ChairliftDomain`.
    """
    _check_count(num_domains, "num_domains")
    _check_count(first_domain, "first_domain", allow_zero=True)
    counts = {"train": train_per_domain, "validation": validation_per_domain, "test": test_per_domain}
    for split, count in counts.items():
        _check_count(count, f"{split}_per_domain", allow_zero=True)
    image_size = tuple(int(v) for v in image_size)
    if len(image_size) != 2 or min(image_size) < 8:
        raise ValueError(f"image_size must be (height, width) of at least 8 pixels, got {image_size!r}")
    _check_count(seed, "seed", allow_zero=True)
    from siamese_tf.settings import progress_bar

    domains = [make_domain(seed * 1000 + first_domain + k) for k in range(num_domains)]
    masks = np.stack([
        np.stack([_mask_channels(render_mask(domain, class_id), image_size) for class_id in (CLOSED, OPEN)])
        for domain in domains
    ])
    names = [domain.name for domain in domains]
    collected = {split: ([], [], []) for split in SPLITS}
    index_rows = []
    total = num_domains * sum(counts.values())
    with progress_bar(total=total, desc="chairlift images", unit="image", disable=not progress) as bar:
        for domain_id, domain in enumerate(domains):
            for split_number, split in enumerate(SPLITS):
                rng = np.random.default_rng([domain.seed, split_number, 104729])
                for number, class_id in enumerate(_split_class_ids(counts[split], domain.open_fraction, rng)):
                    full_size = render_image(domain, int(class_id), rng)
                    images, class_ids, domain_ids = collected[split]
                    images.append(_resize(full_size, image_size))
                    class_ids.append(class_id)
                    domain_ids.append(domain_id)
                    if output_dir is not None:
                        relative = Path(split) / domain.name / CLASS_NAMES[class_id] / f"{number:05d}.png"
                        _write_png(Path(output_dir) / relative, full_size)
                        index_rows.append((split, domain.name, CLASS_NAMES[class_id], relative.as_posix()))
                    bar.update(1)
    result = {}
    for split in SPLITS:
        images, class_ids, domain_ids = collected[split]
        shape = (0,) + image_size + (3,)
        result[split] = MaskGuidedData(
            np.stack(images) if images else np.zeros(shape, np.float32), class_ids, domain_ids, masks, names)
    if output_dir is not None:
        _write_masks_and_index(Path(output_dir), domains, index_rows)
    result["domains"] = domains
    return result


def _write_png(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr):
        raise OSError(f"could not write {path}")


def _write_masks_and_index(output_dir, domains, index_rows):
    for split in SPLITS:
        for domain in domains:
            folder = output_dir / split / domain.name
            if not folder.exists():
                continue
            for class_id in (CLOSED, OPEN):
                mask = (render_mask(domain, class_id) * 255).astype(np.uint8)
                cv2.imwrite(str(folder / f"{CLASS_NAMES[class_id]}_mask.png"), mask)
    with open(output_dir / "index.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("split", "domain", "class", "path"))
        writer.writerows(index_rows)


def _find_mask(domain_dir, class_name):
    for suffix in IMAGE_SUFFIXES:
        candidate = domain_dir / f"{class_name}_mask{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_mask_domains(root: str | os.PathLike, image_size: tuple[int, int] = (64, 64),
                      mask_threshold: float = 0.5) -> MaskGuidedData:
    """Read real chairlifts (or any mask-guided two-class domains) from a folder.

    Layout: ``root/<domain>/open/*`` and ``root/<domain>/closed/*`` images, plus
    ``root/<domain>/open_mask.png`` and ``root/<domain>/closed_mask.png`` (white where the bar
    is; any readable image format, read as grayscale and binarised at ``mask_threshold``).
    Images are resized to ``image_size`` as RGB in [0, 1]. Unreadable image files are skipped
    with a warning each and counted in ``.skipped``.

    Raises:
        FileNotFoundError: ``root`` is missing.
        SiameseDataError: a domain lacks a mask, or no domain holds any image.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"mask-guided data folder not found: {root}")
    image_size = tuple(int(v) for v in image_size)
    domain_dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: natural_sort_key(p.name))
    names, masks, images, class_ids, domain_ids, paths = [], [], [], [], [], []
    skipped = 0
    for domain_dir in domain_dirs:
        class_dirs = [domain_dir / name for name in CLASS_NAMES]
        if not any(d.is_dir() for d in class_dirs):
            continue  # not a domain folder (e.g. a notes folder)
        domain_masks = []
        for class_name in CLASS_NAMES:
            mask_path = _find_mask(domain_dir, class_name)
            if mask_path is None:
                raise SiameseDataError(
                    f"domain {domain_dir.name!r} has no {class_name}_mask image (expected e.g. "
                    f"{domain_dir / (class_name + '_mask.png')})"
                )
            mask = read_image(mask_path, image_size=image_size, channels=1)[..., 0]
            domain_masks.append(np.repeat((mask > mask_threshold).astype(np.float32)[..., None], 3, axis=-1))
        domain_id = len(names)
        names.append(domain_dir.name)
        masks.append(np.stack(domain_masks))
        for class_id, class_dir in enumerate(class_dirs):
            if not class_dir.is_dir():
                continue
            files = sorted((p for p in class_dir.iterdir() if p.is_file() and not p.name.startswith(".")),
                           key=lambda p: natural_sort_key(p.name))
            for path in files:
                try:
                    image = read_image(path, image_size=image_size, channels=3)
                except (SiameseDataError, ValueError) as error:
                    warnings.warn(f"skipping {path}: {error}", stacklevel=2)
                    skipped += 1
                    continue
                images.append(image)
                class_ids.append(class_id)
                domain_ids.append(domain_id)
                paths.append(str(path))
    if not images:
        raise SiameseDataError(
            f"no images found under {root}; expected <domain>/open/* and <domain>/closed/* with "
            f"<domain>/open_mask.png and <domain>/closed_mask.png"
        )
    return MaskGuidedData(np.stack(images), class_ids, domain_ids, np.stack(masks), names, CLASS_NAMES,
                          skipped, paths)


def mask_overlay(image: ArrayLike, mask: ArrayLike, color: tuple[float, float, float] = (1.0, 0.2, 0.2),
                 alpha: float = 0.6) -> np.ndarray:
    """The image with ``mask`` painted on in ``color``: shows whether masks and images line up."""
    image = np.asarray(image, np.float32)
    mask = np.asarray(mask, np.float32)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")
    weight = alpha * mask[..., None]
    return image * (1 - weight) + np.asarray(color, np.float32) * weight


def check_data(data: MaskGuidedData, name: str = "data") -> MaskGuidedData:
    if not isinstance(data, MaskGuidedData):
        raise ValueError(f"{name} must be a siamese_tf.studies.mask_guided.MaskGuidedData, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} holds no images")
    return data


def image_mask_pairs(data: MaskGuidedData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every image paired with both masks of its own domain: half positive, half negative.

    Returns ``(image_indices, mask_indices, labels)``; ``mask_indices`` index
    ``data.masks.reshape(-1, H, W, 3)`` (``domain * 2 + class``), labels are 1 (same: the mask of
    the image's class) or 0 (different: the domain's other mask). Pairs never cross domains.
    """
    check_data(data)
    image_indices = np.repeat(np.arange(len(data)), 2)
    mask_classes = np.tile([0, 1], len(data))
    mask_indices = data.domain_ids[image_indices] * 2 + mask_classes
    labels = np.where(mask_classes == data.class_ids[image_indices], SAME_LABEL, DIFFERENT_LABEL)
    return image_indices, mask_indices, labels.astype(np.float32)


def validation_pairs(data: MaskGuidedData) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """``((images, masks), labels)`` numpy arrays of :func:`image_mask_pairs` (for validation)."""
    image_indices, mask_indices, labels = image_mask_pairs(data)
    flat_masks = data.flat_masks
    return (data.images[image_indices], flat_masks[mask_indices]), labels
