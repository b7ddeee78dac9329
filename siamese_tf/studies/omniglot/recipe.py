"""Omniglot training recipes: Koch's verification pairs and schedule, and the conv4 in-batch neighbourhood-loss recipe.

Label convention: pair labels are **1 for the same character** and 0 for different characters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.labels import DIFFERENT_LABEL, SAME_LABEL
from siamese_tf.samplers import PairBatches
from siamese_tf.studies.omniglot.data import class_alphabets
from siamese_tf.studies.omniglot.evaluation import ModelScorer, OneShotEpisodes, evaluate_episodes
from siamese_tf.training import TimeBudget, check_minutes

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from siamese_tf.augmentations import Augmenter
    from siamese_tf.datasets import ImageSet
    from siamese_tf.models import SiameseModel

__all__ = [
    "MINUTES_PER_NETWORK",
    "KochPairBatches",
    "KochSchedule",
    "NeighbourhoodLoss",
    "OneShotEarlyStopping",
    "TimeBudget",
    "choose_ensemble_size",
    "conv4_augmenter",
    "koch_sgd",
    "neighbourhood_loss",
    "sample_koch_pairs",
    "train_conv4",
    "train_koch",
]


def sample_koch_pairs(labels: ArrayLike, alphabets_of_classes: ArrayLike, num_pairs: int,
                      rng: np.random.Generator | int | None,
                      within_alphabet_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verification pairs as in Koch et al.: half same, half different; different pairs within
    one alphabet (the hard ones) or across alphabets.

    Args:
        labels: (N,) class id of each image.
        alphabets_of_classes: alphabet of each class id (``class_alphabets(image_set)``).
        num_pairs: number of pairs; ``num_pairs // 2`` are same (label 1).
        rng: numpy Generator or seed.
        within_alphabet_fraction: share of the different pairs whose two characters come from the
            same alphabet (alphabets with a single character give across-alphabet pairs instead).

    Returns:
        ``(first_indices, second_indices, pair_labels)`` int64 arrays, shuffled; 1 = same.
    """
    labels = np.asarray(labels).reshape(-1)
    alphabets_of_classes = np.asarray(alphabets_of_classes)
    if not isinstance(num_pairs, (int, np.integer)) or num_pairs < 2:
        raise ValueError(f"num_pairs must be an integer >= 2, got {num_pairs!r}")
    if not 0.0 <= within_alphabet_fraction <= 1.0:
        raise ValueError(f"within_alphabet_fraction must lie in [0, 1], got {within_alphabet_fraction!r}")
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= len(alphabets_of_classes):
        raise ValueError(f"labels must index alphabets_of_classes (0..{len(alphabets_of_classes) - 1})")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    members = [np.flatnonzero(labels == label) for label in range(len(alphabets_of_classes))]
    present = np.array([label for label, found in enumerate(members) if len(found)])
    with_two = np.array([label for label, found in enumerate(members) if len(found) >= 2])
    if len(present) < 2 or len(with_two) == 0:
        raise ValueError("Koch pairs need at least 2 classes and one class with 2 images")
    classes_by_alphabet = {}
    for label in present:
        classes_by_alphabet.setdefault(alphabets_of_classes[label], []).append(label)
    num_same = num_pairs // 2
    first, second, pair_labels = [], [], []
    for label in rng.choice(with_two, size=num_same):
        a, b = rng.choice(members[label], size=2, replace=False)
        first.append(a), second.append(b), pair_labels.append(SAME_LABEL)
    for _ in range(num_pairs - num_same):
        first_class = rng.choice(present)
        siblings = [label for label in classes_by_alphabet[alphabets_of_classes[first_class]] if label != first_class]
        if siblings and rng.random() < within_alphabet_fraction:
            second_class = rng.choice(siblings)
        else:
            others = present[alphabets_of_classes[present] != alphabets_of_classes[first_class]]
            if len(others) == 0:  # a single alphabet: every different pair is within it
                others = present[present != first_class]
            second_class = rng.choice(others)
        first.append(rng.choice(members[first_class])), second.append(rng.choice(members[second_class]))
        pair_labels.append(DIFFERENT_LABEL)
    order = rng.permutation(num_pairs)
    return (np.asarray(first, np.int64)[order], np.asarray(second, np.int64)[order],
            np.asarray(pair_labels, np.int64)[order])


