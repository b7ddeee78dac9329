"""Pins the one label convention of the project: 1 = same, 0 = different."""

import keras
import numpy as np

import siamese_tf
from siamese_tf import heads
from siamese_tf.losses import contrastive_loss


def test_constants_say_one_means_same():
    assert (siamese_tf.SAME_LABEL, siamese_tf.DIFFERENT_LABEL) == (1, 0)


def test_contrastive_loss_charges_a_distant_pair_only_when_labelled_same():
    far = np.array([3.0], "float32")
    assert float(keras.ops.convert_to_numpy(contrastive_loss(np.array([1.0]), far))[0]) > 0
    assert float(keras.ops.convert_to_numpy(contrastive_loss(np.array([0.0]), far))[0]) == 0.0


def test_binary_crossentropy_is_low_when_a_confident_same_score_has_label_one():
    confident_same = np.array([0.99], "float32")
    low = float(keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(np.array([1.0]), confident_same)))
    high = float(keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(np.array([0.0]), confident_same)))
    assert low < high


def test_similarities_are_higher_for_same_with_either_head_kind():
    close, far = 0.1, 2.0
    similarity = heads.to_similarity([close, far], heads.DistanceHead())
    assert similarity[0] > similarity[1]  # the close (same) pair ranks higher
