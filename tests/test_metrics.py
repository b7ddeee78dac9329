"""Metrics: hand-computed small cases, cross-checks against scikit-learn, model helpers.

Label convention: 1 = same, 0 = different; scores are similarities (higher = same).
"""

import numpy as np
import pytest
import sklearn.metrics

from siamese_tf import metrics
from siamese_tf.models import build_siamese_model

# Same pairs score 0.9, 0.8, 0.4; different pairs 0.7, 0.3, 0.2.
SIMILARITIES = np.array([0.9, 0.8, 0.4, 0.7, 0.3, 0.2])
LABELS = np.array([1, 1, 1, 0, 0, 0])


@pytest.fixture(scope="module")
def tiny_model():
    return build_siamese_model("small_cnn", "l1", (32, 32, 1), embedding_dim=8, filters=(8, 8))


@pytest.fixture(scope="module")
def tiny_pairs():
    rng = np.random.default_rng(3)
    first = rng.random((24, 32, 32, 1)).astype("float32")
    second = first.copy()
    second[12:] = rng.random((12, 32, 32, 1)).astype("float32")  # last half: different images
    second[:12] += rng.normal(0, 0.05, (12, 32, 32, 1)).astype("float32")  # first half: near copies
    labels = np.r_[np.ones(12, int), np.zeros(12, int)]
    return first, np.clip(second, 0, 1), labels


# --- input checks and the public surface ------------------------------------------------------

def test_check_scores_and_labels_is_public_and_normalises_input():
    assert "check_scores_and_labels" in metrics.__all__
    # a Keras-style column of scores, boolean labels: (N,) float64 and (N,) int64 come back
    similarities, labels = metrics.check_scores_and_labels(np.array([[0.9], [0.1]], "float32"), [True, False])
    assert similarities.dtype == np.float64 and similarities.shape == (2,)
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0]
    _, labels = metrics.check_scores_and_labels([0.5, 0.4], np.array([[1.0], [0.0]]))
    assert labels.tolist() == [1, 0]


def test_check_scores_and_labels_messages_use_the_given_name_and_the_label_convention():
    with pytest.raises(ValueError, match="3 fractions but 2 labels"):
        metrics.check_scores_and_labels([0.1, 0.2, 0.3], [1, 0], similarities_name="fractions")
    with pytest.raises(ValueError, match=r"0 \(different\) or 1 \(same\)"):
        metrics.check_scores_and_labels([0.1, 0.2], ["a", "b"])
    with pytest.raises(ValueError, match=r"only 'different' \(0\)"):
        metrics.check_scores_and_labels([0.1, 0.2], [0, 0], need_both_classes=True)
    # one class is fine unless both are needed
    metrics.check_scores_and_labels([0.1, 0.2], [0, 0])


def test_public_names_exist_and_are_annotated():
    import inspect

    for name in metrics.__all__:
        assert hasattr(metrics, name), name
        value = getattr(metrics, name)
        if callable(value):
            signature = inspect.signature(value)
            assert signature.return_annotation is not inspect.Signature.empty, name
            for parameter in signature.parameters.values():
                assert parameter.annotation is not inspect.Parameter.empty, (name, parameter.name)


# --- binary_metrics -------------------------------------------------------------------------

def test_binary_metrics_hand_computed():
    # threshold 0.5: accepted 0.9, 0.8 (same) and 0.7 (different); rejected 0.4 (same), 0.3, 0.2
    result = metrics.binary_metrics(SIMILARITIES, LABELS, 0.5)
    assert (result["true_positives"], result["false_positives"]) == (2, 1)
    assert (result["true_negatives"], result["false_negatives"]) == (2, 1)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["false_accept_rate"] == pytest.approx(1 / 3)
    assert result["false_reject_rate"] == pytest.approx(1 / 3)


def test_binary_metrics_threshold_is_inclusive_and_no_positive_predictions_give_zero_precision():
    assert metrics.binary_metrics(SIMILARITIES, LABELS, 0.7)["false_positives"] == 1
    strict = metrics.binary_metrics(SIMILARITIES, LABELS, 0.95)
    assert strict["precision"] == 0.0 and strict["recall"] == 0.0 and strict["f1"] == 0.0
    assert strict["false_reject_rate"] == 1.0 and strict["false_accept_rate"] == 0.0


