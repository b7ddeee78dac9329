"""Evaluation metrics for verification (same / different) and N-way one-shot tasks.

Everything here works on **similarities** (higher = more alike) and **labels with 1 = same,
0 = different**. Distances from a distance head become similarities with
:func:`siamese_tf.heads.to_similarity` (``SiameseModel.similarity_pairs`` already does it).

A pair is predicted "same" when ``similarity >= threshold``. Thresholds chosen by
:func:`choose_threshold` lie *between* observed scores (midpoints), so the strict rule
``similarity > threshold`` used by :mod:`siamese_tf.verification` gives the same decisions on the
calibration data.

The pure functions (``binary_metrics`` ... ``n_way_accuracy``) are thin wrappers: they check
their input with :func:`check_scores_and_labels` (so the error messages name the problem in the
package's terms), then let :mod:`sklearn.metrics` do the counting (``confusion_matrix``,
``precision_recall_fscore_support``, ``roc_curve``, ``roc_auc_score``, ``auc``,
``confusion_matrix_at_thresholds``) with ``pos_label=1`` = "same". scikit-learn is imported on
first use, not with this module (it takes about a second to import). The model helpers
(``evaluate_n_way``, ``evaluate_verification``, ``calibrate``) take a
:class:`siamese_tf.models.SiameseModel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from siamese_tf.models import SiameseModel

__all__ = [
    "THRESHOLD_METHODS",
    "auc",
    "binary_metrics",
    "calibrate",
    "check_scores_and_labels",
    "choose_threshold",
    "equal_error_rate",
    "evaluate_n_way",
    "evaluate_verification",
    "n_way_accuracy",
    "n_way_one_shot_accuracy",
    "roc_auc",
    "roc_curve",
]

THRESHOLD_METHODS = ("accuracy", "eer", "far")

_SAME, _DIFFERENT = 1, 0  # labels of "same" and "different" pairs; "same" is scikit-learn's pos_label


def _sklearn_metrics():
    """:mod:`sklearn.metrics`, imported on first use (importing it costs about a second)."""
    import sklearn.metrics

    return sklearn.metrics


# --- input checks -------------------------------------------------------------------------

def check_scores_and_labels(
    similarities: ArrayLike,
    labels: ArrayLike,
    need_both_classes: bool = False,
    similarities_name: str = "similarities",
) -> tuple[np.ndarray, np.ndarray]:
    """Validate scored pairs; return (similarities float64 (N,), labels int64 (N,)).

    Labels are 1 = same, 0 = different (any numeric dtype holding only those values); scores
    are similarities, higher = same. A column vector (N, 1), as Keras returns, is accepted as
    (N,). Raises a ValueError naming the problem: wrong shapes or lengths, no pairs, non-finite
    scores, labels other than 0/1 and, with ``need_both_classes``, labels of one class only.
    ``similarities_name`` is the word used for the scores in the messages.
    """
    similarities = np.asarray(similarities, dtype=np.float64)
    labels_array = np.asarray(labels)
    # A column vector (N, 1), as Keras returns, is accepted as (N,).
    if similarities.ndim == 2 and similarities.shape[1] == 1:
        similarities = similarities[:, 0]
    if labels_array.ndim == 2 and labels_array.shape[1] == 1:
        labels_array = labels_array[:, 0]
    if similarities.ndim != 1:
        raise ValueError(f"{similarities_name} must be a 1-D array of scores, got shape {similarities.shape}")
    if labels_array.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of 0/1 values, got shape {labels_array.shape}")
    if len(similarities) != len(labels_array):
        raise ValueError(
            f"Got {len(similarities)} {similarities_name} but {len(labels_array)} labels; they must match"
        )
    if len(similarities) == 0:
        raise ValueError(f"No {similarities_name} given: need at least one scored pair")
    if not np.all(np.isfinite(similarities)):
        bad = similarities[~np.isfinite(similarities)][:3]
        raise ValueError(f"{similarities_name} must be finite numbers; found {bad.tolist()}")
    try:
        labels_float = labels_array.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"labels must be 0 (different) or 1 (same); got {labels_array[:5].tolist()}") from None
    unexpected = np.setdiff1d(np.unique(labels_float), [0.0, 1.0])
    if unexpected.size:
        raise ValueError(
            f"labels must be 0 (different) or 1 (same); found {unexpected[:5].tolist()}"
        )
    labels_int = labels_float.astype(np.int64)
    if need_both_classes:
        positives = int(labels_int.sum())
        if positives == 0 or positives == len(labels_int):
            present = "only 'same' (1)" if positives else "only 'different' (0)"
            raise ValueError(
                f"labels hold {present} pairs; this metric needs both same (1) and different (0) pairs"
            )
    return similarities, labels_int




def _check_threshold(threshold, name="threshold"):
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {threshold!r}") from None
    if np.isnan(value):
        raise ValueError(f"{name} must be a number, got NaN")
    return value


def _ratio(numerator, denominator):
    return float(numerator) / float(denominator) if denominator else 0.0


# --- metrics at one threshold ---------------------------------------------------------------

def binary_metrics(similarities: ArrayLike, labels: ArrayLike, threshold: float) -> dict[str, float]:
    """Confusion counts and rates when pairs with ``similarity >= threshold`` are called "same".

    Labels: 1 = same, 0 = different. Returns a dict with ``accuracy``, ``precision``, ``recall``
    (true accept rate), ``f1``, ``false_accept_rate`` (different pairs accepted / different
    pairs), ``false_reject_rate`` (same pairs rejected / same pairs) and the counts
    ``true_positives``, ``false_positives``, ``true_negatives``, ``false_negatives`` (ints).

    A rate whose denominator is zero is reported as 0.0: precision with no predicted "same"
    pairs, recall and false reject rate with no same pairs, false accept rate with no different
    pairs, F1 when precision + recall is 0.
    """
    similarities, labels = check_scores_and_labels(similarities, labels)
    threshold = _check_threshold(threshold)
    sk = _sklearn_metrics()
    predictions = (similarities >= threshold).astype(np.int64)
    # labels=[0, 1] keeps the 2 x 2 layout when a class is missing: [[tn, fp], [fn, tp]].
    (true_negatives, false_positives), (false_negatives, true_positives) = sk.confusion_matrix(
        labels, predictions, labels=[_DIFFERENT, _SAME]
    ).tolist()
    precision, recall, f1, _ = sk.precision_recall_fscore_support(
        labels, predictions, average="binary", pos_label=_SAME, zero_division=0.0
    )
    return {
        "accuracy": float(sk.accuracy_score(labels, predictions)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "false_accept_rate": _ratio(false_positives, false_positives + true_negatives),
        "false_reject_rate": _ratio(false_negatives, true_positives + false_negatives),
        "true_positives": int(true_positives),
        "false_positives": int(false_positives),
        "true_negatives": int(true_negatives),
        "false_negatives": int(false_negatives),
    }


# --- curves ----------------------------------------------------------------------------------

def roc_curve(similarities: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic of similarities against labels (1 = same).

    Returns ``(false_positive_rates, true_positive_rates, thresholds)``: one point per distinct
    similarity (tied scores move together), in order of decreasing threshold, where point ``k``
    predicts "same" for ``similarity >= thresholds[k]``. The first point is (0, 0) with
    threshold ``+inf`` (nothing accepted); the last is (1, 1) at the lowest score. Needs both
    classes. This is ``sklearn.metrics.roc_curve(labels, similarities, pos_label=1,
    drop_intermediate=False)``: every distinct score keeps its point.
    """
    similarities, labels = check_scores_and_labels(similarities, labels, need_both_classes=True)
    false_positive_rates, true_positive_rates, thresholds = _sklearn_metrics().roc_curve(
        labels, similarities, pos_label=_SAME, drop_intermediate=False
    )
    return (
        np.asarray(false_positive_rates, dtype=np.float64),
        np.asarray(true_positive_rates, dtype=np.float64),
        np.asarray(thresholds, dtype=np.float64),
    )


