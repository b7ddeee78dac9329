"""SiameseCCR training: random crops, batch-norm recalibration, hard-negative mining, pair and class
batches, the training rounds and the classifier baselines.

Label convention: 1 = same character, 0 = different.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import layers
from numpy.typing import ArrayLike

from siamese_tf.augmentations import Augmenter
from siamese_tf.libraries import TemplateLibrary
from siamese_tf.models import SiameseModel, build_siamese_model
from siamese_tf.samplers import ClassBalancedBatches, PairBatches, sample_pairs
from siamese_tf.studies.captcha.data import CROP_SIZE, center_crop, check_images
from siamese_tf.studies.captcha.networks import ARCHITECTURES, BASELINES
from siamese_tf.training import check_minutes, compile_siamese, cosine_decay_schedule, train_siamese

__all__ = [
    "CCRConfig",
    "CaptchaClassBatches",
    "captcha_augmenter",
    "CaptchaPairBatches",
    "HEADS",
    "RandomCrop",
    "build_siamese_ccr",
    "confusable_classes",
    "hard_negative_pairs",
    "recalibrate_batch_norm",
    "train_classifier_baseline",
    "train_siamese_ccr",
]


# Head -> the losses that fit it (the first is its default).
HEADS = {"l1": ("binary_crossentropy",), "euclidean": ("prototypical", "triplet", "contrastive")}


class RandomCrop:
    """``(image, rng) -> image``: a random ``size`` x ``size`` window (the paper's 44x44 of 48x48)."""

    def __init__(self, size: int = CROP_SIZE) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"crop size must be a positive integer, got {size!r}")
        self.size = size

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = image.shape[:2]
        if self.size > min(height, width):
            raise ValueError(f"crop size {self.size} is larger than the image ({height}x{width})")
        top = int(rng.integers(0, height - self.size + 1))
        left = int(rng.integers(0, width - self.size + 1))
        return image[top:top + self.size, left:left + self.size]


