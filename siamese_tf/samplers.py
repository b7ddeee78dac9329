"""Pairs and one-shot tasks drawn from labelled images.

Label convention: a pair label is **1 when both images show the same class** and 0 when they differ.

* :func:`sample_pairs` draws balanced same/different index pairs.
* :func:`all_pairs` lists every unordered pair, for exhaustive evaluation of small sets.
* :class:`PairBatches` serves training batches whose pairs and augmentation depend only on
  ``(seed, epoch)``, so an interrupted and resumed run sees exactly the batches of an uninterrupted
  one.
* :class:`ClassBalancedBatches` serves P classes x K images per batch for in-batch training.
* :func:`make_pairs` builds a fixed set of image pairs (validation and test).
* :func:`sample_n_way_tasks` draws N-way one-shot tasks (one query, one support image per class).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.labels import DIFFERENT_LABEL, SAME_LABEL

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = [
    "ClassBalancedBatches",
    "EpochSeededBatches",
    "PairBatches",
    "all_pairs",
    "make_pairs",
    "sample_n_way_tasks",
    "sample_pairs",
]


def _as_generator(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)) or isinstance(rng, (list, tuple)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy Generator or an integer seed, got {rng!r}")


def _check_labels(labels):
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class ids, got shape {labels.shape}")
    return labels


class _ClassIndex:
    """Indices of each class's images, laid out for vectorised sampling."""

    def __init__(self, labels):
        self.classes, inverse, self.sizes = np.unique(labels, return_inverse=True, return_counts=True)
        # Indices sorted by class; class k's images are order[offsets[k]: offsets[k] + sizes[k]].
        self.order = np.argsort(inverse, kind="stable")
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])

    def random_member(self, class_positions, rng):
        picks = np.floor(rng.random(len(class_positions)) * self.sizes[class_positions]).astype(np.int64)
        return self.order[self.offsets[class_positions] + picks]

    def two_distinct_members(self, class_positions, rng):
        sizes = self.sizes[class_positions]
        first = np.floor(rng.random(len(class_positions)) * sizes).astype(np.int64)
        # Shift by 1..size-1 (mod size): uniform over the other members, never the same one.
        shift = 1 + np.floor(rng.random(len(class_positions)) * (sizes - 1)).astype(np.int64)
        second = (first + shift) % sizes
        base = self.offsets[class_positions]
        return self.order[base + first], self.order[base + second]


