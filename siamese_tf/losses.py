"""Losses for Siamese training. Label convention: ``y_true = 1`` for a same pair, 0 otherwise.

- Binary cross-entropy on pair probabilities: Keras' own ``binary_crossentropy`` /
  ``BinaryCrossentropy`` (re-exported here so everything is in one place).
- Contrastive loss (Hadsell, Chopra & LeCun, 2006) on a distance: same pairs are pulled
  together, different pairs pushed at least ``margin`` apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import ops
from keras.losses import BinaryCrossentropy, binary_crossentropy  # noqa: F401 (re-export)
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "AdditiveMarginSoftmaxLoss",
    "ContrastiveLoss",
    "InBatchLoss",
    "PACKAGE",
    "PairBinaryCrossentropy",
    "TRIPLET_MINING",
    "additive_margin_softmax_loss",
    "contrastive_loss",
    "in_batch_binary_crossentropy",
    "in_batch_contrastive",
    "prototypical_loss",
    "triplet_loss",
]

PACKAGE = "siamese_tf"


def contrastive_loss(y_true: ArrayLike, distance: ArrayLike, margin: float = 1.0) -> tf.Tensor:
    """Per-pair contrastive loss ``0.5 * [y d^2 + (1 - y) max(margin - d, 0)^2]``.

    Args:
        y_true: pair labels, 1 = same, 0 = different; any shape broadcastable to ``distance``.
        distance: non-negative distances between the two embeddings of each pair.
        margin: distance beyond which a different pair costs nothing.
    """
    distance = ops.convert_to_tensor(distance)
    y_true = ops.cast(ops.reshape(y_true, ops.shape(distance)), distance.dtype)
    same_term = y_true * ops.square(distance)
    different_term = (1.0 - y_true) * ops.square(ops.maximum(margin - distance, 0.0))
    return 0.5 * (same_term + different_term)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PairBinaryCrossentropy(BinaryCrossentropy):
    """Keras' binary cross-entropy for a vector of pair probabilities (label 1 = same).

    Keras averages the last axis first, so (B,) labels would give one scalar, which Keras does not
    divide between ``tf.distribute`` replicas (each replica's gradient would count fully: twice
    the step on two devices). A trailing axis makes it one loss per pair, reduced and scaled per
    replica as usual; on one device the value is the same.
    """

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> tf.Tensor:
        y_pred = ops.convert_to_tensor(y_pred)
        if len(y_pred.shape) == 1:
            y_pred = ops.expand_dims(y_pred, -1)
            y_true = ops.reshape(y_true, (-1, 1))
        return super().call(y_true, y_pred)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss class around :func:`contrastive_loss` (label 1 = same pair)."""

    def __init__(self, margin: float = 1.0, name: str = "contrastive_loss", reduction: str = "sum_over_batch_size",
                 dtype: str | None = None) -> None:
        if not isinstance(margin, (int, float)) or margin <= 0:
            raise ValueError(f"margin must be a positive number, got {margin!r}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = float(margin)

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> tf.Tensor:
        return contrastive_loss(y_true, y_pred, margin=self.margin)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"margin": self.margin})
        return config


def _scale_for_replicas(value):
    """``value / replicas`` inside a multi-replica ``tf.distribute`` strategy, else ``value``."""
    if keras.backend.backend() != "tensorflow":
        return value
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value if replicas == 1 else value * ops.cast(1.0 / replicas, value.dtype)


# --- In-batch losses: every pair of a class-balanced batch, scored from one embedding pass ---
#
# ``y_true`` holds class labels (B,), ``y_pred`` the (B, B) score matrix of the batch, as a
# SiameseModel returns when called on a single batch of images. Pair label (i, j) is 1 when the
# classes match (1 = same); the diagonal (an image with itself) is never used.


def _pair_masks(class_labels, batch_size):
    class_labels = ops.reshape(class_labels, (-1,))
    same = ops.equal(ops.expand_dims(class_labels, 1), ops.expand_dims(class_labels, 0))
    not_self = ops.logical_not(ops.eye(batch_size, dtype="bool"))
    positive = ops.logical_and(same, not_self)
    negative = ops.logical_not(same)
    return positive, negative


def _masked_mean(values, mask):
    mask = ops.cast(mask, values.dtype)
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def in_batch_binary_crossentropy(class_labels: ArrayLike, probabilities: ArrayLike, epsilon: float = 1e-7) -> tf.Tensor:
    """Balanced binary cross-entropy over all pairs of a batch; returns a scalar.

    Same pairs and different pairs weigh half each, however many of each the batch holds.
    """
    probabilities = ops.clip(probabilities, epsilon, 1.0 - epsilon)
    positive, negative = _pair_masks(class_labels, ops.shape(probabilities)[0])
    same_term = _masked_mean(-ops.log(probabilities), positive)
    different_term = _masked_mean(-ops.log(1.0 - probabilities), negative)
    return 0.5 * (same_term + different_term)


