"""Plots for pairs, training curves, ROC curves, score histograms, N-way tasks and verification.

Every function builds a new :class:`matplotlib.figure.Figure` (not registered with pyplot, so
nothing piles up in loops and a notebook shows it once, when it is the cell's last expression
or passed to ``display``) and returns it; ``path=`` also saves it as a PNG at 100 dpi.

Similarities are "higher = same"; labels 1 = same, 0 = different.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import keras

    from siamese_tf.verification import VerificationResult

__all__ = [
    "CHOSEN_COLOR",
    "DIFFERENT_COLOR",
    "SAME_COLOR",
    "SAVE_DPI",
    "plot_n_way_task",
    "plot_pairs",
    "plot_roc",
    "plot_score_histogram",
    "plot_training_curves",
    "plot_verification",
]


def _choose_backend():
    """Use Agg only when nobody chose a backend and there is no display to draw on.

    A notebook's inline backend, an ``MPLBACKEND`` setting or an earlier ``matplotlib.use`` call
    are all left alone.
    """
    if os.environ.get("MPLBACKEND"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt":
        return
    backend = dict.__getitem__(matplotlib.rcParams, "backend")
    if backend is matplotlib.rcsetup._auto_backend_sentinel:
        matplotlib.use("Agg")


try:
    _choose_backend()
except (AttributeError, KeyError):  # private matplotlib details moved: keep its own choice
    pass

from matplotlib.figure import Figure  # noqa: E402

from siamese_tf.settings import make_private  # noqa: E402

SAVE_DPI = 100
SAME_COLOR = "tab:green"
DIFFERENT_COLOR = "tab:red"
CHOSEN_COLOR = "tab:orange"


# --- helpers --------------------------------------------------------------------------------------

def _finish(figure, path):
    figure.tight_layout()
    if path is not None:
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"Plots are saved as PNG; the path must end in .png, got {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=SAVE_DPI, format="png")
        make_private(path)  # figures may show faces: the same policy as captures and models
    return figure


def _image_batch(images, name):
    """(N, H, W), (N, H, W, 1) or (N, H, W, 3) -> float array; anything else is a ValueError."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3)):
        if len(images) == 0:
            raise ValueError(f"{name} is empty")
        return images
    raise ValueError(f"{name} must have shape (N, H, W), (N, H, W, 1) or (N, H, W, 3); got {images.shape}")


def _single_image(image, name):
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 4 and len(image) == 1:
        image = image[0]
    if image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (1, 3)):
        return image
    raise ValueError(f"{name} must have shape (H, W), (H, W, 1) or (H, W, 3); got {image.shape}")


def _show(axes, image):
    image = np.clip(image, 0.0, 1.0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    axes.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0)
    axes.set_xticks([])
    axes.set_yticks([])


def _frame(axes, color, width=4):
    for spine in axes.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(color)
        spine.set_linewidth(width)


def _vector(values, name, length=None):
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers") from None
    if values.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers; got shape {values.shape}")
    if length is not None and len(values) != length:
        raise ValueError(f"{name} has {len(values)} values but {length} are needed")
    return values


# --- pairs and training ----------------------------------------------------------------------------

def plot_pairs(first_images: ArrayLike, second_images: ArrayLike, labels: ArrayLike | None = None,
               similarities: ArrayLike | None = None, max_pairs: int = 8,
               path: str | os.PathLike | None = None) -> Figure:
    """Show up to ``max_pairs`` pairs as columns: first image on top, second below.

    Titles give the label ("same" for 1, "different" for 0) and the similarity when given.
    """
    first_images = _image_batch(first_images, "first_images")
    second_images = _image_batch(second_images, "second_images")
    if len(first_images) != len(second_images):
        raise ValueError(f"Got {len(first_images)} first images but {len(second_images)} second images")
    if not isinstance(max_pairs, (int, np.integer)) or max_pairs < 1:
        raise ValueError(f"max_pairs must be a positive integer, got {max_pairs!r}")
    count = min(len(first_images), int(max_pairs))
    if labels is not None:
        labels = _vector(labels, "labels", len(first_images))
        if not np.all(np.isin(labels, (0, 1))):
            raise ValueError("labels must be 0 (different) or 1 (same)")
    if similarities is not None:
        similarities = _vector(similarities, "similarities", len(first_images))

    figure = Figure(figsize=(1.6 * count, 3.6))
    grid = figure.subplots(2, count, squeeze=False)
    for column in range(count):
        _show(grid[0, column], first_images[column])
        _show(grid[1, column], second_images[column])
        title = []
        if labels is not None:
            title.append("same" if labels[column] == 1 else "different")
        if similarities is not None:
            title.append(f"{similarities[column]:.2f}")
        if title:
            color = "black" if labels is None else (SAME_COLOR if labels[column] == 1 else DIFFERENT_COLOR)
            grid[0, column].set_title("\n".join(title), fontsize=9, color=color)
    return _finish(figure, path)


def plot_training_curves(history: keras.callbacks.History | Mapping[str, Sequence[float]],
                         path: str | os.PathLike | None = None) -> Figure:
    """One panel per quantity (loss, then each metric), training and ``val_`` curves together.

    ``history`` is a Keras ``History`` (``model.fit``'s return value) or a dict of lists.
    """
    history = getattr(history, "history", history)
    if not isinstance(history, dict) or not history:
        raise ValueError(f"history must be a keras History or a non-empty dict of lists; got {type(history).__name__}")
    series = {}
    for key, values in history.items():
        values = _vector(values, f"history[{key!r}]")
        if len(values) == 0:
            raise ValueError(f"history[{key!r}] is empty")
        series[str(key)] = values
    names = []
    for key in series:
        base = key[len("val_"):] if key.startswith("val_") else key
        if base not in names:
            names.append(base)
    names = sorted(names, key=lambda name: name != "loss")  # loss first; stable sort keeps the rest in order

    figure = Figure(figsize=(4.5 * len(names), 3.5))
    panels = figure.subplots(1, len(names), squeeze=False)[0]
    for axes, name in zip(panels, names):
        for key, label, style in ((name, "training", "-"), ("val_" + name, "validation", "--")):
            if key in series:
                epochs = np.arange(1, len(series[key]) + 1)
                axes.plot(epochs, series[key], style, marker="o", markersize=3, label=label)
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.legend()
        axes.grid(alpha=0.3)
    return _finish(figure, path)


# --- scores ----------------------------------------------------------------------------------------

def _curve_from_value(name, value):
    """Return (fpr, tpr, eer or None) for one entry of plot_roc's ``curves``."""
    if isinstance(value, dict):
        if {"similarities", "labels"} <= set(value):
            return _curve_from_scores(value["similarities"], value["labels"])
        if {"fpr", "tpr"} <= set(value):
            return _checked_curve(name, value["fpr"], value["tpr"])
        raise ValueError(f"curves[{name!r}] dict needs keys 'similarities'/'labels' or 'fpr'/'tpr'")
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"curves[{name!r}] must be (fpr, tpr) or (similarities, labels); got {type(value).__name__}")
    first, second = np.asarray(value[0]), np.asarray(value[1])
    if _looks_like_labels(second):
        return _curve_from_scores(first, second)
    return _checked_curve(name, first, second)


def _looks_like_labels(values):
    if values.dtype == bool or np.issubdtype(values.dtype, np.integer):
        return True
    # float 0/1 that goes down somewhere cannot be a true positive rate
    return bool(np.all(np.isin(values, (0.0, 1.0))) and np.any(np.diff(values) < 0))


def _curve_from_scores(similarities, labels):
    from siamese_tf import metrics

    false_positive_rates, true_positive_rates, _ = metrics.roc_curve(similarities, labels)
    eer, _ = metrics.equal_error_rate(similarities, labels)
    return false_positive_rates, true_positive_rates, eer


def _checked_curve(name, false_positive_rates, true_positive_rates):
    false_positive_rates = _vector(false_positive_rates, f"curves[{name!r}] false positive rates")
    true_positive_rates = _vector(true_positive_rates, f"curves[{name!r}] true positive rates",
                                  len(false_positive_rates))
    for values in (false_positive_rates, true_positive_rates):
        if len(values) < 2 or np.any((values < 0) | (values > 1)) or np.any(np.diff(values) < 0):
            raise ValueError(
                f"curves[{name!r}] is not an ROC curve: rates must be at least 2 non-decreasing values in [0, 1]"
            )
    return false_positive_rates, true_positive_rates, None


def plot_roc(curves: Mapping[str, Any], path: str | os.PathLike | None = None, title: str = "ROC") -> Figure:
    """ROC curves with their AUC in the legend and the chance diagonal.

    ``curves`` maps a name to ``(fpr, tpr)`` or ``(similarities, labels)`` (labels 1 = same;
    integer or boolean labels are recognised) — or, to be explicit, to a dict with keys
    ``fpr``/``tpr`` or ``similarities``/``labels``. From similarities the equal error rate point
    is marked too. Lines: one per curve plus the chance line.
    """
    from siamese_tf import metrics

    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict: name -> (fpr, tpr) or (similarities, labels)")
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    for name, value in curves.items():
        false_positive_rates, true_positive_rates, eer = _curve_from_value(name, value)
        area = metrics.auc(false_positive_rates, true_positive_rates)
        (line,) = axes.plot(false_positive_rates, true_positive_rates, label=f"{name} (AUC = {area:.3f})")
        if eer is not None:
            # EER: FAR = FRR, i.e. the curve meets the line tpr = 1 - fpr at fpr = eer
            axes.scatter([eer], [1.0 - eer], color=line.get_color(), zorder=3, label=f"{name} EER = {eer:.3f}")
    axes.plot([0, 1], [0, 1], linestyle=":", color="gray", label="chance")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("false accept rate (false positive rate)")
    axes.set_ylabel("true accept rate (recall)")
    axes.set_title(title)
    axes.legend(loc="lower right", fontsize=8)
    axes.grid(alpha=0.3)
    return _finish(figure, path)


