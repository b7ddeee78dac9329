"""The training engine's batches built by NumPy and OpenCV, for machines without TensorFlow.

:class:`NumpyClassBalancedPipeline` and :class:`NumpyPairPipeline` are the NumPy twins of
:class:`siamese_tf.pipelines.ClassBalancedPipeline` and :class:`~siamese_tf.pipelines.PairPipeline`:
the same arguments, the same sampling rules (P classes x K images, optionally in hard-negative
groups; random crops; the affine, contrast and brightness jitter of an
:class:`~siamese_tf.augmentations.Augmenter`). Sampling, every random draw and the light
re-lighting work on whole batches as arrays; the warp is one ``cv2.warpAffine`` per image (faster
than any vectorised NumPy gather here, :func:`warp_images`). A GPU machine that has JAX and no TensorFlow trains every
study from them (``KERAS_BACKEND=jax``): :meth:`~siamese_tf.samplers.EpochSeededBatches.training_source`
serves them as a ``keras.utils.PyDataset`` there, and as ``tf.data`` where TensorFlow is present.
:func:`class_balanced_pipeline` and :func:`pair_pipeline` pick the twin that the machine can run.

Batch ``(epoch, step)`` depends only on ``(seed, epoch, step)`` (each random stream of it comes
from ``numpy.random.default_rng([seed, stream, epoch, step])``), so a resumed run sees the batches of
an unbroken one. The NumPy and TensorFlow twins draw from different generators: the same seed gives
batches of the same kind, not the same batches. Pair labels follow the package's convention,
**1 = same**, 0 = different.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.augmentations import Augmenter
from siamese_tf.samplers import ClassBalancedBatches, PairBatches
from siamese_tf.settings import tensorflow_available

__all__ = [
    "NumpyClassBalancedPipeline",
    "NumpyPairPipeline",
    "affine_parameters",
    "affine_transforms",
    "augment_images",
    "class_balanced_pipeline",
    "pair_pipeline",
    "random_crops",
    "warp_images",
]

# Separate random streams of one step, so that changing the augmentation never changes which
# images a batch holds (the TensorFlow twin numbers its streams the same way).
SAMPLING_STREAM, AUGMENTATION_STREAM, CROP_STREAM = 1, 2, 3


def check_augmenter(augment: object, python_batches: str) -> None:
    """Refuse an ``augment`` that is not an :class:`Augmenter` (its settings are applied batch-wide)."""
    if augment is not None and not isinstance(augment, Augmenter):
        raise ValueError(
            f"augment must be a siamese_tf.augmentations.Augmenter (its settings are applied to whole batches) or "
            f"None, got {augment!r}; use samplers.{python_batches} for a Python callable")


def _stream_key(seed: int, epoch: int, step: int, stream: int) -> list[int]:
    """The seed of one random stream of batch ``(epoch, step)``: ``[seed, stream, epoch, step]``."""
    return [int(seed), int(stream), int(epoch), int(step)]


def _stream(seed: int, epoch: int, step: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(_stream_key(seed, epoch, step, stream))


def affine_transforms(ops: ModuleType, angle: Any, shear_x: Any, shear_y: Any, scale_x: Any, scale_y: Any,
                      shift_x: Any, shift_y: Any, mirror: Any, height: int, width: int) -> Any:
    """The (B, 8) output-to-input projective transforms of a batch of affine warps.

    ``ops`` is ``numpy`` or ``tensorflow`` (both name ``cos``, ``sin``, ``where``, ``stack`` and
    ``zeros_like`` alike), so both twins share one formula. Each other argument is a (B,) array
    (``angle`` in radians, shifts in pixels, ``mirror`` boolean). The forward map is the one of
    :class:`~siamese_tf.augmentations.Augmenter`: ``x -> L x + o`` about the image centre ``c``
    with ``L = rotation @ shear @ scale [@ mirror]`` and ``o = c + shift - L c`` (what
    ``cv2.warpAffine`` applies); a projective transform needs its inverse, ``x -> L^-1 (x - o)``.
    """
    cos, sin = ops.cos(angle), ops.sin(angle)
    # rotation @ shear = [[cos - sin*shear_y, cos*shear_x - sin], [sin + cos*shear_y, sin*shear_x + cos]]
    a00 = (cos - sin * shear_y) * scale_x
    a01 = (cos * shear_x - sin) * scale_y
    a10 = (sin + cos * shear_y) * scale_x
    a11 = (sin * shear_x + cos) * scale_y
    sign = ops.where(mirror, -1.0, 1.0)
    a00, a10 = a00 * sign, a10 * sign
    center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
    offset_x = center_x + shift_x - (a00 * center_x + a01 * center_y)
    offset_y = center_y + shift_y - (a10 * center_x + a11 * center_y)
    determinant = a00 * a11 - a01 * a10
    i00, i01, i10, i11 = a11 / determinant, -a01 / determinant, -a10 / determinant, a00 / determinant
    b0 = -(i00 * offset_x + i01 * offset_y)
    b1 = -(i10 * offset_x + i11 * offset_y)
    zeros = ops.zeros_like(i00)
    return ops.stack([i00, i01, b0, i10, i11, b1, zeros, zeros], axis=1)


def affine_parameters(augmenter: Augmenter, uniform_or_neutral: Callable[[float, float, float, int], Any],
                      draw_mirror: Callable[[], Any], no_mirror: Any, height: int, width: int) -> tuple:
    """``augmenter``'s per-image warp parameters, drawn the same way by both twins.

    ``uniform_or_neutral(limit, neutral, probability, component)`` draws the (B,) values of one
    component (its own random stream); ``draw_mirror()`` the (B,) flips when ``augmenter.flip``,
    else ``no_mirror`` is used. Returns ``(angle, shear_x, shear_y, scale_x, scale_y, shift_x,
    shift_y, mirror)`` as :func:`affine_transforms` takes them (angle in radians, shifts in pixels).
    """
    probability = augmenter.component_probability
    angle = uniform_or_neutral(math.radians(augmenter.max_rotation), 0.0, probability, 0)
    shear_x = uniform_or_neutral(augmenter.max_shear, 0.0, probability, 1)
    shear_y = uniform_or_neutral(augmenter.max_shear, 0.0, probability, 2)
    scale_x = uniform_or_neutral(augmenter.max_scale, 1.0, probability, 3)
    scale_y = uniform_or_neutral(augmenter.max_scale, 1.0, probability, 4) if augmenter.independent_axes else scale_x
    shift_x = uniform_or_neutral(augmenter.max_shift, 0.0, probability, 5)
    shift_y = uniform_or_neutral(augmenter.max_shift, 0.0, probability, 6)
    if not augmenter.shift_in_pixels:
        shift_x, shift_y = shift_x * width, shift_y * height
    mirror = draw_mirror() if augmenter.flip else no_mirror
    return angle, shear_x, shear_y, scale_x, scale_y, shift_x, shift_y, mirror


def warp_images(images: ArrayLike, transforms: ArrayLike) -> np.ndarray:
    """Warp a (B, H, W, C) batch by (B, 8) output-to-input affine transforms.

    Bilinear interpolation with replicated borders (a source point outside the image reads the
    nearest edge pixel), as ``ImageProjectiveTransformV3`` with ``fill_mode="NEAREST"`` computes it,
    up to OpenCV's 1/32-pixel interpolation grid (within 0.03 on [0, 1] images). Each image is one
    ``cv2.warpAffine`` call with the transform as its inverse map: on this machine's CPU, 2.4 ms for
    128 faces of 64x64 against 17 ms for the same warp as one vectorised NumPy gather. Only the
    affine part of each transform is used (its last two entries must be 0).
    """
    images = np.asarray(images, dtype=np.float32)
    transforms = np.asarray(transforms, dtype=np.float64)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (B, H, W, C), got {images.shape}")
    if transforms.shape != (len(images), 8):
        raise ValueError(f"transforms must have shape ({len(images)}, 8), got {transforms.shape}")
    if np.any(transforms[:, 6:]):
        raise ValueError("only affine transforms are supported: their last two entries must be 0")
    height, width, channels = images.shape[1:]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # the transforms already map output to input
    warped = np.empty_like(images)
    for index, (image, transform) in enumerate(zip(images, transforms)):
        matrix = transform[:6].reshape(2, 3)
        # OpenCV warps up to 4 channels at once; more go one at a time.
        for start in range(0, channels, 4):
            part = np.ascontiguousarray(image[:, :, start:start + 4])
            result = cv2.warpAffine(part if part.shape[2] > 1 else part[:, :, 0], matrix, (width, height),
                                    flags=flags, borderMode=cv2.BORDER_REPLICATE)
            warped[index, :, :, start:start + 4] = result.reshape(height, width, -1)
    return warped


def _uniform_or_neutral(seed, size, limit, neutral, probability, component):
    """Per image: ``neutral ± limit`` with probability ``probability``, else ``neutral``."""
    if limit <= 0:
        return np.full(size, neutral, np.float32)
    draws = np.random.default_rng([*seed, component]).random((2, size))
    values = neutral + limit * (2.0 * draws[0] - 1.0)
    return np.where(draws[1] < probability, values, neutral).astype(np.float32)


def augment_images(images: ArrayLike, seed: ArrayLike, augmenter: Augmenter) -> np.ndarray:
    """Augment a (B, H, W, C) batch in [0, 1] with ``augmenter``'s settings, all images at once.

    ``seed``: a sequence of non-negative integers; the same seed always gives the same batch. Each
    image gets its own flip, affine warp (:func:`warp_images`), contrast and brightness, drawn as
    :class:`~siamese_tf.augmentations.Augmenter` draws them; values are clipped to [0, 1].
    """
    if not isinstance(augmenter, Augmenter):
        raise ValueError(f"augmenter must be a siamese_tf.augmentations.Augmenter, got {augmenter!r}")
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (B, H, W, C), got {images.shape}")
    seed = [int(value) for value in np.atleast_1d(seed)]
    batch_size, height, width, _ = images.shape
    parameters = affine_parameters(
        augmenter, lambda limit, neutral, probability, component: _uniform_or_neutral(
            seed, batch_size, limit, neutral, probability, component),
        lambda: np.random.default_rng([*seed, 7]).random(batch_size) < 0.5, np.zeros(batch_size, bool), height, width)
    result = warp_images(images, affine_transforms(np, *parameters, height, width))
    if augmenter.contrast > 0:
        factor = _uniform_or_neutral(seed, batch_size, augmenter.contrast, 1.0, 1.0, 8)[:, None, None, None]
        mean = result.mean(axis=(1, 2, 3), keepdims=True)
        result = (result - mean) * factor + mean
    if augmenter.brightness > 0:
        result = result + _uniform_or_neutral(seed, batch_size, augmenter.brightness, 0.0, 1.0, 9)[:, None, None, None]
    return np.clip(result, 0.0, 1.0).astype(np.float32)


def random_crops(images: ArrayLike, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size`` x ``size`` window of each image of a (B, H, W, C) batch, whole pixels only.

    Each window's top-left corner is uniform over the ``(H - size + 1) x (W - size + 1)`` positions.
    """
    images = np.asarray(images, dtype=np.float32)
    height, width = images.shape[1:3]
    if not isinstance(size, (int, np.integer)) or not 1 <= size <= min(height, width):
        raise ValueError(f"crop size {size!r} does not fit the {height}x{width} images")
    corners = rng.random((len(images), 2))
    tops = np.floor(corners[:, 0] * (height - size + 1)).astype(np.int64)
    lefts = np.floor(corners[:, 1] * (width - size + 1)).astype(np.int64)
    offsets = np.arange(size)
    rows, columns = tops[:, None] + offsets, lefts[:, None] + offsets
    return images[np.arange(len(images))[:, None, None], rows[:, :, None], columns[:, None, :]]


