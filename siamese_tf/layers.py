"""Siamese layers: the L1 distance of the seed notebooks and its relatives.

All are registered serializable Keras layers built on ``keras.ops`` (any backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
from keras import ops
from numpy.typing import ArrayLike

from siamese_tf import distances

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "CosineDistance",
    "CosineProxies",
    "EuclideanDistance",
    "FusedBatchNormalization",
    "L1Dist",
    "L2Normalization",
    "PACKAGE",
]

PACKAGE = "siamese_tf"


def _check_two_inputs(layer_name, inputs):
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        count = len(inputs) if isinstance(inputs, (list, tuple)) else "a single tensor"
        raise ValueError(
            f"{layer_name} expects exactly two tensors (anchor and other embedding); "
            f"got {count}: {inputs!r}"[:400]
        )
    first, second = inputs
    if tuple(first.shape) != tuple(second.shape):
        raise ValueError(
            f"{layer_name} expects two tensors of the same shape; got {tuple(first.shape)} "
            f"and {tuple(second.shape)}"
        )
    return first, second


class _PairLayer(keras.layers.Layer):
    """Shared plumbing: call with ``layer(a, b)`` or ``layer([a, b])``."""

    def __call__(self, *args, **kwargs):
        if len(args) == 2:
            args = ([args[0], args[1]],)
        elif len(args) != 1:
            raise ValueError(
                f"{type(self).__name__} expects two tensors, as layer(a, b) or layer([a, b]); "
                f"got {len(args)} positional arguments"
            )
        _check_two_inputs(type(self).__name__, args[0])
        return super().__call__(*args, **kwargs)

    def compute_output_shape(self, input_shape: Sequence[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        return tuple(input_shape[0])[:-1]


@keras.saving.register_keras_serializable(package=PACKAGE)
class L1Dist(_PairLayer):
    """Element-wise L1 distance ``|a - b|`` between two embeddings of the same shape.

    The distance layer of Koch et al. (2015) and of the face-verification seeds: a dense
    sigmoid layer on top turns it into the probability that the pair shows the same
    identity (label convention: 1 = same).
    """

    def call(self, inputs: Sequence[ArrayLike]) -> tf.Tensor:
        first, second = inputs
        return distances.l1_distance(first, second)

    def compute_output_shape(self, input_shape: Sequence[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package=PACKAGE)
class EuclideanDistance(_PairLayer):
    """Euclidean distance over the last axis; output drops that axis."""

    def call(self, inputs: Sequence[ArrayLike]) -> tf.Tensor:
        return distances.euclidean_distance(*inputs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CosineDistance(_PairLayer):
    """Cosine distance ``1 - cos`` over the last axis; output drops that axis."""

    def call(self, inputs: Sequence[ArrayLike]) -> tf.Tensor:
        return distances.cosine_distance(*inputs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class L2Normalization(keras.layers.Layer):
    """Scale each vector to unit length along ``axis`` (used by DeepSign-style embeddings)."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-12, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(axis, int):
            raise ValueError(f"axis must be an integer, got {axis!r}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}")
        self.axis = axis
        self.epsilon = epsilon

    def call(self, inputs: ArrayLike) -> tf.Tensor:
        # The length in float32 whatever the layer computes in (unit_vectors): in float16 the "unit"
        # vectors came out up to 15% longer in a half_precision_copy.
        return ops.cast(distances.unit_vectors(inputs, self.axis, self.epsilon), self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class CosineProxies(keras.layers.Layer):
    """Cosine similarity of each embedding to one learned proxy vector per class: (B, D) -> (B, C).

    The class-proxy head for :class:`siamese_tf.losses.AdditiveMarginSoftmaxLoss` (normalised
    softmax, CosFace): both the embeddings and the proxies are scaled to unit length, so the
    output is a cosine in [-1, 1]. Only training uses it; verification compares embeddings.
    """

    def __init__(self, num_classes: int, epsilon: float = 1e-12, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.num_classes = num_classes
        self.epsilon = epsilon

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.proxies = self.add_weight(name="proxies", shape=(int(input_shape[-1]), self.num_classes),
                                       initializer="glorot_uniform", trainable=True)

    def call(self, inputs: ArrayLike) -> tf.Tensor:
        # Lengths in float32 (unit_vectors): in float16 small components' squares underflow.
        return ops.matmul(ops.cast(distances.unit_vectors(inputs, -1, self.epsilon), self.compute_dtype),
                          ops.cast(distances.unit_vectors(self.proxies, 0, self.epsilon), self.compute_dtype))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.num_classes)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras's ``BatchNormalization``, trained with TensorFlow's fused kernel where it applies.

    Keras 3 normalises a batch with separate operations (mean, variance, scale and shift), and on
    TensorFlow their backward pass cost more than the convolutions around them: the Omniglot conv4
    network (28x28, 128 images) trained in 66-69 ms a step against 41-43 ms with the fused kernel,
    and 29-31 ms with no normalisation at all (2 CPU cores). This layer takes the fused kernel in
    training for 4-D channels-last float32 inputs on the TensorFlow backend (every network of the
    package) and is Keras's layer in every other case (JAX or another backend, inference, masks,
    renormalisation, synchronised or mixed-precision batches), with the same weights and config.
    The moving statistics are updated as Keras does, with the biased batch variance.

    ``FusedBatchNormalization.use_fused_kernel = False`` (before a model's training function is
    built) trains with Keras's operations instead, e.g. to compare the two
    (``benchmarks/throughput.py --sections batch_norm``).
    """

    use_fused_kernel: bool = True

    def call(self, inputs: ArrayLike, training: bool | None = None, mask: ArrayLike | None = None) -> tf.Tensor:
        if training and self.trainable and mask is None and self._fusable(inputs):
            return self._fused_training(inputs)
        return super().call(inputs, training=training, mask=mask)

    def _fusable(self, inputs):
        return (self.use_fused_kernel and keras.backend.backend() == "tensorflow" and not self.renorm
                and not self.synchronized and len(inputs.shape) == 4 and self.axis in (3, -1)
                and keras.backend.standardize_dtype(inputs.dtype) == "float32" and self.compute_dtype == "float32")

    def _fused_training(self, inputs):
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones((channels,), "float32")
        beta = self.beta if self.center else tf.zeros((channels,), "float32")
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel returns the unbiased batch variance (n - 1 in the denominator); Keras's moving
        # variance follows the biased one it normalises with.
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), "float32")
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs
