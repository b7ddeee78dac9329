"""Embedding networks: image in, feature vector out. Each returns a ``keras.Model``.

| name | from | default input | output |
|---|---|---|---|
| ``koch`` | Koch, Zemel & Salakhutdinov (2015); the face-verification seeds at 100x100x3 | 105x105x1 | 4096, sigmoid |
| ``small_cnn`` | this project: a small, fast CNN for CPU training | 64x64x1 | ``embedding_dim`` |
| ``mask_guided_sister`` | Alqasir et al. (VISAPP 2020), image vs binary mask | 64x64x3 | 2 |

More architectures (SiameseCCR, SigNet, DeepSign, MobileNetV2) come with their case studies.
"""

import keras
from keras import layers

from siamese_tf.layers import L2Normalization


def _check_input_shape(input_shape, minimum_side, name):
    if len(input_shape) != 3 or any(not isinstance(d, int) or d <= 0 for d in input_shape):
        raise ValueError(f"{name}: input_shape must be (height, width, channels), got {input_shape!r}")
    if min(input_shape[:2]) < minimum_side:
        raise ValueError(
            f"{name}: input of {input_shape[0]}x{input_shape[1]} is too small; this configuration "
            f"needs at least {minimum_side} pixels per side"
        )


def koch_embedding(input_shape=(105, 105, 1), padding="valid", l2_regularization=2e-4, name="embedding"):
    """The Koch et al. (2015) convolutional branch, as the seed face-verification apps use it.

    Conv 64@10x10 - pool - Conv 128@7x7 - pool - Conv 128@4x4 - pool - Conv 256@4x4 - Dense 4096
    (sigmoid). With ``padding="valid"`` the input needs at least 65 pixels per side; use
    ``padding="same"`` for smaller images.
    """
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    _check_input_shape(input_shape, 65 if padding == "valid" else 8, "koch_embedding")
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


def small_cnn_embedding(input_shape=(64, 64, 1), embedding_dim=128, filters=(32, 64, 128, 128),
                        normalize=False, dropout=0.0, name="embedding"):
    """A small CNN (conv-batchnorm-relu-pool blocks, global average pooling, dense) for CPU work.

    ``normalize=True`` puts the embedding on the unit sphere (good with a distance head).
    """
    _check_input_shape(input_shape, 2 ** len(filters), "small_cnn_embedding")
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for width in filters:
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(embedding_dim)(x)
    if normalize:
        x = L2Normalization()(x)
    return keras.Model(inputs, x, name=name)


def mask_guided_sister_embedding(input_shape=(64, 64, 3), embedding_dim=2, filters=(32, 64), dropout=0.0,
                                 name="embedding"):
    """The sister network of Alqasir, Muselet & Ducottet (VISAPP 2020), mask-guided classification.

    Conv 32@3x3 (ReLU) - Conv 64@3x3 (ReLU) - max-pool 2x2 - flatten - Dense(``embedding_dim``),
    a 2-D embedding by default so the image/mask space can be drawn as it is. Images and masks
    both go in as 3-channel images (masks repeated to 3 channels), so the branches share weights.
    """
    _check_input_shape(input_shape, 6, "mask_guided_sister_embedding")
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for width in filters:
        x = layers.Conv2D(width, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(embedding_dim)(x)
    return keras.Model(inputs, outputs, name=name)


EMBEDDINGS = {"koch": koch_embedding, "small_cnn": small_cnn_embedding}
EMBEDDINGS["mask_guided_sister"] = mask_guided_sister_embedding


def get_embedding(name, input_shape, **kwargs):
    """Build the embedding network called ``name`` (see the table above)."""
    if name not in EMBEDDINGS:
        raise ValueError(f"Unknown embedding {name!r}; choose one of {sorted(EMBEDDINGS)}")
    return EMBEDDINGS[name](input_shape=tuple(input_shape), **kwargs)
