import keras
import numpy as np
import pytest

from siamese_tf.losses import ContrastiveLoss, contrastive_loss


def test_contrastive_loss_hand_computed():
    labels = np.array([1.0, 0.0, 0.0])  # same, different (inside margin), different (beyond margin)
    distances = np.array([0.5, 0.25, 2.0], "float32")
    per_pair = keras.ops.convert_to_numpy(contrastive_loss(labels, distances, margin=1.0))
    # 0.5 * d^2 for the same pair; 0.5 * (margin - d)^2 for a close different pair; 0 beyond the margin
    np.testing.assert_allclose(per_pair, [0.125, 0.28125, 0.0], rtol=1e-6)


def test_contrastive_loss_class_reduces_by_mean_and_round_trips():
    loss = ContrastiveLoss(margin=2.0)
    labels = np.array([1.0, 0.0])
    distances = np.array([1.0, 1.0], "float32")
    value = float(keras.ops.convert_to_numpy(loss(labels, distances)))
    assert value == pytest.approx((0.5 * 1.0 + 0.5 * 1.0) / 2)
    restored = ContrastiveLoss.from_config(loss.get_config())
    assert restored.margin == 2.0


@pytest.mark.parametrize("margin", [0, -1.0, "1"])
def test_contrastive_loss_rejects_bad_margin(margin):
    with pytest.raises(ValueError, match="margin"):
        ContrastiveLoss(margin=margin)


def test_contrastive_loss_gradient_pulls_same_pairs_and_pushes_different_pairs():
    import tensorflow as tf

    distances = tf.Variable([0.5, 0.5])
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(contrastive_loss(tf.constant([1.0, 0.0]), distances, margin=1.0))
    gradient = tape.gradient(value, distances).numpy()
    assert gradient[0] > 0  # descending shrinks the distance of a same pair
    assert gradient[1] < 0  # and grows the distance of a different pair


def test_additive_margin_softmax_by_hand():
    from siamese_tf.losses import additive_margin_softmax_loss

    # logits 10 * (0.8 - 0.3) = 5 for the true class and 10 * 0.2 = 2: loss = log(1 + e^-3)
    loss = additive_margin_softmax_loss(np.array([0]), np.array([[0.8, 0.2]], np.float32), scale=10.0, margin=0.3)
    np.testing.assert_allclose(np.asarray(loss), [np.log1p(np.exp(-3.0))], rtol=1e-5)


def test_additive_margin_softmax_without_margin_is_the_scaled_softmax():
    from siamese_tf.losses import additive_margin_softmax_loss

    cosines = np.array([[0.1, 0.5, -0.2], [0.9, 0.0, 0.3]], np.float32)
    labels = np.array([1, 2])
    logits = 4.0 * cosines
    expected = -np.log(np.exp(logits[[0, 1], labels]) / np.exp(logits).sum(axis=1))
    got = additive_margin_softmax_loss(labels, cosines, scale=4.0, margin=0.0)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_additive_margin_softmax_class_round_trip_and_bad_values():
    from siamese_tf.losses import AdditiveMarginSoftmaxLoss

    loss = AdditiveMarginSoftmaxLoss(scale=16.0, margin=0.2)
    again = AdditiveMarginSoftmaxLoss.from_config(loss.get_config())
    assert (again.scale, again.margin) == (16.0, 0.2)
    with pytest.raises(ValueError, match="margin must lie in"):
        AdditiveMarginSoftmaxLoss(margin=1.5)
    with pytest.raises(ValueError, match="scale must be positive, got -1"):
        AdditiveMarginSoftmaxLoss(scale=-1)
