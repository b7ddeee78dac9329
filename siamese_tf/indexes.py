"""Search indexes over template embeddings: exact for galleries up to ~100k, FAISS beyond.

Two classes share one interface (``add``, ``search``, ``similarities``, ``save``, ``len()``)
and one result convention: **similarities, higher = same** (label 1 = same), the scale of
:func:`siamese_tf.heads.to_similarity`:

- ``"euclidean"`` / ``"cosine"``: similarity = -distance (cosine distance = 1 - cos);
- ``"l1_head"``: the Koch / seed head's probability ``sigmoid(|q - l| . w + b)``.

:class:`ExactIndex` scores every entry. For the L1 head it uses :class:`L1HeadScorer`: with
faiss-cpu installed, the head's logit is split by the sign of each weight,

    b + sum_d w_d |q_d - l_d| = b - L1(q * n, l * n) + L1(q * p, l * p),
    n = max(-w, 0), p = max(w, 0)

so two exact FAISS L1 distance computations (SIMD, on pre-scaled copies of the library) give
the exact scores; without FAISS it runs ``sigmoid(|q - L| w + b)`` in a ``tf.function``
compiled with XLA over query chunks. For distances it uses one matrix product.

:class:`FaissIndex` (needs ``faiss-cpu``) answers approximately in sub-linear time: a flat
(exact) FAISS index, an inverted file (``"ivf"``, k-means cells, ``nprobe`` of them searched)
or an HNSW graph. The L1 head is not a FAISS metric, but with a weight vector ``w``

    score = sigmoid(b - sum_d (-w_d) |q_d - l_d|)

is monotone in the L1 distance between embeddings scaled by ``max(-w_d, 0)``, which FAISS
supports (``METRIC_L1``). FAISS retrieves ``rerank`` candidates by that scaled L1 distance and
the exact head re-ranks them (dimensions with ``w_d > 0`` only enter the re-ranking). With every
``w_d <= 0`` and a flat index this is exact.

Save an index beside its model with :func:`index_path_for` and load it with :func:`load_index`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from siamese_tf.models import SiameseModel

__all__ = [
    "AUTO_FLAT_LIMIT",
    "ExactIndex",
    "FAISS_TYPES",
    "FaissIndex",
    "L1HeadScorer",
    "L1_BACKENDS",
    "METRICS",
    "SEARCH_BLOCK_BYTES",
    "build_index",
    "head_weights_from",
    "index_path_for",
    "l1_head_scores",
    "load_index",
    "metric_for_head",
]

METRICS = ("euclidean", "cosine", "l1_head")
FAISS_TYPES = ("auto", "flat", "ivf", "hnsw")
# Below this many entries "auto" picks an exact flat FAISS index; above it an inverted file.
AUTO_FLAT_LIMIT = 50_000
_METADATA_FILE = "index.json"
SEARCH_BLOCK_BYTES = 64 * 2**20
_EPSILON = 1e-12
_IndexT = TypeVar("_IndexT", bound="_Index")


def _as_matrix(values, name, dim=None):
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        values = values[None]
    if values.ndim != 2:
        raise ValueError(f"{name} must be a (N, D) matrix, got shape {values.shape}")
    if dim is not None and values.shape[1] != dim:
        raise ValueError(f"{name} have {values.shape[1]} dimensions but the index holds {dim}-d embeddings")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must hold finite numbers")
    return np.ascontiguousarray(values)


def _check_dim_and_metric(dim, metric, head_weights):
    """``(dim, metric, head weights)`` checked against each other, for every index kind."""
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    head_weights = _check_metric(metric, head_weights)
    if head_weights is not None and len(head_weights[0]) != dim:
        raise ValueError(f"head weights have {len(head_weights[0])} entries but dim is {dim}")
    return int(dim), metric, head_weights


def _check_metric(metric, head_weights):
    if metric not in METRICS:
        raise ValueError(f"Unknown index metric {metric!r}; choose one of {METRICS}")
    if metric == "l1_head":
        if head_weights is None:
            raise ValueError("metric='l1_head' needs head_weights=(w, b); use head_weights_from(model.head)")
        weights, bias = head_weights
        weights = np.asarray(weights, np.float32).reshape(-1)
        return weights, float(np.asarray(bias).reshape(-1)[0])
    if head_weights is not None:
        raise ValueError(f"head_weights only apply to metric='l1_head', not {metric!r}")
    return None


def head_weights_from(head: keras.Layer) -> tuple[np.ndarray, float]:
    """``(w, b)`` of an :class:`~siamese_tf.heads.L1SimilarityHead` as numpy (``w`` of shape (D,))."""
    classifier = getattr(head, "classifier", None)
    if getattr(head, "output_kind", None) != "probability" or classifier is None:
        raise ValueError(f"head_weights_from needs an L1SimilarityHead, got {head!r}")
    kernel, bias = (np.asarray(v, np.float32) for v in classifier.get_weights())
    return kernel.reshape(-1), float(bias.reshape(-1)[0])


def metric_for_head(head: keras.Layer) -> str:
    """The index metric that reproduces ``head``'s scores: "l1_head", "euclidean" or "cosine"."""
    if getattr(head, "output_kind", None) == "probability":
        return "l1_head"
    metric = getattr(head, "metric", None)
    if metric in ("euclidean", "cosine"):
        return metric
    raise ValueError(f"No index metric for head {head!r}")


