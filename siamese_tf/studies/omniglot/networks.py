"""Omniglot networks: Koch et al.'s Siamese network and the 4-block conv net that trains well on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from siamese_tf.models import SiameseModel

__all__ = [
    "build_conv4_model",
    "build_koch_model",
]



def build_koch_model(input_shape: tuple[int, int, int] = (105, 105, 1), padding: str = "valid") -> SiameseModel:
    """The faithful reproduction: Koch et al.'s network (38.95 M parameters at 105x105) with the
    L1 head ``sigmoid(w . |a - b| + b)``; train with binary cross-entropy on verification pairs."""
    from siamese_tf.models import build_siamese_model

    return build_siamese_model("koch", "l1", input_shape=input_shape, name="koch_siamese", padding=padding)


def build_conv4_model(input_shape: tuple[int, int, int] = (28, 28, 1), embedding_dim: int = 64,
                      filters: Sequence[int] = (64, 64, 64, 64), batch_norm_momentum: float = 0.9,
                      head: str = "euclidean") -> SiameseModel:
    """A 4-block conv net (3x3 conv, batch norm, ReLU, 2x2 pool) with a distance head.

    ``head``: "euclidean" (in-batch losses on distances) or "cosine" (what class-proxy training
    optimises: the angle between embeddings).

    ``batch_norm_momentum`` 0.9 instead of Keras's 0.99: short CPU runs take a few hundred steps,
    and with 0.99 the moving statistics used at evaluation would still be mostly their initial
    values by then.
    """
    import keras

    from siamese_tf.models import build_siamese_model

    if head not in ("euclidean", "cosine"):
        raise ValueError(f"head must be 'euclidean' or 'cosine', got {head!r}")
    model = build_siamese_model("small_cnn", head, input_shape=input_shape, name="conv4_siamese",
                                embedding_dim=embedding_dim, filters=tuple(filters))
    for layer in model.embedding.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(batch_norm_momentum)
    return model