def in_batch_contrastive(class_labels: ArrayLike, distances: ArrayLike, margin: float = 1.0) -> tf.Tensor:
    """Balanced contrastive loss over all pairs of a batch; returns a scalar."""
    positive, negative = _pair_masks(class_labels, ops.shape(distances)[0])
    same_term = _masked_mean(0.5 * ops.square(distances), positive)
    different_term = _masked_mean(0.5 * ops.square(ops.maximum(margin - distances, 0.0)), negative)
    return 0.5 * (same_term + different_term)


TRIPLET_MINING = ("batch_all", "batch_hard", "semi_hard")


def triplet_loss(class_labels: ArrayLike, distances: ArrayLike, margin: float = 0.2,
                 mining: str = "batch_hard") -> tf.Tensor:
    """Triplet loss ``max(d(a, p) - d(a, n) + margin, 0)`` from a (B, B) distance matrix.

    Mining (Hermans et al. 2017; Schroff et al. 2015):
    - ``batch_all``: mean over all valid triplets that still cost something;
    - ``batch_hard``: per anchor, its farthest positive against its closest negative;
    - ``semi_hard``: per anchor and positive, the closest negative farther than the positive
      (falling back to the farthest negative when there is none).
    Returns a scalar.
    """
    if mining not in TRIPLET_MINING:
        raise ValueError(f"Unknown triplet mining {mining!r}; choose one of {TRIPLET_MINING}")
    positive, negative = _pair_masks(class_labels, ops.shape(distances)[0])
    positive_f = ops.cast(positive, distances.dtype)
    negative_f = ops.cast(negative, distances.dtype)
    large = ops.max(distances) + margin + 1.0
    if mining == "batch_hard":
        hardest_positive = ops.max(distances * positive_f, axis=1)
        hardest_negative = ops.min(distances + large * (1.0 - negative_f), axis=1)
        has_both = ops.logical_and(ops.any(positive, axis=1), ops.any(negative, axis=1))
        per_anchor = ops.maximum(hardest_positive - hardest_negative + margin, 0.0)
        return _masked_mean(per_anchor, has_both)
    # (anchor, positive, negative) cube of margins
    anchor_positive = ops.expand_dims(distances, 2)
    anchor_negative = ops.expand_dims(distances, 1)
    valid = ops.expand_dims(positive_f, 2) * ops.expand_dims(negative_f, 1)
    if mining == "batch_all":
        losses = ops.maximum(anchor_positive - anchor_negative + margin, 0.0) * valid
        active = ops.cast(losses > 1e-12, distances.dtype)
        return ops.sum(losses) / ops.maximum(ops.sum(active), 1.0)
    # semi-hard: negatives farther than the positive, but inside the margin
    farther = ops.cast(anchor_negative > anchor_positive, distances.dtype) * valid
    semi_hard_negative = ops.min(anchor_negative + large * (1.0 - farther), axis=2)
    farthest_negative = ops.max(distances * negative_f, axis=1, keepdims=True)
    has_semi_hard = ops.sum(farther, axis=2) > 0
    chosen = ops.where(has_semi_hard, semi_hard_negative, farthest_negative)
    losses = ops.maximum(distances - chosen + margin, 0.0)
    return _masked_mean(losses, positive)


def prototypical_loss(class_labels: ArrayLike, distances: ArrayLike) -> tf.Tensor:
    """Prototypical-network loss (Snell et al. 2017) from a (B, B) Euclidean distance matrix.

    Each image is a query; each class of the batch is represented by the mean embedding
    (prototype) of its images, leaving the query itself out of its own class. The loss is the
    cross-entropy of ``softmax(-||query - prototype||^2)`` over the batch's classes.

    Prototypes are never formed: for a set S the squared distance of x to S's mean is
    ``mean_k d2(x, s_k) - sum_{k,l} d2(s_k, s_l) / (2 |S|^2)``, so the distance matrix of the
    batch is enough (any head that returns Euclidean distances works). Every class must hold the
    same number of images (as :class:`~siamese_tf.samplers.ClassBalancedBatches` makes), at least
    two. Returns a scalar.
    """
    class_labels = ops.reshape(class_labels, (-1,))
    squared = ops.square(distances)
    same = ops.cast(ops.equal(ops.expand_dims(class_labels, 1), ops.expand_dims(class_labels, 0)), squared.dtype)
    # Column j stands for j's class; own_class[i, j] = 1 when i belongs to it (i is left out).
    to_class = ops.matmul(squared, same)  # [i, j]: sum of d2(i, k) over k in class(j)
    class_sizes = ops.sum(same, axis=0, keepdims=True)  # (1, B)
    within = ops.sum(ops.matmul(same, squared) * same, axis=1)  # [j]: sum over k, l in class(j)
    counts = ops.maximum(class_sizes - same, 1.0)
    pair_sums = ops.expand_dims(within, 0) - 2.0 * same * to_class
    to_prototype = to_class / counts - pair_sums / (2.0 * ops.square(counts))
    # Each class fills as many columns as it has images, all equal: with equal class sizes the
    # softmax over columns is the softmax over classes.
    logits = -to_prototype
    own = ops.logsumexp(ops.where(same > 0, logits, ops.cast(-1e9, logits.dtype)), axis=1)
    return ops.mean(ops.logsumexp(logits, axis=1) - own)


