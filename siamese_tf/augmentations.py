"""Image augmentation with NumPy and OpenCV for pair training.

:func:`augment_image` applies a random horizontal flip, one affine warp (rotation, shear, scale,
translation about the image centre, ``cv2.warpAffine`` with replicated borders) and brightness and
contrast jitter. :class:`Augmenter` holds a set of those settings and is the ``augment`` callable
that :class:`siamese_tf.samplers.PairBatches` expects; ``Augmenter.koch()`` gives the affine
distortions of Koch, Zemel & Salakhutdinov (2015), "Siamese Neural Networks for One-shot Image
Recognition".

Randomness comes only from the ``rng`` argument (a ``numpy.random.Generator``), so the same
generator state always gives the same output.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "Augmenter",
    "augment_image",
]


def _uniform_or_neutral(rng, limit, neutral, probability):
    """A value from ``neutral ± limit``, or ``neutral`` itself with probability ``1 - probability``."""
    value = rng.uniform(neutral - limit, neutral + limit)
    kept = rng.random() < probability
    return value if (kept and limit > 0) else neutral


def _check_settings(brightness, contrast, max_rotation, max_shift, max_scale, max_shear, component_probability):
    for name, value in (("brightness", brightness), ("contrast", contrast), ("max_rotation", max_rotation),
                        ("max_shift", max_shift), ("max_scale", max_scale), ("max_shear", max_shear)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if max_scale >= 1:
        raise ValueError(f"max_scale must be below 1 (scale factors 1 ± max_scale), got {max_scale!r}")
    if contrast >= 1:
        raise ValueError(f"contrast must be below 1 (contrast factors 1 ± contrast), got {contrast!r}")
    if not 0 <= component_probability <= 1:
        raise ValueError(f"component_probability must lie in [0, 1], got {component_probability!r}")


def augment_image(image: ArrayLike, rng: np.random.Generator | int | None, **settings: Any) -> np.ndarray:
    """Randomly flip, warp and re-light one image; shape is kept and values stay in [0, 1].

    Args:
        image: (H, W, C) or (H, W) float image in [0, 1].
        rng: ``numpy.random.Generator`` (or an integer seed).
        **settings: any field of :class:`Augmenter` (flip, brightness, contrast, max_rotation, ...);
            the others keep their defaults.

    Returns:
        float32 array of the input's shape.
    """
    return Augmenter(**settings)(image, rng)


@dataclasses.dataclass(kw_only=True)
class Augmenter:
    """A callable ``(image, rng) -> image``: random flip, affine warp and re-lighting.

    Pass it as ``augment`` to :class:`siamese_tf.samplers.PairBatches`. ``get_config()`` returns the
    settings as a dict, and ``Augmenter(**config)`` rebuilds it.

    Fields:
        flip: mirror left-right with probability 0.5.
        brightness: add a value drawn from ``[-brightness, brightness]``.
        contrast: scale deviations from the mean by a factor in ``[1 - contrast, 1 + contrast]``.
        max_rotation: rotation angle in degrees drawn from ``[-max_rotation, max_rotation]``.
        max_shift: translation per axis; a fraction of the image size, or pixels when
            ``shift_in_pixels``.
        max_scale: scale factor in ``[1 - max_scale, 1 + max_scale]``.
        max_shear: shear coefficients (x and y) in ``[-max_shear, max_shear]``.
        shift_in_pixels: read ``max_shift`` as pixels instead of a fraction.
        independent_axes: draw separate x and y scale factors (Koch et al.) instead of one.
        component_probability: each affine parameter (angle, each shear, each scale, each shift) is
            used with this probability and left neutral otherwise (Koch et al. use 0.5).

    """

    flip: bool = True
    brightness: float = 0.1
    contrast: float = 0.1
    max_rotation: float = 10.0
    max_shear: float = 0.0
    independent_axes: bool = False  # with max_scale
    max_scale: float = 0.05
    shift_in_pixels: bool = False  # with max_shift
    max_shift: float = 0.05
    component_probability: float = 1.0

    def __post_init__(self) -> None:
        _check_settings(self.brightness, self.contrast, self.max_rotation, self.max_shift, self.max_scale,
                        self.max_shear, self.component_probability)
        # Explicit conversions: with postponed annotations the dataclass field types are strings.
        self.flip = bool(self.flip)
        self.brightness = float(self.brightness)
        self.contrast = float(self.contrast)
        self.max_rotation = float(self.max_rotation)
        self.max_shear = float(self.max_shear)
        self.independent_axes = bool(self.independent_axes)
        self.max_scale = float(self.max_scale)
        self.shift_in_pixels = bool(self.shift_in_pixels)
        self.max_shift = float(self.max_shift)
        self.component_probability = float(self.component_probability)

    @classmethod
    def koch(cls) -> Augmenter:
        """Koch et al. (2015) affine distortions for Omniglot (105 x 105 pixels).

        Rotation within ±10 degrees, shear coefficients within ±0.3, x and y scale within 0.8-1.2,
        x and y translation within ±2 pixels, each parameter used with probability 0.5; no flip and
        no brightness or contrast change.
        """
        return cls(flip=False, brightness=0.0, contrast=0.0, max_rotation=10.0, max_shift=2.0, max_scale=0.2,
                   max_shear=0.3, shift_in_pixels=True, independent_axes=True, component_probability=0.5)

    @classmethod
    def affine_jitter(cls, strength: float = 1.0, shift: float = 0.05) -> Augmenter:
        """A random affine warp of strokes (signatures, characters): never mirrored, no re-lighting.

        ``strength`` (> 0) scales every range: 1.0 is rotation 5 degrees, scale 10% and shear 0.1,
        x and y drawn independently, and a shift of ``shift`` (a fraction of the image) per axis.
        """
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength > 0:
            raise ValueError(f"strength must be a positive number, got {strength!r}")
        return cls(flip=False, brightness=0.0, contrast=0.0, max_rotation=5.0 * strength, max_shift=shift * strength,
                   max_scale=0.1 * strength, max_shear=0.1 * strength, independent_axes=True)

    def get_config(self) -> dict[str, Any]:
        """Settings as a plain dict (JSON-friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Augmenter:
        return cls(**config)

    def __call__(self, image: ArrayLike, rng: np.random.Generator | int | None) -> np.ndarray:
        """Augment one (H, W, C) or (H, W) image in [0, 1]; returns float32 of the same shape."""
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        image = np.asarray(image, dtype=np.float32)
        if image.ndim not in (2, 3) or image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"image must have shape (H, W) or (H, W, C), got {image.shape}")
        height, width = image.shape[:2]

        mirror = bool(self.flip) and rng.random() < 0.5
        angle = math.radians(_uniform_or_neutral(rng, self.max_rotation, 0.0, self.component_probability))
        shear_x = _uniform_or_neutral(rng, self.max_shear, 0.0, self.component_probability)
        shear_y = _uniform_or_neutral(rng, self.max_shear, 0.0, self.component_probability)
        scale_x = _uniform_or_neutral(rng, self.max_scale, 1.0, self.component_probability)
        scale_y = (_uniform_or_neutral(rng, self.max_scale, 1.0, self.component_probability) if self.independent_axes
                   else scale_x)
        shift_x = _uniform_or_neutral(rng, self.max_shift, 0.0, self.component_probability)
        shift_y = _uniform_or_neutral(rng, self.max_shift, 0.0, self.component_probability)
        if not self.shift_in_pixels:
            shift_x, shift_y = shift_x * width, shift_y * height

        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        shear = np.array([[1.0, shear_x], [shear_y, 1.0]])
        scale = np.diag([scale_x, scale_y])
        linear = rotation @ shear @ scale
        if mirror:
            linear = linear @ np.diag([-1.0, 1.0])
        center = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
        offset = center + np.array([shift_x, shift_y]) - linear @ center
        matrix = np.hstack([linear, offset[:, None]])

        result = image
        if not np.allclose(matrix, [[1, 0, 0], [0, 1, 0]]):
            if mirror and np.allclose(matrix, [[-1, 0, width - 1], [0, 1, 0]]):
                result = image[:, ::-1].copy()  # a pure flip needs no interpolation
            else:
                result = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE)
                if image.ndim == 3 and result.ndim == 2:  # OpenCV drops a single channel axis
                    result = result[..., np.newaxis]

        if self.contrast > 0:
            factor = rng.uniform(1.0 - self.contrast, 1.0 + self.contrast)
            mean = result.mean()
            result = (result - mean) * factor + mean
        if self.brightness > 0:
            result = result + rng.uniform(-self.brightness, self.brightness)
        return np.clip(result, 0.0, 1.0).astype(np.float32, copy=False)