class KochPairBatches(PairBatches):
    """Koch et al.'s training data: verification pairs, each followed by affine-distorted copies.

    Every epoch draws ``base_pairs_per_epoch`` pairs with :func:`sample_koch_pairs` (from
    ``default_rng([seed, epoch])``) and adds ``distortions_per_pair`` copies of each pair in which
    both images get their own random affine distortion (``augment``, default
    :meth:`Augmenter.koch() <siamese_tf.augmentations.Augmenter.koch>`), so an epoch has
    ``base_pairs_per_epoch * (1 + distortions_per_pair)`` pairs in random order. Batches are
    ``((first_images, second_images), pair_labels)``, 1 = same; use with
    :func:`siamese_tf.training.train_siamese` like :class:`PairBatches`.
    """

    def __init__(self, images: ArrayLike, labels: ArrayLike, alphabets_of_classes: ArrayLike,
                 base_pairs_per_epoch: int, batch_size: int = 32, seed: int = 0, distortions_per_pair: int = 8,
                 within_alphabet_fraction: float = 0.5,
                 augment: str | Augmenter | Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = "koch",
                 ) -> None:
        from siamese_tf.augmentations import Augmenter

        if not isinstance(distortions_per_pair, (int, np.integer)) or distortions_per_pair < 0:
            raise ValueError(f"distortions_per_pair must be an integer >= 0, got {distortions_per_pair!r}")
        if not isinstance(base_pairs_per_epoch, (int, np.integer)) or base_pairs_per_epoch < 2:
            raise ValueError(f"base_pairs_per_epoch must be an integer >= 2, got {base_pairs_per_epoch!r}")
        if augment == "koch":
            augment = Augmenter.koch()
        if distortions_per_pair and augment is None:
            raise ValueError("distortions_per_pair > 0 needs an augment callable")
        self.alphabets_of_classes = np.asarray(alphabets_of_classes)
        self.base_pairs_per_epoch = int(base_pairs_per_epoch)
        self.distortions_per_pair = int(distortions_per_pair)
        self.within_alphabet_fraction = float(within_alphabet_fraction)
        super().__init__(images, labels, self.base_pairs_per_epoch * (1 + self.distortions_per_pair),
                         batch_size=batch_size, seed=seed, augment=augment)

    def _sample_epoch_pairs(self, rng):
        """``(first, second, pair_labels, distorted)`` of a whole epoch; ``distorted`` marks copies."""
        first, second, pair_labels = sample_koch_pairs(self.labels, self.alphabets_of_classes,
                                                       self.base_pairs_per_epoch, rng, self.within_alphabet_fraction)
        copies = 1 + self.distortions_per_pair
        distorted = np.tile(np.arange(copies) > 0, len(first))
        order = rng.permutation(len(distorted))
        return (np.repeat(first, copies)[order], np.repeat(second, copies)[order],
                np.repeat(pair_labels, copies)[order], distorted[order])

    def batch(self, epoch: int, step: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """The batch ``((first_images, second_images), pair_labels)`` of ``step`` in ``epoch``."""
        self._check_step(epoch, step)
        first, second, pair_labels, distorted = self.epoch_pairs(epoch)
        window = self.step_window(step)
        first_images = self.images[first[window]].copy()
        second_images = self.images[second[window]].copy()
        rng = np.random.default_rng([self.seed, int(epoch), int(step)])
        for row in np.flatnonzero(distorted[window]):
            first_images[row] = self.augment(first_images[row], rng)
            second_images[row] = self.augment(second_images[row], rng)
        return (first_images, second_images), pair_labels[window].astype(np.float32)


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class OneShotEarlyStopping(_keras_callback_base()):
    """Evaluate N-way one-shot accuracy on validation episodes after every epoch; keep the best
    weights and stop after ``patience`` epochs without improvement (Koch et al. stop on 20-way
    accuracy of validation alphabets).

    Adds ``val_one_shot_accuracy`` to the epoch logs (and so to the ``History``).
    """

    def __init__(self, images: ArrayLike, episodes: OneShotEpisodes, patience: int | None = 5,
                 restore_best_weights: bool = True, verbose: int = 0, scored_model: SiameseModel | None = None) -> None:
        super().__init__()
        # The model that scores episodes, when training runs another one around its embedding
        # (a class-proxy trainer); the trained model's weights are the ones kept and restored.
        self.scored_model = scored_model
        self.images = np.asarray(images, np.float32)
        self.episodes = episodes
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.verbose = verbose
        self.best_accuracy = -1.0
        self.best_epoch = None
        self.history = []
        self._best_weights = None
        self._waited = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        scorer = ModelScorer(self.scored_model or self.model)
        accuracy = evaluate_episodes(scorer, self.images, self.episodes)["accuracy"]
        self.history.append(accuracy)
        if logs is not None:
            logs["val_one_shot_accuracy"] = accuracy
        if self.verbose:
            print(f"epoch {epoch + 1}: {self.episodes.n_way}-way one-shot accuracy {accuracy:.4f}")
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch, self._waited = accuracy, epoch, 0
            if self.restore_best_weights:
                self._best_weights = self.model.get_weights()
        else:
            self._waited += 1
            if self.patience is not None and self._waited >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.restore_best_weights and self._best_weights is not None:
            self.model.set_weights(self._best_weights)


def neighbourhood_loss(class_labels: ArrayLike | tf.Tensor, distances: ArrayLike | tf.Tensor) -> tf.Tensor:
    """In-batch soft nearest-neighbour loss on a (B, B) distance matrix (lower = same).

    For each image i, ``p_i = sum_{j same, j != i} exp(-d_ij^2) / sum_{j != i} exp(-d_ij^2)``: the
    chance that a soft nearest neighbour of i among the rest of the batch is of its class, which
    is exactly a one-shot decision with every other image as a support. Returns the mean of
    ``-log p_i`` over images that have a same-class partner.
    """
    from keras import ops

    class_labels = ops.reshape(class_labels, (-1,))
    batch_size = ops.shape(distances)[0]
    same = ops.equal(ops.expand_dims(class_labels, 0), ops.expand_dims(class_labels, 1))
    not_self = ops.logical_not(ops.eye(batch_size, dtype="bool"))
    positive = ops.logical_and(same, not_self)
    logits = -ops.square(distances)
    very_negative = ops.cast(-1e9, logits.dtype)
    all_others = ops.logsumexp(ops.where(not_self, logits, very_negative), axis=1)
    positives = ops.logsumexp(ops.where(positive, logits, very_negative), axis=1)
    has_positive = ops.cast(ops.any(positive, axis=1), logits.dtype)
    return ops.sum((all_others - positives) * has_positive) / ops.maximum(ops.sum(has_positive), 1.0)


def _register_neighbourhood_loss():
    import keras

    @keras.saving.register_keras_serializable(package="siamese_tf")
    class NeighbourhoodLoss(keras.losses.Loss):
        """Keras loss wrapper of :func:`neighbourhood_loss` (y_true: class labels, y_pred: (B, B) distances)."""

        def __init__(self, name: str = "neighbourhood", **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)

        def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
            return neighbourhood_loss(y_true, y_pred)

    return NeighbourhoodLoss


NeighbourhoodLoss = _register_neighbourhood_loss()


def koch_sgd(learning_rate: float = 0.01, momentum: float = 0.5) -> keras.optimizers.SGD:
    """SGD with momentum as Koch et al. start it (they raise momentum towards 0.9 and decay the
    learning rate 1% per epoch; see :class:`KochSchedule`)."""
    import keras

    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)


