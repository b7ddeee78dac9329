"""Training batches sampled and augmented inside ``tf.data``, seeded by (seed, epoch, step).

:class:`ClassBalancedPipeline` serves the same kind of batches as
:class:`siamese_tf.samplers.ClassBalancedBatches` (P classes x K images, class ids as labels;
pair labels follow as **1 = same**, 0 = different), but builds each one with TensorFlow ops
instead of Python: the classes and images are drawn with stateless random ops and the whole
batch is warped in one vectorised call (:func:`augment_images`). Nothing runs one image at a
time in Python, so the batch source no longer competes with training for the interpreter.
:class:`PairPipeline` does the same for the pair batches of :class:`siamese_tf.samplers.PairBatches`.

Every random number of batch ``(epoch, step)`` comes from ``(seed, epoch, step)`` alone, so a
run resumed at epoch 7 (``RunBackup`` / ``initial_epoch``) sees exactly the batches of a run that
never stopped, and :meth:`ClassBalancedPipeline.batch` returns any batch on demand.

Augmentation takes the settings of :class:`siamese_tf.augmentations.Augmenter` (one settings
object for the NumPy and the TensorFlow path): flip, rotation, shear, scale, shift about the image
centre with replicated borders, then contrast and brightness jitter, and a final clip to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from siamese_tf.augmentations import Augmenter
from siamese_tf.samplers import ClassBalancedBatches, PairBatches

__all__ = [
    "ClassBalancedPipeline",
    "PairPipeline",
    "affine_parameters_to_transforms",
    "augment_images",
    "random_crops",
    "step_seed",
]

# Separate random streams of one step, so that changing the augmentation never changes which
# images a batch holds.
_SAMPLING_STREAM, _AUGMENTATION_STREAM, _CROP_STREAM = 1, 2, 3


def _check_augmenter(augment: object, python_batches: str) -> None:
    if augment is not None and not isinstance(augment, Augmenter):
        raise ValueError(
            f"augment must be a siamese_tf.augmentations.Augmenter (its settings run in TensorFlow) or None, "
            f"got {augment!r}; use samplers.{python_batches} for a Python callable")


def step_seed(seed: int | tf.Tensor, epoch: int | tf.Tensor, step: int | tf.Tensor, stream: int = 0) -> tf.Tensor:
    """The stateless seed (shape (2,), int64) of one random stream of batch ``(epoch, step)``."""
    base = tf.stack([tf.cast(seed, tf.int64), tf.constant(stream, tf.int64)])
    folded = tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64))
    return tf.random.experimental.stateless_fold_in(folded, tf.cast(step, tf.int64))


def affine_parameters_to_transforms(angle: tf.Tensor, shear_x: tf.Tensor, shear_y: tf.Tensor, scale_x: tf.Tensor,
                                    scale_y: tf.Tensor, shift_x: tf.Tensor, shift_y: tf.Tensor, mirror: tf.Tensor,
                                    height: int, width: int) -> tf.Tensor:
    """The (B, 8) output-to-input transforms of ``tf.raw_ops.ImageProjectiveTransformV3``.

    Each argument is a (B,) tensor (``angle`` in radians, shifts in pixels, ``mirror`` boolean).
    The forward map is the one of :class:`~siamese_tf.augmentations.Augmenter`: ``x -> L x + o``
    about the image centre ``c`` with ``L = rotation @ shear @ scale [@ mirror]`` and
    ``o = c + shift - L c`` (what ``cv2.warpAffine`` applies); the projective transform needs its
    inverse, ``x -> L^-1 (x - o)``.
    """
    cos, sin = tf.cos(angle), tf.sin(angle)
    # rotation @ shear = [[cos - sin*shear_y, cos*shear_x - sin], [sin + cos*shear_y, sin*shear_x + cos]]
    a00 = (cos - sin * shear_y) * scale_x
    a01 = (cos * shear_x - sin) * scale_y
    a10 = (sin + cos * shear_y) * scale_x
    a11 = (sin * shear_x + cos) * scale_y
    sign = tf.where(mirror, -1.0, 1.0)
    a00, a10 = a00 * sign, a10 * sign
    center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
    offset_x = center_x + shift_x - (a00 * center_x + a01 * center_y)
    offset_y = center_y + shift_y - (a10 * center_x + a11 * center_y)
    determinant = a00 * a11 - a01 * a10
    i00, i01, i10, i11 = a11 / determinant, -a01 / determinant, -a10 / determinant, a00 / determinant
    b0 = -(i00 * offset_x + i01 * offset_y)
    b1 = -(i10 * offset_x + i11 * offset_y)
    zeros = tf.zeros_like(i00)
    return tf.stack([i00, i01, b0, i10, i11, b1, zeros, zeros], axis=1)


def random_crops(images: tf.Tensor | ArrayLike, size: int, seed: tf.Tensor | ArrayLike) -> tf.Tensor:
    """A random ``size`` x ``size`` window of each image of a (B, H, W, C) batch, whole pixels only.

    Each window's top-left corner is uniform over the ``(H - size + 1) x (W - size + 1)`` positions,
    drawn from the stateless ``seed``; one vectorised call crops the whole batch.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    height, width = int(images.shape[1]), int(images.shape[2])
    if not 1 <= size <= min(height, width):
        raise ValueError(f"crop size {size} does not fit the {height}x{width} images")
    batch_size = tf.shape(images)[0]
    seed = tf.convert_to_tensor(seed, tf.int64)
    corners = tf.random.stateless_uniform((batch_size, 2), seed=seed)
    tops = tf.floor(corners[:, 0] * (height - size + 1))
    lefts = tf.floor(corners[:, 1] * (width - size + 1))
    ones, zeros = tf.ones_like(tops), tf.zeros_like(tops)
    # Output pixel (x, y) reads input pixel (x + left, y + top): an exact shift, no interpolation.
    transforms = tf.stack([ones, zeros, lefts, zeros, ones, tops, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.constant([size, size], tf.int32),
        fill_value=tf.constant(0.0), interpolation="NEAREST", fill_mode="NEAREST")


def _uniform_or_neutral(seed, shape, limit, neutral, probability, component):
    """Per image: ``neutral ± limit`` with probability ``probability``, else ``neutral``."""
    if limit <= 0:
        return tf.fill(shape, tf.constant(neutral, tf.float32))
    seed = tf.random.experimental.stateless_fold_in(seed, component)
    draws = tf.random.stateless_uniform((2, *shape), seed=seed)
    values = neutral + limit * (2.0 * draws[0] - 1.0)
    return tf.where(draws[1] < probability, values, tf.constant(neutral, tf.float32))


def augment_images(images: tf.Tensor | ArrayLike, seed: tf.Tensor | ArrayLike, augmenter: Augmenter) -> tf.Tensor:
    """Augment a (B, H, W, C) batch in [0, 1] with ``augmenter``'s settings, all images at once.

    ``seed`` is a stateless seed of shape (2,) (:func:`step_seed`): the same seed always gives the
    same batch. Each image gets its own flip, affine warp (bilinear, replicated borders), contrast
    and brightness, drawn as :class:`~siamese_tf.augmentations.Augmenter` draws them.
    """
    if not isinstance(augmenter, Augmenter):
        raise ValueError(f"augmenter must be a siamese_tf.augmentations.Augmenter, got {augmenter!r}")
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4:
        raise ValueError(f"images must have shape (B, H, W, C), got {images.shape}")
    seed = tf.convert_to_tensor(seed, tf.int64)
    batch_size = tf.shape(images)[0]
    height, width = int(images.shape[1]), int(images.shape[2])
    shape = (batch_size,)
    probability = augmenter.component_probability
    angle = _uniform_or_neutral(seed, shape, math.radians(augmenter.max_rotation), 0.0, probability, 0)
    shear_x = _uniform_or_neutral(seed, shape, augmenter.max_shear, 0.0, probability, 1)
    shear_y = _uniform_or_neutral(seed, shape, augmenter.max_shear, 0.0, probability, 2)
    scale_x = _uniform_or_neutral(seed, shape, augmenter.max_scale, 1.0, probability, 3)
    scale_y = (_uniform_or_neutral(seed, shape, augmenter.max_scale, 1.0, probability, 4)
               if augmenter.independent_axes else scale_x)
    shift_x = _uniform_or_neutral(seed, shape, augmenter.max_shift, 0.0, probability, 5)
    shift_y = _uniform_or_neutral(seed, shape, augmenter.max_shift, 0.0, probability, 6)
    if not augmenter.shift_in_pixels:
        shift_x, shift_y = shift_x * width, shift_y * height
    if augmenter.flip:
        mirror = tf.random.stateless_uniform(shape, seed=tf.random.experimental.stateless_fold_in(seed, 7)) < 0.5
    else:
        mirror = tf.zeros(shape, tf.bool)
    transforms = affine_parameters_to_transforms(angle, shear_x, shear_y, scale_x, scale_y, shift_x, shift_y,
                                                 mirror, height, width)
    result = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.constant([height, width], tf.int32),
        fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="NEAREST")
    if augmenter.contrast > 0:
        factor = _uniform_or_neutral(seed, shape, augmenter.contrast, 1.0, 1.0, 8)[:, None, None, None]
        mean = tf.reduce_mean(result, axis=(1, 2, 3), keepdims=True)
        result = (result - mean) * factor + mean
    if augmenter.brightness > 0:
        result = result + _uniform_or_neutral(seed, shape, augmenter.brightness, 0.0, 1.0, 9)[:, None, None, None]
    return tf.clip_by_value(result, 0.0, 1.0)


class ClassBalancedPipeline(ClassBalancedBatches):
    """P classes x K images per batch, sampled and augmented by TensorFlow inside ``tf.data``.

    A drop-in for :class:`~siamese_tf.samplers.ClassBalancedBatches` (same arguments, same
    ``(images, class_labels)`` batches, same ``callback()`` for resumed runs), with ``augment`` an
    :class:`~siamese_tf.augmentations.Augmenter` (its settings, applied by :func:`augment_images`)
    instead of any Python callable. Batch ``(epoch, step)`` depends only on ``(seed, epoch, step)``:
    the P classes are a random choice without replacement among the classes with at least two
    images, and each class's K images a random choice without replacement among its images (a
    class with fewer than K images repeats some; augmentation then makes the copies differ).

    Args:
        images: (N, H, W, C) float images in [0, 1]; labels: (N,) class ids.
        classes_per_batch, images_per_class: P (>= 2) and K (>= 2).
        steps_per_epoch: batches per epoch; seed: base seed (>= 0).
        augment: an :class:`~siamese_tf.augmentations.Augmenter`, or None for no augmentation.
        parallel_calls: batches built at once by ``tf.data`` (each batch is already vectorised; 1 is
            right on two cores, more where spare cores exist).
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
                 parallel_calls: int = 1, crop_size: int | None = None,
                 confusers: tuple[ArrayLike, ArrayLike] | None = None, group_size: int = 4) -> None:
        _check_augmenter(augment, "ClassBalancedBatches")
        if not isinstance(parallel_calls, (int, np.integer)) or parallel_calls < 1:
            raise ValueError(f"parallel_calls must be a positive integer, got {parallel_calls!r}")
        super().__init__(images, labels, classes_per_batch=classes_per_batch, images_per_class=images_per_class,
                         steps_per_epoch=steps_per_epoch, seed=seed, augment=augment)
        self.parallel_calls = int(parallel_calls)
        if crop_size is not None and (not isinstance(crop_size, (int, np.integer)) or
                                      not 1 <= crop_size <= min(self.images.shape[1:3])):
            raise ValueError(f"crop_size must be an integer from 1 to the image side {min(self.images.shape[1:3])} "
                             f"or None, got {crop_size!r}")
        self.crop_size = None if crop_size is None else int(crop_size)
        sizes = self.index.sizes[self.eligible]
        # Each eligible class's member indices in one padded (classes, max size) table.
        width = int(max(sizes.max(), self.images_per_class))
        members = np.zeros((len(self.eligible), width), dtype=np.int64)
        for row, class_position in enumerate(self.eligible):
            start = self.index.offsets[class_position]
            members[row, :sizes[row]] = self.index.order[start:start + sizes[row]]
        self._members = tf.constant(members)
        self._sizes = tf.constant(sizes.astype(np.int64))
        self._images_tensor = tf.constant(self.images)
        self._labels_tensor = tf.constant(self.labels.astype(np.int32))
        if not isinstance(group_size, (int, np.integer)) or isinstance(group_size, bool) or group_size < 2:
            raise ValueError(f"group_size must be an integer >= 2, got {group_size!r}")
        self.group_size = int(group_size)
        self._confuser_rows = None if confusers is None else tf.constant(self._confuser_table(confusers))
        self._batch_function = tf.function(self._build_batch, reduce_retracing=True)

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

    def _batch_rows(self, sampling: tf.Tensor) -> tf.Tensor:
        """The P eligible-class rows of one batch: uniform, or in hard-negative groups."""
        num_classes = tf.shape(self._sizes)[0]
        class_keys = tf.random.stateless_uniform((num_classes,), seed=sampling)
        chosen = tf.math.top_k(class_keys, k=self.classes_per_batch, sorted=True).indices
        if self._confuser_rows is None:
            return chosen
        # The P random classes seed the groups, each followed by group_size - 1 random classes of
        # its row. Taking the first P distinct classes of that sequence keeps the groups whole and
        # never runs short: the seeds alone are P distinct classes.
        seeds = tf.cast(chosen, tf.int64)
        rows = tf.gather(self._confuser_rows, seeds)
        keys = tf.random.stateless_uniform(tf.shape(rows), seed=tf.random.experimental.stateless_fold_in(sampling, 2))
        keys = tf.where(rows >= 0, keys, 2.0)  # missing confusers sort last
        picks = min(self.group_size - 1, int(self._confuser_rows.shape[1]))
        picked = tf.gather(rows, tf.argsort(keys, axis=1)[:, :picks], batch_dims=1)
        candidates = tf.reshape(tf.concat([seeds[:, None], picked], axis=1), (-1,))
        candidates = tf.boolean_mask(candidates, candidates >= 0)
        return tf.unique(candidates).y[:self.classes_per_batch]

    def _build_batch(self, epoch: tf.Tensor, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        sampling = step_seed(self.seed, epoch, step, _SAMPLING_STREAM)
        rows = self._batch_rows(sampling)
        sizes = tf.gather(self._sizes, rows)
        member_keys = tf.random.stateless_uniform(
            (self.classes_per_batch, int(self._members.shape[1])),
            seed=tf.random.experimental.stateless_fold_in(sampling, 1))
        positions = tf.range(int(self._members.shape[1]), dtype=tf.int64)
        # Padding positions sort last, so the first K are distinct members while the class has K.
        member_keys = tf.where(positions[None, :] < sizes[:, None], member_keys, 2.0)
        chosen = tf.argsort(member_keys, axis=1)[:, :self.images_per_class]
        chosen = tf.math.floormod(tf.cast(chosen, tf.int64), sizes[:, None])
        indices = tf.reshape(tf.gather(tf.gather(self._members, rows), chosen, batch_dims=1), (-1,))
        images = tf.gather(self._images_tensor, indices)
        if self.crop_size is not None:
            images = random_crops(images, self.crop_size, step_seed(self.seed, epoch, step, _CROP_STREAM))
        if self.augment is not None:
            images = augment_images(images, step_seed(self.seed, epoch, step, _AUGMENTATION_STREAM), self.augment)
        return images, tf.gather(self._labels_tensor, indices)

    def batch(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The numpy batch ``(images, class_labels)`` of ``step`` in ``epoch``: what :meth:`dataset` serves,
        up to float rounding (the same ops, run outside ``tf.data``, may use other fused kernels)."""
        self._check_step(epoch, step)
        images, labels = self._batch_function(tf.constant(epoch, tf.int64), tf.constant(step, tf.int64))
        return images.numpy(), labels.numpy()

    def _signature(self):
        height, width, channels = self.images.shape[1:]
        if self.crop_size is not None:
            height = width = self.crop_size
        return (tf.TensorSpec(shape=(None, height, width, channels), dtype=tf.float32),
                tf.TensorSpec(shape=(None,), dtype=tf.int32))

    def _epoch_number(self) -> Iterator[np.int64]:
        yield np.int64(self._start_pass())

    def dataset(self) -> tf.data.Dataset:
        """One epoch of batches per pass: Python only names the epoch; TensorFlow builds every batch.

        Autotune is disabled and ``prefetch(2)`` set (ENVIRONMENT_NOTES, trap 1).
        """
        steps = self.steps_per_epoch
        epochs = tf.data.Dataset.from_generator(self._epoch_number,
                                                output_signature=tf.TensorSpec(shape=(), dtype=tf.int64))
        dataset = epochs.flat_map(lambda epoch: tf.data.Dataset.range(steps).map(lambda step: (epoch, step)))
        dataset = dataset.map(self._build_batch, num_parallel_calls=self.parallel_calls, deterministic=True)
        return self._finish_epoch_dataset(dataset)


