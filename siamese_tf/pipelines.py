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

Where TensorFlow is not installed (a GPU machine with JAX alone), the NumPy twins of
:mod:`siamese_tf.numpy_pipelines` serve the same kind of batches;
:func:`siamese_tf.numpy_pipelines.class_balanced_pipeline` and ``pair_pipeline`` pick the one the
machine can run.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from siamese_tf.augmentations import Augmenter
from siamese_tf.numpy_pipelines import (
    AUGMENTATION_STREAM,
    CROP_STREAM,
    SAMPLING_STREAM,
    NumpyClassBalancedPipeline,
    affine_parameters,
    affine_transforms,
    check_augmenter,
)
from siamese_tf.samplers import PairBatches

__all__ = [
    "ClassBalancedPipeline",
    "PairPipeline",
    "affine_parameters_to_transforms",
    "augment_images",
    "random_crops",
    "step_seed",
]

def step_seed(seed: int | tf.Tensor, epoch: int | tf.Tensor, step: int | tf.Tensor, stream: int = 0) -> tf.Tensor:
    """The stateless seed (shape (2,), int64) of one random stream of batch ``(epoch, step)``."""
    base = tf.stack([tf.cast(seed, tf.int64), tf.constant(stream, tf.int64)])
    folded = tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64))
    return tf.random.experimental.stateless_fold_in(folded, tf.cast(step, tf.int64))


def affine_parameters_to_transforms(angle: tf.Tensor, shear_x: tf.Tensor, shear_y: tf.Tensor, scale_x: tf.Tensor,
                                    scale_y: tf.Tensor, shift_x: tf.Tensor, shift_y: tf.Tensor, mirror: tf.Tensor,
                                    height: int, width: int) -> tf.Tensor:
    """The (B, 8) output-to-input transforms of ``tf.raw_ops.ImageProjectiveTransformV3``.

    Each argument is a (B,) tensor (``angle`` in radians, shifts in pixels, ``mirror`` boolean);
    the formula is :func:`siamese_tf.numpy_pipelines.affine_transforms`, shared with the NumPy twin.
    """
    return affine_transforms(tf, angle, shear_x, shear_y, scale_x, scale_y, shift_x, shift_y, mirror, height, width)


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
    parameters = affine_parameters(
        augmenter, lambda limit, neutral, probability, component: _uniform_or_neutral(
            seed, shape, limit, neutral, probability, component),
        lambda: tf.random.stateless_uniform(shape, seed=tf.random.experimental.stateless_fold_in(seed, 7)) < 0.5,
        tf.zeros(shape, tf.bool), height, width)
    transforms = affine_parameters_to_transforms(*parameters, height, width)
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


class ClassBalancedPipeline(NumpyClassBalancedPipeline):
    """P classes x K images per batch, sampled and augmented by TensorFlow inside ``tf.data``.

    A drop-in for :class:`~siamese_tf.samplers.ClassBalancedBatches` (same arguments, same
    ``(images, class_labels)`` batches, same ``callback()`` for resumed runs), with ``augment`` an
    :class:`~siamese_tf.augmentations.Augmenter` (its settings, applied by :func:`augment_images`)
    instead of any Python callable. Batch ``(epoch, step)`` depends only on ``(seed, epoch, step)``.
    The sampling rules, ``crop_size``, ``confusers`` and ``group_size`` are those of its NumPy twin
    :class:`~siamese_tf.numpy_pipelines.NumpyClassBalancedPipeline` (whose arguments it takes and
    whose tables it uses); here TensorFlow's stateless random ops draw them.

    Args:
        parallel_calls: batches built at once by ``tf.data`` (each batch is already vectorised; 1 is
            right on two cores, more where spare cores exist).
        The others: as :class:`~siamese_tf.numpy_pipelines.NumpyClassBalancedPipeline`.
    """

    def __init__(self, images: ArrayLike, labels: ArrayLike, classes_per_batch: int = 8, images_per_class: int = 4,
                 steps_per_epoch: int = 100, seed: int = 0, augment: Augmenter | None = None,
                 parallel_calls: int = 1, crop_size: int | None = None,
                 confusers: tuple[ArrayLike, ArrayLike] | None = None, group_size: int = 4) -> None:
        if not isinstance(parallel_calls, (int, np.integer)) or parallel_calls < 1:
            raise ValueError(f"parallel_calls must be a positive integer, got {parallel_calls!r}")
        super().__init__(images, labels, classes_per_batch=classes_per_batch, images_per_class=images_per_class,
                         steps_per_epoch=steps_per_epoch, seed=seed, augment=augment, crop_size=crop_size,
                         confusers=confusers, group_size=group_size)
        self.parallel_calls = int(parallel_calls)
        self._members = tf.constant(self.member_table)
        self._sizes = tf.constant(self.class_sizes)
        self._images_tensor = tf.constant(self.images)
        self._labels_tensor = tf.constant(self.labels.astype(np.int32))
        self._confuser_rows = None if self.confuser_table is None else tf.constant(self.confuser_table)
        self._batch_function = tf.function(self._build_batch, reduce_retracing=True)

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
        sampling = step_seed(self.seed, epoch, step, SAMPLING_STREAM)
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
            images = random_crops(images, self.crop_size, step_seed(self.seed, epoch, step, CROP_STREAM))
        if self.augment is not None:
            images = augment_images(images, step_seed(self.seed, epoch, step, AUGMENTATION_STREAM), self.augment)
        return images, tf.gather(self._labels_tensor, indices)

    def batch(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The numpy batch ``(images, class_labels)`` of ``step`` in ``epoch``: what :meth:`dataset` serves,
        up to float rounding (the same ops, run outside ``tf.data``, may use other fused kernels)."""
        self._check_step(epoch, step)
        images, labels = self._batch_function(tf.constant(epoch, tf.int64), tf.constant(step, tf.int64))
        return images.numpy(), labels.numpy()

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
        check_augmenter(augment, "PairBatches")
        super().__init__(images, labels, pairs_per_epoch, batch_size=batch_size, seed=seed, augment=augment)
        self._images_tensor = tf.constant(self.images)
        self._batch_function = tf.function(self._build_batch, reduce_retracing=True)

    def _build_batch(self, epoch: tf.Tensor, step: tf.Tensor, first: tf.Tensor, second: tf.Tensor,
                     pair_labels: tf.Tensor) -> tuple[tuple[tf.Tensor, tf.Tensor], tf.Tensor]:
        images = tf.gather(self._images_tensor, tf.concat([first, second], axis=0))
        if self.augment is not None:
            images = augment_images(images, step_seed(self.seed, epoch, step, AUGMENTATION_STREAM), self.augment)
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