def sample_pairs(labels: ArrayLike, num_pairs: int, rng: np.random.Generator | int | None,
                 positive_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw index pairs, about ``positive_fraction`` of them same-class (label 1).

    Positives pick a class uniformly among classes with at least two images, then two *distinct*
    images of it; negatives pick two different classes uniformly, then one image of each. The pairs
    are returned in random order.

    Args:
        labels: (N,) class id of each image.
        num_pairs: number of pairs (>= 1).
        rng: a ``numpy.random.Generator`` or an integer seed.
        positive_fraction: share of same-class pairs, in [0, 1]; ``round(num_pairs * fraction)``.

    Returns:
        ``(first_indices, second_indices, pair_labels)``, int64 arrays of length ``num_pairs``;
        ``pair_labels`` is 1 for same class and 0 for different.

    Raises:
        ValueError: ``num_pairs < 1``, fewer than 2 classes (negatives needed) or no class with 2
            images (positives needed).
    """
    labels = _check_labels(labels)
    if not isinstance(num_pairs, (int, np.integer)) or num_pairs < 1:
        raise ValueError(f"num_pairs must be a positive integer, got {num_pairs!r}")
    if not 0.0 <= float(positive_fraction) <= 1.0:
        raise ValueError(f"positive_fraction must lie in [0, 1], got {positive_fraction!r}")
    rng = _as_generator(rng)
    index = _ClassIndex(labels)
    num_positive = int(round(num_pairs * float(positive_fraction)))
    num_negative = int(num_pairs) - num_positive
    if num_negative and len(index.classes) < 2:
        raise ValueError(f"different-class pairs need at least 2 classes (identities), got {len(index.classes)}: "
                         f"this split holds a single identity; give it at least 2")
    eligible = np.flatnonzero(index.sizes >= 2)
    if num_positive and len(eligible) == 0:
        raise ValueError("same-class pairs need a class with at least 2 images; every class has only 1")

    positive_classes = eligible[rng.integers(0, len(eligible), size=num_positive)] if num_positive else \
        np.zeros(0, dtype=np.int64)
    positive_first, positive_second = index.two_distinct_members(positive_classes, rng)

    num_classes = len(index.classes)
    negative_first_class = rng.integers(0, num_classes, size=num_negative)
    negative_second_class = (negative_first_class + rng.integers(1, max(num_classes, 2), size=num_negative)) \
        % max(num_classes, 1)
    negative_first = index.random_member(negative_first_class, rng)
    negative_second = index.random_member(negative_second_class, rng)

    first = np.concatenate([positive_first, negative_first]).astype(np.int64)
    second = np.concatenate([positive_second, negative_second]).astype(np.int64)
    pair_labels = np.concatenate([np.full(num_positive, SAME_LABEL), np.full(num_negative, DIFFERENT_LABEL)])
    shuffle = rng.permutation(len(first))
    return first[shuffle], second[shuffle], pair_labels[shuffle].astype(np.int64)


def all_pairs(labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered pair ``i < j`` with its label (1 = same class), in row-major order."""
    labels = _check_labels(labels)
    if len(labels) < 2:
        raise ValueError(f"all_pairs needs at least 2 images, got {len(labels)}")
    first, second = np.triu_indices(len(labels), k=1)
    pair_labels = (labels[first] == labels[second]).astype(np.int64)
    return first.astype(np.int64), second.astype(np.int64), pair_labels


def make_pairs(images: ArrayLike, labels: ArrayLike, num_pairs: int, seed: int | None = 0,
               positive_fraction: float = 0.5) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """A fixed, balanced set of image pairs for validation or testing.

    Returns:
        ``((first_images, second_images), pair_labels)`` as numpy arrays; ``pair_labels`` is float32
        with 1 = same class.
    """
    images = np.asarray(images)
    labels = _check_labels(labels)
    if len(images) != len(labels):
        raise ValueError(f"images ({len(images)}) and labels ({len(labels)}) must have the same length")
    first, second, pair_labels = sample_pairs(labels, num_pairs, np.random.default_rng(seed), positive_fraction)
    return (images[first], images[second]), pair_labels.astype(np.float32)


class EpochSeededBatches:
    """Mechanics shared by batch sources whose epoch ``e`` depends only on ``(seed, e)``.

    Subclasses set ``images``, call ``_init_epochs(steps_per_epoch, seed, augment)`` at the end of
    ``__init__`` and define ``batch(epoch, step)`` and ``_signature()``.
    """

    def _init_epochs(self, steps_per_epoch: int, seed: int = 0,
                     augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None) -> None:
        """Check and keep what every epoch-seeded source needs, then start at epoch 0."""
        if not isinstance(steps_per_epoch, (int, np.integer)) or steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be a positive integer, got {steps_per_epoch!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if augment is not None and not callable(augment):
            raise ValueError(f"augment must be a callable (image, rng) -> image or None, got {augment!r}")
        self.steps_per_epoch = int(steps_per_epoch)
        self.seed = int(seed)
        self.augment = augment
        self._lock = threading.Lock()
        self._epoch = 0
        self._last_started_epoch = None

    def _check_step(self, epoch: int, step: int) -> None:
        """Raise ``ValueError`` naming ``step`` or ``epoch`` when batch ``(epoch, step)`` does not exist."""
        if not 0 <= step < self.steps_per_epoch:
            raise ValueError(f"step must lie in 0..{self.steps_per_epoch - 1}, got {step!r}")
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch!r}")

    @property
    def epoch(self) -> int:
        """The epoch the next pass over :meth:`dataset` will serve."""
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {value!r}")
        with self._lock:
            self._epoch = int(value)

    def _start_pass(self):
        with self._lock:
            epoch = self._epoch
            self._epoch = epoch + 1
            self._last_started_epoch = epoch
        return epoch

    def _generate(self):
        epoch = self._start_pass()
        for step in range(self.steps_per_epoch):
            yield self.batch(epoch, step)

    def dataset(self) -> tf.data.Dataset:
        """A ``tf.data.Dataset`` serving one epoch of batches per pass (see the class docstring).

        Autotune is disabled and ``prefetch(2)`` set (ENVIRONMENT_NOTES, trap 1).
        """
        import tensorflow as tf

        dataset = tf.data.Dataset.from_generator(self._generate, output_signature=self._signature())
        return self._finish_epoch_dataset(dataset)

    def frozen_dataset(self, epoch: int = 0) -> tf.data.Dataset:
        """A ``tf.data.Dataset`` that serves the batches of ``epoch`` on every pass (validation)."""
        import tensorflow as tf

        batches = [self.batch(epoch, step) for step in range(self.steps_per_epoch)]
        dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=self._signature())
        return self._finish_epoch_dataset(dataset)

    def _finish_epoch_dataset(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """``dataset`` (one epoch of batches) with its length declared, autotune off and ``prefetch(2)``."""
        import tensorflow as tf

        # A known length lets Keras size its progress bar and end epochs without a warning.
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch))
        options = tf.data.Options()
        options.autotune.enabled = False  # ENVIRONMENT_NOTES, trap 1
        return dataset.prefetch(2).with_options(options)

    def py_dataset(self, workers: int = 1) -> keras.utils.PyDataset:
        """The same epochs as :meth:`dataset` served by ``keras.utils.PyDataset``, without TensorFlow.

        For any Keras backend, e.g. ``KERAS_BACKEND=jax`` on a GPU machine that has no TensorFlow.
        Each Keras epoch serves the epoch in :attr:`epoch` (set by :meth:`callback`) and advances it,
        as a pass over :meth:`dataset` does. ``workers`` threads build batches ahead of the training
        step (NumPy and OpenCV release the interpreter while they work).

        Raises:
            ValueError: ``workers`` is not a positive integer.
        """
        import keras

        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        batches = self

        class EpochBatches(keras.utils.PyDataset):
            """One epoch of ``batches`` per Keras epoch, in step order."""

            def __init__(self) -> None:
                super().__init__(workers=int(workers), max_queue_size=max(2, 2 * int(workers)))
                self.serving_epoch = batches.epoch

            def __len__(self) -> int:
                return batches.steps_per_epoch

            def on_epoch_begin(self) -> None:
                self.serving_epoch = batches._start_pass()

            def __getitem__(self, step: int):
                return batches.batch(self.serving_epoch, int(step))

        return EpochBatches()

    def training_source(self, workers: int = 1) -> tf.data.Dataset | keras.utils.PyDataset:
        """What ``model.fit`` reads on this machine: :meth:`dataset` where TensorFlow is installed,
        else :meth:`py_dataset` with ``workers`` threads (the same epochs either way)."""
        from siamese_tf.settings import tensorflow_available

        return self.dataset() if tensorflow_available() else self.py_dataset(workers=workers)

    def validation_source(self, epoch: int = 0) -> tf.data.Dataset | keras.utils.PyDataset:
        """The batches of ``epoch`` on every pass (validation losses then compare across epochs):
        :meth:`frozen_dataset` where TensorFlow is installed, else a ``keras.utils.PyDataset``."""
        import keras

        from siamese_tf.settings import tensorflow_available

        if tensorflow_available():
            return self.frozen_dataset(epoch)
        batches = [self.batch(epoch, step) for step in range(self.steps_per_epoch)]

        class FrozenBatches(keras.utils.PyDataset):
            """The same list of batches on every pass."""

            def __len__(self) -> int:
                return len(batches)

            def __getitem__(self, step: int):
                return batches[step]

        return FrozenBatches()

    def _on_train_begin(self):
        with self._lock:
            # A pass prefetched at the end of an earlier fit() was never used for training.
            self._last_started_epoch = None

    def _on_epoch_begin(self, epoch):
        with self._lock:
            if self._last_started_epoch == epoch:
                # Keras already started reading this epoch (prefetched at the end of the last one).
                self._epoch = epoch + 1
            else:
                self._epoch = int(epoch)

    def callback(self) -> keras.callbacks.Callback:
        """A Keras callback that keeps :attr:`epoch` equal to Keras's epoch number."""
        import keras

        batches = self

        class BatchesEpoch(keras.callbacks.Callback):
            """Sets the pair batches' epoch at the start of every Keras epoch."""

            def on_train_begin(self, logs: dict | None = None) -> None:
                batches._on_train_begin()

            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                batches._on_epoch_begin(epoch)

        return BatchesEpoch()



