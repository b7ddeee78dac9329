"""Signature evaluation: pair similarities, the ink-statistic floor, model scores on unseen writers, model size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.studies.signatures.data import SignatureSet, signature_pairs

if TYPE_CHECKING:
    from siamese_tf.models import SiameseModel

__all__ = [
    "INK_STATISTICS",
    "distance_gallery_indices",
    "evaluate_signature_model",
    "ink_rule_similarities",
    "model_size",
    "pair_similarities",
]


def pair_similarities(model: SiameseModel, signature_set: SignatureSet,
                      pairs: tuple[ArrayLike, ArrayLike, ArrayLike] | None = None,
                      batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Similarities (higher = same) of ``pairs`` of ``signature_set`` (default: all of :func:`signature_pairs`).

    Each image is embedded once and the head scores the pairs from the embeddings, which is much
    faster than embedding both images of every pair. Returns ``(similarities, labels)`` (1 = same).
    """
    from siamese_tf import heads as heads_module

    first, second, labels = signature_pairs(signature_set) if pairs is None else pairs
    embeddings = model.embed(signature_set.images, batch_size=batch_size)
    scores = np.asarray(model.head(embeddings[np.asarray(first)], embeddings[np.asarray(second)])).reshape(-1)
    return heads_module.to_similarity(scores, model.head), np.asarray(labels, dtype=np.int64)


INK_STATISTICS = ("amount", "darkness")


def ink_rule_similarities(signature_set: SignatureSet, statistic: str = "darkness",
                          pairs: tuple[ArrayLike, ArrayLike, ArrayLike] | None = None,
                          ) -> tuple[np.ndarray, np.ndarray]:
    """A no-learning floor: pairs scored by how alike one ink statistic of the two images is.

    ``statistic`` "amount" is the sum of the image (ink = 1), "darkness" the mean value of the
    ink pixels (only informative with ``keep_gray`` images). Similarity = minus the absolute
    difference (higher = same). If a set's forgeries were written with another pen, this rule
    alone separates them: compare any model with it. Returns ``(similarities, labels)``.
    """
    if statistic not in INK_STATISTICS:
        raise ValueError(f"statistic must be one of {INK_STATISTICS}, got {statistic!r}")
    first, second, labels = signature_pairs(signature_set) if pairs is None else pairs
    flat = np.asarray(signature_set.images, np.float64).reshape(len(signature_set.images), -1)
    values = flat.sum(axis=1)  # paper pixels are 0, so this is the ink amount
    if statistic == "darkness":
        values = values / np.maximum((flat > 0).sum(axis=1), 1)
    similarities = -np.abs(values[np.asarray(first)] - values[np.asarray(second)])
    return similarities, np.asarray(labels, dtype=np.int64)


def evaluate_signature_model(model: SiameseModel, validation_set: SignatureSet,
                             test_set: SignatureSet) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Choose the threshold on validation writers (max accuracy), then measure on unseen test writers.

    Uses every pair of :func:`signature_pairs` on both sets (labels: 1 = genuine pair, 0 = forgery).
    Stores the threshold in ``model.thresholds`` as :func:`siamese_tf.metrics.calibrate` does
    (``"detection"`` on the similarity scale: minus the distance for a distance head).
    Returns ``(figures, test_similarities, test_labels)``; figures hold accuracy, precision,
    recall, auc (AUROC), eer, ``threshold`` and, for a distance head, ``distance_threshold``.
    """
    from siamese_tf import metrics

    validation_similarities, validation_labels = pair_similarities(model, validation_set)
    threshold = metrics.choose_threshold(validation_similarities, validation_labels, method="accuracy")
    model.thresholds.update({"detection": float(threshold), "method": "accuracy"})
    similarities, labels = pair_similarities(model, test_set)
    figures = metrics.binary_metrics(similarities, labels, threshold)
    eer, _ = metrics.equal_error_rate(similarities, labels)
    figures.update({"auc": metrics.roc_auc(similarities, labels), "eer": eer, "threshold": float(threshold),
                    "validation_accuracy": metrics.binary_metrics(
                        validation_similarities, validation_labels, threshold)["accuracy"]})
    if model.output_kind == "distance":
        figures["distance_threshold"] = -float(threshold)
    return figures, similarities, labels


def model_size(model: SiameseModel, path: str | os.PathLike) -> dict[str, Any]:
    """Parameter counts and the size of ``model`` saved (without optimizer state) as ``path`` (.keras).

    Returns ``{"parameters", "trainable_parameters", "float32_megabytes", "file_bytes", "file_megabytes"}``
    (megabytes = 10**6 bytes). Only the network and its thresholds are saved: a compiled model's
    optimizer state would triple the file.
    """
    from siamese_tf.models import SiameseModel, save_model

    trainable = int(sum(np.prod(weight.shape) for weight in model.trainable_weights))
    parameters = int(model.count_params())
    plain = SiameseModel(model.embedding, model.head, thresholds=dict(model.thresholds)) \
        if isinstance(model, SiameseModel) else model
    saved = save_model(plain, path)
    file_bytes = Path(saved).stat().st_size
    return {"parameters": parameters, "trainable_parameters": trainable,
            "float32_megabytes": parameters * 4 / 1e6, "file_bytes": int(file_bytes),
            "file_megabytes": file_bytes / 1e6}


def distance_gallery_indices(distances: ArrayLike, per_group: int = 4) -> dict[str, np.ndarray]:
    """Indices of the ``per_group`` lowest, middle and highest distances: ``{"low", "middle", "high"}``."""
    distances = np.asarray(distances, dtype=np.float64).reshape(-1)
    if not isinstance(per_group, (int, np.integer)) or per_group < 1:
        raise ValueError(f"per_group must be a positive integer, got {per_group!r}")
    if len(distances) < 3 * per_group:
        raise ValueError(f"need at least {3 * per_group} distances for {per_group} per group, got {len(distances)}")
    order = np.argsort(distances, kind="stable")
    middle_start = (len(order) - per_group) // 2
    return {"low": order[:per_group], "middle": order[middle_start: middle_start + per_group],
            "high": order[-per_group:]}
