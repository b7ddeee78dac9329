"""Losses for Siamese training. Label convention: ``y_true = 1`` for a same pair, 0 otherwise.

- Binary cross-entropy on pair probabilities: Keras' own ``binary_crossentropy`` /
  ``BinaryCrossentropy`` (re-exported here so everything is in one place).
- Contrastive loss (Hadsell, Chopra & LeCun, 2006) on a distance: same pairs are pulled
  together, different pairs pushed at least ``margin`` apart.
"""

import keras
from keras import ops
from keras.losses import BinaryCrossentropy, binary_crossentropy  # noqa: F401 (re-export)

PACKAGE = "siamese_tf"


def contrastive_loss(y_true, distance, margin=1.0):
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
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss class around :func:`contrastive_loss` (label 1 = same pair)."""

    def __init__(self, margin=1.0, name="contrastive_loss", reduction="sum_over_batch_size", dtype=None):
        if not isinstance(margin, (int, float)) or margin <= 0:
            raise ValueError(f"margin must be a positive number, got {margin!r}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        return contrastive_loss(y_true, y_pred, margin=self.margin)

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin})
        return config
