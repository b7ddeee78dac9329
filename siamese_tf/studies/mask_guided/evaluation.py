"""Mask-guided evaluation: class by the nearer mask, per-domain accuracy, the paper's Table 2, embedding plots.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.studies.mask_guided.data import CLASS_NAMES, MaskGuidedData, check_data

if TYPE_CHECKING:
    import keras
    from matplotlib.figure import Figure

    from siamese_tf.models import SiameseModel

__all__ = [
    "accuracy_table",
    "mask_distances",
    "per_domain_accuracy",
    "plot_embedding_by_domain",
    "predict_classifier",
    "predict_with_masks",
]


def mask_distances(model: SiameseModel, data: MaskGuidedData, batch_size: int = 128) -> np.ndarray:
    """(N, 2) Euclidean distances of each image to its domain's closed and open masks."""
    check_data(data)
    image_embeddings = model.embed(data.images, batch_size)
    mask_embeddings = model.embed(data.flat_masks, batch_size)
    mask_embeddings = mask_embeddings.reshape(len(data.domain_names), 2, -1)
    own_masks = mask_embeddings[data.domain_ids]  # (N, 2, D)
    return np.linalg.norm(image_embeddings[:, None, :] - own_masks, axis=-1)


def predict_with_masks(model: SiameseModel, data: MaskGuidedData, batch_size: int = 128) -> np.ndarray:
    """Class ids (0 = closed, 1 = open): the nearer of the image's own domain's two masks."""
    return np.argmin(mask_distances(model, data, batch_size), axis=1)


def predict_classifier(model: keras.Model, data: MaskGuidedData, batch_size: int = 128) -> np.ndarray:
    """Class ids (0 = closed, 1 = open) from the softmax baseline."""
    check_data(data)
    outputs = [np.asarray(model(data.images[start:start + batch_size], training=False))
               for start in range(0, len(data), batch_size)]
    return np.argmax(np.concatenate(outputs), axis=1)


def per_domain_accuracy(data: MaskGuidedData,
                        predicted_class_ids: ArrayLike) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Accuracy per domain (the paper's Table 2) and the mean over domains.

    Returns ``(rows, summary)``: rows are dicts {domain, images, open, accuracy,
    balanced_accuracy} for each domain that has images; summary holds ``mean_accuracy`` (the
    unweighted mean over domains, as the paper averages its chairlifts), ``mean_balanced_accuracy``
    and ``overall_accuracy`` (pooled over images).
    """
    check_data(data)
    predicted = np.asarray(predicted_class_ids).reshape(-1)
    if len(predicted) != len(data):
        raise ValueError(f"got {len(predicted)} predictions for {len(data)} images")
    correct = predicted == data.class_ids
    rows = []
    for domain_id, name in enumerate(data.domain_names):
        in_domain = data.domain_ids == domain_id
        if not in_domain.any():
            continue
        recalls = [float(np.mean(correct[in_domain & (data.class_ids == c)]))
                   for c in (0, 1) if np.any(in_domain & (data.class_ids == c))]
        rows.append({
            "domain": name,
            "images": int(in_domain.sum()),
            "open": int(np.sum(in_domain & (data.class_ids == 1))),
            "accuracy": float(np.mean(correct[in_domain])),
            "balanced_accuracy": float(np.mean(recalls)),
        })
    summary = {
        "mean_accuracy": float(np.mean([row["accuracy"] for row in rows])),
        "mean_balanced_accuracy": float(np.mean([row["balanced_accuracy"] for row in rows])),
        "overall_accuracy": float(np.mean(correct)),
    }
    return rows, summary


def accuracy_table(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """A Markdown table, one row per domain, one accuracy column per method.

    ``results`` maps a method name to the ``rows`` of :func:`per_domain_accuracy` (same domains).
    """
    if not results:
        raise ValueError("results is empty; pass {method name: rows from per_domain_accuracy}")
    methods = list(results)
    first = results[methods[0]]
    header = "| domain | images | open | " + " | ".join(methods) + " |"
    lines = [header, "|" + "---|" * (3 + len(methods))]
    by_method = {m: {row["domain"]: row for row in results[m]} for m in methods}
    for row in first:
        cells = [f"{100 * by_method[m][row['domain']]['accuracy']:.1f}" for m in methods]
        lines.append(f"| {row['domain']} | {row['images']} | {row['open']} | " + " | ".join(cells) + " |")
    means = [f"**{100 * np.mean([r['accuracy'] for r in results[m]]):.2f}**" for m in methods]
    lines.append("| **mean** | | | " + " | ".join(means) + " |")
    return "\n".join(lines)


def plot_embedding_by_domain(model: SiameseModel, data: MaskGuidedData, domain_ids: ArrayLike | None = None,
                             columns: int = 3, max_points: int = 200,
                             path: str | os.PathLike | None = None) -> Figure:
    """The 2-D embedding of each domain: images as dots by class, the two masks as triangles.

    The paper's Figures 4 and 5. Needs a 2-D embedding (``embedding_dim=2``). Returns the Figure.
    """
    from matplotlib.figure import Figure

    from siamese_tf import plots  # noqa: F401  (chooses a headless backend when needed)

    check_data(data)
    if domain_ids is None:
        domain_ids = np.unique(data.domain_ids)
    domain_ids = [int(d) for d in np.atleast_1d(domain_ids)]
    image_embeddings = model.embed(data.images)
    if image_embeddings.shape[1] != 2:
        raise ValueError(f"plot_embedding_by_domain needs a 2-D embedding, got {image_embeddings.shape[1]} dimensions")
    mask_embeddings = model.embed(data.flat_masks).reshape(-1, 2, 2)
    rows = int(np.ceil(len(domain_ids) / columns))
    figure = Figure(figsize=(3.2 * min(columns, len(domain_ids)), 3.0 * rows))
    colors = ("tab:blue", "tab:orange")
    for position, domain_id in enumerate(domain_ids):
        axes = figure.add_subplot(rows, min(columns, len(domain_ids)), position + 1)
        for class_id, class_name in enumerate(CLASS_NAMES):
            chosen = np.flatnonzero((data.domain_ids == domain_id) & (data.class_ids == class_id))[:max_points]
            axes.scatter(image_embeddings[chosen, 0], image_embeddings[chosen, 1], s=8, alpha=0.6,
                         color=colors[class_id], label=f"{class_name} images")
            axes.scatter(*mask_embeddings[domain_id, class_id], marker="^", s=160, color=colors[class_id],
                         edgecolor="black", linewidth=1.2, label=f"{class_name} mask")
        axes.set_title(data.domain_names[domain_id], fontsize=9)
        axes.tick_params(labelsize=7)
        if position == 0:
            axes.legend(fontsize=6, loc="best")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure
