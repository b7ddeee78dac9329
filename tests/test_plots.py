"""Plots: each returns a Figure with the expected axes and lines, saves a PNG, rejects bad input."""

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from siamese_tf import metrics, plots
from siamese_tf.verification import VerificationResult

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((5, 12, 12, 1)).astype("float32")


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 80)
    return rng.normal(labels * 1.5, 1.0), labels


def _assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def test_plot_pairs_grid_and_titles(tmp_path, images):
    figure = plots.plot_pairs(images, images[::-1], labels=[1, 0, 1, 0, 0], similarities=np.linspace(0, 1, 5),
                              max_pairs=3, path=tmp_path / "pairs.png")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2 * 3  # two rows, max_pairs columns
    assert figure.axes[0].get_title() == "same\n0.00"
    assert figure.axes[1].get_title() == "different\n0.25"
    _assert_png(tmp_path / "pairs.png")


def test_plot_pairs_rejects_bad_input(images):
    with pytest.raises(ValueError, match="5 first images but 4"):
        plots.plot_pairs(images, images[:4])
    with pytest.raises(ValueError, match="labels"):
        plots.plot_pairs(images, images, labels=[0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match=r"got \(5, 12\)"):
        plots.plot_pairs(np.zeros((5, 12)), images)
    with pytest.raises(ValueError, match="3 are needed|5 are needed"):
        plots.plot_pairs(images, images, similarities=[0.1, 0.2])


def test_plot_training_curves_panels_and_lines(tmp_path):
    history = {"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7], "accuracy": [0.5, 0.7, 0.8]}
    figure = plots.plot_training_curves(history, path=tmp_path / "curves.png")
    assert len(figure.axes) == 2
    loss_axes, accuracy_axes = figure.axes
    assert loss_axes.get_title() == "loss" and len(loss_axes.lines) == 2
    assert accuracy_axes.get_title() == "accuracy" and len(accuracy_axes.lines) == 1
    np.testing.assert_allclose(loss_axes.lines[1].get_ydata(), [1.1, 0.8, 0.7])
    _assert_png(tmp_path / "curves.png")


def test_plot_training_curves_accepts_a_keras_history_and_rejects_bad_input():
    import keras

    history = keras.callbacks.History()
    history.history = {"accuracy": [0.5, 0.6], "loss": [0.9, 0.5]}
    figure = plots.plot_training_curves(history)
    assert [axes.get_title() for axes in figure.axes] == ["loss", "accuracy"]  # loss first
    with pytest.raises(ValueError, match="non-empty"):
        plots.plot_training_curves({})
    with pytest.raises(ValueError, match="'loss'"):
        plots.plot_training_curves({"loss": ["a", "b"]})


def test_plot_roc_from_scores_and_from_rates(tmp_path, scores):
    similarities, labels = scores
    false_positive_rates, true_positive_rates, _ = metrics.roc_curve(similarities, labels)
    figure = plots.plot_roc(
        {"model": (similarities, labels), "baseline": (false_positive_rates, true_positive_rates)},
        path=tmp_path / "roc.png",
    )
    (axes,) = figure.axes
    assert len(axes.lines) == 3  # two curves and the chance diagonal
    np.testing.assert_allclose(axes.lines[2].get_xdata(), [0, 1])
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    expected_auc = metrics.roc_auc(similarities, labels)
    assert f"model (AUC = {expected_auc:.3f})" in legend
    assert f"baseline (AUC = {expected_auc:.3f})" in legend
    # the EER point is marked only for the curve given as scores
    markers = [child for child in axes.get_children() if isinstance(child, PathCollection)]
    assert len(markers) == 1
    eer, _ = metrics.equal_error_rate(similarities, labels)
    np.testing.assert_allclose(markers[0].get_offsets()[0], [eer, 1 - eer])
    _assert_png(tmp_path / "roc.png")


def test_plot_roc_rejects_bad_input(scores):
    with pytest.raises(ValueError, match="non-empty dict"):
        plots.plot_roc({})
    with pytest.raises(ValueError, match="not an ROC curve"):
        plots.plot_roc({"broken": ([0.0, 0.5, 0.2], [0.0, 0.5, 1.0])})
    with pytest.raises(ValueError, match="only 'same'"):
        plots.plot_roc({"one class": ([0.2, 0.4], np.array([1, 1]))})


def test_plot_score_histogram_two_classes_and_threshold(tmp_path, scores):
    similarities, labels = scores
    figure = plots.plot_score_histogram(similarities, labels, threshold=0.75, bins=10, path=tmp_path / "hist.png")
    (axes,) = figure.axes
    assert len(axes.containers) == 2  # same and different histograms
    assert sum(patch.get_height() for patch in axes.containers[0]) == np.sum(labels == 1)
    assert sum(patch.get_height() for patch in axes.containers[1]) == np.sum(labels == 0)
    assert len(axes.lines) == 1 and axes.lines[0].get_xdata()[0] == 0.75
    _assert_png(tmp_path / "hist.png")
    with pytest.raises(ValueError, match="labels"):
        plots.plot_score_histogram([0.1, 0.2], [0, 3])


def test_plot_n_way_task_marks_chosen_and_correct(tmp_path, images):
    figure = plots.plot_n_way_task(images[0], images[1:], [0.1, 0.9, 0.3, 0.2], correct_position=2,
                                   path=tmp_path / "task.png")
    assert len(figure.axes) == 5  # query + 4 support images
    titles = [axes.get_title() for axes in figure.axes]
    assert titles[0] == "query"
    assert titles[2] == "0.90\nchosen" and titles[3] == "0.30\ncorrect"
    assert "wrong" in figure._suptitle.get_text()
    _assert_png(tmp_path / "task.png")
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        plots.plot_n_way_task(images[0], images[1:], [0.1, 0.9, 0.3, 0.2], correct_position=4)
    with pytest.raises(ValueError, match="4 are needed"):
        plots.plot_n_way_task(images[0], images[1:], [0.1, 0.9], correct_position=0)


def test_plot_verification_gallery(tmp_path, images):
    similarities = np.array([0.9, 0.2, 0.7, 0.4, 0.8])
    result = VerificationResult(verified=True, fraction=0.6, detections=3, similarities=similarities,
                                detection_threshold=0.5, verification_threshold=0.5)
    figure = plots.plot_verification(images[0], images, result, path=tmp_path / "verify.png")
    assert len(figure.axes) == 1 + 5
    assert [axes.get_title() for axes in figure.axes[1:]] == ["0.90", "0.20", "0.70", "0.40", "0.80"]
    assert figure._suptitle.get_text().startswith("VERIFIED: 3/5")
    _assert_png(tmp_path / "verify.png")
    # capped gallery
    assert len(plots.plot_verification(images[0], images, result, max_images=2).axes) == 3
    with pytest.raises(ValueError, match="5 values but 4 are needed"):
        plots.plot_verification(images[0], images[:4], result)
    with pytest.raises(ValueError, match="VerificationResult"):
        plots.plot_verification(images[0], images, {"verified": True})


def test_save_path_must_be_png(tmp_path, images):
    with pytest.raises(ValueError, match=r"\.png"):
        plots.plot_pairs(images, images, path=tmp_path / "pairs.jpg")


def test_plot_roc_explicit_dict_forms_agree_with_tuples(scores):
    similarities, labels = scores
    false_positive_rates, true_positive_rates, _ = metrics.roc_curve(similarities, labels)
    figure = plots.plot_roc({
        "scores": {"similarities": similarities, "labels": labels.astype(float)},
        "rates": {"fpr": false_positive_rates, "tpr": true_positive_rates},
    })
    (axes,) = figure.axes
    for line in axes.lines[:2]:
        np.testing.assert_allclose(line.get_xdata(), false_positive_rates)
        np.testing.assert_allclose(line.get_ydata(), true_positive_rates)
    with pytest.raises(ValueError, match="needs keys"):
        plots.plot_roc({"bad": {"x": [0, 1]}})