class PairPipeline(PairBatches):
    """Pair batches whose images are gathered and augmented by TensorFlow inside ``tf.data``.

    A drop-in for :class:`~siamese_tf.samplers.PairBatches` (same arguments, same
    ``((first_images, second_images), pair_labels)`` batches with **1 = same**, same epoch
    bookkeeping and ``callback()``), with ``augment`` an :class:`~siamese_tf.augmentations.Augmenter`.
    The pairs of epoch ``e`` are those of ``PairBatches`` (drawn once per epoch from
    ``(seed, e)``, a cheap index computation); Python hands each step's index windows to
    ``tf.data``, and TensorFlow gathers the images and warps both sides of the batch in one call,
    seeded by ``(seed, epoch, step)``.
    """

    def __init__(self, images: ArrayLike, labels: ArrayLike, pairs_per_epoch: int, batch_size: int = 32,
                 seed: int = 0, augment: Augmenter | None = None) -> None:
        _check_augmenter(augment, "PairBatches")
        super().__init__(images, labels, pairs_per_epoch, batch_size=batch_size, seed=seed, augment=augment)
        self._images_tensor = tf.constant(self.images)
        self._batch_function = tf.function(self._build_batch, reduce_retracing=True)

    def _build_batch(self, epoch: tf.Tensor, step: tf.Tensor, first: tf.Tensor, second: tf.Tensor,
                     pair_labels: tf.Tensor) -> tuple[tuple[tf.Tensor, tf.Tensor], tf.Tensor]:
        images = tf.gather(self._images_tensor, tf.concat([first, second], axis=0))
        if self.augment is not None:
            images = augment_images(images, step_seed(self.seed, epoch, step, _AUGMENTATION_STREAM), self.augment)
        count = tf.shape(first)[0]
        return (images[:count], images[count:]), pair_labels

    def _step_windows(self) -> Iterator[tuple]:
        """One pass: ``(epoch, step, first, second, pair_labels)`` index windows, the images left to TensorFlow."""
        epoch = self._start_pass()
        first, second, pair_labels = self.epoch_pairs(epoch)
        for step in range(self.steps_per_epoch):
            window = self.step_window(step)
            yield (np.int64(epoch), np.int64(step), first[window].astype(np.int64), second[window].astype(np.int64),
                   pair_labels[window].astype(np.float32))

    def batch(self, epoch: int, step: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """The numpy batch ``((first_images, second_images), pair_labels)`` that :meth:`dataset` serves
        (up to float rounding, as :meth:`ClassBalancedPipeline.batch`)."""
        self._check_step(epoch, step)
        first, second, pair_labels = self.epoch_pairs(epoch)
        window = self.step_window(step)
        (first_images, second_images), labels = self._batch_function(
            tf.constant(epoch, tf.int64), tf.constant(step, tf.int64), tf.constant(first[window], tf.int64),
            tf.constant(second[window], tf.int64), tf.constant(pair_labels[window], tf.float32))
        return (first_images.numpy(), second_images.numpy()), labels.numpy()

    def dataset(self) -> tf.data.Dataset:
        """One epoch of pair batches per pass (autotune off, ``prefetch(2)``; ENVIRONMENT_NOTES trap 1)."""
        scalar = tf.TensorSpec(shape=(), dtype=tf.int64)
        indices = tf.TensorSpec(shape=(None,), dtype=tf.int64)
        signature = (scalar, scalar, indices, indices, tf.TensorSpec(shape=(None,), dtype=tf.float32))
        dataset = tf.data.Dataset.from_generator(self._step_windows, output_signature=signature)
        return self._finish_epoch_dataset(dataset.map(self._build_batch, num_parallel_calls=1, deterministic=True))