class KochSchedule(_keras_callback_base()):
    """Koch et al.'s schedule: learning rate x0.99 per epoch, momentum raised linearly from its
    start value to ``final_momentum`` over ``momentum_epochs`` epochs (SGD only)."""

    def __init__(self, decay: float = 0.99, final_momentum: float = 0.9, momentum_epochs: int = 20) -> None:
        super().__init__()
        self.decay, self.final_momentum, self.momentum_epochs = decay, final_momentum, momentum_epochs
        self._start_momentum = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        optimizer = self.model.optimizer
        if epoch > 0:
            optimizer.learning_rate.assign(float(optimizer.learning_rate.numpy()) * self.decay)
        if hasattr(optimizer, "momentum"):
            if self._start_momentum is None:
                self._start_momentum = float(optimizer.momentum)
            fraction = min(1.0, epoch / max(1, self.momentum_epochs))
            optimizer.momentum = self._start_momentum + fraction * (self.final_momentum - self._start_momentum)


def train_koch(model: SiameseModel, train_set: ImageSet, validation_set: ImageSet, validation_episodes: OneShotEpisodes,
               num_epochs: int = 10, base_pairs_per_epoch: int = 1000, distortions_per_pair: int = 8,
               batch_size: int = 32, optimizer: str = "adam", learning_rate: float = 1e-4, patience: int | None = 5,
               minutes: float | None = None, seed: int = 0,
               verbose: int = 0) -> tuple[keras.callbacks.History, OneShotEarlyStopping, TimeBudget]:
    """Train a Koch model on :class:`KochPairBatches` with early stopping on one-shot accuracy.

    ``optimizer``: "adam" (default, modern) or "sgd" (Koch et al.: SGD with momentum and
    :class:`KochSchedule`; layer-wise learning rates are not reproduced). Returns
    ``(history, one_shot_callback, time_budget)``.
    """
    from siamese_tf.training import compile_siamese, train_siamese

    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    callbacks = []
    if optimizer == "sgd":
        compile_siamese(model, learning_rate=learning_rate, optimizer=koch_sgd(learning_rate))
        callbacks.append(KochSchedule())
    else:
        compile_siamese(model, learning_rate=learning_rate)
    batches = KochPairBatches(train_set.images, train_set.labels, class_alphabets(train_set), base_pairs_per_epoch,
                              batch_size=batch_size, seed=seed, distortions_per_pair=distortions_per_pair)
    one_shot = OneShotEarlyStopping(validation_set.images, validation_episodes, patience=patience, verbose=verbose)
    budget = TimeBudget(minutes)
    history = train_siamese(model, batches, num_epochs, callbacks=callbacks + [budget, one_shot], verbose=verbose)
    return history, one_shot, budget


