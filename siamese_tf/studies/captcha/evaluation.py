"""CAPTCHA recognition by template matching: template libraries, top-k accuracy, XLA matcher, timing and confusions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.libraries import TemplateLibrary
from siamese_tf.studies.captcha.data import check_images, grid_corners

if TYPE_CHECKING:
    from siamese_tf.models import SiameseModel

__all__ = [
    "build_template_library",
    "confusion_examples",
    "embed_grid_crops",
    "evaluate_template_matching",
    "time_matching",
    "xla_top_k_matcher",
]


def embed_grid_crops(model: SiameseModel, images: ArrayLike, crop_grid: int = 1, batch_size: int = 256
                     ) -> np.ndarray:
    """Embeddings of ``images`` averaged over a ``crop_grid`` x ``crop_grid`` grid of windows of the
    network's input size (:func:`grid_crops`); ``crop_grid`` 1 embeds the centre window alone.

    The mean of several shifted views is steadier than one view; the cost is ``crop_grid ** 2``
    embeddings per image.
    """
    images = check_images(images)
    size = model.input_image_shape[0]
    corners = grid_corners(images.shape[1:3], size, crop_grid)
    total = None
    for top, left in corners:  # one window at a time: memory of one view, not of all of them
        embeddings = model.embed(images[:, top:top + size, left:left + size], batch_size=batch_size)
        total = embeddings if total is None else total + embeddings
    return total / len(corners)


def build_template_library(model: SiameseModel, template_images: ArrayLike, template_labels: ArrayLike,
                           class_names: Sequence[str] | None = None, crop_grid: int = 1) -> TemplateLibrary:
    """Embed one template per character (centre-cropped, or averaged over ``crop_grid`` x ``crop_grid``
    windows: :func:`embed_grid_crops`) into a :class:`TemplateLibrary`."""
    embeddings = embed_grid_crops(model, check_images(template_images, "template_images"), crop_grid)
    return TemplateLibrary(model, embeddings, template_labels, class_names)


def evaluate_template_matching(model: SiameseModel, query_images: ArrayLike, query_labels: ArrayLike,
                               template_images: ArrayLike | None = None, template_labels: ArrayLike | None = None,
                               ks: Sequence[int] = (1, 5, 10), library: TemplateLibrary | None = None,
                               crop_grid: int = 1) -> dict[str, Any]:
    """Top-k accuracy of template matching and the time per query.

    ``crop_grid`` > 1 embeds queries (and templates, unless ``library`` is given) as the mean over a
    grid of shifted windows (:func:`embed_grid_crops`); 1 takes the centre window.

    Returns a dict with ``top_1``/``top_5``/``top_10``, ``num_queries``, ``num_templates``,
    ``embed_ms_per_query`` (embedding network) and ``match_ms_per_query`` (scoring against every
    template and ranking, via :meth:`TemplateLibrary.match`).
    """
    if library is None:
        library = build_template_library(model, template_images, template_labels, crop_grid=crop_grid)
    query_images = check_images(query_images, "query_images")
    query_labels = np.asarray(query_labels).reshape(-1)
    started = time.perf_counter()
    query_embeddings = embed_grid_crops(model, query_images, crop_grid)
    embed_seconds = time.perf_counter() - started
    started = time.perf_counter()
    figures = library.top_k_accuracy(query_embeddings=query_embeddings, query_labels=query_labels, ks=ks)
    match_seconds = time.perf_counter() - started
    figures.update({
        "num_queries": int(len(query_labels)), "num_templates": len(library),
        "embed_ms_per_query": 1000 * embed_seconds / max(1, len(query_labels)),
        "match_ms_per_query": 1000 * match_seconds / max(1, len(query_labels)),
    })
    return figures


def xla_top_k_matcher(model: SiameseModel, library_embeddings: ArrayLike, k: int = 10,
                      chunk_size: int = 16) -> Callable[[ArrayLike], tuple[np.ndarray, np.ndarray]]:
    """A compiled (XLA) ranker: query embeddings (Q, D) -> (indices, scores) of the top-k templates.

    For the L1 head the score ``w . |q - t| + b`` ranks templates like the sigmoid probability
    (sigmoid is monotonic), so the sigmoid is skipped; distance heads rank by negative distance.
    """
    import tensorflow as tf

    library = tf.constant(np.asarray(library_embeddings, np.float32))
    k = min(int(k), int(library.shape[0]))
    head = model.head

    @tf.function(jit_compile=True)
    def rank(queries):
        if head.output_kind == "probability":
            weights = head.classifier.kernel[:, 0]
            scores = tf.reduce_sum(tf.abs(queries[:, None, :] - library[None]) * weights, axis=-1)
            scores = scores + head.classifier.bias[0]
        else:
            scores = -head.score_matrix(queries, library)
        return tf.math.top_k(scores, k=k)

    def match(query_embeddings):
        query_embeddings = np.asarray(query_embeddings, np.float32)
        indices, scores = [], []
        for start in range(0, len(query_embeddings), chunk_size):
            chunk = query_embeddings[start:start + chunk_size]
            if len(chunk) < chunk_size:  # one compiled shape: pad the last chunk
                chunk = np.concatenate([chunk, np.zeros((chunk_size - len(chunk), chunk.shape[1]), np.float32)])
            result = rank(tf.constant(chunk))
            indices.append(result.indices.numpy())
            scores.append(result.values.numpy())
        count = len(query_embeddings)
        return np.concatenate(indices)[:count], np.concatenate(scores)[:count]

    return match


def time_matching(model: SiameseModel, num_templates: int = 6763, num_queries: int = 256, seed: int = 0,
                  repeats: int = 3, library_embeddings: ArrayLike | None = None) -> dict[str, Any]:
    """Milliseconds per query to rank ``num_templates`` templates: TemplateLibrary path and XLA path.

    Embeddings are random (matching cost does not depend on their values) unless
    ``library_embeddings`` is given. Returns medians over ``repeats``.
    """
    rng = np.random.default_rng(seed)
    dimension = int(model.embedding.outputs[0].shape[-1])
    if library_embeddings is None:
        library_embeddings = rng.random((num_templates, dimension), dtype=np.float32)
    library_embeddings = np.asarray(library_embeddings, np.float32)
    queries = rng.random((num_queries, dimension), dtype=np.float32)
    library = TemplateLibrary(model, library_embeddings, np.arange(len(library_embeddings)))
    matcher = xla_top_k_matcher(model, library_embeddings, k=10)
    matcher(queries[:16])  # compile outside the timing
    library.match(query_embeddings=queries[:8], top_k=10)
    timings = {"template_library": [], "xla": []}
    for _ in range(repeats):
        started = time.perf_counter()
        library.match(query_embeddings=queries, top_k=10)
        timings["template_library"].append(1000 * (time.perf_counter() - started) / num_queries)
        started = time.perf_counter()
        matcher(queries)
        timings["xla"].append(1000 * (time.perf_counter() - started) / num_queries)
    return {"num_templates": int(len(library_embeddings)), "num_queries": num_queries,
            "template_library_ms_per_query": float(np.median(timings["template_library"])),
            "xla_ms_per_query": float(np.median(timings["xla"]))}


def confusion_examples(matches_labels: ArrayLike, query_labels: ArrayLike,
                       max_examples: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of wrongly matched queries and their (true, predicted) labels, for a gallery."""
    predicted = np.asarray(matches_labels)[:, 0]
    query_labels = np.asarray(query_labels).reshape(-1)
    wrong = np.flatnonzero(predicted != query_labels)[:max_examples]
    return wrong, query_labels[wrong], predicted[wrong]