class NumpyClassBalancedPipeline(ClassBalancedBatches):
    """P classes x K images per batch, sampled, cropped and augmented by NumPy and OpenCV.

    A drop-in for :class:`~siamese_tf.samplers.ClassBalancedBatches` (same ``(images,
    class_labels)`` batches, same ``callback()`` for resumed runs) with the options of the
    engine's :class:`~siamese_tf.pipelines.ClassBalancedPipeline`: the P classes are a random choice
    without replacement among the classes with at least two images, each class's K images a random
    choice without replacement among its images (a class with fewer than K repeats some;
    augmentation then makes the copies differ).

    Args:
        images: (N, H, W, C) float images in [0, 1]; labels: (N,) class ids.
        classes_per_batch, images_per_class: P (>= 2) and K (>= 2).
        steps_per_epoch: batches per epoch; seed: base seed (>= 0).
        augment: an :class:`~siamese_tf.augmentations.Augmenter` (its settings, applied by
            :func:`augment_images`), or None for no augmentation.
        crop_size: a random ``crop_size`` x ``crop_size`` window of every image (before ``augment``),
            e.g. SiameseCCR's 44x44 of 48x48; None keeps whole images.
        confusers: hard-negative groups, ``(classes, rows)`` as
            :func:`siamese_tf.studies.captcha.confusable_classes` returns them (row ``i`` lists the
            classes most easily confused with ``classes[i]``). A batch is then built from groups of
            ``group_size`` classes: a random class and ``group_size - 1`` random classes of its row,
            so most different-class pairs in the batch are hard ones. Groups are taken in turn and
            a class already in the batch is skipped, so the P classes stay distinct. None (default)
            draws the P classes uniformly.
        group_size: classes per hard-negative group (>= 2); used only with ``confusers``.
    """

    def __init__(self, images: ArrayLike, labels: ArrayLike, classes_per_batch: int = 8, images_per_class: int = 4,
                 steps_per_epoch: int = 100, seed: int = 0, augment: Augmenter | None = None,
                 crop_size: int | None = None, confusers: tuple[ArrayLike, ArrayLike] | None = None,
                 group_size: int = 4) -> None:
        check_augmenter(augment, "ClassBalancedBatches")
        super().__init__(images, labels, classes_per_batch=classes_per_batch, images_per_class=images_per_class,
                         steps_per_epoch=steps_per_epoch, seed=seed, augment=augment)
        if crop_size is not None and (isinstance(crop_size, bool) or not isinstance(crop_size, (int, np.integer))
                                      or not 1 <= crop_size <= min(self.images.shape[1:3])):
            raise ValueError(f"crop_size must be an integer from 1 to the image side {min(self.images.shape[1:3])} "
                             f"or None, got {crop_size!r}")
        self.crop_size = None if crop_size is None else int(crop_size)
        if not isinstance(group_size, (int, np.integer)) or isinstance(group_size, bool) or group_size < 2:
            raise ValueError(f"group_size must be an integer >= 2, got {group_size!r}")
        self.group_size = int(group_size)
        sizes = self.index.sizes[self.eligible]
        # Each eligible class's member indices in one padded (classes, max size) table.
        width = int(max(sizes.max(), self.images_per_class))
        members = np.zeros((len(self.eligible), width), dtype=np.int64)
        for row, class_position in enumerate(self.eligible):
            start = self.index.offsets[class_position]
            members[row, :sizes[row]] = self.index.order[start:start + sizes[row]]
        self.member_table, self.class_sizes = members, sizes.astype(np.int64)
        self.confuser_table = None if confusers is None else self._confuser_table(confusers)

    def _confuser_table(self, confusers) -> np.ndarray:
        """``(classes, rows)`` of labels as a (eligible classes, top_k) table of eligible-row numbers, -1 for none."""
        if not isinstance(confusers, (tuple, list)) or len(confusers) != 2:
            raise ValueError(f"confusers must be a pair (classes, rows), got {type(confusers).__name__}")
        classes, rows = np.asarray(confusers[0]).reshape(-1), np.asarray(confusers[1])
        if rows.ndim != 2 or len(rows) != len(classes):
            raise ValueError(f"confusers rows must have shape ({len(classes)}, top_k) for {len(classes)} classes, "
                             f"got {rows.shape}")
        eligible_labels = self.index.classes[self.eligible]
        row_of_label = {int(label): row for row, label in enumerate(eligible_labels.tolist())}
        unknown = sorted(set(classes.tolist()) - set(self.index.classes.tolist()))
        if unknown:
            raise ValueError(f"confusers name classes that are not in labels: {unknown[:5]}")
        table = np.full((len(eligible_labels), max(rows.shape[1], 1)), -1, dtype=np.int64)
        for label, row in zip(classes.tolist(), rows.tolist()):
            if int(label) in row_of_label:
                # A confuser with fewer than two images cannot serve K images: it is left out.
                table[row_of_label[int(label)], :len(row)] = [
                    row_of_label.get(int(other), -1) if int(other) != int(label) else -1 for other in row]
        return table

    def _batch_rows(self, rng: np.random.Generator) -> np.ndarray:
        """The P eligible-class rows of one batch: uniform, or in hard-negative groups."""
        chosen = rng.choice(len(self.class_sizes), size=self.classes_per_batch, replace=False)
        if self.confuser_table is None:
            return chosen
        # The P random classes seed the groups, each followed by group_size - 1 random classes of
        # its row; the first P distinct classes of that sequence keep the groups whole and never
        # run short (the seeds alone are P distinct classes).
        rows = self.confuser_table[chosen]
        keys = np.where(rows >= 0, rng.random(rows.shape), 2.0)  # missing confusers sort last
        picks = min(self.group_size - 1, rows.shape[1])
        picked = np.take_along_axis(rows, np.argsort(keys, axis=1, kind="stable")[:, :picks], axis=1)
        candidates = np.concatenate([chosen[:, None], picked], axis=1).reshape(-1)
        candidates = candidates[candidates >= 0]
        _, first_positions = np.unique(candidates, return_index=True)
        return candidates[np.sort(first_positions)][:self.classes_per_batch]

    def _batch_indices(self, epoch: int, step: int) -> np.ndarray:
        """The (P K,) image indices of batch ``(epoch, step)``, class by class."""
        self._check_step(epoch, step)
        rng = _stream(self.seed, epoch, step, SAMPLING_STREAM)
        rows = self._batch_rows(rng)
        sizes = self.class_sizes[rows]
        width = self.member_table.shape[1]
        # Padding positions sort last, so the first K are distinct members while the class has K.
        keys = np.where(np.arange(width)[None, :] < sizes[:, None], rng.random((len(rows), width)), 2.0)
        chosen = np.argsort(keys, axis=1, kind="stable")[:, :self.images_per_class] % sizes[:, None]
        return np.take_along_axis(self.member_table[rows], chosen, axis=1).reshape(-1)

    def batch(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The numpy batch ``(images, class_labels)`` of ``step`` in ``epoch``."""
        indices = self._batch_indices(epoch, step)
        images = self.images[indices]
        if self.crop_size is not None:
            images = random_crops(images, self.crop_size, _stream(self.seed, epoch, step, CROP_STREAM))
        if self.augment is not None:
            images = augment_images(images, _stream_key(self.seed, epoch, step, AUGMENTATION_STREAM), self.augment)
        return images.astype(np.float32, copy=False), self.labels[indices].astype(np.int32)

    def _signature(self):
        import tensorflow as tf

        height, width, channels = self.images.shape[1:]
        if self.crop_size is not None:
            height = width = self.crop_size
        return (tf.TensorSpec(shape=(None, height, width, channels), dtype=tf.float32),
                tf.TensorSpec(shape=(None,), dtype=tf.int32))


class NumpyPairPipeline(PairBatches):
    """Pair batches whose images are gathered and augmented a whole batch at a time by NumPy.

    A drop-in for :class:`~siamese_tf.samplers.PairBatches` (same pairs of epoch ``e``, drawn from
    ``(seed, e)``; same ``((first_images, second_images), pair_labels)`` batches with **1 = same**),
    with ``augment`` an :class:`~siamese_tf.augmentations.Augmenter` applied to both sides of a
    batch in one :func:`augment_images` call seeded by ``(seed, epoch, step)``.
    """

    def __init__(self, images: ArrayLike, labels: ArrayLike, pairs_per_epoch: int, batch_size: int = 32,
                 seed: int = 0, augment: Augmenter | None = None) -> None:
        check_augmenter(augment, "PairBatches")
        super().__init__(images, labels, pairs_per_epoch, batch_size=batch_size, seed=seed, augment=augment)

    def batch(self, epoch: int, step: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """The numpy batch ``((first_images, second_images), pair_labels)`` of ``step`` in ``epoch``."""
        self._check_step(epoch, step)
        first, second, pair_labels = self.epoch_pairs(epoch)
        window = self.step_window(step)
        count = len(first[window])
        images = self.images[np.concatenate([first[window], second[window]])]
        if self.augment is not None:
            images = augment_images(images, _stream_key(self.seed, epoch, step, AUGMENTATION_STREAM), self.augment)
        return (images[:count], images[count:]), pair_labels[window].astype(np.float32)


def class_balanced_pipeline(images: ArrayLike, labels: ArrayLike, classes_per_batch: int = 8,
                            images_per_class: int = 4, steps_per_epoch: int = 100, seed: int = 0,
                            augment: Augmenter | None = None, crop_size: int | None = None,
                            confusers: tuple[ArrayLike, ArrayLike] | None = None, group_size: int = 4,
                            parallel_calls: int = 1) -> NumpyClassBalancedPipeline:
    """The engine's P x K batches: :class:`~siamese_tf.pipelines.ClassBalancedPipeline` (``tf.data``)
    where TensorFlow is installed, else :class:`NumpyClassBalancedPipeline` (the arguments of both;
    ``parallel_calls`` is a ``tf.data`` setting, unused by the NumPy twin)."""
    settings = dict(classes_per_batch=classes_per_batch, images_per_class=images_per_class,
                    steps_per_epoch=steps_per_epoch, seed=seed, augment=augment, crop_size=crop_size,
                    confusers=confusers, group_size=group_size)
    if tensorflow_available():
        from siamese_tf.pipelines import ClassBalancedPipeline

        return ClassBalancedPipeline(images, labels, parallel_calls=parallel_calls, **settings)
    return NumpyClassBalancedPipeline(images, labels, **settings)


def pair_pipeline(images: ArrayLike, labels: ArrayLike, pairs_per_epoch: int, batch_size: int = 32, seed: int = 0,
                  augment: Augmenter | None = None) -> PairBatches:
    """The engine's pair batches: :class:`~siamese_tf.pipelines.PairPipeline` (``tf.data``) where
    TensorFlow is installed, else :class:`NumpyPairPipeline` (the same arguments)."""
    if tensorflow_available():
        from siamese_tf.pipelines import PairPipeline

        return PairPipeline(images, labels, pairs_per_epoch, batch_size=batch_size, seed=seed, augment=augment)
    return NumpyPairPipeline(images, labels, pairs_per_epoch, batch_size=batch_size, seed=seed, augment=augment)
