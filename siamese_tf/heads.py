"""Similarity heads: what turns two embeddings into one score.

A head is kept apart from the embedding network (see :class:`siamese_tf.models.SiameseModel`),
so one query embedding can be scored against a library of precomputed embeddings without
re-embedding anything. Heads broadcast over leading axes: ``head(q[:, None], library[None])``
gives a (Q, M) score matrix.

Two kinds of output (``head.output_kind``):
- ``"probability"``: :class:`L1SimilarityHead`, ``sigmoid(w . |a - b| + b)``, higher = same
  (Koch et al. 2015 and the face-verification seeds; train with binary cross-entropy).
- ``"distance"``: :class:`DistanceHead`, Euclidean or cosine, lower = same (train with the
  contrastive loss).

Label convention: 1 = same. :func:`to_similarity` maps either kind to "higher = same".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from siamese_tf import distances

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "DistanceHead",
    "HEADS",
    "L1SimilarityHead",
    "PACKAGE",
    "get_head",
    "score_library",
    "to_similarity",
]

PACKAGE = "siamese_tf"


def _broadcast_shapes(first, second):
    """NumPy broadcasting of two shapes that may hold None (unknown) dimensions."""
    length = max(len(first), len(second))
    first = (1,) * (length - len(first)) + tuple(first)
    second = (1,) * (length - len(second)) + tuple(second)
    result = []
    for a, b in zip(first, second):
        if a == 1:
            result.append(b)
        elif b == 1 or a == b or b is None:
            result.append(a)
        elif a is None:
            result.append(b)
        else:
            raise ValueError(f"Shapes {first} and {second} do not broadcast")
    return tuple(result)


class _Head(keras.layers.Layer):
    output_kind = None

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and isinstance(args[0], (list, tuple)) and len(args[0]) == 2:
            args = tuple(args[0])
        if len(args) != 2:
            raise ValueError(
                f"{type(self).__name__} expects two embeddings, as head(a, b) or head([a, b]); "
                f"got {len(args)} arguments"
            )
        first, second = args
        if first.shape[-1] is not None and second.shape[-1] is not None and first.shape[-1] != second.shape[-1]:
            raise ValueError(
                f"{type(self).__name__}: embeddings must have the same size on the last axis; "
                f"got shapes {tuple(first.shape)} and {tuple(second.shape)}"
            )
        return super().__call__(first, second, **kwargs)

    def build(self, first_shape: tuple[int | None, ...], second_shape: tuple[int | None, ...]) -> None:
        self.built = True

    def compute_output_shape(self, first_shape: tuple[int | None, ...],
                             second_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return _broadcast_shapes(tuple(first_shape[:-1]), tuple(second_shape[:-1]))

    def score_matrix(self, queries: ArrayLike, library: ArrayLike) -> tf.Tensor:
        """Scores of every query (Q, D) against every library entry (M, D): shape (Q, M)."""
        return self(ops.expand_dims(queries, 1), ops.expand_dims(library, 0))


@keras.saving.register_keras_serializable(package=PACKAGE)
class L1SimilarityHead(_Head):
    """``sigmoid(Dense(1)(|a - b|))``: probability that the pair is the same (1 = same)."""

    output_kind = "probability"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.classifier = keras.layers.Dense(1, activation="sigmoid", name="classifier")

    def build(self, first_shape: tuple[int | None, ...], second_shape: tuple[int | None, ...]) -> None:
        self.classifier.build(tuple(first_shape[:-1]) + (first_shape[-1],))
        self.built = True

    def call(self, first: ArrayLike, second: ArrayLike) -> tf.Tensor:
        return ops.squeeze(self.classifier(distances.l1_distance(first, second)), axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DistanceHead(_Head):
    """Distance between the embeddings ("euclidean" or "cosine"); lower = same."""

    output_kind = "distance"

    def __init__(self, metric: str = "euclidean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.distance = distances.get_distance(metric)  # raises on an unknown name
        self.metric = metric.lower()

    def call(self, first: ArrayLike, second: ArrayLike) -> tf.Tensor:
        return self.distance(first, second)

    def score_matrix(self, queries: ArrayLike, library: ArrayLike) -> tf.Tensor:
        # One matrix product instead of a (Q, M, D) broadcast.
        return distances.pairwise_distances(queries, library, self.metric)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"metric": self.metric})
        return config


HEADS = {"l1": L1SimilarityHead, "euclidean": DistanceHead, "cosine": DistanceHead}


def get_head(name: str) -> L1SimilarityHead | DistanceHead:
    """Build a head by name: "l1" (BCE training), "euclidean" or "cosine" (contrastive)."""
    if not isinstance(name, str) or name.lower() not in HEADS:
        raise ValueError(f"Unknown head {name!r}; choose one of {sorted(HEADS)}")
    name = name.lower()
    return L1SimilarityHead(name="head") if name == "l1" else DistanceHead(name, name="head")


def to_similarity(scores: ArrayLike, head: keras.Layer | str) -> np.ndarray:
    """Map head outputs to similarities, higher = same (distances are negated)."""
    kind = head if isinstance(head, str) else getattr(head, "output_kind", None)
    scores = np.asarray(scores, dtype=np.float64)
    if kind == "probability":
        return scores
    if kind == "distance":
        return -scores
    raise ValueError(f"Cannot tell whether higher or lower means 'same' for head {head!r}")


def score_library(head: keras.Layer, query_embeddings: ArrayLike, library_embeddings: ArrayLike,
                  chunk_size: int = 256) -> np.ndarray:
    """Score each query embedding (Q, D) against a library (M, D); returns a (Q, M) numpy array.

    Queries go through in chunks so that the (chunk, M, D) broadcast of the L1 head fits memory.
    """
    query_embeddings = np.asarray(query_embeddings, dtype=np.float32)
    library_embeddings = np.asarray(library_embeddings, dtype=np.float32)
    if query_embeddings.ndim == 1:
        query_embeddings = query_embeddings[None]
    if query_embeddings.ndim != 2 or library_embeddings.ndim != 2:
        raise ValueError(
            f"score_library expects (Q, D) queries and an (M, D) library; got shapes "
            f"{query_embeddings.shape} and {library_embeddings.shape}"
        )
    if query_embeddings.shape[1] != library_embeddings.shape[1]:
        raise ValueError(
            f"Query embeddings have size {query_embeddings.shape[1]} but the library has "
            f"{library_embeddings.shape[1]}"
        )
    if len(library_embeddings) == 0:
        raise ValueError("The library is empty: embed at least one template first")
    library = ops.convert_to_tensor(library_embeddings)
    rows = []
    for start in range(0, len(query_embeddings), chunk_size):
        chunk = ops.convert_to_tensor(query_embeddings[start:start + chunk_size])
        rows.append(ops.convert_to_numpy(head.score_matrix(chunk, library)))
    return np.concatenate(rows, axis=0)
