"""Template libraries: embed labelled templates once, match any number of queries against them.

This is how verification galleries, CAPTCHA template matching and N-way one-shot evaluation
all run: the embedding network sees each template once; matching a query costs one head
evaluation per template, done in batched chunks. Similarities are "higher = same".
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from siamese_tf import heads as heads_module

if TYPE_CHECKING:
    from siamese_tf.indexes import ExactIndex, FaissIndex
    from siamese_tf.models import SiameseModel

__all__ = [
    "Matches",
    "TemplateLibrary",
]


@dataclasses.dataclass
class Matches:
    """Top-k matches of each query: template indices, their class labels and similarities (Q, k)."""

    indices: np.ndarray
    labels: np.ndarray
    similarities: np.ndarray


class TemplateLibrary:
    """Embeddings of labelled templates for one model.

    Args:
        model: a :class:`~siamese_tf.models.SiameseModel`.
        embeddings: (M, D) template embeddings (see :meth:`from_images`).
        labels: (M,) integer class labels; several templates may share a class (few-shot).
        class_names: optional names, indexed by label.
        memory_budget_bytes: bound on the temporary (chunk, M, D) array of an L1 head.
        index: optional search index over the same embeddings (see :meth:`build_index` and
            :mod:`siamese_tf.indexes`): an exact index makes :meth:`similarities` use its
            XLA-compiled scoring; any index answers :meth:`nearest`.
    """

    def __init__(self, model: SiameseModel, embeddings: ArrayLike, labels: ArrayLike,
                 class_names: Sequence[str] | None = None, memory_budget_bytes: int = 256 * 2**20,
                 index: ExactIndex | FaissIndex | None = None) -> None:
        embeddings = np.asarray(embeddings, np.float32)
        labels = np.asarray(labels).astype(np.int64)
        if embeddings.ndim != 2:
            raise ValueError(f"embeddings must be (M, D), got shape {embeddings.shape}")
        if len(labels) != len(embeddings):
            raise ValueError(f"{len(embeddings)} embeddings but {len(labels)} labels")
        self.model = model
        self.embeddings = embeddings
        self.labels = labels
        self.class_names = list(class_names) if class_names is not None else None
        self.memory_budget_bytes = memory_budget_bytes
        if index is not None and len(index) != len(embeddings):
            raise ValueError(f"The index holds {len(index)} entries but the library has {len(embeddings)} templates")
        self.index = index

    @classmethod
    def from_images(cls, model: SiameseModel, images: ArrayLike, labels: ArrayLike,
                    class_names: Sequence[str] | None = None, batch_size: int = 256,
                    **kwargs: Any) -> TemplateLibrary:
        """Embed template images once and build the library."""
        return cls(model, model.embed(images, batch_size=batch_size), labels, class_names, **kwargs)

    def __len__(self) -> int:
        return len(self.embeddings)

    def add(self, images: ArrayLike | None = None, labels: ArrayLike | None = None,
            embeddings: ArrayLike | None = None) -> TemplateLibrary:
        """Add templates (images are embedded here; or pass ready ``embeddings``)."""
        if (images is None) == (embeddings is None):
            raise ValueError("Pass either images or embeddings to add()")
        new = self.model.embed(images) if embeddings is None else np.asarray(embeddings, np.float32)
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        if len(labels) != len(new):
            raise ValueError(f"{len(new)} new templates but {len(labels)} labels")
        self.embeddings = np.concatenate([self.embeddings, new]) if len(self) else new
        self.labels = np.concatenate([self.labels, labels])
        if self.index is not None:
            self.index.add(new)
        return self

    def build_index(self, kind: str = "auto", **kwargs: Any) -> ExactIndex | FaissIndex:
        """Index the templates for fast search: "exact" (XLA-compiled exact scoring), "faiss"
        (approximate, for very large libraries; needs faiss-cpu) or "auto" (exact up to 100,000
        templates). Extra arguments go to the index class. Returns the index."""
        from siamese_tf.indexes import build_index

        self.index = build_index(self.model, self.embeddings, kind=kind, **kwargs)
        return self.index

    def nearest(self, query_images: ArrayLike | None = None, query_embeddings: ArrayLike | None = None,
                k: int = 5) -> Matches:
        """The ``k`` most similar *templates* of each query through the index (built on first use).

        Returns :class:`Matches` with template ``indices``, their class ``labels`` and
        ``similarities`` (Q, k), best first; higher = same.
        """
        if (query_images is None) == (query_embeddings is None):
            raise ValueError("Pass either query_images or query_embeddings to nearest()")
        if query_embeddings is None:
            query_embeddings = self.model.embed(query_images)
        if self.index is None:
            self.build_index()
        similarities, indices = self.index.search(query_embeddings, k)
        labels = np.where(indices >= 0, self.labels[np.maximum(indices, 0)], -1)
        return Matches(indices=indices, labels=labels, similarities=similarities)

    def _chunk_size(self):
        if self.model.output_kind == "distance":
            return 1024  # a matrix product: no (chunk, M, D) array
        per_query = max(1, len(self) * self.embeddings.shape[1] * 4)
        return int(max(1, min(1024, self.memory_budget_bytes // per_query)))

    def similarities(self, query_embeddings: ArrayLike) -> np.ndarray:
        """(Q, M) similarities of query embeddings against every template."""
        if len(self) == 0:
            raise ValueError("The template library is empty: add templates first")
        if self.index is None and self.model.output_kind == "probability":
            self._try_exact_index()
        if self.index is not None and getattr(self.index, "kind", None) == "exact":
            return np.asarray(self.index.similarities(query_embeddings), np.float64)
        scores = heads_module.score_library(self.model.head, query_embeddings, self.embeddings,
                                            chunk_size=self._chunk_size())
        return heads_module.to_similarity(scores, self.model.head)

    def _try_exact_index(self):
        # An exact index scores the L1 head with FAISS's SIMD L1 distances (or XLA), far
        # faster than broadcasting through the Keras head; heads it cannot mirror keep that path.
        from siamese_tf.indexes import ExactIndex

        try:
            self.index = ExactIndex.for_model(self.model, self.embeddings)
        except ValueError:
            self.index = None

    def class_similarities(self, query_embeddings: ArrayLike) -> np.ndarray:
        """(Q, C) best similarity per class (C = number of classes, by label index)."""
        similarities = self.similarities(query_embeddings)
        num_classes = int(self.labels.max()) + 1
        best = np.full((len(similarities), num_classes), -np.inf)
        if len(np.unique(self.labels)) == len(self.labels):
            # One template per class (the usual one-shot library): a scatter, no grouping needed.
            best[:, self.labels] = similarities
            return best
        # Group templates by class, then one reduceat gives every class's maximum.
        order = np.argsort(self.labels, kind="stable")
        sorted_labels = self.labels[order]
        starts = np.concatenate([[0], np.flatnonzero(np.diff(sorted_labels)) + 1])
        best[:, sorted_labels[starts]] = np.maximum.reduceat(similarities[:, order], starts, axis=1)
        return best

    def match(self, query_images: ArrayLike | None = None, query_embeddings: ArrayLike | None = None,
              top_k: int = 5) -> Matches:
        """The ``top_k`` best classes for each query (by each class's best template).

        ``Matches.indices`` holds each matched class's first template in the library.
        """
        if (query_images is None) == (query_embeddings is None):
            raise ValueError("Pass either query_images or query_embeddings to match()")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        if query_embeddings is None:
            query_embeddings = self.model.embed(query_images)
        per_class = self.class_similarities(query_embeddings)
        top_k = min(top_k, int(np.isfinite(per_class[0]).sum()))
        if top_k < per_class.shape[1]:
            # Partition first: sorting only the k best of thousands of classes per query.
            candidates = np.argpartition(-per_class, top_k - 1, axis=1)[:, :top_k]
            candidate_values = np.take_along_axis(per_class, candidates, axis=1)
            order = np.take_along_axis(candidates, np.argsort(-candidate_values, axis=1, kind="stable"), axis=1)
        else:
            order = np.argsort(-per_class, axis=1, kind="stable")[:, :top_k]
        first_template = np.zeros(per_class.shape[1], np.int64)
        first_template[self.labels[::-1]] = np.arange(len(self.labels))[::-1]  # the first wins
        return Matches(indices=first_template[order], labels=order,
                       similarities=np.take_along_axis(per_class, order, axis=1))

    def top_k_accuracy(self, query_images: ArrayLike | None = None, query_labels: ArrayLike | None = None,
                       ks: Sequence[int] = (1, 5, 10),
                       query_embeddings: ArrayLike | None = None) -> dict[str, float]:
        """Share of queries whose true class is among the ``k`` best classes, for each k."""
        query_labels = np.asarray(query_labels).reshape(-1)
        matches = self.match(query_images, query_embeddings, top_k=max(ks))
        if len(query_labels) != len(matches.labels):
            raise ValueError(f"{len(matches.labels)} queries but {len(query_labels)} query labels")
        hits = matches.labels == query_labels[:, None]
        return {f"top_{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}

    def save(self, path: str | os.PathLike) -> Path:
        """Save the embeddings, labels and class names to ``path`` (.npz); the model is saved apart."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, embeddings=self.embeddings, labels=self.labels,
                 class_names=np.array(self.class_names if self.class_names is not None else [], dtype=str))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, model: SiameseModel) -> TemplateLibrary:
        """Load a library saved by :meth:`save` for ``model`` (checks the embedding size)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No template library at {path}")
        with np.load(path) as stored:
            embeddings, labels, names = stored["embeddings"], stored["labels"], stored["class_names"]
        expected = model.embedding.outputs[0].shape[-1]
        if embeddings.shape[1] != expected:
            raise ValueError(f"{path} holds {embeddings.shape[1]}-d embeddings but the model makes {expected}-d ones")
        return cls(model, embeddings, labels, list(names) if len(names) else None)