def test_binary_metrics_match_sklearn_on_random_data():
    rng = np.random.default_rng(7)
    similarities = rng.random(300)
    labels = rng.integers(0, 2, 300)
    result = metrics.binary_metrics(similarities, labels, 0.4)
    predictions = (similarities >= 0.4).astype(int)
    assert result["accuracy"] == pytest.approx(sklearn.metrics.accuracy_score(labels, predictions))
    assert result["precision"] == pytest.approx(sklearn.metrics.precision_score(labels, predictions))
    assert result["recall"] == pytest.approx(sklearn.metrics.recall_score(labels, predictions))
    assert result["f1"] == pytest.approx(sklearn.metrics.f1_score(labels, predictions))


@pytest.mark.parametrize(
    "similarities, labels, message",
    [
        ([0.1, 0.2], [1], "2 similarities but 1 labels"),
        ([0.1, 0.2], [1, 2], r"found \[2.0\]"),
        ([0.1, np.nan], [1, 0], "finite"),
        ([], [], "at least one"),
        ([[0.1, 0.2], [0.3, 0.4]], [1, 0], r"shape \(2, 2\)"),
    ],
)
def test_binary_metrics_rejects_bad_input(similarities, labels, message):
    with pytest.raises(ValueError, match=message):
        metrics.binary_metrics(similarities, labels, 0.5)


def test_binary_metrics_with_one_class_only_hand_computed():
    # only same pairs: 0.9 accepted, 0.3 rejected; no different pairs, so the false accept rate is 0.0
    result = metrics.binary_metrics([0.9, 0.3], [1, 1], 0.5)
    assert (result["true_positives"], result["false_negatives"]) == (1, 1)
    assert (result["false_positives"], result["true_negatives"]) == (0, 0)
    assert result["precision"] == 1.0 and result["recall"] == 0.5 and result["f1"] == pytest.approx(2 / 3)
    assert result["false_accept_rate"] == 0.0 and result["false_reject_rate"] == 0.5
    assert all(type(result[key]) is int for key in ("true_positives", "false_positives",
                                                     "true_negatives", "false_negatives"))
    # only different pairs, none accepted: every rate with an empty denominator is 0.0
    result = metrics.binary_metrics([0.2, 0.1], [0, 0], 0.5)
    assert result["accuracy"] == 1.0 and result["true_negatives"] == 2
    assert result["precision"] == result["recall"] == result["f1"] == result["false_reject_rate"] == 0.0


def test_binary_metrics_counts_match_sklearn_confusion_matrix_on_random_data():
    rng = np.random.default_rng(13)
    for threshold in (0.2, 0.5, 0.9):
        similarities = np.round(rng.random(200), 2)
        labels = rng.integers(0, 2, 200)
        result = metrics.binary_metrics(similarities, labels, threshold)
        predictions = (similarities >= threshold).astype(int)
        tn, fp, fn, tp = sklearn.metrics.confusion_matrix(labels, predictions, labels=[0, 1]).ravel()
        assert (result["true_negatives"], result["false_positives"]) == (tn, fp)
        assert (result["false_negatives"], result["true_positives"]) == (fn, tp)
        assert result["false_accept_rate"] == pytest.approx(fp / (fp + tn))
        assert result["false_reject_rate"] == pytest.approx(1 - sklearn.metrics.recall_score(labels, predictions))


# --- ROC, AUC, EER -------------------------------------------------------------------------------

def test_roc_curve_hand_computed_with_ties():
    # two pairs tie at 0.5 (one same, one different): they must enter as one point
    similarities = [0.9, 0.5, 0.5, 0.1]
    labels = [1, 1, 0, 0]
    false_positive_rates, true_positive_rates, thresholds = metrics.roc_curve(similarities, labels)
    np.testing.assert_allclose(false_positive_rates, [0, 0, 0.5, 1])
    np.testing.assert_allclose(true_positive_rates, [0, 0.5, 1, 1])
    assert np.isinf(thresholds[0]) and thresholds[0] > 0
    np.testing.assert_allclose(thresholds[1:], [0.9, 0.5, 0.1])


def test_roc_curve_and_auc_match_sklearn_on_random_data_with_ties():
    rng = np.random.default_rng(11)
    for _ in range(5):
        similarities = np.round(rng.random(150), 1)  # rounding makes many ties
        labels = rng.integers(0, 2, 150)
        ours = metrics.roc_curve(similarities, labels)
        theirs = sklearn.metrics.roc_curve(labels, similarities, drop_intermediate=False)
        for our_values, their_values in zip(ours, theirs):
            np.testing.assert_allclose(our_values, their_values)
        assert metrics.roc_auc(similarities, labels) == pytest.approx(
            sklearn.metrics.roc_auc_score(labels, similarities)
        )