# One conv4 network stops gaining near 6,000 steps, about 6 minutes on 2 cores: longer budgets buy more networks.
MINUTES_PER_NETWORK = 6.0


def choose_ensemble_size(minutes: float | None) -> int:
    """How many conv4 networks a time budget trains: each gets at least :data:`MINUTES_PER_NETWORK`, and at least one.

    The 24-minute default trains four networks of 6 minutes (chosen on the choice episodes of the
    held-out alphabets, three seed pairs, against one 24-minute network: benchmarks/RESULTS.md); 5
    or 11 minutes train one, 12 two, 30 five. ``None`` (no clock: epochs bound training) trains one.
    """
    minutes = check_minutes(minutes)
    return 1 if minutes is None else max(1, int(minutes // MINUTES_PER_NETWORK))


def conv4_augmenter(strength: float = 1.0) -> Augmenter:
    """Random affine distortions for 28x28 characters (no flips: a mirrored letter is another letter).

    ``strength`` scales every range (1.0: rotation 10 degrees, shift 8%, scale 10%, shear 0.15).
    """
    from siamese_tf.augmentations import Augmenter

    if not isinstance(strength, (int, float)) or strength <= 0:
        raise ValueError(f"strength must be a positive number, got {strength!r}")
    return Augmenter(flip=False, brightness=0.0, contrast=0.0, max_rotation=10.0 * strength,
                     max_shift=0.08 * strength, max_scale=0.1 * strength, max_shear=0.15 * strength,
                     component_probability=1.0)


def train_conv4(model: SiameseModel, train_set: ImageSet, validation_set: ImageSet,
                validation_episodes: OneShotEpisodes, num_epochs: int = 100, steps_per_epoch: int = 100,
                classes_per_batch: int = 64, images_per_class: int = 2, learning_rate: float = 1e-3,
                loss: str = "neighbourhood", augment: bool = True, patience: int | None = None,
                minutes: float | None = None, seed: int = 0, verbose: int = 0,
                augment_strength: float = 1.0, pipeline: str = "tf.data", proxy_scale: float = 16.0,
                proxy_margin: float = 0.1,
                keep_best: bool = True) -> tuple[keras.callbacks.History, OneShotEarlyStopping, TimeBudget]:
    """Train a conv4 model in-batch on P characters x K drawings per batch.

    The defaults, P = 64 characters x K = 2 drawings, were chosen on the held-out background
    alphabets (5-minute runs, two seeds): 65.5% / 74.0% 20-way within-alphabet against 63.6% /
    71.9% for 32 x 4 (``benchmarks/omniglot_one_shot.py``; more characters per batch, more
    different-character pairs per step).

    ``pipeline``: "tf.data" (default) builds and augments every batch inside TensorFlow
    (:class:`siamese_tf.pipelines.ClassBalancedPipeline`; its NumPy twin where TensorFlow is missing,
    :class:`siamese_tf.numpy_pipelines.NumpyClassBalancedPipeline`); "python" uses the NumPy/OpenCV batches of
    :class:`siamese_tf.samplers.ClassBalancedBatches` (the earlier engine, kept for comparison).

    ``loss``: "neighbourhood" (:func:`neighbourhood_loss`, default), "prototypical", "triplet" or
    "contrastive" (:class:`~siamese_tf.losses.InBatchLoss`) score the pairs inside each batch;
    "proxies" trains one learned proxy per training class with the additive-margin softmax
    (:class:`~siamese_tf.losses.AdditiveMarginSoftmaxLoss`, ``proxy_scale`` and ``proxy_margin``),
    so every step compares each image with every class; build the model with ``head="cosine"``
    for it. The learning rate follows a cosine decay over ``num_epochs * steps_per_epoch`` steps,
    or over ``minutes`` of wall-clock time when a time budget is given (training then stops at the
    budget or after ``num_epochs``). ``keep_best`` restores the weights of the epoch with the best
    validation accuracy at the end; False keeps the last weights (a final model trained on every
    alphabet, whose "validation" characters were trained on). Returns
    ``(history, one_shot_callback, time_budget)``.
    """
    import keras

    from siamese_tf.losses import AdditiveMarginSoftmaxLoss, InBatchLoss
    from siamese_tf.numpy_pipelines import class_balanced_pipeline
    from siamese_tf.samplers import ClassBalancedBatches
    from siamese_tf.training import build_proxy_trainer

    batch_sources = {"tf.data": class_balanced_pipeline, "python": ClassBalancedBatches}
    if pipeline not in batch_sources:
        raise ValueError(f"pipeline must be 'tf.data' or 'python', got {pipeline!r}")
    check_minutes(minutes)
    trained = model
    if loss == "neighbourhood":
        loss_object = NeighbourhoodLoss()
    elif loss in ("prototypical", "triplet", "contrastive"):
        loss_object = InBatchLoss(loss, mining="batch_hard")
    elif loss == "proxies":
        loss_object = AdditiveMarginSoftmaxLoss(scale=proxy_scale, margin=proxy_margin)
        trained = build_proxy_trainer(model.embedding, int(np.max(train_set.labels)) + 1)
    else:
        raise ValueError(f"loss must be 'neighbourhood', 'prototypical', 'triplet', 'contrastive' or 'proxies', "
                         f"got {loss!r}")
    if minutes is None:
        from siamese_tf.training import cosine_decay_schedule

        schedule = cosine_decay_schedule(learning_rate, num_epochs * steps_per_epoch)
        budget = TimeBudget(None)
    else:  # a time budget: anneal by elapsed time instead of by step count
        schedule, budget = learning_rate, TimeBudget(minutes, learning_rate=learning_rate,
                                                     total_steps=num_epochs * steps_per_epoch)
    trained.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss_object)
    batches = batch_sources[pipeline](train_set.images, train_set.labels, classes_per_batch=classes_per_batch,
                                      images_per_class=images_per_class, steps_per_epoch=steps_per_epoch, seed=seed,
                                      augment=conv4_augmenter(augment_strength) if augment else None)
    one_shot = OneShotEarlyStopping(validation_set.images, validation_episodes, patience=patience, verbose=verbose,
                                    scored_model=model if trained is not model else None,
                                    restore_best_weights=bool(keep_best))
    history = trained.fit(batches.training_source(), epochs=num_epochs,
                          callbacks=[batches.callback(), budget, one_shot], shuffle=False, verbose=verbose)
    return history, one_shot, budget
