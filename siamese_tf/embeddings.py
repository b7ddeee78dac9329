"""Embedding networks: image in, feature vector out. Each returns a ``keras.Model``.

| name | from | default input | output |
|---|---|---|---|
| ``koch`` | Koch, Zemel & Salakhutdinov (2015); the face-verification seeds at 100x100x3 | 105x105x1 | 4096, sigmoid |
| ``small_cnn`` | this project: a small, fast CNN for CPU training | 64x64x1 | ``embedding_dim`` |

The case studies register their own networks by name with :func:`register_embedding`
(``signet``, ``deepsign``, ``mobilenet_v2`` in :mod:`siamese_tf.studies.signatures`;
``siamese_ccr`` and ``siamese_ccr_15/27/39`` in :mod:`siamese_tf.studies.captcha`;
``mask_guided_sister`` in :mod:`siamese_tf.studies.mask_guided`); :func:`get_embedding` builds any
registered name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import layers

from siamese_tf.layers import FusedBatchNormalization, L2Normalization

__all__ = [
    "EMBEDDINGS",
    "check_input_shape",
    "get_embedding",
    "koch_embedding",
    "register_embedding",
    "small_cnn_embedding",
]


def check_input_shape(input_shape: Sequence[int], minimum_side: int, name: str) -> None:
    if len(input_shape) != 3 or any(not isinstance(d, int) or d <= 0 for d in input_shape):
        raise ValueError(f"{name}: input_shape must be (height, width, channels), got {input_shape!r}")
    if min(input_shape[:2]) < minimum_side:
        raise ValueError(
            f"{name}: input of {input_shape[0]}x{input_shape[1]} is too small; this configuration "
            f"needs at least {minimum_side} pixels per side"
        )


def koch_embedding(input_shape: tuple[int, int, int] = (105, 105, 1), padding: str = "valid",
                   l2_regularization: float = 2e-4, name: str = "embedding") -> keras.Model:
    """The Koch et al. (2015) convolutional branch, as the seed face-verification apps use it.

    Conv 64@10x10 - pool - Conv 128@7x7 - pool - Conv 128@4x4 - pool - Conv 256@4x4 - Dense 4096
    (sigmoid). With ``padding="valid"`` the input needs at least 65 pixels per side; use
    ``padding="same"`` for smaller images.
    """
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    check_input_shape(input_shape, 65 if padding == "valid" else 8, "koch_embedding")
    regularizer = keras.regularizers.l2(l2_regularization) if l2_regularization else None
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for filters, kernel in ((64, 10), (128, 7), (128, 4)):
        x = layers.Conv2D(filters, kernel, activation="relu", padding=padding, kernel_regularizer=regularizer)(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(256, 4, activation="relu", padding=padding, kernel_regularizer=regularizer)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(4096, activation="sigmoid", kernel_regularizer=regularizer)(x)
    return keras.Model(inputs, outputs, name=name)


def small_cnn_embedding(input_shape: tuple[int, int, int] = (64, 64, 1), embedding_dim: int = 128,
                        filters: Sequence[int] = (32, 64, 128, 128), normalize: bool = False, dropout: float = 0.0,
                        batch_norm_momentum: float = 0.9, name: str = "embedding") -> keras.Model:
    """A small CNN (conv-batchnorm-relu-pool blocks, global average pooling, dense) for CPU work.

    ``normalize=True`` puts the embedding on the unit sphere (good with a distance head).
    ``batch_norm_momentum`` is 0.9 rather than Keras' 0.99: short CPU runs take a few hundred
    steps, and with 0.99 the statistics used at inference are still mostly their initial values.
    """
    check_input_shape(input_shape, 2 ** len(filters), "small_cnn_embedding")
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for width in filters:
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = FusedBatchNormalization(momentum=batch_norm_momentum)(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(embedding_dim)(x)
    if normalize:
        x = L2Normalization()(x)
    return keras.Model(inputs, x, name=name)


EMBEDDINGS = {"koch": koch_embedding, "small_cnn": small_cnn_embedding}


def register_embedding(name: str, builder: Callable[..., keras.Model] | None = None) -> Callable[..., Any]:
    """Make ``builder`` (``builder(input_shape=..., **kwargs) -> keras.Model``) available by ``name``.

    The case studies register their networks this way, so ``build_siamese_model("deepsign", ...)``
    works once :mod:`siamese_tf` is imported. Usable as a decorator (``@register_embedding("x")``).
    A name that is taken raises ``ValueError`` unless it names the same builder again.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"an embedding name must be a non-empty string, got {name!r}")
    if builder is None:
        return lambda function: register_embedding(name, function)
    if not callable(builder):
        raise ValueError(f"the builder of embedding {name!r} must be callable, got {type(builder).__name__}")
    registered = EMBEDDINGS.get(name)
    if registered is not None and registered is not builder and registered.__qualname__ != builder.__qualname__:
        raise ValueError(f"embedding name {name!r} is taken by {registered.__module__}.{registered.__qualname__}")
    EMBEDDINGS[name] = builder
    return builder


def get_embedding(name: str, input_shape: Sequence[int], **kwargs: Any) -> keras.Model:
    """Build the embedding network called ``name`` (see the table above)."""
    if name not in EMBEDDINGS:
        raise ValueError(f"Unknown embedding {name!r}; choose one of {sorted(EMBEDDINGS)}")
    return EMBEDDINGS[name](input_shape=tuple(input_shape), **kwargs)
