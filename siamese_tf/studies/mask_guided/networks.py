"""Mask-guided networks: the sister embedding (Alqasir et al., VISAPP 2020) and the same network as a plain
classifier baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from siamese_tf.embeddings import check_input_shape, register_embedding
from siamese_tf.studies.mask_guided.data import CLASS_NAMES

__all__ = [
    "build_classifier",
    "mask_guided_sister_embedding",
]


def build_classifier(image_shape: tuple[int, int, int] = (64, 64, 3), learning_rate: float = 1e-3,
                     name: str = "mask_free_classifier") -> keras.Model:
    """The same sister network, its 2-D output read as class logits (softmax): no masks at all."""
    trunk = mask_guided_sister_embedding(tuple(image_shape), embedding_dim=len(CLASS_NAMES), name="trunk")
    outputs = keras.layers.Softmax(name="class_probabilities")(trunk.outputs[0])
    model = keras.Model(trunk.inputs[0], outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def mask_guided_sister_embedding(input_shape: tuple[int, int, int] = (64, 64, 3), embedding_dim: int = 2,
                                 filters: Sequence[int] = (32, 64), dropout: float = 0.0,
                                 name: str = "embedding") -> keras.Model:
    """The sister network of Alqasir, Muselet & Ducottet (VISAPP 2020), mask-guided classification.

    Conv 32@3x3 (ReLU) - Conv 64@3x3 (ReLU) - max-pool 2x2 - flatten - Dense(``embedding_dim``),
    a 2-D embedding by default so the image/mask space can be drawn as it is. Images and masks
    both go in as 3-channel images (masks repeated to 3 channels), so the branches share weights.
    """
    check_input_shape(input_shape, 6, "mask_guided_sister_embedding")
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


register_embedding("mask_guided_sister", mask_guided_sister_embedding)