def _normalize_rows(values):
    return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), _EPSILON)


# --- exact L1-head scoring: one compiled function per (chunk, D) shape -----------------------

_L1_FUNCTIONS = {}


def _l1_function(jit_compile):
    """A ``tf.function`` computing ``sigmoid(|q - L| w + b)`` for a (chunk, D) block of queries."""
    if jit_compile not in _L1_FUNCTIONS:
        import tensorflow as tf

        @tf.function(jit_compile=jit_compile, reduce_retracing=True)
        def l1_logits(queries, library, weights, bias):
            differences = tf.abs(queries[:, None, :] - library[None, :, :])
            return tf.reduce_sum(differences * weights, axis=-1) + bias

        _L1_FUNCTIONS[jit_compile] = l1_logits
    return _L1_FUNCTIONS[jit_compile]


def _sigmoid(logits):
    return (1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))).astype(np.float32)


def l1_head_scores(query_embeddings: ArrayLike, library_embeddings: ArrayLike | tf.Tensor, weights: ArrayLike,
                   bias: float, chunk_size: int | None = None, jit_compile: bool = True,
                   memory_budget_bytes: int = 64 * 2**20, logits: bool = False) -> np.ndarray:
    """Exact ``sigmoid(|q - l| . w + b)`` of every query (Q, D) against a library (M, D): (Q, M).

    With ``logits=True`` it returns ``|q - l| . w + b`` before the sigmoid (ranks without the
    ties a saturated float32 sigmoid makes).

    Queries go through in chunks of ``chunk_size`` (by default as many as keep a (chunk, M, D)
    float32 block under ``memory_budget_bytes``, which bounds memory when XLA is off). The last
    chunk is padded to the same size so a compiled function is reused, not retraced.
    ``library_embeddings`` may be a ``tf.Tensor`` already (no copy per call).
    """
    import tensorflow as tf

    query_embeddings = _as_matrix(query_embeddings, "query_embeddings")
    library = tf.convert_to_tensor(library_embeddings, tf.float32)
    count, dim = int(library.shape[0]), int(library.shape[1])
    if query_embeddings.shape[1] != dim:
        raise ValueError(f"query_embeddings have {query_embeddings.shape[1]} dimensions but the library has {dim}")
    weights = tf.constant(np.asarray(weights, np.float32).reshape(dim))
    bias = tf.constant(float(bias), tf.float32)
    if chunk_size is None:
        chunk_size = int(max(1, min(256, memory_budget_bytes // max(1, count * dim * 4))))
    function = _l1_function(bool(jit_compile))
    rows = []
    for start in range(0, len(query_embeddings), chunk_size):
        chunk = query_embeddings[start:start + chunk_size]
        real = len(chunk)
        if real < chunk_size and start > 0:
            chunk = np.concatenate([chunk, np.zeros((chunk_size - real, dim), np.float32)])
        rows.append(function(tf.constant(chunk), library, weights, bias).numpy()[:real])
    if not rows:
        return np.zeros((0, count), np.float32)
    result = np.concatenate(rows, axis=0)
    return result if logits else _sigmoid(result)


L1_BACKENDS = ("auto", "faiss", "tensorflow")


def _faiss_available():
    try:
        _import_faiss()
    except ImportError:
        return False
    return True


class L1HeadScorer:
    """Exact scores ``sigmoid(|q - l| . w + b)`` of queries against a fixed library, fast.

    Args:
        library_embeddings: (M, D) templates.
        weights: (D,) head weights ``w``; bias: the head's ``b``.
        backend: "faiss" (two exact FAISS L1 distance passes over pre-scaled copies of the
            library, see the module docstring), "tensorflow" (:func:`l1_head_scores`, XLA) or
            "auto" (FAISS when installed).
        jit_compile: XLA for the TensorFlow backend.

    :meth:`logits` returns the (Q, M) pre-sigmoid scores, :meth:`scores` the probabilities.
    """

    def __init__(self, library_embeddings: ArrayLike, weights: ArrayLike, bias: float, backend: str = "auto",
                 jit_compile: bool = True) -> None:
        if backend not in L1_BACKENDS:
            raise ValueError(f"Unknown L1 backend {backend!r}; choose one of {L1_BACKENDS}")
        self.library = _as_matrix(library_embeddings, "library_embeddings")
        dim = self.library.shape[1]
        self.weights = np.asarray(weights, np.float32).reshape(-1)
        if len(self.weights) != dim:
            raise ValueError(f"head weights have {len(self.weights)} entries but the library is {dim}-d")
        self.bias = float(bias)
        if backend == "auto":
            backend = "faiss" if _faiss_available() else "tensorflow"
        self.backend = backend
        self.jit_compile = bool(jit_compile)
        if backend == "faiss":
            self._faiss = _import_faiss()
            # Dimensions with w < 0 lower the score, w > 0 raise it; w = 0 drops out.
            self._parts = []
            for sign, scale in ((-1.0, np.maximum(-self.weights, 0.0)), (1.0, np.maximum(self.weights, 0.0))):
                columns = np.flatnonzero(scale > 0)
                if len(columns):
                    scaled = np.ascontiguousarray(self.library[:, columns] * scale[columns])
                    self._parts.append((sign, columns, scale[columns], scaled))
        else:
            self._library_tensor = None

    def logits(self, query_embeddings: ArrayLike) -> np.ndarray:
        """(Q, M) float32 ``b + |q - l| . w``."""
        queries = _as_matrix(query_embeddings, "query_embeddings", self.library.shape[1])
        if self.backend != "faiss":
            import tensorflow as tf

            if self._library_tensor is None:
                self._library_tensor = tf.constant(self.library)
            return l1_head_scores(queries, self._library_tensor, self.weights, self.bias,
                                  jit_compile=self.jit_compile, logits=True)
        logits = np.full((len(queries), len(self.library)), self.bias, np.float32)
        for sign, columns, scale, scaled_library in self._parts:
            scaled_queries = np.ascontiguousarray(queries[:, columns] * scale)
            distances = self._faiss.pairwise_distances(scaled_queries, scaled_library, metric=self._faiss.METRIC_L1)
            logits += np.float32(sign) * distances
        return logits

    def scores(self, query_embeddings: ArrayLike) -> np.ndarray:
        """(Q, M) float32 probabilities ``sigmoid(b + |q - l| . w)`` (higher = same)."""
        return _sigmoid(self.logits(query_embeddings))


def _top_k(similarities, k):
    """Indices and values of the ``k`` largest similarities per row, best first."""
    k = min(k, similarities.shape[1])
    if k < similarities.shape[1]:
        candidates = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
    else:
        candidates = np.broadcast_to(np.arange(similarities.shape[1]), similarities.shape)
    values = np.take_along_axis(similarities, candidates, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(values, order, axis=1)


class _Index:
    """What every index shares: building one for a model's head and saving the head's weights."""

    @classmethod
    def for_model(cls: type[_IndexT], model: SiameseModel, embeddings: ArrayLike | None = None,
                  **kwargs: Any) -> _IndexT:
        """An index that reproduces ``model.head``'s scores, optionally filled with ``embeddings``."""
        metric = metric_for_head(model.head)
        head_weights = head_weights_from(model.head) if metric == "l1_head" else None
        index = cls(int(model.embedding.outputs[0].shape[-1]), metric, head_weights=head_weights, **kwargs)
        if embeddings is not None:
            index.add(embeddings)
        return index

    def _save_head(self, path):
        if self.head_weights is not None:
            np.savez(path / "head.npz", weights=self.head_weights[0], bias=np.float32(self.head_weights[1]))


class ExactIndex(_Index):
    """Exact search: every query is scored against every entry.

    Args:
        dim: embedding size D.
        metric: "euclidean", "cosine" (similarity = -distance) or "l1_head" (the L1 head's
            probability; needs ``head_weights``).
        head_weights: ``(w, b)`` of the L1 head, see :func:`head_weights_from`.
        jit_compile: compile the TensorFlow L1-head scoring with XLA (about 6x faster on CPU).
        l1_backend: how the L1 head is scored, see :class:`L1HeadScorer` ("auto": FAISS's exact
            L1 distances when faiss-cpu is installed, else TensorFlow).

    ``search`` returns ``(similarities, indices)``, each (Q, k), best first; higher = same.
    """

    kind = "exact"

    def __init__(self, dim: int, metric: str = "euclidean", head_weights: tuple[ArrayLike, float] | None = None,
                 jit_compile: bool = True, l1_backend: str = "auto") -> None:
        if l1_backend not in L1_BACKENDS:
            raise ValueError(f"Unknown l1_backend {l1_backend!r}; choose one of {L1_BACKENDS}")
        self.dim, self.metric, self.head_weights = _check_dim_and_metric(dim, metric, head_weights)
        self.jit_compile = bool(jit_compile)
        self.l1_backend = l1_backend
        self.embeddings = np.zeros((0, self.dim), np.float32)
        self._library_tensor = None
        self._l1_scorer = None

    def __len__(self) -> int:
        return len(self.embeddings)

    def add(self, embeddings: ArrayLike) -> ExactIndex:
        """Append (N, D) embeddings; their positions continue from ``len(index)``."""
        embeddings = _as_matrix(embeddings, "embeddings", self.dim)
        self.embeddings = np.concatenate([self.embeddings, embeddings]) if len(self) else embeddings
        self._library_tensor = None
        self._l1_scorer = None
        return self

    def _scorer(self):
        if self._l1_scorer is None:
            weights, bias = self.head_weights
            self._l1_scorer = L1HeadScorer(self.embeddings, weights, bias, backend=self.l1_backend,
                                           jit_compile=self.jit_compile)
        return self._l1_scorer

    def _library(self):
        import tensorflow as tf

        if self._library_tensor is None:
            stored = _normalize_rows(self.embeddings) if self.metric == "cosine" else self.embeddings
            self._library_tensor = tf.constant(stored)
        return self._library_tensor

    def similarities(self, query_embeddings: ArrayLike) -> np.ndarray:
        """(Q, M) similarities of the queries to every entry (higher = same)."""
        import tensorflow as tf

        if len(self) == 0:
            raise ValueError("The index is empty: add embeddings first")
        queries = _as_matrix(query_embeddings, "query_embeddings", self.dim)
        if self.metric == "l1_head":
            return self._scorer().scores(queries)
        library = self._library()
        if self.metric == "cosine":
            return tf.matmul(tf.constant(_normalize_rows(queries)), library, transpose_b=True).numpy() - 1.0
        squared = (np.sum(queries ** 2, axis=1, keepdims=True)
                   - 2.0 * tf.matmul(tf.constant(queries), library, transpose_b=True).numpy()
                   + np.sum(self.embeddings ** 2, axis=1)[None])
        return -np.sqrt(np.maximum(squared, 0.0))

    def search(self, query_embeddings: ArrayLike, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar entries of each query: ``(similarities, indices)``, each (Q, k)."""
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        queries = _as_matrix(query_embeddings, "query_embeddings", self.dim)
        # Query chunks keep the (chunk, M) similarity block near SEARCH_BLOCK_BYTES even for 1M entries.
        chunk_size = int(max(1, SEARCH_BLOCK_BYTES // max(1, 4 * len(self))))
        values, indices = [], []
        for start in range(0, len(queries), chunk_size):
            chunk = queries[start:start + chunk_size]
            if self.metric == "l1_head":
                # Rank by logits: a float32 sigmoid saturates and would tie the best entries.
                chunk_indices, chunk_logits = _top_k(self._scorer().logits(chunk), int(k))
                chunk_values = _sigmoid(chunk_logits)
            else:
                chunk_indices, chunk_values = _top_k(self.similarities(chunk), int(k))
            values.append(chunk_values)
            indices.append(chunk_indices)
        return np.concatenate(values), np.concatenate(indices)

    def _metadata(self):
        return {"kind": self.kind, "dim": self.dim, "metric": self.metric, "jit_compile": self.jit_compile,
                "l1_backend": self.l1_backend}

    def save(self, path: str | os.PathLike) -> Path:
        """Save to the folder ``path`` (``index.json`` + ``embeddings.npy``, + ``head.npz`` for l1_head)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "embeddings.npy", self.embeddings)
        self._save_head(path)
        (path / _METADATA_FILE).write_text(json.dumps(self._metadata(), indent=2))
        return path

    @classmethod
    def _from_folder(cls, path, metadata, head_weights):
        index = cls(metadata["dim"], metadata["metric"], head_weights=head_weights,
                    jit_compile=metadata.get("jit_compile", True), l1_backend=metadata.get("l1_backend", "auto"))
        embeddings = np.load(path / "embeddings.npy")
        if len(embeddings):
            index.add(embeddings)
        return index


class FaissIndex(_Index):
    """FAISS-backed search for large libraries (needs the ``faiss-cpu`` package).

    Args:
        dim: embedding size D.
        metric: "euclidean", "cosine" or "l1_head" (candidates by scaled L1, re-ranked exactly;
            see the module docstring).
        index_type: "flat" (exact), "ivf" (inverted file; ``nlist`` cells, ``nprobe`` searched),
            "hnsw" (graph; ``hnsw_neighbors`` links, ``ef_search``), or "auto": flat below
            ``AUTO_FLAT_LIMIT`` entries at the first ``add``, an inverted file above.
        nlist: IVF cells; default ``sqrt(N)`` at training time (keeps k-means to seconds on a CPU).
        nprobe: IVF cells visited per query.
        rerank: candidates re-ranked by the exact head (``l1_head`` only).
        head_weights: ``(w, b)`` for ``l1_head``.

    An IVF index is trained (k-means) on the first ``add``; later ``add`` calls reuse its cells.
    ``search`` returns ``(similarities, indices)`` like :class:`ExactIndex`.
    """

    kind = "faiss"

    def __init__(self, dim: int, metric: str = "euclidean", index_type: str = "auto", nlist: int | None = None,
                 nprobe: int = 16, hnsw_neighbors: int = 32, ef_search: int = 64, rerank: int = 100,
                 head_weights: tuple[ArrayLike, float] | None = None, seed: int = 0) -> None:
        faiss = _import_faiss()
        if index_type not in FAISS_TYPES:
            raise ValueError(f"Unknown FAISS index type {index_type!r}; choose one of {FAISS_TYPES}")
        for name, value in (("nprobe", nprobe), ("hnsw_neighbors", hnsw_neighbors), ("ef_search", ef_search),
                            ("rerank", rerank)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if nlist is not None and (not isinstance(nlist, (int, np.integer)) or nlist < 1):
            raise ValueError(f"nlist must be a positive integer or None, got {nlist!r}")
        self.dim, self.metric, self.head_weights = _check_dim_and_metric(dim, metric, head_weights)
        self.index_type = index_type
        self.nlist, self.nprobe = nlist, int(nprobe)
        self.hnsw_neighbors, self.ef_search = int(hnsw_neighbors), int(ef_search)
        self.rerank, self.seed = int(rerank), int(seed)
        self._faiss = faiss
        self._index = None
        # Raw embeddings are kept for the exact re-ranking of the L1 head only.
        self._raw = np.zeros((0, self.dim), np.float32) if metric == "l1_head" else None

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def faiss_metric(self) -> int:
        return self._faiss.METRIC_L1 if self.metric == "l1_head" else self._faiss.METRIC_L2

    def _prepare(self, embeddings):
        """Map embeddings to the space FAISS searches (L2, or scaled L1 for the head)."""
        if self.metric == "cosine":
            return np.ascontiguousarray(_normalize_rows(embeddings))
        if self.metric == "l1_head":
            scale = np.maximum(-self.head_weights[0], 0.0).astype(np.float32)
            return np.ascontiguousarray(embeddings * scale)
        return embeddings

    def _build(self, prepared):
        faiss = self._faiss
        index_type = self.index_type
        if index_type == "auto":
            index_type = "flat" if len(prepared) <= AUTO_FLAT_LIMIT else "ivf"
        self.resolved_type = index_type
        if index_type == "flat":
            index = faiss.IndexFlat(self.dim, self.faiss_metric)
        elif index_type == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_neighbors, self.faiss_metric)
            index.hnsw.efSearch = self.ef_search
        else:
            if self.nlist is None:
                self.nlist = int(max(1, min(len(prepared) // 39, round(math.sqrt(len(prepared))))))
            if len(prepared) < self.nlist:
                raise ValueError(f"An IVF index with nlist={self.nlist} needs at least that many entries to train; "
                                 f"got {len(prepared)}")
            quantizer = faiss.IndexFlat(self.dim, self.faiss_metric)
            index = faiss.IndexIVFFlat(quantizer, self.dim, self.nlist, self.faiss_metric)
            # k-means on a sample: 64 points per cell is plenty and keeps training seconds long.
            rng = np.random.default_rng(self.seed)
            sample_size = min(len(prepared), 64 * self.nlist)
            sample = prepared[rng.choice(len(prepared), sample_size, replace=False)]
            index.train(np.ascontiguousarray(sample))
            index.nprobe = min(self.nprobe, self.nlist)
        self._index = index

    def add(self, embeddings: ArrayLike) -> FaissIndex:
        """Append (N, D) embeddings (trains an IVF index on the first call)."""
        embeddings = _as_matrix(embeddings, "embeddings", self.dim)
        prepared = self._prepare(embeddings)
        if self._index is None:
            self._build(prepared)
        self._index.add(prepared)
        if self._raw is not None:
            self._raw = np.concatenate([self._raw, embeddings]) if len(self._raw) else embeddings
        return self

    def search(self, query_embeddings: ArrayLike, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar entries of each query: ``(similarities, indices)``, each (Q, k).

        Approximate for "ivf"/"hnsw"; a query whose candidates run out gets index -1 and
        similarity -inf in the remaining places.
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if len(self) == 0:
            raise ValueError("The index is empty: add embeddings first")
        queries = _as_matrix(query_embeddings, "query_embeddings", self.dim)
        k = int(min(k, len(self)))
        if self.metric != "l1_head":
            distances, indices = self._index.search(self._prepare(queries), k)
            if self.metric == "cosine":
                # Unit vectors: squared L2 = 2 - 2 cos, so cosine distance = squared L2 / 2.
                similarities = -distances / 2.0
            else:
                similarities = -np.sqrt(np.maximum(distances, 0.0))
            similarities = np.where(indices < 0, -np.inf, similarities)
            return similarities.astype(np.float64), indices
        candidate_count = int(min(len(self), max(k, self.rerank)))
        _, candidates = self._index.search(self._prepare(queries), candidate_count)
        weights, bias = self.head_weights
        valid = candidates >= 0
        gathered = self._raw[np.where(valid, candidates, 0)]  # (Q, R, D)
        logits = np.abs(gathered - queries[:, None, :]) @ weights + bias
        scores = np.where(valid, 1.0 / (1.0 + np.exp(-logits)), -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        indices = np.take_along_axis(np.where(valid, candidates, -1), order, axis=1)
        return np.take_along_axis(scores, order, axis=1), indices

    def similarities(self, query_embeddings: ArrayLike) -> np.ndarray:
        """Not offered: a FAISS index answers top-k; use :class:`ExactIndex` for full matrices."""
        raise NotImplementedError("FaissIndex answers search(queries, k); use ExactIndex for all similarities")

    def _metadata(self):
        return {"kind": self.kind, "dim": self.dim, "metric": self.metric, "index_type": self.index_type,
                "nlist": self.nlist, "nprobe": self.nprobe, "hnsw_neighbors": self.hnsw_neighbors,
                "ef_search": self.ef_search, "rerank": self.rerank, "seed": self.seed,
                "faiss_version": self._faiss.__version__}

    def save(self, path: str | os.PathLike) -> Path:
        """Save to the folder ``path`` (``index.json``, ``index.faiss``, + raw embeddings and head for l1_head)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self._index is not None:
            self._faiss.write_index(self._index, str(path / "index.faiss"))
        if self._raw is not None:
            np.save(path / "embeddings.npy", self._raw)
        self._save_head(path)
        metadata = self._metadata()
        metadata["resolved_type"] = getattr(self, "resolved_type", None)
        (path / _METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        return path

    @classmethod
    def _from_folder(cls, path, metadata, head_weights):
        options = {name: metadata[name] for name in ("index_type", "nlist", "nprobe", "hnsw_neighbors", "ef_search",
                                                     "rerank", "seed")}
        index = cls(metadata["dim"], metadata["metric"], head_weights=head_weights, **options)
        if (path / "index.faiss").exists():
            index._index = index._faiss.read_index(str(path / "index.faiss"))
            index.resolved_type = metadata.get("resolved_type")
            if hasattr(index._index, "nprobe"):
                index._index.nprobe = min(index.nprobe, index._index.nlist)
        if index._raw is not None and (path / "embeddings.npy").exists():
            index._raw = np.load(path / "embeddings.npy")
        return index


def _import_faiss():
    try:
        import faiss
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("FaissIndex needs the faiss-cpu package: pip install faiss-cpu") from error
    return faiss


def build_index(model: SiameseModel, embeddings: ArrayLike, kind: str = "auto",
                **kwargs: Any) -> ExactIndex | FaissIndex:
    """An index over ``embeddings`` that reproduces ``model.head``'s scores.

    ``kind`` is "exact", "faiss" or "auto" (exact up to 100,000 entries, FAISS beyond when it is
    installed). Extra arguments go to the index class.
    """
    if kind not in ("auto", "exact", "faiss"):
        raise ValueError(f"Unknown index kind {kind!r}; choose 'auto', 'exact' or 'faiss'")
    if kind == "auto":
        kind = "exact"
        if len(embeddings) > 100_000:
            try:
                _import_faiss()
                kind = "faiss"
            except ImportError:
                pass
    cls = ExactIndex if kind == "exact" else FaissIndex
    return cls.for_model(model, embeddings, **kwargs)


def index_path_for(model_path: str | os.PathLike) -> Path:
    """Where the index of the model saved at ``model_path`` lives: ``<name>.index/`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".index")


def load_index(path: str | os.PathLike) -> ExactIndex | FaissIndex:
    """Load an index saved by ``ExactIndex.save`` or ``FaissIndex.save`` (the folder path)."""
    path = Path(path)
    metadata_file = path / _METADATA_FILE
    if not metadata_file.exists():
        raise FileNotFoundError(f"No saved index at {path} (expected {metadata_file})")
    metadata = json.loads(metadata_file.read_text())
    kinds = {"exact": ExactIndex, "faiss": FaissIndex}
    if metadata.get("kind") not in kinds:
        raise ValueError(f"{metadata_file} names an unknown index kind {metadata.get('kind')!r}")
    head_weights = None
    if metadata["metric"] == "l1_head":
        with np.load(path / "head.npz") as stored:
            head_weights = (stored["weights"], float(stored["bias"]))
    return kinds[metadata["kind"]]._from_folder(path, metadata, head_weights)
