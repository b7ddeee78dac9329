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
                        normalize=False, dropout=0.0, batch_norm_momentum=0.9, name="embedding"):
    """A small CNN (conv-batchnorm-relu-pool blocks, global average pooling, dense) for CPU work.

    ``normalize=True`` puts the embedding on the unit sphere (good with a distance head).
    ``batch_norm_momentum`` is 0.9 rather than Keras' 0.99: short CPU runs take a few hundred
    steps, and with 0.99 the statistics used at inference are still mostly their initial values.
    """
    _check_input_shape(input_shape, 2 ** len(filters), "small_cnn_embedding")
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for width in filters:
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=batch_norm_momentum)(x)
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


# --- signature verification (Dey et al. 2017 SigNet; Wang & Ko DeepSign; MobileNetV2 branch) ---


@keras.saving.register_keras_serializable(package="siamese_tf")
class LocalResponseNormalization(layers.Layer):
    """Local response normalisation across channels (AlexNet, SigNet); no weights.

    ``x / (bias + alpha * sum of x^2 over depth_radius neighbouring channels) ** beta``, as
    ``tf.nn.local_response_normalization``; SigNet uses depth_radius 2 (5 channels), alpha 1e-4,
    beta 0.75, bias 2.
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        import tensorflow as tf

        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"depth_radius": self.depth_radius, "bias": self.bias, "alpha": self.alpha, "beta": self.beta})
        return config

def signet_embedding(input_shape=(155, 220, 1), embedding_dim=128, dropout=True, name="embedding"):
    """SigNet's convolutional branch (Dey et al. 2017, Table 1), 155x220x1 by default.

    Conv 96@11x11 stride 4 - LRN - pool 3/2 - Conv 256@5x5 - LRN - pool 3/2 - dropout 0.3 -
    Conv 384@3x3 - Conv 256@3x3 - pool 3/2 - dropout 0.3 - Dense 1024 - dropout 0.5 - Dense 128.
    At 155x220 this has 6,460,864 parameters, the 6.46 M of the paper (stride 4 in the first
    convolution is what gives that count). Local response normalisation has no Keras layer, so
    ``tf.nn.local_response_normalization`` (no weights) stands in. Smaller inputs (for CPU
    training) shrink only the first dense layer; the input needs at least 67 pixels per side.
    """
    _check_input_shape(input_shape, 67, "signet_embedding")
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inputs)
    x = LocalResponseNormalization(name="lrn1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(256, 5, padding="same", activation="relu", name="conv2")(x)
    x = LocalResponseNormalization(name="lrn2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    if dropout:
        x = layers.Dropout(0.3)(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool3")(x)
    if dropout:
        x = layers.Dropout(0.3)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu", name="fc1")(x)
    if dropout:
        x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(embedding_dim, name="fc2")(x)
    return keras.Model(inputs, outputs, name=name)


def _fire_block(x, squeeze, expand, name, batch_norm_momentum=0.99):
    """SqueezeNet Fire module: 1x1 squeeze, then 1x1 and 3x3 expands side by side (2 x expand channels)."""
    squeezed = layers.Conv2D(squeeze, 1, activation="relu", name=f"{name}_squeeze")(x)
    expand_1x1 = layers.Conv2D(expand, 1, activation="relu", name=f"{name}_expand1x1")(squeezed)
    expand_3x3 = layers.Conv2D(expand, 3, padding="same", activation="relu", name=f"{name}_expand3x3")(squeezed)
    x = layers.Concatenate(name=f"{name}_concat")([expand_1x1, expand_3x3])
    return layers.BatchNormalization(momentum=batch_norm_momentum, name=f"{name}_bn")(x)


# (squeeze, expand) per Fire block; "pool" marks a 3x3/2 max pooling.
DEEPSIGN_FIRE_PLAN = ((16, 64), (16, 64), "pool", (32, 128), (32, 128), "pool", (32, 128), (32, 128))


def deepsign_embedding(input_shape=(155, 220, 1), embedding_dim=128, fire_plan=DEEPSIGN_FIRE_PLAN,
                       dropout=0.2, batch_norm_momentum=0.9, name="embedding"):
    """DeepSign-style branch (Wang & Ko): SqueezeNet Fire blocks, global average pooling, L2-normalised output.

    Conv 64@3x3 stride 2 - pool 3/2 - Fire blocks of ``fire_plan`` with pools between them -
    dropout - Conv 1x1 to ``embedding_dim`` - global average pooling - L2 normalisation.
    With the default plan and 128-d output it has 256,416 parameters (253,728 trainable; the rest
    are batch-normalisation statistics), against the paper's 256,992 (1.1 MB). The parameter count does not depend on the input size; the input
    needs at least 32 pixels per side. Outputs lie on the unit sphere, so Euclidean distances
    are in [0, 2] and the contrastive margin of 1 sits in the middle.

    ``batch_norm_momentum`` is 0.9 rather than Keras's 0.99 for the same reason as in
    :func:`small_cnn_embedding`: CPU runs of a few hundred steps.
    """
    _check_input_shape(input_shape, 32, "deepsign_embedding")
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(64, 3, strides=2, activation="relu", name="conv1")(inputs)
    x = layers.BatchNormalization(momentum=batch_norm_momentum, name="conv1_bn")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    fire_number = 0
    for step in fire_plan:
        if step == "pool":
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
            continue
        fire_number += 1
        squeeze, expand = step
        x = _fire_block(x, squeeze, expand, name=f"fire{fire_number}", batch_norm_momentum=batch_norm_momentum)
    if dropout:
        x = layers.Dropout(dropout)(x)
    x = layers.Conv2D(embedding_dim, 1, name="conv_embedding")(x)
    x = layers.GlobalAveragePooling2D(name="average_pool")(x)
    outputs = L2Normalization(name="l2_normalize")(x)
    return keras.Model(inputs, outputs, name=name)


def mobilenet_v2_embedding(input_shape=(155, 220, 1), embedding_dim=128, alpha=1.0, weights=None,
                           name="embedding"):
    """MobileNetV2 (``keras.applications``) as a Siamese branch for 1-channel images.

    A 1x1 convolution turns the gray image into 3 channels (initialised to copy the gray value
    into R, G and B, then trained), rescales [0, 1] to MobileNetV2's [-1, 1], and global average
    pooling plus a dense layer give an L2-normalised ``embedding_dim`` vector.

    ``weights``: None (random initialisation), a path to a weights file for the MobileNetV2
    base (``include_top=False``, same ``alpha`` and channel count), or ``"imagenet"`` (downloads
    through Keras; needs a network). The embedding network's ``weights_source`` attribute says
    which one was used ("random", the file path or "imagenet"); it is not saved with the model.
    """
    _check_input_shape(input_shape, 32, "mobilenet_v2_embedding")
    if input_shape[2] != 1:
        raise ValueError(f"mobilenet_v2_embedding takes 1-channel images (it adds the 1->3 adapter), "
                         f"got {input_shape[2]} channels")
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
    if weights is not None and weights != "imagenet":
        from pathlib import Path

        if not Path(weights).is_file():
            raise FileNotFoundError(f"MobileNetV2 weights file not found: {weights}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(3, 1, kernel_initializer="ones", bias_initializer="zeros", name="gray_to_rgb")(inputs)
    x = layers.Rescaling(2.0, offset=-1.0, name="to_minus_one_one")(x)
    base = keras.applications.MobileNetV2(
        input_shape=input_shape[:2] + (3,), include_top=False, weights=weights, alpha=alpha, pooling="avg"
    )
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            # keras.applications uses momentum 0.999: the inference statistics would need thousands of
            # steps to settle, far more than a short training run gives them.
            layer.momentum = 0.9
    x = base(x)
    x = layers.Dense(embedding_dim, name="projection")(x)
    outputs = L2Normalization(name="l2_normalize")(x)
    model = keras.Model(inputs, outputs, name=name)
    model.weights_source = "random" if weights is None else str(weights)
    return model


EMBEDDINGS["signet"] = signet_embedding
EMBEDDINGS["deepsign"] = deepsign_embedding
EMBEDDINGS["mobilenet_v2"] = mobilenet_v2_embedding


# --- Chinese CAPTCHA recognition (Chen et al., SiameseCCR: residual branches 15/27/39) ---


def _bottleneck_unit(x, width, stride, name):
    """ResNet bottleneck: 1x1 (width) - 3x3 (width, stride) - 1x1 (4 width), plus a shortcut."""
    out_channels = 4 * width
    shortcut = x
    if stride != 1 or x.shape[-1] != out_channels:
        shortcut = layers.Conv2D(out_channels, 1, strides=stride, use_bias=False, name=f"{name}_shortcut")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    for position, (filters, kernel, step) in enumerate(((width, 1, 1), (width, 3, stride), (out_channels, 1, 1))):
        x = layers.Conv2D(filters, kernel, strides=step, padding="same", use_bias=False,
                          name=f"{name}_conv{position + 1}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{position + 1}")(x)
        if position < 2:
            x = layers.Activation("relu", name=f"{name}_relu{position + 1}")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(x)


def siamese_ccr_embedding(input_shape=(44, 44, 1), units_per_stage=1, embedding_dim=256,
                          widths=(16, 32, 64, 128), stem_filters=32, activation="sigmoid", name="embedding"):
    """SiameseCCR residual branch (Chen et al., Chinese CAPTCHA recognition): 44x44 gray in, n=256 out.

    Conv 3x3 stem - 4 stages of ``units_per_stage`` (k) bottleneck units (1x1, 3x3, 1x1 with
    4x expansion; stride 2 at the start of stages 2-4) - global average pooling - Dense(n).
    Weighted layers: 1 + 12 k + 1, plus the head's dense layer = 15, 27, 39 for k = 1, 2, 3
    (SiameseCCR-15/27/39). ``widths`` are the bottleneck widths per stage; the default is
    CPU-sized (about 0.8 M parameters at k = 1); (64, 128, 256, 512) is ResNet-50's.
    """
    _check_input_shape(input_shape, 8, "siamese_ccr_embedding")
    if units_per_stage not in (1, 2, 3) and not (isinstance(units_per_stage, int) and units_per_stage > 0):
        raise ValueError(f"units_per_stage must be a positive integer (1, 2, 3 in the paper), got {units_per_stage!r}")
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
    if len(widths) != 4 or any(not isinstance(w, int) or w <= 0 for w in widths):
        raise ValueError(f"widths must be four positive integers, got {widths!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(stem_filters, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, width in enumerate(widths):
        for unit in range(units_per_stage):
            stride = 2 if stage > 0 and unit == 0 else 1
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


EMBEDDINGS["siamese_ccr"] = siamese_ccr_embedding
EMBEDDINGS["siamese_ccr_15"] = _siamese_ccr(1)
EMBEDDINGS["siamese_ccr_27"] = _siamese_ccr(2)
EMBEDDINGS["siamese_ccr_39"] = _siamese_ccr(3)


def get_embedding(name, input_shape, **kwargs):
    """Build the embedding network called ``name`` (see the table above)."""
    if name not in EMBEDDINGS:
        raise ValueError(f"Unknown embedding {name!r}; choose one of {sorted(EMBEDDINGS)}")
    return EMBEDDINGS[name](input_shape=tuple(input_shape), **kwargs)