def auc(x: ArrayLike, y: ArrayLike) -> float:
    """Area under the curve through points (x, y) by the trapezoid rule (``sklearn.metrics.auc``).

    ``x`` must be monotonic (either direction); the area is positive either way.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"auc needs as many x as y values; got {len(x)} and {len(y)}")
    if len(x) < 2:
        raise ValueError(f"auc needs at least 2 points, got {len(x)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("auc needs finite x and y values")
    steps = np.diff(x)
    if not (np.all(steps >= 0) or np.all(steps <= 0)):
        raise ValueError("auc needs x sorted (increasing or decreasing); got x going both ways")
    return float(_sklearn_metrics().auc(x, y))


def roc_auc(similarities: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve: the chance that a random same pair outscores a random
    different pair (ties count half). Labels: 1 = same. Needs both classes.

    This is ``sklearn.metrics.roc_auc_score(labels, similarities)``.
    """
    similarities, labels = check_scores_and_labels(similarities, labels, need_both_classes=True)
    return float(_sklearn_metrics().roc_auc_score(labels, similarities))


def equal_error_rate(similarities: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """Equal error rate and its threshold. Labels: 1 = same. Needs both classes.

    Walks the ROC points of :func:`roc_curve` from the strictest threshold down: the false
    accept rate (FAR) grows and the false reject rate (FRR = 1 - TPR) falls. Between the last
    point with FAR < FRR and the first with FAR >= FRR both rates are interpolated linearly; the
    EER is where they meet, and the threshold is interpolated the same way between the two
    points' thresholds (the strictest point's ``+inf`` is replaced by the score of its
    neighbour). scikit-learn has no EER; only the curve comes from it.

    Returns ``(eer, threshold)``.
    """
    false_accept_rates, true_accept_rates, thresholds = roc_curve(similarities, labels)
    false_reject_rates = 1.0 - true_accept_rates
    gaps = false_accept_rates - false_reject_rates  # starts at -1, ends at +1
    crossing = int(np.argmax(gaps >= 0))
    before = crossing - 1
    fraction = -gaps[before] / (gaps[crossing] - gaps[before])
    eer = false_accept_rates[before] + fraction * (false_accept_rates[crossing] - false_accept_rates[before])
    upper_threshold = thresholds[before] if np.isfinite(thresholds[before]) else thresholds[crossing]
    threshold = upper_threshold + fraction * (thresholds[crossing] - upper_threshold)
    return float(eer), float(threshold)


# --- choosing a threshold ----------------------------------------------------------------------

def _between_scores_thresholds(distinct_scores):
    """For each ROC point (``+inf`` first, then each distinct score, descending) a threshold that
    lies strictly between that score and the next lower one, so that ``>=`` and ``>`` agree.

    The ends get half the mean gap between scores (0.5 for a single distinct score) as a margin.
    """
    if len(distinct_scores) > 1:
        margin = (distinct_scores[0] - distinct_scores[-1]) / (len(distinct_scores) - 1) / 2.0
    else:
        margin = 0.5
    upper = np.r_[distinct_scores[0] + 2 * margin, distinct_scores]
    lower = np.r_[distinct_scores, distinct_scores[-1] - 2 * margin]
    return (upper + lower) / 2.0


def choose_threshold(
    similarities: ArrayLike,
    labels: ArrayLike,
    method: str = "accuracy",
    target_far: float | None = None,
) -> float:
    """Pick a decision threshold on the similarity scale from labelled pairs (1 = same).

    Methods:
        ``"accuracy"``: the threshold with the best accuracy, placed midway between the two
            neighbouring scores (ties between equally accurate thresholds go to the highest,
            that is the strictest, one).
        ``"eer"``: the equal-error-rate threshold of :func:`equal_error_rate`.
        ``"far"``: the threshold with the largest recall whose false accept rate is at most
            ``target_far`` (in [0, 1]); midway between neighbouring scores, like "accuracy".

    The counts at each distinct score come from ``sklearn.metrics.confusion_matrix_at_thresholds``.
    Returns the threshold as a float; predict "same" when ``similarity >= threshold``.
    """
    if not isinstance(method, str) or method.lower() not in THRESHOLD_METHODS:
        raise ValueError(f"Unknown threshold method {method!r}; choose one of {list(THRESHOLD_METHODS)}")
    method = method.lower()
    similarities, labels = check_scores_and_labels(similarities, labels, need_both_classes=True)
    if method == "eer":
        return equal_error_rate(similarities, labels)[1]

    _, false_positive_counts, _, true_positive_counts, distinct_scores = (
        _sklearn_metrics().confusion_matrix_at_thresholds(labels, similarities, pos_label=_SAME)
    )
    # point 0 accepts nothing; counts are whole numbers held as floats
    true_positive_counts = np.r_[0, np.rint(true_positive_counts).astype(np.int64)]
    false_positive_counts = np.r_[0, np.rint(false_positive_counts).astype(np.int64)]
    candidates = _between_scores_thresholds(np.asarray(distinct_scores, dtype=np.float64))
    positives = labels.sum()
    negatives = len(labels) - positives

    if method == "accuracy":
        correct = true_positive_counts + (negatives - false_positive_counts)
        return float(candidates[int(np.argmax(correct))])  # argmax: first = strictest on ties

    if target_far is None:
        raise ValueError("method='far' needs target_far, the largest acceptable false accept rate in [0, 1]")
    target_far = _check_threshold(target_far, "target_far")
    if not 0.0 <= target_far <= 1.0:
        raise ValueError(f"target_far must lie in [0, 1], got {target_far}")
    false_accept_rates = false_positive_counts / negatives
    allowed = false_accept_rates <= target_far + 1e-12  # point 0 (accept nothing) is always allowed
    recalls = np.where(allowed, true_positive_counts, -1)
    return float(candidates[int(np.argmax(recalls))])  # first maximum = lowest FAR for that recall


# --- N-way one-shot ------------------------------------------------------------------------------

def n_way_accuracy(similarity_matrix: ArrayLike, correct_positions: ArrayLike) -> float:
    """Fraction of N-way tasks answered correctly.

    ``similarity_matrix`` is (T, N): row t holds the query's similarity to each of the N support
    images of task t; ``correct_positions`` (T,) gives the support index of the query's class.
    A task counts as correct only when the correct position holds the **unique** maximum: a
    tie for first place counts as wrong, so a model that scores everything alike gets 0, not
    chance.
    """
    similarity_matrix = np.asarray(similarity_matrix, dtype=np.float64)
    if similarity_matrix.ndim != 2 or similarity_matrix.shape[0] == 0 or similarity_matrix.shape[1] < 2:
        raise ValueError(
            f"similarity_matrix must be (tasks, n_way) with n_way >= 2 and at least one task; "
            f"got shape {similarity_matrix.shape}"
        )
    if not np.all(np.isfinite(similarity_matrix)):
        raise ValueError("similarity_matrix must hold finite numbers")
    correct_positions = np.asarray(correct_positions)
    if correct_positions.shape != (similarity_matrix.shape[0],):
        raise ValueError(
            f"correct_positions must have shape ({similarity_matrix.shape[0]},), one per task; "
            f"got {correct_positions.shape}"
        )
    if not np.issubdtype(correct_positions.dtype, np.integer):
        raise ValueError(f"correct_positions must be integers, got dtype {correct_positions.dtype}")
    n_way = similarity_matrix.shape[1]
    out_of_range = correct_positions[(correct_positions < 0) | (correct_positions >= n_way)]
    if out_of_range.size:
        raise ValueError(f"correct_positions must lie in [0, {n_way - 1}]; found {out_of_range[:5].tolist()}")
    rows = np.arange(len(correct_positions))
    correct_scores = similarity_matrix[rows, correct_positions]
    others = similarity_matrix.copy()
    others[rows, correct_positions] = -np.inf
    return float(np.mean(correct_scores > others.max(axis=1)))


def _check_model(model):
    for attribute in ("embed", "head", "similarity_pairs", "similarity_to_library", "thresholds"):
        if not hasattr(model, attribute):
            raise ValueError(f"Expected a siamese_tf SiameseModel; {model!r} has no {attribute!r}")


def evaluate_n_way(
    model: SiameseModel,
    images: ArrayLike,
    labels: ArrayLike,
    n_way: int = 10,
    num_tasks: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """N-way one-shot accuracy of ``model`` on tasks sampled from ``images`` / class ``labels``.

    Tasks come from :func:`siamese_tf.samplers.sample_n_way_tasks` (one query, ``n_way`` support
    images of distinct classes, one of them the query's class). Every image used is embedded
    once; each query is then scored against its own support set with the model's head.

    Returns a dict: ``accuracy`` (ties count as wrong, see :func:`n_way_accuracy`), ``n_way``,
    ``num_tasks`` and ``chance`` (1 / n_way).
    """
    from keras import ops

    from siamese_tf import heads as heads_module
    from siamese_tf.samplers import sample_n_way_tasks

    _check_model(model)
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"Got {len(images)} images but {len(labels)} labels; they must match")
    query_indices, support_indices, correct_positions = sample_n_way_tasks(labels, n_way, num_tasks, seed)
    query_indices = np.asarray(query_indices)
    support_indices = np.asarray(support_indices)
    correct_positions = np.asarray(correct_positions)

    # Embed each needed image once, then gather per task.
    needed, inverse = np.unique(np.r_[query_indices, support_indices.reshape(-1)], return_inverse=True)
    embeddings = model.embed(images[needed])
    query_embeddings = embeddings[inverse[:len(query_indices)]]
    support_embeddings = embeddings[inverse[len(query_indices):]].reshape(support_indices.shape + (-1,))
    # (T, 1, D) against (T, n_way, D): the head broadcasts to (T, n_way) scores.
    scores = ops.convert_to_numpy(
        model.head(ops.convert_to_tensor(query_embeddings[:, None, :]), ops.convert_to_tensor(support_embeddings))
    )
    similarity_matrix = heads_module.to_similarity(scores, model.head).reshape(support_indices.shape)
    return {
        "accuracy": n_way_accuracy(similarity_matrix, correct_positions),
        "n_way": int(support_indices.shape[1]),
        "num_tasks": int(len(query_indices)),
        "chance": 1.0 / support_indices.shape[1],
    }


# --- model helpers for verification -----------------------------------------------------------

def evaluate_verification(
    model: SiameseModel,
    first_images: ArrayLike,
    second_images: ArrayLike,
    labels: ArrayLike,
    threshold: float | None = None,
) -> dict[str, float]:
    """Verification metrics of ``model`` on aligned pairs (labels: 1 = same).

    ``threshold`` is on the similarity scale; ``None`` uses ``model.thresholds["detection"]``
    (set by :func:`calibrate`). Returns :func:`binary_metrics` plus ``auc`` (ROC AUC), ``eer``,
    ``eer_threshold`` and ``threshold`` (the one used). Needs both classes.
    """
    _check_model(model)
    if threshold is None:
        if "detection" not in model.thresholds:
            raise ValueError(
                "No threshold given and the model has no calibrated 'detection' threshold; "
                "run siamese_tf.metrics.calibrate(model, ...) on validation pairs first"
            )
        threshold = model.thresholds["detection"]
    threshold = _check_threshold(threshold)
    similarities = model.similarity_pairs(first_images, second_images)
    similarities, labels = check_scores_and_labels(similarities, labels, need_both_classes=True)
    results = binary_metrics(similarities, labels, threshold)
    eer, eer_threshold = equal_error_rate(similarities, labels)
    results.update({
        "auc": roc_auc(similarities, labels),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "threshold": threshold,
    })
    return results


def calibrate(
    model: SiameseModel,
    first_images: ArrayLike,
    second_images: ArrayLike,
    labels: ArrayLike,
    method: str = "accuracy",
    target_far: float | None = None,
) -> float:
    """Choose the detection threshold on validation pairs and store it in the model.

    Sets ``model.thresholds["detection"]`` (similarity scale; a pair is "same" when its
    similarity reaches it), ``["method"]`` and, for ``method="far"``, ``["target_far"]``; these
    are saved with the model. Labels: 1 = same. Returns the threshold.
    """
    _check_model(model)
    similarities = model.similarity_pairs(first_images, second_images)
    threshold = choose_threshold(similarities, labels, method=method, target_far=target_far)
    update = {"detection": float(threshold), "method": method.lower()}
    if method.lower() == "far":
        update["target_far"] = float(target_far)
    model.thresholds.update(update)
    return float(threshold)


# The name used in docs/DESIGN.md.
n_way_one_shot_accuracy = n_way_accuracy