def test_auc_trapezoid_and_direction():
    assert metrics.auc([0, 0.5, 1], [0, 1, 1]) == pytest.approx(0.75)
    assert metrics.auc([1, 0.5, 0], [1, 1, 0]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="both ways"):
        metrics.auc([0, 1, 0.5], [0, 1, 1])
    with pytest.raises(ValueError, match="at least 2"):
        metrics.auc([0], [0])


def test_roc_needs_both_classes():
    with pytest.raises(ValueError, match="only 'same'"):
        metrics.roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="only 'different'"):
        metrics.equal_error_rate([0.1, 0.2], [0, 0])


def test_equal_error_rate_exact_crossing():
    # at threshold 0.7: FAR = 1/3 (0.7 accepted), FRR = 1/3 (0.4 rejected)
    eer, threshold = metrics.equal_error_rate(SIMILARITIES, LABELS)
    assert eer == pytest.approx(1 / 3)
    assert threshold == pytest.approx(0.7)


def test_equal_error_rate_interpolates_between_points():
    # same 0.9, 0.6, 0.5; different 0.8, 0.1. Points (FAR, FRR) by threshold:
    # 0.9 -> (0, 2/3), 0.8 -> (1/2, 2/3), 0.6 -> (1/2, 1/3). FAR - FRR: -2/3, -1/6, +1/6,
    # so the rates cross halfway between 0.8 and 0.6: EER = 1/2 at threshold 0.7.
    eer, threshold = metrics.equal_error_rate([0.9, 0.6, 0.5, 0.8, 0.1], [1, 1, 1, 0, 0])
    assert eer == pytest.approx(0.5)
    assert threshold == pytest.approx(0.7)


