"""CAPTCHA networks: the SiameseCCR residual branches (registered as ``siamese_ccr``,
``siamese_ccr_15/27/39``) and the LeNet-5 / CNN-11 classifier baselines.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from siamese_tf.embeddings import check_input_shape, register_embedding
from siamese_tf.layers import FusedBatchNormalization
from siamese_tf.studies.captcha.data import CROP_SIZE

__all__ = [
    "ARCHITECTURES",
    "BASELINES",
    "cnn11_classifier",
    "lenet5_classifier",
    "siamese_ccr_embedding",
]


ARCHITECTURES = ("siamese_ccr_15", "siamese_ccr_27", "siamese_ccr_39")


def lenet5_classifier(num_classes: int, input_shape: tuple[int, int, int] = (CROP_SIZE, CROP_SIZE, 1),
                      name: str = "lenet5") -> keras.Model:
    """LeNet-5-like classifier: Conv 6@5 - pool - Conv 16@5 - pool - Dense 120 - Dense 84 - softmax."""
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(6, 5, activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 5, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(120, activation="relu")(x)
    x = layers.Dense(84, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def cnn11_classifier(num_classes: int, input_shape: tuple[int, int, int] = (CROP_SIZE, CROP_SIZE, 1),
                     filters: Sequence[int] = (32, 64, 128, 256), name: str = "cnn11") -> keras.Model:
    """11-layer CNN classifier: 4 blocks of two 3x3 convolutions (batch norm, pooling), 2 dense + softmax."""
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for width in filters:
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = FusedBatchNormalization()(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(512, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


BASELINES = {"lenet5": lenet5_classifier, "cnn11": cnn11_classifier}


def _bottleneck_unit(x, width, stride, name):
    """ResNet bottleneck: 1x1 (width) - 3x3 (width, stride) - 1x1 (4 width), plus a shortcut."""
    out_channels = 4 * width
    shortcut = x
    if stride != 1 or x.shape[-1] != out_channels:
        shortcut = layers.Conv2D(out_channels, 1, strides=stride, use_bias=False, name=f"{name}_shortcut")(x)
        shortcut = FusedBatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    for position, (filters, kernel, step) in enumerate(((width, 1, 1), (width, 3, stride), (out_channels, 1, 1))):
        x = layers.Conv2D(filters, kernel, strides=step, padding="same", use_bias=False,
                          name=f"{name}_conv{position + 1}")(x)
        x = FusedBatchNormalization(name=f"{name}_bn{position + 1}")(x)
        if position < 2:
            x = layers.Activation("relu", name=f"{name}_relu{position + 1}")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(x)


def siamese_ccr_embedding(input_shape: tuple[int, int, int] = (44, 44, 1), units_per_stage: int = 1,
                          embedding_dim: int = 256, widths: Sequence[int] = (16, 32, 64, 128), stem_filters: int = 32,
                          activation: str | None = "sigmoid", first_stage_stride: int = 1,
                          name: str = "embedding") -> keras.Model:
    """SiameseCCR residual branch (Chen et al., Chinese CAPTCHA recognition): 44x44 gray in, n=256 out.

    Conv 3x3 stem - 4 stages of ``units_per_stage`` (k) bottleneck units (1x1, 3x3, 1x1 with
    4x expansion; stride 2 at the start of stages 2-4) - global average pooling - Dense(n).
    Weighted layers: 1 + 12 k + 1, plus the head's dense layer = 15, 27, 39 for k = 1, 2, 3
    (SiameseCCR-15/27/39). ``widths`` are the bottleneck widths per stage; the default is
    CPU-sized (about 0.8 M parameters at k = 1); (64, 128, 256, 512) is ResNet-50's.

    ``first_stage_stride`` 2 puts stride 2 in the first stage too (its 3x3 and shortcut), so only the
    stem sees the full 44x44 and every stage runs at half the paper's resolution (same weights): the
    full-resolution bottleneck is most of a training step on CPU, and a step took about a third of
    the time (0.09 s against 0.25 s for 64 crops on 2 cores, 2026-12-06). 1 is the paper's network.
    """
    check_input_shape(input_shape, 8, "siamese_ccr_embedding")
    if units_per_stage not in (1, 2, 3) and not (isinstance(units_per_stage, int) and units_per_stage > 0):
        raise ValueError(f"units_per_stage must be a positive integer (1, 2, 3 in the paper), got {units_per_stage!r}")
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
    if len(widths) != 4 or any(not isinstance(w, int) or w <= 0 for w in widths):
        raise ValueError(f"widths must be four positive integers, got {widths!r}")
    if type(first_stage_stride) is not int or first_stage_stride not in (1, 2):
        raise ValueError(f"first_stage_stride must be 1 (the paper) or 2, got {first_stage_stride!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(stem_filters, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = FusedBatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, width in enumerate(widths):
        for unit in range(units_per_stage):
            stride = 1 if unit > 0 else (2 if stage > 0 else first_stage_stride)
            x = _bottleneck_unit(x, width, stride, name=f"stage{stage + 1}_unit{unit + 1}")
    x = layers.GlobalAveragePooling2D(name="average_pool")(x)
    outputs = layers.Dense(embedding_dim, activation=activation, name="features")(x)
    return keras.Model(inputs, outputs, name=name)


def _siamese_ccr(units_per_stage):
    def build(input_shape=(44, 44, 1), **kwargs):
        return siamese_ccr_embedding(input_shape, units_per_stage=units_per_stage, **kwargs)

    build.__name__ = f"siamese_ccr_{3 + 12 * units_per_stage}_embedding"
    build.__doc__ = f"SiameseCCR-{3 + 12 * units_per_stage}: :func:`siamese_ccr_embedding` with k = {units_per_stage}."
    return build


register_embedding("siamese_ccr", siamese_ccr_embedding)
for _units_per_stage in (1, 2, 3):
    register_embedding(f"siamese_ccr_{3 + 12 * _units_per_stage}", _siamese_ccr(_units_per_stage))
