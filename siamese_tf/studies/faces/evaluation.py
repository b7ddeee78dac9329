"""Face evaluation: the seed apps' "N reference images" rule, and the LFW protocol's scoring side.

LFW View 2 (see ``LFW_README.txt``): the pairs of ``pairs.txt`` come in people-disjoint folds;
for each test fold a method is trained, and its decision threshold chosen, on the other folds
only, then the test fold's pairs are classified one pair at a time. :func:`lfw_fold_report`
does this for one test fold and :func:`lfw_cross_validation` for every fold; :func:`summarise_folds`
gives what LFW result tables print: the mean accuracy with its standard error, and the mean AUC.

A *scorer* gives similarities (higher = same) to pairs of images. It is any of:

* a function ``(first_images, second_images) -> similarities``, one per pair;
* an object with ``features(images) -> (N, D) array`` and ``similarity(a_features, b_features)
  -> (N,)`` similarities of row i of ``a_features`` with row i of ``b_features`` (each image is
  then turned into features once: :class:`PixelPairScorer`, :class:`HogPairScorer`);
* a :class:`~siamese_tf.models.SiameseModel` (its ``similarity_pairs``).

Fold numbers are 1-based. Label convention: 1 = same, 0 = different.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import ArrayLike

from siamese_tf import metrics
from siamese_tf.errors import SiameseDataError
from siamese_tf.studies.faces.data import LFWPairs, fold_pair_indices

if TYPE_CHECKING:
    from typing import Protocol

    from siamese_tf.datasets import ImageSet
    from siamese_tf.models import SiameseModel

    class FeatureScorer(Protocol):
        """A scorer that turns every image into features once, then compares pairs of features."""

        def features(self, images: ArrayLike) -> np.ndarray: ...

        def similarity(self, a_features: np.ndarray, b_features: np.ndarray) -> np.ndarray: ...

    PairScorer = Callable[[np.ndarray, np.ndarray], ArrayLike] | FeatureScorer | SiameseModel

__all__ = [
    "cross_dataset_report",
    "HOG_METRICS",
    "HogPairScorer",
    "LFWFoldReport",
    "PixelPairScorer",
    "fold_report",
    "lfw_cross_validation",
    "lfw_fold_report",
    "calibrate_face_thresholds",
    "check_pair_features",
    "reference_rule_scores",
    "score_lfw_folds",
    "summarise_folds",
    "to_gray",
]


def reference_rule_scores(model: SiameseModel, image_set: ImageSet, reference_images: int, detection_threshold: float,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the seed apps' rule: the fraction of a person's reference images that match.

    For every subject, the first ``reference_images`` images are the stored references;
    each remaining image of that subject is a genuine attempt (label 1) and an equal number
    of other subjects' images are impostor attempts (label 0).
    Returns (fractions, labels).
    """
    rng = np.random.default_rng(seed)
    embeddings = model.embed(image_set.images)
    fractions, labels = [], []
    for label in range(image_set.num_classes):
        members = np.flatnonzero(image_set.labels == label)
        if len(members) <= reference_images:
            continue
        references = embeddings[members[:reference_images]]
        genuine = members[reference_images:]
        others = np.flatnonzero(image_set.labels != label)
        impostors = rng.choice(others, size=min(len(genuine), len(others)), replace=False)
        attempts = np.concatenate([genuine, impostors])
        similarities = model.similarity_to_library(embeddings[attempts], references)
        fractions.extend((similarities > detection_threshold).mean(axis=1))
        labels.extend([1] * len(genuine) + [0] * len(impostors))
    return np.asarray(fractions), np.asarray(labels)


def calibrate_face_thresholds(model: SiameseModel, validation: ImageSet, num_pairs: int = 2000,
                              max_references: int = 5, seed: int = 0,
                              references: int | None = None) -> dict[str, float | int]:
    """Choose and store both thresholds of ``model`` on validation people (never the test people).

    Detection: the accuracy-maximising similarity threshold on ``num_pairs`` balanced pairs of the
    validation people (:func:`siamese_tf.metrics.calibrate`). Verification: the seed apps' rule,
    with ``references`` reference images per person (default: at most ``max_references``, one fewer
    than the median person has; give the gallery size an app will use when validation people have
    that many images), chosen on :func:`reference_rule_scores`. Both are written to
    ``model.thresholds`` (saved with the model). Returns them with the reference count.

    Raises:
        SiameseDataError: fewer than 2 validation people, or none with more images than references.
    """
    from siamese_tf.samplers import make_pairs
    from siamese_tf.verification import choose_verification_threshold

    if validation.num_classes < 2:
        raise SiameseDataError(f"choosing thresholds needs at least 2 validation people, got {validation.num_classes}")
    (first, second), labels = make_pairs(validation.images, validation.labels, num_pairs, seed=seed)
    detection = metrics.calibrate(model, first, second, labels)
    counts = np.bincount(validation.labels)
    if references is None:
        references = max(1, min(int(max_references), int(np.median(counts[counts > 0])) - 1))
    elif not isinstance(references, (int, np.integer)) or references < 1:
        raise ValueError(f"references must be a positive whole number, got {references!r}")
    fractions, rule_labels = reference_rule_scores(model, validation, references, detection, seed=seed)
    if len(set(np.asarray(rule_labels).tolist())) < 2:
        raise SiameseDataError(
            f"the verification threshold needs validation people with more than {references} image(s) each "
            f"(reference images plus attempts); the {validation.num_classes} held out here have too few"
        )
    verification = choose_verification_threshold(fractions, rule_labels)
    model.thresholds["verification"] = float(verification)
    return {"detection": float(detection), "verification": float(verification), "references": references,
            "validation_people": int(validation.num_classes), "validation_pairs": int(len(labels))}


# --- baseline scorers -------------------------------------------------------------------------------

def to_gray(images: ArrayLike) -> np.ndarray:
    """(N, H, W) float32 gray images from (N, H, W, C) ones in [0, 1] (RGB weights of ITU-R 601)."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        return images
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must have shape (N, H, W, 1) or (N, H, W, 3), got {images.shape}")
    if images.shape[-1] == 1:
        return images[..., 0]
    return images @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


def check_pair_features(a_features: ArrayLike, b_features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both feature arrays as float64 (N, D), or a ValueError naming both shapes (row i is compared with row i)."""
    a_features = np.asarray(a_features, dtype=np.float64)
    b_features = np.asarray(b_features, dtype=np.float64)
    if a_features.shape != b_features.shape or a_features.ndim != 2:
        raise ValueError(f"similarity compares row i with row i: both need the same (N, D) shape, "
                         f"got {a_features.shape} and {b_features.shape}")
    return a_features, b_features


class PixelPairScorer:
    """Raw pixels: similarity = minus the Euclidean distance of the normalised gray pixels.

    Each image (already cropped and resized by the loader) becomes gray, loses its mean and is
    scaled to unit length, so brightness and contrast do not count; the distance is then a
    monotone function of the pixels' correlation.
    """

    def features(self, images: ArrayLike) -> np.ndarray:
        gray = to_gray(images)
        flat = gray.reshape(len(gray), -1).astype(np.float64)
        flat = flat - flat.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(flat, axis=1, keepdims=True)
        return (flat / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def similarity(self, a_features: np.ndarray, b_features: np.ndarray) -> np.ndarray:
        a_features, b_features = check_pair_features(a_features, b_features)
        return -np.linalg.norm(a_features - b_features, axis=1)


HOG_METRICS = ("cosine", "chi2")


class HogPairScorer:
    """Histograms of oriented gradients (OpenCV ``cv2.HOGDescriptor``) compared pair by pair.

    The descriptor covers the whole image (its size rounded down to whole cells): ``cell`` x
    ``cell`` pixel cells with ``bins`` unsigned orientation bins, 2 x 2-cell blocks moved one cell
    at a time, each block L2-Hys normalised (OpenCV's defaults). At 64x64 that is 7 x 7 blocks,
    1,764 numbers. Colour images are turned gray first.

    ``metric``: ``"chi2"`` (default: minus the chi-square distance ``sum (a - b)^2 / (a + b)``, the
    usual choice for histograms) or ``"cosine"`` (cosine similarity). Chi-square was chosen on
    LFW's folds 1-8 (mean AUC 0.711 vs 0.704 for cosine, 64x64 gray with ``LFW_CENTER_CROP``), never
    on the fold it is tested on.
    """

    def __init__(self, cell: int = 8, bins: int = 9, metric: str = "chi2") -> None:
        for name, value in (("cell", cell), ("bins", bins)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
                raise ValueError(f"{name} must be an integer of at least 2, got {value!r}")
        if metric not in HOG_METRICS:
            raise ValueError(f"metric must be one of {list(HOG_METRICS)}, got {metric!r}")
        self.cell, self.bins, self.metric = int(cell), int(bins), metric
        self._descriptors = {}

    def _descriptor(self, height, width):
        cell = self.cell
        window = (width // cell * cell, height // cell * cell)  # OpenCV sizes are (width, height)
        if window[0] < 2 * cell or window[1] < 2 * cell:
            raise ValueError(f"HOG needs images of at least {2 * cell}x{2 * cell} pixels (2 x 2 cells of {cell}), "
                             f"got {height}x{width}")
        if window not in self._descriptors:
            self._descriptors[window] = cv2.HOGDescriptor(window, (2 * cell, 2 * cell), (cell, cell), (cell, cell),
                                                          self.bins)
        return self._descriptors[window], window

    def features(self, images: ArrayLike) -> np.ndarray:
        gray = to_gray(images)
        if len(gray) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        descriptor, (width, height) = self._descriptor(*gray.shape[1:3])
        pixels = np.clip(np.rint(gray[:, :height, :width] * 255.0), 0, 255).astype(np.uint8)
        return np.stack([descriptor.compute(np.ascontiguousarray(image)).reshape(-1) for image in pixels])

    def similarity(self, a_features: np.ndarray, b_features: np.ndarray) -> np.ndarray:
        a_features, b_features = check_pair_features(a_features, b_features)
        if self.metric == "cosine":
            norms = np.linalg.norm(a_features, axis=1) * np.linalg.norm(b_features, axis=1)
            return (a_features * b_features).sum(axis=1) / np.where(norms > 0, norms, 1.0)
        totals = a_features + b_features
        squared = (a_features - b_features) ** 2
        return -np.where(totals > 0, squared / np.where(totals > 0, totals, 1.0), 0.0).sum(axis=1)

    def __repr__(self) -> str:
        return f"HogPairScorer(cell={self.cell}, bins={self.bins}, metric={self.metric!r})"


# --- scoring the folds --------------------------------------------------------------------------------

def _check_folds(pairs, folds, what):
    numbers = [pairs.check_fold(number) for number in folds]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{what} repeats a fold: {numbers}")
    return numbers


def score_lfw_folds(scorer: PairScorer, image_set: ImageSet, pairs: LFWPairs,
                    folds: Collection[int] | None = None, batch_size: int = 256) -> dict[int, np.ndarray]:
    """Similarities (higher = same) of the pairs of ``folds`` (fold numbers; default all), per fold.

    A scorer with ``features`` turns each image used by these folds into features once; a function
    or a model gets the images of ``batch_size`` pairs at a time. Every pair is scored from its own
    two images only, as the protocol asks.

    Raises:
        SiameseDataError: a pair names an image that ``image_set`` does not hold.
        ValueError: a scorer of another kind, or one that returns the wrong number of similarities.
    """
    if not isinstance(pairs, LFWPairs):
        raise ValueError(f"pairs must be the LFWPairs of read_lfw_pairs, got {type(pairs).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    numbers = _check_folds(pairs, range(1, pairs.num_folds + 1) if folds is None else folds, "folds")
    indices = {number: fold_pair_indices(image_set, pairs, fold=number) for number in numbers}
    result = {}
    if hasattr(scorer, "features") and hasattr(scorer, "similarity"):
        features_of = _features_once(scorer, image_set.images,
                                     np.concatenate([np.concatenate([first, second]) for first, second, _ in
                                                     indices.values()]))
        for number, (first, second, _) in indices.items():
            result[number] = _check_similarities(
                scorer.similarity(features_of(first), features_of(second)), len(first), scorer)
        return result
    function = _pair_function(scorer)
    for number, (first, second, _) in indices.items():
        chunks = [_check_similarities(function(image_set.images[first[start:start + batch_size]],
                                               image_set.images[second[start:start + batch_size]]),
                                      len(first[start:start + batch_size]), scorer)
                  for start in range(0, len(first), batch_size)]
        result[number] = np.concatenate(chunks) if chunks else np.zeros(0)
    return result


def _features_once(scorer, images, indices):
    """Features of each distinct image among ``indices`` (computed once, in one call), and a function
    from image indices to their rows: a pair list names most images many times."""
    used = np.unique(indices)
    features = np.asarray(scorer.features(images[used]))
    if len(features) != len(used):
        raise ValueError(f"{type(scorer).__name__}.features returned {len(features)} rows for {len(used)} images")
    row_of = np.full(len(images), -1, dtype=np.int64)
    row_of[used] = np.arange(len(used))
    return lambda image_indices: features[row_of[image_indices]]


def _pair_function(scorer):
    """``(first_images, second_images) -> similarities`` of a function or a SiameseModel scorer."""
    if hasattr(scorer, "similarity_pairs"):
        return scorer.similarity_pairs
    if callable(scorer):
        return scorer
    raise ValueError(f"a scorer is a function (first_images, second_images) -> similarities, an object with "
                     f"features() and similarity(), or a SiameseModel; got {type(scorer).__name__}")


def cross_dataset_report(scorers: Mapping[str, PairScorer], image_set: ImageSet, num_pairs: int = 2000,
                         seed: int = 0) -> dict[str, dict[str, float]]:
    """AUC and EER of each scorer on balanced pairs of another data set (e.g. ORL for an LFW model).

    Nothing is fitted on ``image_set``, so no threshold is reported: AUC and EER need none. A
    scorer with ``features`` describes each image of the pairs once (2,000 pairs of ORL's 400 faces
    name each face about ten times), then compares the rows of each pair.
    """
    from siamese_tf.samplers import make_pairs

    # The pairs as indices (the same pairs make_pairs draws from the labels and the seed).
    (first, second), labels = make_pairs(np.arange(len(image_set)), image_set.labels, num_pairs, seed=seed)
    report = {}
    for name, scorer in scorers.items():
        if hasattr(scorer, "features") and hasattr(scorer, "similarity"):
            features_of = _features_once(scorer, image_set.images, np.concatenate([first, second]))
            similarities = scorer.similarity(features_of(first), features_of(second))
        else:
            similarities = _pair_function(scorer)(image_set.images[first], image_set.images[second])
        similarities = _check_similarities(similarities, len(first), scorer)
        report[name] = {"auc": metrics.roc_auc(similarities, labels),
                        "eer": metrics.equal_error_rate(similarities, labels)[0], "num_pairs": len(labels)}
    return report


def _check_similarities(similarities, expected, scorer):
    similarities = np.asarray(similarities, dtype=np.float64).reshape(-1)
    if len(similarities) != expected:
        raise ValueError(f"{type(scorer).__name__} returned {len(similarities)} similarities for {expected} pairs")
    if not np.all(np.isfinite(similarities)):
        raise ValueError(f"{type(scorer).__name__} returned similarities that are not finite (NaN or inf)")
    return similarities


# --- one fold's report ------------------------------------------------------------------------------------

@dataclass
class LFWFoldReport:
    """LFW figures of one test fold, its threshold chosen on other folds only.

    Attributes:
        test_fold: the fold scored (1-based).
        threshold_folds: the folds whose pairs chose the threshold.
        method: how the threshold was chosen (:func:`siamese_tf.metrics.choose_threshold`).
        threshold: the similarity from which a pair is called "same" (``>=``).
        accuracy: fraction of the test fold's pairs classified right at ``threshold``.
        threshold_fold_accuracy: the same on the threshold folds (how well the threshold fit there).
        auc: area under the test fold's ROC curve; ``eer`` its equal error rate.
        false_accept_rates, true_accept_rates: the test fold's ROC curve points
            (:func:`siamese_tf.metrics.roc_curve`), from (0, 0) to (1, 1).
        num_pairs: pairs in the test fold.
    """

    test_fold: int
    threshold_folds: tuple[int, ...]
    method: str
    threshold: float
    accuracy: float
    threshold_fold_accuracy: float
    auc: float
    eer: float
    false_accept_rates: np.ndarray
    true_accept_rates: np.ndarray
    num_pairs: int

    def to_dict(self, roc: bool = True) -> dict[str, Any]:
        """The figures as plain Python values (for JSON); the ROC points only with ``roc``."""
        result = {
            "test_fold": self.test_fold, "threshold_folds": list(self.threshold_folds), "method": self.method,
            "threshold": self.threshold, "accuracy": self.accuracy,
            "threshold_fold_accuracy": self.threshold_fold_accuracy, "auc": self.auc, "eer": self.eer,
            "num_pairs": self.num_pairs,
        }
        if roc:
            result["roc"] = {"false_accept_rates": self.false_accept_rates.tolist(),
                             "true_accept_rates": self.true_accept_rates.tolist()}
        return result


def fold_report(similarities: Mapping[int, ArrayLike], labels: Mapping[int, ArrayLike], test_fold: int,
                threshold_folds: Collection[int] | None = None, method: str = "accuracy") -> LFWFoldReport:
    """The report of ``test_fold`` from similarities already computed, per fold number.

    The threshold is chosen on the pairs of ``threshold_folds`` pooled (default: every fold in
    ``similarities`` but the test fold) with :func:`siamese_tf.metrics.choose_threshold`; the
    test fold is then classified with it. The test fold never takes part in the choice.

    Raises:
        ValueError: the test fold is among the threshold folds, a fold is missing from
            ``similarities`` or ``labels``, or their lengths differ.
    """
    if test_fold not in similarities or test_fold not in labels:
        raise ValueError(f"test fold {test_fold!r} has no similarities or labels (folds given: {sorted(similarities)})")
    if threshold_folds is None:
        threshold_folds = [number for number in sorted(similarities) if number != test_fold]
    threshold_folds = tuple(int(number) for number in threshold_folds)
    if test_fold in threshold_folds:
        raise ValueError(f"the test fold {test_fold} cannot also choose the threshold (threshold folds "
                         f"{list(threshold_folds)}): LFW's protocol keeps the test fold out of all fitting")
    if not threshold_folds:
        raise ValueError("no fold left to choose the threshold on: the protocol needs at least one other fold")
    if len(set(threshold_folds)) != len(threshold_folds):
        raise ValueError(f"threshold_folds repeats a fold: {list(threshold_folds)}")

    def fold_arrays(number):
        if number not in similarities or number not in labels:
            raise ValueError(f"fold {number} has no similarities or labels (folds given: {sorted(similarities)})")
        fold_similarities = np.asarray(similarities[number], dtype=np.float64).reshape(-1)
        fold_labels = np.asarray(labels[number]).reshape(-1)
        if len(fold_similarities) != len(fold_labels):
            raise ValueError(f"fold {number}: {len(fold_similarities)} similarities for {len(fold_labels)} labels")
        return fold_similarities, fold_labels

    training = [fold_arrays(number) for number in threshold_folds]
    training_similarities = np.concatenate([values for values, _ in training])
    training_labels = np.concatenate([values for _, values in training])
    threshold = metrics.choose_threshold(training_similarities, training_labels, method=method)
    test_similarities, test_labels = fold_arrays(test_fold)
    false_accept_rates, true_accept_rates, _ = metrics.roc_curve(test_similarities, test_labels)
    return LFWFoldReport(
        test_fold=int(test_fold),
        threshold_folds=threshold_folds,
        method=method,
        threshold=float(threshold),
        accuracy=metrics.binary_metrics(test_similarities, test_labels, threshold)["accuracy"],
        threshold_fold_accuracy=metrics.binary_metrics(training_similarities, training_labels, threshold)["accuracy"],
        auc=metrics.roc_auc(test_similarities, test_labels),
        eer=metrics.equal_error_rate(test_similarities, test_labels)[0],
        false_accept_rates=false_accept_rates,
        true_accept_rates=true_accept_rates,
        num_pairs=len(test_labels),
    )


def lfw_fold_report(scorer: PairScorer, image_set: ImageSet, pairs: LFWPairs, test_fold: int,
                    threshold_folds: Collection[int] | None = None, method: str = "accuracy") -> LFWFoldReport:
    """Score one LFW test fold: the threshold from ``threshold_folds`` (default all the other
    folds of ``pairs``), then accuracy, AUC, EER and the ROC curve on ``test_fold``.

    ``scorer``: see the module docstring. Only the folds named are scored. Train the scorer itself
    (if it learns) on the people of the threshold folds, never on the test fold's.
    """
    test_fold = pairs.check_fold(test_fold)
    if threshold_folds is None:
        threshold_folds = [number for number in range(1, pairs.num_folds + 1) if number != test_fold]
    threshold_folds = _check_folds(pairs, threshold_folds, "threshold_folds")
    if test_fold in threshold_folds:
        raise ValueError(f"the test fold {test_fold} cannot also choose the threshold (threshold folds "
                         f"{threshold_folds}): LFW's protocol keeps the test fold out of all fitting")
    similarities = score_lfw_folds(scorer, image_set, pairs, [test_fold, *threshold_folds])
    labels = {number: pairs.labels(number) for number in similarities}
    return fold_report(similarities, labels, test_fold, threshold_folds, method)


def lfw_cross_validation(scorer: PairScorer, image_set: ImageSet, pairs: LFWPairs,
                         test_folds: Collection[int] | None = None, method: str = "accuracy") -> list[LFWFoldReport]:
    """LFW's k-fold protocol for a fixed scorer: each of ``test_folds`` (default all) is tested with
    the threshold chosen on all the other folds. Every fold is scored once.

    For a scorer that learns, train one per test fold and call :func:`lfw_fold_report` instead.
    """
    numbers = _check_folds(pairs, range(1, pairs.num_folds + 1) if test_folds is None else test_folds, "test_folds")
    if pairs.num_folds < 2:
        raise ValueError(f"{pairs.source} has one fold: cross-validation needs at least two")
    similarities = score_lfw_folds(scorer, image_set, pairs)
    labels = {number: pairs.labels(number) for number in similarities}
    return [fold_report(similarities, labels, number, method=method) for number in numbers]


def _standard_error(values):
    """Standard error of the mean as LFW's results page gives it: sample std (k - 1) / sqrt(k)."""
    if len(values) < 2:
        return math.nan
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def summarise_folds(reports: Sequence[LFWFoldReport]) -> dict[str, Any]:
    """What LFW result tables print: mean accuracy +- its standard error over the test folds.

    The standard error is ``s / sqrt(k)`` with ``s`` the sample standard deviation (``k - 1`` in
    the denominator) of the ``k`` fold accuracies, as on LFW's results page; NaN for one fold.

    Returns a dict: ``num_folds``, ``test_folds``, ``mean_accuracy``, ``accuracy_standard_error``,
    ``mean_auc``, ``auc_standard_error``, ``mean_eer``, ``accuracies``, ``aucs``.

    Raises:
        ValueError: no reports, or one test fold twice.
    """
    reports = list(reports)
    if not reports:
        raise ValueError("summarise_folds needs at least one fold report, got none")
    folds = [report.test_fold for report in reports]
    if len(set(folds)) != len(folds):
        raise ValueError(f"each test fold may be reported once, got folds {folds}")
    accuracies = [float(report.accuracy) for report in reports]
    aucs = [float(report.auc) for report in reports]
    return {
        "num_folds": len(reports),
        "test_folds": folds,
        "mean_accuracy": float(np.mean(accuracies)),
        "accuracy_standard_error": _standard_error(accuracies),
        "mean_auc": float(np.mean(aucs)),
        "auc_standard_error": _standard_error(aucs),
        "mean_eer": float(np.mean([report.eer for report in reports])),
        "accuracies": accuracies,
        "aucs": aucs,
    }