def test_equal_error_rate_perfect_separation_is_zero():
    eer, threshold = metrics.equal_error_rate([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert eer == pytest.approx(0.0)
    assert 0.2 <= threshold <= 0.8


def test_roc_curve_keeps_every_distinct_score():
    # 0.8 lies on the straight segment between its neighbours; the curve still keeps its point
    false_positive_rates, true_positive_rates, thresholds = metrics.roc_curve([0.9, 0.8, 0.7, 0.1], [1, 1, 1, 0])
    np.testing.assert_allclose(true_positive_rates, [0, 1 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(false_positive_rates, [0, 0, 0, 0, 1])
    np.testing.assert_allclose(thresholds[1:], [0.9, 0.8, 0.7, 0.1])


def test_roc_auc_hand_computed_four_scores():
    # same 0.8, 0.4; different 0.6, 0.2. Of the 4 (same, different) pairs the same pair scores
    # higher in 3: (0.8, 0.6), (0.8, 0.2), (0.4, 0.2); (0.4, 0.6) is ranked wrong. AUC = 3/4.
    similarities, labels = [0.8, 0.4, 0.6, 0.2], [1, 1, 0, 0]
    assert metrics.roc_auc(similarities, labels) == pytest.approx(0.75)
    assert metrics.auc(*metrics.roc_curve(similarities, labels)[:2]) == pytest.approx(0.75)
    # a tie counts half: same 0.8, 0.5; different 0.5, 0.2 -> (1 + 1 + 1/2 + 1) / 4
    assert metrics.roc_auc([0.8, 0.5, 0.5, 0.2], [1, 1, 0, 0]) == pytest.approx(0.875)
    # reversed ranking: AUC 0; one class per side, labels 1 = same
    assert metrics.roc_auc([0.1, 0.9], [1, 0]) == pytest.approx(0.0)


def test_roc_auc_is_the_pairwise_ranking_probability_on_random_data():
    rng = np.random.default_rng(17)
    similarities = np.round(rng.random(60), 1)
    labels = rng.integers(0, 2, 60)
    same, different = similarities[labels == 1], similarities[labels == 0]
    wins = (same[:, None] > different[None, :]) + 0.5 * (same[:, None] == different[None, :])
    assert metrics.roc_auc(similarities, labels) == pytest.approx(wins.mean())


def test_auc_matches_sklearn_on_random_curves():
    rng = np.random.default_rng(19)
    for _ in range(5):
        x = np.sort(rng.random(30))
        y = rng.random(30)
        assert metrics.auc(x, y) == pytest.approx(sklearn.metrics.auc(x, y))
        assert metrics.auc(x[::-1], y[::-1]) == pytest.approx(sklearn.metrics.auc(x, y))


def test_equal_error_rate_hand_built_tie_at_the_top():
    # same 0.9; different 0.9 (tied) and 0.1. Points (FAR, FRR): +inf -> (0, 1), 0.9 -> (1/2, 0).
    # FAR - FRR goes -1 -> +1/2, crossing 2/3 of the way: EER = 2/3 * 1/2 = 1/3. The +inf
    # threshold is replaced by its neighbour 0.9, so the threshold is 0.9.
    eer, threshold = metrics.equal_error_rate([0.9, 0.9, 0.1], [1, 0, 0])
    assert eer == pytest.approx(1 / 3)
    assert threshold == pytest.approx(0.9)


# --- choose_threshold ----------------------------------------------------------------------------

def test_choose_threshold_accuracy_is_a_midpoint_between_scores():
    # separable: best threshold is midway between lowest same (0.6) and highest different (0.4)
    threshold = metrics.choose_threshold([0.9, 0.6, 0.4, 0.1], [1, 1, 0, 0])
    assert threshold == pytest.approx(0.5)
    assert metrics.binary_metrics([0.9, 0.6, 0.4, 0.1], [1, 1, 0, 0], threshold)["accuracy"] == 1.0


def test_choose_threshold_accuracy_prefers_strictest_of_equal_accuracies():
    # 0.75 (between 0.8 and 0.7) and 0.35 (between 0.4 and 0.3) both give 5/6 correct
    threshold = metrics.choose_threshold(SIMILARITIES, LABELS, method="accuracy")
    assert threshold == pytest.approx(0.75)
    assert metrics.binary_metrics(SIMILARITIES, LABELS, threshold)["accuracy"] == pytest.approx(5 / 6)


def test_choose_threshold_accuracy_is_best_on_random_data():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 120)
    similarities = rng.normal(labels * 1.0, 1.0)
    threshold = metrics.choose_threshold(similarities, labels)
    best = metrics.binary_metrics(similarities, labels, threshold)["accuracy"]
    brute_force = max(np.mean((similarities >= t) == labels) for t in np.r_[similarities, np.inf])
    assert best == pytest.approx(brute_force)
    # a midpoint: the strict rule (>) makes the same decisions
    assert np.array_equal(similarities >= threshold, similarities > threshold)


def test_choose_threshold_eer_and_far():
    assert metrics.choose_threshold(SIMILARITIES, LABELS, "eer") == pytest.approx(0.7)
    # no false accepts allowed: accept down to 0.8 (recall 2/3); next threshold would accept 0.7
    threshold = metrics.choose_threshold(SIMILARITIES, LABELS, "far", target_far=0.0)
    assert threshold == pytest.approx(0.75)
    # one false accept in three allowed: accept down to 0.4 (recall 1), FAR 1/3
    threshold = metrics.choose_threshold(SIMILARITIES, LABELS, "far", target_far=0.34)
    result = metrics.binary_metrics(SIMILARITIES, LABELS, threshold)
    assert result["recall"] == 1.0 and result["false_accept_rate"] == pytest.approx(1 / 3)
    assert 0.3 < threshold < 0.4


def test_choose_threshold_far_respects_target_on_random_data():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 2, 400)
    similarities = rng.normal(labels * 1.5, 1.0)
    for target in (0.01, 0.05, 0.2):
        threshold = metrics.choose_threshold(similarities, labels, "far", target_far=target)
        result = metrics.binary_metrics(similarities, labels, threshold)
        assert result["false_accept_rate"] <= target
        # lowering the threshold to the next score would break the target or not add recall
        lower = similarities[similarities < threshold].max()
        looser = metrics.binary_metrics(similarities, labels, lower)
        assert looser["false_accept_rate"] > target or looser["recall"] == result["recall"]


def test_choose_threshold_bad_arguments():
    with pytest.raises(ValueError, match="'median'"):
        metrics.choose_threshold(SIMILARITIES, LABELS, method="median")
    with pytest.raises(ValueError, match="target_far"):
        metrics.choose_threshold(SIMILARITIES, LABELS, method="far")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.choose_threshold(SIMILARITIES, LABELS, method="far", target_far=1.5)


# --- N-way ---------------------------------------------------------------------------------------

def test_n_way_accuracy_hand_computed_and_ties_count_as_wrong():
    similarity_matrix = [
        [0.1, 0.9, 0.3],  # argmax 1, correct 1 -> right
        [0.8, 0.2, 0.1],  # argmax 0, correct 2 -> wrong
        [0.5, 0.5, 0.1],  # tie at the top including the correct 0 -> wrong
        [0.2, 0.3, 0.7],  # argmax 2, correct 2 -> right
    ]
    assert metrics.n_way_accuracy(similarity_matrix, np.array([1, 2, 0, 2])) == pytest.approx(0.5)


def test_n_way_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        metrics.n_way_accuracy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="one per task"):
        metrics.n_way_accuracy(np.zeros((2, 3)), np.array([0]))
    with pytest.raises(ValueError, match="integers"):
        metrics.n_way_accuracy(np.zeros((2, 3)), np.array([0.0, 1.0]))


def _sampler_available():
    try:
        from siamese_tf.samplers import sample_n_way_tasks  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _sampler_available(), reason="siamese_tf.samplers.sample_n_way_tasks not written yet")