@keras.saving.register_keras_serializable(package=PACKAGE)
class InBatchLoss(keras.losses.Loss):
    """Loss on a batch's (B, B) score matrix with class labels as ``y_true``.

    ``kind`` is "binary_crossentropy" (probability heads), "contrastive", "triplet" or
    "prototypical" (Euclidean distance heads; :func:`prototypical_loss`); ``mining`` applies
    to "triplet".
    """

    KINDS = ("binary_crossentropy", "contrastive", "triplet", "prototypical")

    def __init__(self, kind: str = "binary_crossentropy", margin: float | None = None, mining: str = "batch_hard",
                 name: str | None = None, reduction: str = "sum_over_batch_size", dtype: str | None = None) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"Unknown in-batch loss {kind!r}; choose one of {self.KINDS}")
        if kind == "triplet" and mining not in TRIPLET_MINING:
            raise ValueError(f"Unknown triplet mining {mining!r}; choose one of {TRIPLET_MINING}")
        if margin is None:
            margin = 0.2 if kind == "triplet" else 1.0
        if not isinstance(margin, (int, float)) or margin <= 0:
            raise ValueError(f"margin must be a positive number, got {margin!r}")
        super().__init__(name=name or f"in_batch_{kind}", reduction=reduction, dtype=dtype)
        self.kind, self.margin, self.mining = kind, float(margin), mining

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> tf.Tensor:
        if self.kind == "binary_crossentropy":
            value = in_batch_binary_crossentropy(y_true, y_pred)
        elif self.kind == "contrastive":
            value = in_batch_contrastive(y_true, y_pred, self.margin)
        elif self.kind == "prototypical":
            value = prototypical_loss(y_true, y_pred)
        else:
            value = triplet_loss(y_true, y_pred, self.margin, self.mining)
        # Already a scalar, which Keras leaves unscaled: divide it between tf.distribute replicas
        # here, as Keras does for per-sample losses (a no-op on one device).
        return _scale_for_replicas(value)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"kind": self.kind, "margin": self.margin, "mining": self.mining})
        return config


def additive_margin_softmax_loss(class_labels: ArrayLike, cosines: ArrayLike, scale: float = 30.0,
                                 margin: float = 0.35) -> tf.Tensor:
    """Normalised softmax with an additive cosine margin (AM-Softmax / CosFace), per example.

    ``cosines`` (B, C) are the cosine similarities of each embedding to every class proxy
    (:class:`siamese_tf.layers.CosineProxies`). The true class's cosine is lowered by ``margin``
    before the scaled softmax, so an embedding must beat every other class by that margin:
    ``-log(exp(s (cos_y - m)) / (exp(s (cos_y - m)) + sum_{j != y} exp(s cos_j)))``. Every
    training class is seen in every step, not only the few a pair or triplet batch holds.

    Args:
        class_labels: (B,) integer class ids in ``0..C-1``.
        cosines: (B, C) cosines in [-1, 1].
        scale: ``s``, the inverse temperature (30 for a few thousand classes, as in CosFace).
        margin: ``m``, the additive cosine margin; 0 gives the plain normalised softmax.
    """
    cosines = ops.convert_to_tensor(cosines)
    labels = ops.cast(ops.reshape(class_labels, (-1,)), "int32")
    one_hot = ops.one_hot(labels, ops.shape(cosines)[-1], dtype=cosines.dtype)
    logits = scale * (cosines - margin * one_hot)
    return keras.losses.categorical_crossentropy(one_hot, logits, from_logits=True)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdditiveMarginSoftmaxLoss(keras.losses.Loss):
    """Keras loss wrapper of :func:`additive_margin_softmax_loss` (``y_true``: class ids)."""

    def __init__(self, scale: float = 30.0, margin: float = 0.35, name: str = "additive_margin_softmax",
                 **kwargs: Any) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        if not 0 <= margin < 1:
            raise ValueError(f"margin must lie in [0, 1), got {margin!r}")
        super().__init__(name=name, **kwargs)
        self.scale = float(scale)
        self.margin = float(margin)

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> tf.Tensor:
        return additive_margin_softmax_loss(y_true, y_pred, self.scale, self.margin)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "margin": self.margin}
