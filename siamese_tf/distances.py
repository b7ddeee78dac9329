"""Distances between embeddings, as pure ``keras.ops`` functions with a name lookup.

Element-wise functions (``l1_distance``) keep the last axis; reducing functions
(``euclidean_distance``, ``cosine_distance``) sum over it. All broadcast, so a query of shape
(1, D) compares with a library of shape (M, D). ``pairwise_distances`` gives the full (N, M) matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import keras
from keras import ops
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "DISTANCES",
    "cosine_distance",
    "euclidean_distance",
    "get_distance",
    "l1_distance",
    "pairwise_cosine",
    "pairwise_distances",
    "pairwise_euclidean",
    "unit_vectors",
]

_EPSILON = 1e-9


def l1_distance(a: ArrayLike, b: ArrayLike) -> tf.Tensor:
    """Element-wise absolute difference ``|a - b|`` (the Koch / seed L1 layer)."""
    return ops.abs(ops.subtract(a, b))


def euclidean_distance(a: ArrayLike, b: ArrayLike, epsilon: float = _EPSILON) -> tf.Tensor:
    """Euclidean distance over the last axis; ``epsilon`` keeps the gradient finite at 0."""
    squared = ops.sum(ops.square(ops.subtract(a, b)), axis=-1)
    return ops.sqrt(ops.maximum(squared, epsilon))


def unit_vectors(values: ArrayLike, axis: int = -1, epsilon: float = 1e-12) -> tf.Tensor:
    """``values`` scaled to unit length along ``axis``, in their own dtype; ``epsilon`` is the
    smallest squared length divided by (an all-zero vector stays zero).

    The length is computed in float32 whatever the input's precision: in float16 the squares of
    small components underflow to 0 and ``epsilon`` rounds to 0, so a vector of 64 components of
    2e-4 came out of a float16 cosine 0.33 away from itself.
    """
    values = ops.convert_to_tensor(values)
    dtype = keras.backend.standardize_dtype(values.dtype)
    wide = ops.cast(values, "float64" if dtype == "float64" else "float32")
    length = ops.sqrt(ops.maximum(ops.sum(ops.square(wide), axis=axis, keepdims=True), epsilon))
    return ops.cast(wide / length, dtype)


def cosine_distance(a: ArrayLike, b: ArrayLike, epsilon: float = _EPSILON) -> tf.Tensor:
    """``1 - cos(a, b)`` over the last axis: 0 for the same direction, 2 for opposite.
    ``epsilon``: the smallest length divided by (see :func:`unit_vectors`)."""
    a, b = unit_vectors(a, epsilon=epsilon ** 2), unit_vectors(b, epsilon=epsilon ** 2)
    return 1.0 - ops.sum(a * b, axis=-1)


def pairwise_euclidean(a: ArrayLike, b: ArrayLike, epsilon: float = _EPSILON) -> tf.Tensor:
    """(N, D) x (M, D) -> (N, M) Euclidean distances by one matrix product."""
    squared = (
        ops.sum(ops.square(a), axis=-1, keepdims=True)
        - 2.0 * ops.matmul(a, ops.transpose(b))
        + ops.transpose(ops.sum(ops.square(b), axis=-1, keepdims=True))
    )
    return ops.sqrt(ops.maximum(squared, epsilon))


def pairwise_cosine(a: ArrayLike, b: ArrayLike, epsilon: float = _EPSILON) -> tf.Tensor:
    """(N, D) x (M, D) -> (N, M) cosine distances by one matrix product."""
    a, b = unit_vectors(a, epsilon=epsilon ** 2), unit_vectors(b, epsilon=epsilon ** 2)
    return 1.0 - ops.matmul(a, ops.transpose(b))


DISTANCES = {
    "euclidean": (euclidean_distance, pairwise_euclidean),
    "cosine": (cosine_distance, pairwise_cosine),
}


def get_distance(name: str) -> Callable[..., tf.Tensor]:
    """Return the reducing distance function called ``name`` ("euclidean" or "cosine")."""
    return _lookup(name)[0]


def pairwise_distances(a: ArrayLike, b: ArrayLike, metric: str = "euclidean") -> tf.Tensor:
    """Distance matrix between rows of ``a`` (N, D) and rows of ``b`` (M, D)."""
    return _lookup(metric)[1](a, b)


def _lookup(name):
    if not isinstance(name, str) or name.lower() not in DISTANCES:
        raise ValueError(f"Unknown distance {name!r}; choose one of {sorted(DISTANCES)}")
    return DISTANCES[name.lower()]