@pytest.mark.parametrize("head", ["l1", "euclidean"])
def test_evaluate_n_way_matches_looping_over_tasks(head, monkeypatch):
    from siamese_tf.samplers import sample_n_way_tasks

    model = build_siamese_model("small_cnn", head, (32, 32, 1), embedding_dim=8, filters=(8, 8))
    rng = np.random.default_rng(0)
    images = rng.random((30, 32, 32, 1)).astype("float32")
    labels = np.repeat(np.arange(6), 5)
    embedded_sizes = []
    original_embed = model.embed
    monkeypatch.setattr(model, "embed", lambda batch, *a, **k: embedded_sizes.append(len(batch))
                        or original_embed(batch, *a, **k))
    result = metrics.evaluate_n_way(model, images, labels, n_way=5, num_tasks=20, seed=4)
    assert len(embedded_sizes) == 1 and embedded_sizes[0] <= len(images)  # one pass, no image twice
    monkeypatch.undo()
    assert result["n_way"] == 5 and result["num_tasks"] == 20 and result["chance"] == pytest.approx(0.2)

    # by hand: score each query against its support images pair by pair
    query_indices, support_indices, correct_positions = sample_n_way_tasks(labels, 5, 20, 4)
    similarity_matrix = np.stack([
        model.similarity_pairs(np.repeat(images[[query]], 5, axis=0), images[support])
        for query, support in zip(query_indices, support_indices)
    ])
    assert result["accuracy"] == pytest.approx(metrics.n_way_accuracy(similarity_matrix, correct_positions))


# --- model helpers -------------------------------------------------------------------------------

def test_evaluate_verification_equals_metrics_from_similarity_pairs(tiny_model, tiny_pairs):
    first, second, labels = tiny_pairs
    similarities = tiny_model.similarity_pairs(first, second)
    threshold = float(np.median(similarities))
    result = metrics.evaluate_verification(tiny_model, first, second, labels, threshold)
    expected = metrics.binary_metrics(similarities, labels, threshold)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value)
    assert result["auc"] == pytest.approx(sklearn.metrics.roc_auc_score(labels, similarities))
    assert result["eer"] == pytest.approx(metrics.equal_error_rate(similarities, labels)[0])
    assert result["threshold"] == threshold


def test_calibrate_stores_threshold_used_by_evaluate_verification(tiny_model, tiny_pairs):
    first, second, labels = tiny_pairs
    tiny_model.thresholds.clear()
    with pytest.raises(ValueError, match="calibrate"):
        metrics.evaluate_verification(tiny_model, first, second, labels)
    threshold = metrics.calibrate(tiny_model, first, second, labels, method="far", target_far=0.1)
    similarities = tiny_model.similarity_pairs(first, second)
    assert threshold == pytest.approx(metrics.choose_threshold(similarities, labels, "far", target_far=0.1))
    assert tiny_model.thresholds["detection"] == threshold
    assert tiny_model.thresholds["method"] == "far" and tiny_model.thresholds["target_far"] == 0.1
    assert metrics.evaluate_verification(tiny_model, first, second, labels)["threshold"] == threshold
    tiny_model.thresholds.clear()


def test_calibrate_on_distance_head_uses_similarity_scale():
    model = build_siamese_model("small_cnn", "euclidean", (32, 32, 1), embedding_dim=8, filters=(8, 8))
    rng = np.random.default_rng(2)
    first = rng.random((10, 32, 32, 1)).astype("float32")
    second = np.r_[first[:5], rng.random((5, 32, 32, 1)).astype("float32")]
    labels = np.r_[np.ones(5, int), np.zeros(5, int)]
    threshold = metrics.calibrate(model, first, second, labels)
    # identical images have distance 0, i.e. similarity 0: the best threshold sits just below 0
    assert threshold < 0
    assert metrics.evaluate_verification(model, first, second, labels)["accuracy"] == 1.0