def plot_score_histogram(similarities: ArrayLike, labels: ArrayLike, threshold: float | None = None,
                         bins: int | str | ArrayLike = 30, path: str | os.PathLike | None = None) -> Figure:
    """Histograms of similarities for same (label 1) and different (label 0) pairs, with the
    threshold as a vertical line when given."""
    from siamese_tf import metrics

    similarities, labels = metrics.check_scores_and_labels(similarities, labels)
    figure = Figure(figsize=(6, 3.8))
    axes = figure.subplots()
    edges = np.histogram_bin_edges(similarities, bins=bins)
    for label, name, color in ((1, "same", SAME_COLOR), (0, "different", DIFFERENT_COLOR)):
        selected = similarities[labels == label]
        if len(selected):
            axes.hist(selected, bins=edges, alpha=0.55, color=color, label=f"{name} ({len(selected)})")
    if threshold is not None:
        threshold = metrics._check_threshold(threshold)
        axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    axes.set_xlabel("similarity (higher = same)")
    axes.set_ylabel("pairs")
    axes.legend()
    return _finish(figure, path)


# --- tasks and galleries ---------------------------------------------------------------------------

def plot_n_way_task(query_image: ArrayLike, support_images: ArrayLike, similarities: ArrayLike,
                    correct_position: int, path: str | os.PathLike | None = None) -> Figure:
    """The query and its N support images with their similarities; the chosen support image
    (highest similarity) has an orange frame, the correct one a green frame (green wins when
    they are the same)."""
    query_image = _single_image(query_image, "query_image")
    support_images = _image_batch(support_images, "support_images")
    similarities = _vector(similarities, "similarities", len(support_images))
    if not isinstance(correct_position, (int, np.integer)) or not 0 <= correct_position < len(support_images):
        raise ValueError(
            f"correct_position must be an integer in [0, {len(support_images) - 1}], got {correct_position!r}"
        )
    chosen_position = int(np.argmax(similarities))
    figure = Figure(figsize=(1.5 * (len(support_images) + 1), 2.4))
    panels = figure.subplots(1, len(support_images) + 1, squeeze=False)[0]
    _show(panels[0], query_image)
    panels[0].set_title("query", fontsize=9)
    for position, (axes, image) in enumerate(zip(panels[1:], support_images)):
        _show(axes, image)
        notes = [f"{similarities[position]:.2f}"]
        if position == chosen_position:
            notes.append("chosen")
            _frame(axes, CHOSEN_COLOR)
        if position == correct_position:
            notes.append("correct")
            _frame(axes, SAME_COLOR)
        axes.set_title("\n".join(notes), fontsize=9)
    outcome = "right" if chosen_position == correct_position else "wrong"
    figure.suptitle(f"{len(support_images)}-way task: {outcome}")
    return _finish(figure, path)


def plot_verification(input_image: ArrayLike, validation_images: ArrayLike, result: VerificationResult,
                      max_images: int = 15, path: str | os.PathLike | None = None) -> Figure:
    """The input image and up to ``max_images`` validation images, each titled with its
    similarity and framed green when it counts as a detection, red otherwise; the figure title
    gives the decision of the :class:`siamese_tf.verification.VerificationResult`."""
    input_image = _single_image(input_image, "input_image")
    validation_images = _image_batch(validation_images, "validation_images")
    for attribute in ("verified", "fraction", "detections", "similarities", "detection_threshold",
                      "verification_threshold"):
        if not hasattr(result, attribute):
            raise ValueError(f"result must be a VerificationResult; {result!r} has no {attribute!r}")
    similarities = _vector(result.similarities, "result.similarities", len(validation_images))
    if not isinstance(max_images, (int, np.integer)) or max_images < 1:
        raise ValueError(f"max_images must be a positive integer, got {max_images!r}")
    shown = min(len(validation_images), int(max_images))
    columns = min(shown + 1, 8)
    rows = int(np.ceil((shown + 1) / columns))
    figure = Figure(figsize=(1.5 * columns, 1.9 * rows + 0.5))
    panels = figure.subplots(rows, columns, squeeze=False).reshape(-1)
    _show(panels[0], input_image)
    panels[0].set_title("input", fontsize=9)
    for index in range(shown):
        axes = panels[index + 1]
        _show(axes, validation_images[index])
        detected = similarities[index] > result.detection_threshold
        _frame(axes, SAME_COLOR if detected else DIFFERENT_COLOR, width=3)
        axes.set_title(f"{similarities[index]:.2f}", fontsize=9)
    for axes in panels[shown + 1:]:
        figure.delaxes(axes)
    decision = "VERIFIED" if result.verified else "NOT verified"
    figure.suptitle(
        f"{decision}: {result.detections}/{len(similarities)} detections = {result.fraction:.2f} "
        f"(needs > {result.verification_threshold:.2f})"
        + (f", showing {shown}" if shown < len(validation_images) else "")
    )
    return _finish(figure, path)