class PairBatches(EpochSeededBatches):
    """Training batches of image pairs, reproducible per epoch.

    The pairs and the augmentation of epoch ``e`` come from ``numpy.random.default_rng([seed, e])``
    (augmentation of step ``s`` from ``default_rng([seed, e, s])``), so they depend only on the seed
    and the epoch number: a run resumed at epoch 7 sees the same batches as one that never stopped.

    Use with Keras::

        batches = PairBatches(images, labels, pairs_per_epoch=10_000, batch_size=32, seed=1)
        model.fit(batches.dataset(), epochs=20, callbacks=[batches.callback()])

    ``callback()`` tells the batches which epoch Keras is in (needed when resuming, e.g. with
    ``BackupAndRestore`` or ``initial_epoch``). Each pass over ``dataset()`` serves the epoch in
    :attr:`epoch` and advances it by one, so consecutive passes give consecutive epochs even without
    the callback, and a pass that Keras starts (prefetches) before announcing the epoch still gets
    the right one; the callback then leaves it alone.

    Args:
        images: (N, H, W, C) float images in [0, 1].
        labels: (N,) class ids.
        pairs_per_epoch: pairs per epoch (about half same-class, label 1).
        batch_size: pairs per batch; the last batch of an epoch may be smaller.
        seed: base seed.
        augment: optional callable ``(image, rng) -> image`` applied to every image of every pair,
            e.g. :class:`siamese_tf.augmentations.Augmenter`.
    """

    def __init__(self, images: ArrayLike, labels: ArrayLike, pairs_per_epoch: int, batch_size: int = 32,
                 seed: int = 0, augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None) -> None:
        self.images = np.asarray(images, dtype=np.float32)
        self.labels = _check_labels(labels)
        if self.images.ndim != 4:
            raise ValueError(f"images must have shape (N, H, W, C), got {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"images ({len(self.images)}) and labels ({len(self.labels)}) must have the same length")
        for name, value in (("pairs_per_epoch", pairs_per_epoch), ("batch_size", batch_size)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.batch_size = int(batch_size)
        self._init_epochs(math.ceil(self.pairs_per_epoch / self.batch_size), seed, augment)
        self._cached_epoch = None
        self._cached_pairs = None
        # Fail now, not inside tf.data, when the labels cannot give both kinds of pairs.
        sample_pairs(self.labels, 2, 0)

    def epoch_pairs(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(first_indices, second_indices, pair_labels)`` of a whole epoch (1 = same), cached."""
        with self._lock:
            if self._cached_epoch == epoch:
                return self._cached_pairs
        pairs = self._sample_epoch_pairs(np.random.default_rng([self.seed, int(epoch)]))
        with self._lock:
            self._cached_epoch, self._cached_pairs = epoch, pairs
        return pairs

    def _sample_epoch_pairs(self, rng):
        """One epoch's pairs from ``rng``; subclasses with another pair recipe override this."""
        return sample_pairs(self.labels, self.pairs_per_epoch, rng)

    def step_window(self, step: int) -> slice:
        """The slice of an epoch's pairs that batch ``step`` holds (the last one may be shorter)."""
        return slice(step * self.batch_size, (step + 1) * self.batch_size)

    def batch(self, epoch: int, step: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """The numpy batch ``((first_images, second_images), pair_labels)`` of ``step`` in ``epoch``."""
        self._check_step(epoch, step)
        first, second, pair_labels = self.epoch_pairs(epoch)
        window = self.step_window(step)
        first_images = self.images[first[window]]
        second_images = self.images[second[window]]
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, int(epoch), int(step)])
            first_images = np.stack([self.augment(image, rng) for image in first_images])
            second_images = np.stack([self.augment(image, rng) for image in second_images])
        return (
            (first_images.astype(np.float32, copy=False), second_images.astype(np.float32, copy=False)),
            pair_labels[window].astype(np.float32),
        )

    def _signature(self):
        import tensorflow as tf

        image_spec = tf.TensorSpec(shape=(None, *self.images.shape[1:]), dtype=tf.float32)
        return (image_spec, image_spec), tf.TensorSpec(shape=(None,), dtype=tf.float32)


class ClassBalancedBatches(EpochSeededBatches):
    """Batches of single images, ``classes_per_batch`` (P) classes x ``images_per_class`` (K) each.

    For in-batch training (``compile_siamese(model, mode="in_batch")``): the model embeds each
    image of a batch once and scores all of its B(B-1)/2 pairs (B = P K), instead of embedding two
    images for every pair. Batches of epoch ``e``, step ``s`` come from ``default_rng([seed, e, s])``
    only, so resumed runs see the batches of uninterrupted ones (as :class:`PairBatches`).
    Batches are ``(images, class_labels)``; pair labels (1 = same) follow from the class labels.

    Args:
        images: (N, H, W, C) float images in [0, 1].
        labels: (N,) class ids.
        classes_per_batch: P, distinct classes per batch (>= 2, so there are different pairs).
        images_per_class: K, images per class (>= 2, so there are same pairs); a class with fewer
            images repeats some (augmentation then makes the copies differ).
        steps_per_epoch: batches per epoch.
        seed: base seed.
        augment: optional callable ``(image, rng) -> image``.
    """

    def __init__(self, images: ArrayLike, labels: ArrayLike, classes_per_batch: int = 8, images_per_class: int = 4,
                 steps_per_epoch: int = 100, seed: int = 0,
                 augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None) -> None:
        self.images = np.asarray(images, dtype=np.float32)
        self.labels = _check_labels(labels)
        if self.images.ndim != 4 or len(self.images) != len(self.labels):
            raise ValueError(
                f"images must have shape (N, H, W, C) with one label each; got {self.images.shape} and "
                f"{len(self.labels)} labels"
            )
        for name, value, minimum in (("classes_per_batch", classes_per_batch, 2),
                                     ("images_per_class", images_per_class, 2)):
            if not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        self.index = _ClassIndex(self.labels)
        self.eligible = np.flatnonzero(self.index.sizes >= 2)
        if len(self.eligible) < classes_per_batch:
            raise ValueError(
                f"classes_per_batch={classes_per_batch} but only {len(self.eligible)} classes have at least "
                f"2 images"
            )
        self.classes_per_batch = int(classes_per_batch)
        self.images_per_class = int(images_per_class)
        self._init_epochs(steps_per_epoch, seed, augment)

    @property
    def batch_size(self) -> int:
        return self.classes_per_batch * self.images_per_class

    @property
    def pairs_per_batch(self) -> int:
        """Pairs scored per batch: every unordered pair of the batch."""
        return self.batch_size * (self.batch_size - 1) // 2

    def batch(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The numpy batch ``(images, class_labels)`` of ``step`` in ``epoch``."""
        self._check_step(epoch, step)
        rng = np.random.default_rng([self.seed, int(epoch), int(step)])
        classes = rng.choice(self.eligible, size=self.classes_per_batch, replace=False)
        indices = []
        for class_position in classes:
            size = self.index.sizes[class_position]
            members = self.index.order[self.index.offsets[class_position]:self.index.offsets[class_position] + size]
            indices.append(rng.choice(members, size=self.images_per_class, replace=size < self.images_per_class))
        indices = np.concatenate(indices)
        images = self.images[indices]
        if self.augment is not None:
            images = np.stack([self.augment(image, rng) for image in images])
        return images.astype(np.float32, copy=False), self.labels[indices].astype(np.int32)

    def _signature(self):
        import tensorflow as tf

        return (tf.TensorSpec(shape=(None, *self.images.shape[1:]), dtype=tf.float32),
                tf.TensorSpec(shape=(None,), dtype=tf.int32))


def sample_n_way_tasks(labels: ArrayLike, n_way: int, num_tasks: int,
                       seed: int | None = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw N-way one-shot tasks.

    Each task picks ``n_way`` distinct classes; the true class (one with at least two images) gives
    the query image and a *different* support image; every other class gives one support image. The
    true class sits at a random position among the supports.

    Returns:
        ``(query_indices (T,), support_indices (T, n_way), correct_positions (T,))``, int64;
        ``support_indices[t, correct_positions[t]]`` has the query's class.

    Raises:
        ValueError: ``n_way < 2``, ``num_tasks < 1``, fewer than ``n_way`` classes, or no class with
            two images to serve as the true class.
    """
    labels = _check_labels(labels)
    if not isinstance(n_way, (int, np.integer)) or n_way < 2:
        raise ValueError(f"n_way must be an integer >= 2, got {n_way!r}")
    if not isinstance(num_tasks, (int, np.integer)) or num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive integer, got {num_tasks!r}")
    index = _ClassIndex(labels)
    num_classes = len(index.classes)
    if num_classes < n_way:
        raise ValueError(f"{n_way}-way tasks need at least {n_way} classes, got {num_classes}")
    eligible = np.flatnonzero(index.sizes >= 2)
    if len(eligible) == 0:
        raise ValueError("the true class of a task needs at least 2 images (query + support); every class has 1")
    rng = np.random.default_rng(seed)
    true_classes = eligible[rng.integers(0, len(eligible), size=num_tasks)]
    query, true_support = index.two_distinct_members(true_classes, rng)
    # Other classes: a random ordering of all classes without the true one, first n_way - 1 taken.
    scores = rng.random((num_tasks, num_classes))
    scores[np.arange(num_tasks), true_classes] = np.inf
    other_classes = np.argsort(scores, axis=1)[:, : n_way - 1]
    correct_positions = rng.integers(0, n_way, size=num_tasks)
    support_classes = np.empty((num_tasks, n_way), dtype=np.int64)
    support = np.empty((num_tasks, n_way), dtype=np.int64)
    for task in range(num_tasks):
        support_classes[task] = np.insert(other_classes[task], correct_positions[task], true_classes[task])
    support[:] = index.random_member(support_classes.reshape(-1), rng).reshape(num_tasks, n_way)
    support[np.arange(num_tasks), correct_positions] = true_support
    return query.astype(np.int64), support, correct_positions.astype(np.int64)