def recalibrate_batch_norm(network: keras.Model, images: ArrayLike, crop_size: int | None = None,
                           max_images: int = 1024, seed: int = 0, batch_size: int = 128) -> int:
    """Set every BatchNormalization layer's moving statistics to those of ``images`` (in place).

    Short CPU runs end long before the moving averages (momentum 0.99) forget their initial
    values (mean 0, variance 1); layers with small activations then see far too large a
    variance at inference and the embedding collapses. Training-mode passes over up to
    ``max_images`` images (centre-cropped to ``crop_size``), ``batch_size`` at a time, replace the
    moving statistics by the images' own: each layer's mean and (biased) variance pooled over the
    batches, without touching any weight. Batches bound the memory: one pass over 1,024 CAPTCHA
    crops of the SiameseCCR network held 8.5 GB, against about 1 GB a batch of 128. Returns the
    number of layers recalibrated.
    """
    images = check_images(images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    rng = np.random.default_rng(seed)
    if len(images) > max_images:
        images = images[np.sort(rng.choice(len(images), max_images, replace=False))]
    if crop_size is not None and images.shape[1] != crop_size:
        images = center_crop(images, crop_size)
    batch_norms = [layer for layer in _all_layers(network) if isinstance(layer, layers.BatchNormalization)]
    saved = [layer.momentum for layer in batch_norms]
    # Per layer, image-weighted sums of the batch means and of mean² + variance (every image of a
    # batch has the same number of positions at a given layer).
    sums_of_means = [0.0] * len(batch_norms)
    sums_of_squares = [0.0] * len(batch_norms)
    try:
        for layer in batch_norms:
            layer.momentum = 0.0  # the moving statistics become each batch's own
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            network(batch, training=True)
            for position, layer in enumerate(batch_norms):
                mean = np.asarray(layer.moving_mean, dtype=np.float64)
                variance = np.asarray(layer.moving_variance, dtype=np.float64)
                sums_of_means[position] += len(batch) * mean
                sums_of_squares[position] += len(batch) * (variance + mean**2)
        for layer, sum_of_means, sum_of_squares in zip(batch_norms, sums_of_means, sums_of_squares):
            mean = sum_of_means / len(images)
            # Law of total variance: the batches' variances plus the spread of their means.
            variance = np.maximum(sum_of_squares / len(images) - mean**2, 0.0)
            layer.moving_mean.assign(mean.astype(np.float32))
            layer.moving_variance.assign(variance.astype(np.float32))
    finally:
        for layer, momentum in zip(batch_norms, saved):
            layer.momentum = momentum
    return len(batch_norms)


def _all_layers(network):
    for layer in network.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def confusable_classes(model: SiameseModel, images: ArrayLike, labels: ArrayLike, top_k: int = 10,
                       batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Each class's ``top_k`` most similar *other* classes under ``model`` (hard negatives).

    One template per class (its first image, centre-cropped) is embedded; classes are ranked by
    the head's similarity between templates. Returns ``(classes, confusers)``: the sorted class
    labels (C,) and a (C, min(top_k, C - 1)) array of class labels, most similar first.
    """
    images = check_images(images)
    labels = np.asarray(labels).reshape(-1)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    classes, first_positions = np.unique(labels, return_index=True)
    if len(classes) < 2:
        raise ValueError(f"Hard negatives need at least 2 classes, got {len(classes)}")
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    templates = images[first_positions]
    crop = model.input_image_shape[0]
    if templates.shape[1] != crop:
        templates = center_crop(templates, crop)
    embeddings = model.embed(templates, batch_size=batch_size)
    library = TemplateLibrary(model, embeddings, np.arange(len(classes)))
    similarities = library.similarities(embeddings)
    np.fill_diagonal(similarities, -np.inf)  # a class is never its own negative
    top_k = min(top_k, len(classes) - 1)
    order = np.argsort(-similarities, axis=1, kind="stable")[:, :top_k]
    return classes, classes[order]


def hard_negative_pairs(labels: ArrayLike, classes: ArrayLike, confusers: ArrayLike, num_pairs: int,
                        rng: np.random.Generator | int | None,
                        positive_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs whose negatives come from each anchor's confusable classes (1 = same, 0 = different).

    Positives are balanced random same-class pairs (as :func:`siamese_tf.samplers.sample_pairs`);
    each negative takes a random anchor image and an image of a class drawn from its anchor's
    row of ``confusers`` (see :func:`confusable_classes`).
    """
    labels = np.asarray(labels).reshape(-1)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    num_positive = int(round(num_pairs * positive_fraction))
    num_negative = num_pairs - num_positive
    first_positive, second_positive, _ = sample_pairs(labels, max(num_positive, 1), rng, positive_fraction=1.0)
    first_positive, second_positive = first_positive[:num_positive], second_positive[:num_positive]
    members = {label: np.flatnonzero(labels == label) for label in classes}
    row_of = {label: row for row, label in enumerate(classes)}
    anchors = rng.integers(0, len(labels), size=num_negative)
    partners = np.empty(num_negative, np.int64)
    for position, anchor in enumerate(anchors):
        row = confusers[row_of[labels[anchor]]]
        negative_class = row[int(rng.integers(len(row)))]
        choices = members[negative_class]
        partners[position] = choices[int(rng.integers(len(choices)))]
    first = np.concatenate([first_positive, anchors])
    second = np.concatenate([second_positive, partners])
    pair_labels = np.concatenate([np.ones(num_positive, np.int64), np.zeros(num_negative, np.int64)])
    order = rng.permutation(num_pairs)
    return first[order], second[order], pair_labels[order]


class CaptchaPairBatches(PairBatches):
    """:class:`~siamese_tf.samplers.PairBatches` of random crops, with optional hard negatives.

    Without ``confusers`` the pairs are balanced random pairs; with ``(classes, confusers)``
    from :func:`confusable_classes` the negatives are hard (:func:`hard_negative_pairs`).
    """

    def __init__(self, images: ArrayLike, labels: ArrayLike, pairs_per_epoch: int, batch_size: int = 32, seed: int = 0,
                 crop_size: int = CROP_SIZE, confusers: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        super().__init__(images, labels, pairs_per_epoch, batch_size, seed, augment=RandomCrop(crop_size))
        self.crop_size = crop_size
        self.confusers = confusers

    def epoch_pairs(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.confusers is None:
            return super().epoch_pairs(epoch)
        with self._lock:
            if self._cached_epoch == epoch:
                return self._cached_pairs
        classes, confusers = self.confusers
        pairs = hard_negative_pairs(self.labels, classes, confusers, self.pairs_per_epoch,
                                    np.random.default_rng([self.seed, int(epoch), 1]))
        with self._lock:
            self._cached_epoch, self._cached_pairs = epoch, pairs
        return pairs

    def _signature(self):
        import tensorflow as tf

        spec = tf.TensorSpec(shape=(None, self.crop_size, self.crop_size, self.images.shape[-1]), dtype=tf.float32)
        return (spec, spec), tf.TensorSpec(shape=(None,), dtype=tf.float32)


class CaptchaClassBatches(ClassBalancedBatches):
    """:class:`~siamese_tf.samplers.ClassBalancedBatches` of random crops, with optional hard-negative groups.

    The NumPy reference of the hard-negative batches; :func:`train_siamese_ccr` draws the same kind
    of batches from :class:`siamese_tf.pipelines.ClassBalancedPipeline` (``confusers``, ``group_size``).

    With ``confusers`` (from :func:`confusable_classes`) a batch is built from groups of
    ``group_size`` classes: a random class plus ``group_size - 1`` of its confusable classes, so
    most different-character pairs in the batch are hard ones.
    """

    def __init__(self, images: ArrayLike, labels: ArrayLike, classes_per_batch: int = 16, images_per_class: int = 4,
                 steps_per_epoch: int = 100, seed: int = 0, crop_size: int = CROP_SIZE,
                 confusers: tuple[np.ndarray, np.ndarray] | None = None, group_size: int = 4) -> None:
        super().__init__(images, labels, classes_per_batch, images_per_class, steps_per_epoch, seed,
                         augment=RandomCrop(crop_size))
        if not isinstance(group_size, int) or group_size < 2:
            raise ValueError(f"group_size must be an integer >= 2, got {group_size!r}")
        self.crop_size = crop_size
        self.group_size = group_size
        self.confusers = confusers
        if confusers is not None:
            classes, rows = confusers
            self._confuser_rows = {int(label): np.asarray(row) for label, row in zip(classes, rows)}

    def _hard_classes(self, rng):
        """Class positions for one batch: groups of a random class and its confusable classes."""
        eligible_labels = self.index.classes[self.eligible]
        chosen = []
        while len(chosen) < self.classes_per_batch:
            seed_label = int(eligible_labels[int(rng.integers(len(eligible_labels)))])
            if seed_label in chosen:
                continue
            group = [seed_label]
            row = [int(c) for c in self._confuser_rows.get(seed_label, ())
                   if int(c) not in chosen and int(c) != seed_label]
            row = [c for c in row if c in self._eligible_set]
            picks = rng.permutation(len(row))[:self.group_size - 1]
            group += [row[i] for i in picks]
            chosen += group[:self.classes_per_batch - len(chosen)]
        return np.searchsorted(self.index.classes, np.asarray(chosen))

    def batch(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        if self.confusers is None:
            return super().batch(epoch, step)
        self._check_step(epoch, step)
        if not hasattr(self, "_eligible_set"):
            self._eligible_set = {int(c) for c in self.index.classes[self.eligible]}
        rng = np.random.default_rng([self.seed, int(epoch), int(step), 1])
        indices = []
        for class_position in self._hard_classes(rng):
            size = self.index.sizes[class_position]
            members = self.index.order[self.index.offsets[class_position]:self.index.offsets[class_position] + size]
            indices.append(rng.choice(members, size=self.images_per_class, replace=size < self.images_per_class))
        indices = np.concatenate(indices)
        images = np.stack([self.augment(image, rng) for image in self.images[indices]])
        return images.astype(np.float32, copy=False), self.labels[indices].astype(np.int32)

    def _signature(self):
        import tensorflow as tf

        return (tf.TensorSpec(shape=(None, self.crop_size, self.crop_size, self.images.shape[-1]), dtype=tf.float32),
                tf.TensorSpec(shape=(None,), dtype=tf.int32))


@dataclasses.dataclass
class CCRConfig:
    """Settings of :func:`train_siamese_ccr` (``mode`` "in_batch" is the CPU default).

    The first round trains on random pairs for ``random_epochs``; each of ``mining_rounds``
    later rounds recomputes every class's ``top_k`` confusable classes and trains
    ``mining_epochs`` more on hard negatives.

    ``head`` "l1" with ``loss`` "binary_crossentropy" is the paper's similarity
    ``sigmoid(|v1 - v2| w + b)``; ``head`` "euclidean" trains a distance head with ``loss``
    "prototypical", "triplet" or "contrastive" (in-batch only for the first two).

    ``cosine_decay`` anneals the learning rate to 5% of ``learning_rate`` along one cosine over
    every step of every round (:meth:`total_steps`); the default keeps it constant, as the paper.

    ``minutes``: a wall-clock budget for all rounds together (None: the epochs alone). Each round
    gets the time still left in proportion to its share of the epochs still to run, and stops when
    that is spent (or at its last epoch), so the rounds keep their proportions on any machine; a
    round whose turn comes after the budget is spent is skipped. The cosine decay follows the
    steps, not the clock.

    ``anneal_last_round`` lowers the learning rate of the last round only (the last mining round, or the
    random round when there is none) along one cosine from ``learning_rate`` to 5% of it, over that
    round's share of the clock or its steps, whichever runs out first (:class:`TimeBudget`); every
    earlier round keeps the constant rate the hard negatives need. Not with ``cosine_decay``.

    ``ema_momentum`` (0 = off) keeps an exponential moving average of the weights in the optimizer
    (Keras ``use_ema``: each step ``average = m * average + (1 - m) * weights``) and trains on from it:
    every round ends with the averaged weights copied into the model (``fit`` does that), before the
    batch-norm statistics are re-estimated for them. 0.999 averages over about the last 1,000 steps.

    ``first_stage_stride`` 2 runs the branch at half resolution after its stem
    (:func:`siamese_ccr_embedding`: about 3x the steps in the same time on CPU); 1 is the paper's.

    ``augment`` (in-batch mode) adds a random affine warp to every 44x44 training crop on top of
    the paper's random crop (:func:`captcha_augmenter`: strength 1.0 is rotation 5 degrees, scale
    10%, shear 0.1; never mirrored); 0 (default) keeps the crop alone.
    """

    architecture: str = "siamese_ccr_15"
    widths: tuple[int, ...] = (16, 32, 64, 128)
    embedding_dim: int = 256
    first_stage_stride: int = 1
    mode: str = "in_batch"
    random_epochs: int = 4
    mining_rounds: int = 2
    mining_epochs: int = 2
    steps_per_epoch: int = 100
    classes_per_batch: int = 16
    images_per_class: int = 4
    group_size: int = 4
    pairs_batch_size: int = 32
    top_k: int = 10
    learning_rate: float = 1e-3
    cosine_decay: bool = False
    anneal_last_round: bool = False
    ema_momentum: float = 0.0
    augment: float = 0.0
    head: str = "l1"
    loss: str | None = None
    minutes: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"Unknown head {self.head!r}; choose one of {HEADS}")
        if self.loss is None:
            self.loss = HEADS[self.head][0]
        if self.loss not in HEADS[self.head]:
            raise ValueError(f"loss {self.loss!r} does not fit head {self.head!r}; choose one of {HEADS[self.head]}")
        if self.mode == "pairs" and self.loss in ("prototypical", "triplet"):
            raise ValueError(f"loss {self.loss!r} needs mode='in_batch'")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"Unknown architecture {self.architecture!r}; choose one of {ARCHITECTURES}")
        if self.mode not in ("pairs", "in_batch"):
            raise ValueError(f"mode must be 'pairs' or 'in_batch', got {self.mode!r}")
        for name in ("random_epochs", "steps_per_epoch", "top_k", "classes_per_batch", "images_per_class"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if isinstance(self.augment, bool) or not isinstance(self.augment, (int, float)) or self.augment < 0:
            raise ValueError(f"augment must be a number >= 0, got {self.augment!r}")
        if (isinstance(self.ema_momentum, bool) or not isinstance(self.ema_momentum, (int, float))
                or not 0 <= self.ema_momentum < 1):
            raise ValueError("ema_momentum must be a number in [0, 1) (0: no weight averaging), "
                             f"got {self.ema_momentum!r}")
        if self.augment and self.mode != "in_batch":
            raise ValueError(f"augment={self.augment!r} needs mode='in_batch' (the tf.data engine's batches)")
        check_minutes(self.minutes)
        if not isinstance(self.anneal_last_round, bool):
            raise ValueError(f"anneal_last_round must be True or False, got {self.anneal_last_round!r}")
        if self.anneal_last_round and self.cosine_decay:
            raise ValueError("anneal_last_round=True and cosine_decay=True both schedule the learning rate; "
                             "choose one")
        for name in ("mining_rounds", "mining_epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")

    def total_steps(self) -> int:
        """Training steps of all rounds: ``steps_per_epoch * (random_epochs + mining_rounds * mining_epochs)``."""
        return self.steps_per_epoch * (self.random_epochs + self.mining_rounds * self.mining_epochs)


def build_siamese_ccr(config: CCRConfig | None = None) -> SiameseModel:
    """A SiameseCCR model (residual branch + ``config.head``), compiled for ``config.mode`` and
    ``config.loss`` (the paper: L1 head, binary cross-entropy).

    With ``config.cosine_decay`` the Adam optimizer carries one cosine schedule over
    ``config.total_steps()``; its step counter runs on across the mining rounds, because every
    round trains the same compiled model. With ``config.ema_momentum`` it also keeps the moving
    average of the weights (``use_ema``)."""
    import keras

    config = config or CCRConfig()
    model = build_siamese_model(config.architecture, config.head, input_shape=(CROP_SIZE, CROP_SIZE, 1),
                                name=config.architecture.replace("_", "-"), widths=tuple(config.widths),
                                embedding_dim=config.embedding_dim, first_stage_stride=config.first_stage_stride)
    optimizer = None
    if config.cosine_decay or config.ema_momentum:
        learning_rate = (cosine_decay_schedule(config.learning_rate, config.total_steps()) if config.cosine_decay
                         else config.learning_rate)
        averaging = {"use_ema": True, "ema_momentum": float(config.ema_momentum)} if config.ema_momentum else {}
        optimizer = keras.optimizers.Adam(learning_rate, **averaging)
    return compile_siamese(model, learning_rate=config.learning_rate, mode=config.mode, loss=config.loss,
                           optimizer=optimizer)


def captcha_augmenter(strength: float = 1.0) -> Augmenter:
    """Random affine warp of training characters: never mirrored, no brightness or contrast change.

    ``strength`` scales every range (:meth:`Augmenter.affine_jitter`: 1.0 is rotation 5 degrees,
    scale 10% and shear 0.1, drawn independently per axis); no shift, the random crop already
    moves the character.
    """
    return Augmenter.affine_jitter(strength, shift=0.0)


def _batches(images, labels, config, seed, confusers):
    if config.mode == "in_batch":
        # Random and hard-negative rounds run on the engine: classes (in confuser groups after the
        # first round), images and crops drawn by TensorFlow (its NumPy twin where TensorFlow is missing).
        from siamese_tf.numpy_pipelines import class_balanced_pipeline

        return class_balanced_pipeline(images, labels, config.classes_per_batch, config.images_per_class,
                                     config.steps_per_epoch, seed, crop_size=CROP_SIZE, confusers=confusers,
                                     group_size=config.group_size,
                                     augment=captcha_augmenter(config.augment) if config.augment else None)
    pairs = config.steps_per_epoch * config.pairs_batch_size
    return CaptchaPairBatches(images, labels, pairs, config.pairs_batch_size, seed, confusers=confusers)


def train_siamese_ccr(train_images: ArrayLike, train_labels: ArrayLike, config: CCRConfig | None = None,
                      model: SiameseModel | None = None, verbose: int = 0) -> tuple[SiameseModel, dict[str, Any]]:
    """Train SiameseCCR with the paper's algorithm: random pairs, then rounds of hard negative mining.

    Args:
        train_images: (N, 48, 48, 1) gray images in [0, 1] (random 44x44 crops are taken).
        train_labels: (N,) character labels (4 images per character in the paper).
        config: :class:`CCRConfig`.
        model: continue training this model instead of building one.

    Returns:
        ``(model, report)``: report holds per-round ``losses``, ``seconds``, ``steps``, ``final_learning_rate``,
        ``stopped_for_time`` (with ``config.minutes``), ``batches`` (the batch source's class name),
        ``pairs_per_second`` (pairs scored per second of training) and the ``confusers`` of the last
        mining round; ``skipped_rounds`` counts rounds the time budget left no time for.
    """
    from siamese_tf.training import TimeBudget

    config = config or CCRConfig()
    train_images = check_images(train_images, "train_images")
    train_labels = np.asarray(train_labels).reshape(-1)
    model = model or build_siamese_ccr(config)
    report = {"rounds": [], "confusers": None, "skipped_rounds": 0}
    confusers = None
    epochs_left = config.random_epochs + config.mining_rounds * config.mining_epochs
    budget_seconds = None if config.minutes is None else 60.0 * config.minutes
    run_started = time.perf_counter()
    for round_number in range(1 + config.mining_rounds):
        epochs = config.random_epochs if round_number == 0 else config.mining_epochs
        if epochs == 0:
            continue
        round_minutes = None  # without a budget the round's TimeBudget only counts its steps
        if budget_seconds is not None:
            seconds_left = budget_seconds - (time.perf_counter() - run_started)
            if seconds_left <= 0:
                report["skipped_rounds"] += 1
                continue
            # The time left shared by the epochs left: mining and recalibration overheads come out of it.
            round_minutes = seconds_left * epochs / epochs_left / 60.0
        epochs_left -= epochs
        if config.anneal_last_round and epochs_left == 0:  # the last round with epochs to run
            round_budget = TimeBudget(round_minutes, learning_rate=config.learning_rate,
                                      total_steps=epochs * config.steps_per_epoch)
        else:
            round_budget = TimeBudget(round_minutes)
        if round_number > 0:
            confusers = confusable_classes(model, train_images, train_labels, config.top_k)
        batches = _batches(train_images, train_labels, config, config.seed + 1000 * round_number, confusers)
        started = time.perf_counter()
        history = train_siamese(model, batches, epochs, verbose=verbose, callbacks=[round_budget])
        final_learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        if round_budget.learning_rate is not None:  # annealed: hand the model back with the rate it came with
            model.optimizer.learning_rate.assign(config.learning_rate)
        recalibrate_batch_norm(model.embedding, train_images, CROP_SIZE, seed=config.seed + round_number)
        seconds = time.perf_counter() - started
        pairs_per_step = batches.pairs_per_batch if config.mode == "in_batch" else config.pairs_batch_size
        report["rounds"].append({
            "round": round_number, "kind": "random" if round_number == 0 else "hard_negatives",
            "epochs": len(history.history["loss"]), "steps": round_budget.steps, "batches": type(batches).__name__,
            "losses": [float(v) for v in history.history["loss"]], "seconds": seconds,
            "stopped_for_time": round_budget.stopped_for_time, "final_learning_rate": final_learning_rate,
            "pairs_per_second": pairs_per_step * round_budget.steps / seconds,
        })
    report["confusers"] = confusers
    return model, report


def train_classifier_baseline(name: str, train_images: ArrayLike, train_labels: ArrayLike, test_images: ArrayLike,
                              test_labels: ArrayLike, epochs: int = 20, batch_size: int = 64,
                              learning_rate: float = 1e-3, seed: int = 0,
                              ks: Sequence[int] = (1, 5, 10)) -> tuple[keras.Model, dict[str, Any]]:
    """Train a baseline classifier on random crops; returns ``(model, figures)`` with top-k on the test set.

    Labels are mapped to 0..C-1 in sorted order of the training labels; test images of classes
    absent from training count as errors.
    """
    if name not in BASELINES:
        raise ValueError(f"Unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    train_images = check_images(train_images, "train_images")
    classes, targets = np.unique(np.asarray(train_labels).reshape(-1), return_inverse=True)
    keras.utils.set_random_seed(seed)
    model = BASELINES[name](len(classes))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(seed)
    crop = RandomCrop()
    started = time.perf_counter()
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(targets))
        epoch_losses = []
        for start in range(0, len(order), batch_size):
            window = order[start:start + batch_size]
            batch = np.stack([crop(image, rng) for image in train_images[window]])
            epoch_losses.append(float(model.train_on_batch(batch, targets[window])))
        losses.append(float(np.mean(epoch_losses)))
    recalibrate_batch_norm(model, train_images, CROP_SIZE, seed=seed)
    seconds = time.perf_counter() - started
    test = center_crop(test_images)
    probabilities = np.concatenate([np.asarray(model(test[start:start + 256], training=False))
                                    for start in range(0, len(test), 256)])
    top = classes[np.argsort(-probabilities, axis=1)[:, :max(ks)]]
    hits = top == np.asarray(test_labels).reshape(-1)[:, None]
    figures = {f"top_{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}
    figures.update({"train_seconds": seconds, "losses": losses, "parameters": int(model.count_params())})
    return model, figures
