"""Tests for siamese_tf.samplers. Label convention: 1 = same class, 0 = different."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from siamese_tf.samplers import PairBatches, all_pairs, make_pairs, sample_n_way_tasks, sample_pairs

# Class 0: 3 images, class 1: 1 image (cannot give a positive pair), class 2: 4 images.
LABELS = np.array([0, 0, 0, 1, 2, 2, 2, 2])


def test_sample_pairs_balanced_and_correctly_labelled():
    first, second, pair_labels = sample_pairs(LABELS, 1000, 0)

    assert first.shape == second.shape == pair_labels.shape == (1000,)
    assert pair_labels.sum() == 500
    same = pair_labels == 1
    np.testing.assert_array_equal(LABELS[first] == LABELS[second], same)
    assert np.all(first[same] != second[same])  # a positive never pairs an image with itself
    assert not np.any(LABELS[first[same]] == 1)  # the one-image class gives no positives
    assert set(LABELS[first[same]]) == {0, 2}
    # Uniform over the 3 class pairs for negatives: each of {0,1}, {0,2}, {1,2} appears.
    negative_class_pairs = {tuple(sorted(pair)) for pair in zip(LABELS[first[~same]], LABELS[second[~same]])}
    assert negative_class_pairs == {(0, 1), (0, 2), (1, 2)}
    # Shuffled, not all positives first.
    assert 0 < pair_labels[:500].sum() < 500


def test_sample_pairs_reproducible_and_fraction():
    a = sample_pairs(LABELS, 50, np.random.default_rng(7))
    b = sample_pairs(LABELS, 50, 7)
    c = sample_pairs(LABELS, 50, 8)
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    assert not all(np.array_equal(left, right) for left, right in zip(a, c))
    assert sample_pairs(LABELS, 40, 0, positive_fraction=0.25)[2].sum() == 10
    assert sample_pairs(LABELS, 9, 0, positive_fraction=0.0)[2].sum() == 0
    # All negatives need no class with two images; all positives need no second class.
    assert sample_pairs([0, 1, 2], 4, 0, positive_fraction=0.0)[2].sum() == 0
    assert sample_pairs([5, 5], 3, 0, positive_fraction=1.0)[2].sum() == 3


def test_sample_pairs_errors():
    with pytest.raises(ValueError, match="at least 2 classes"):
        sample_pairs([3, 3, 3], 10, 0)
    with pytest.raises(ValueError, match="at least 2 images"):
        sample_pairs([0, 1, 2], 10, 0)
    with pytest.raises(ValueError, match="num_pairs"):
        sample_pairs(LABELS, 0, 0)
    with pytest.raises(ValueError, match="positive_fraction"):
        sample_pairs(LABELS, 4, 0, positive_fraction=1.5)
    with pytest.raises(ValueError, match="rng"):
        sample_pairs(LABELS, 4, "seed")


def test_all_pairs_lists_every_unordered_pair():
    first, second, pair_labels = all_pairs([0, 0, 1])
    assert list(zip(first, second, pair_labels)) == [(0, 1, 1), (0, 2, 0), (1, 2, 0)]
    first, second, pair_labels = all_pairs(LABELS)
    assert len(first) == 8 * 7 // 2
    assert pair_labels.sum() == 3 + 0 + 6  # C(3,2) + C(1,2) + C(4,2)
    assert np.all(first < second)


def test_make_pairs_returns_the_indexed_images():
    images = np.arange(len(LABELS), dtype=np.float32).reshape(-1, 1, 1, 1)
    (first_images, second_images), pair_labels = make_pairs(images, LABELS, 30, seed=2)
    assert first_images.shape == (30, 1, 1, 1) and pair_labels.dtype == np.float32
    first_labels = LABELS[first_images.reshape(-1).astype(int)]
    second_labels = LABELS[second_images.reshape(-1).astype(int)]
    np.testing.assert_array_equal(first_labels == second_labels, pair_labels == 1)
    again = make_pairs(images, LABELS, 30, seed=2)
    np.testing.assert_array_equal(again[0][0], first_images)


def numbered_images(count, size=3):
    """Image i is filled with i / 100, so a batch tells which images it holds."""
    return np.repeat(np.arange(count, dtype=np.float32) / 100, size * size).reshape(count, size, size, 1)


def test_pair_batches_are_a_function_of_seed_epoch_and_step():
    images = numbered_images(len(LABELS))
    batches = PairBatches(images, LABELS, pairs_per_epoch=10, batch_size=4, seed=5)
    assert batches.steps_per_epoch == 3

    (first, second), pair_labels = batches.batch(2, 1)
    assert first.shape == (4, 3, 3, 1) and first.dtype == np.float32 and pair_labels.dtype == np.float32
    assert batches.batch(2, 2)[1].shape == (2,)  # 10 pairs: 4 + 4 + 2
    first_index = np.rint(first[:, 0, 0, 0] * 100).astype(int)
    second_index = np.rint(second[:, 0, 0, 0] * 100).astype(int)
    np.testing.assert_array_equal(LABELS[first_index] == LABELS[second_index], pair_labels == 1)

    fresh = PairBatches(images, LABELS, pairs_per_epoch=10, batch_size=4, seed=5)
    np.testing.assert_array_equal(fresh.batch(2, 1)[0][0], first)  # no hidden state
    epoch_labels = [np.concatenate([batches.batch(epoch, step)[1] for step in range(3)]) for epoch in range(4)]
    assert all(labels.sum() == 5 for labels in epoch_labels)
    assert len({tuple(np.concatenate([batches.batch(epoch, step)[0][0][:, 0, 0, 0] for step in range(3)]))
                for epoch in range(4)}) == 4
    with pytest.raises(ValueError, match="step"):
        batches.batch(0, 3)


def test_pair_batches_augmentation_is_seeded_per_epoch_and_step():
    def add_noise(image, rng):
        return image + rng.uniform(0.0, 0.001, size=image.shape).astype(np.float32)

    images = numbered_images(len(LABELS))
    plain = PairBatches(images, LABELS, 12, batch_size=4, seed=1)
    noisy = PairBatches(images, LABELS, 12, batch_size=4, seed=1, augment=add_noise)
    noisy_again = PairBatches(images, LABELS, 12, batch_size=4, seed=1, augment=add_noise)

    (plain_first, _), plain_labels = plain.batch(0, 0)
    (noisy_first, _), noisy_labels = noisy.batch(0, 0)
    np.testing.assert_array_equal(plain_labels, noisy_labels)  # augmentation does not change the pairs
    assert not np.array_equal(plain_first, noisy_first)
    np.testing.assert_allclose(plain_first, noisy_first, atol=0.001)
    np.testing.assert_array_equal(noisy_again.batch(0, 0)[0][0], noisy_first)
    assert not np.array_equal(noisy.batch(0, 1)[0][0], noisy.batch(1, 1)[0][0])


def test_pair_batches_dataset_serves_the_current_epoch_then_advances():
    images = numbered_images(len(LABELS))
    batches = PairBatches(images, LABELS, pairs_per_epoch=10, batch_size=4, seed=0)
    dataset = batches.dataset()
    assert dataset.options().autotune.enabled is False
    assert int(dataset.cardinality()) == 3

    batches.epoch = 3
    served = list(dataset.as_numpy_iterator())
    assert len(served) == 3
    for step, ((first, second), pair_labels) in enumerate(served):
        (expected_first, expected_second), expected_labels = batches.batch(3, step)
        np.testing.assert_array_equal(first, expected_first)
        np.testing.assert_array_equal(second, expected_second)
        np.testing.assert_array_equal(pair_labels, expected_labels)
    assert batches.epoch == 4
    next_pass = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(next_pass[0][1], batches.batch(4, 0)[1])
    with pytest.raises(ValueError, match="epoch"):
        batches.epoch = -1


class ChecksumModel(keras.Model):
    """Trains nothing; reports a fingerprint of every batch it is given."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)

    def call(self, inputs):
        return self.dense(keras.ops.reshape(inputs[0], (-1, 9)))

    def train_step(self, data):
        (first, second), pair_labels = data
        weights = tf.range(1, tf.shape(pair_labels)[0] + 1, dtype=tf.float32)
        fingerprint = (tf.reduce_sum(tf.reduce_sum(first, axis=[1, 2, 3]) * weights)
                       + 3.0 * tf.reduce_sum(tf.reduce_sum(second, axis=[1, 2, 3]) * weights)
                       + 7.0 * tf.reduce_sum(pair_labels * weights))
        return {"fingerprint": fingerprint}


def numpy_fingerprint(batch):
    (first, second), pair_labels = batch
    weights = np.arange(1, len(pair_labels) + 1)
    return float((first.sum(axis=(1, 2, 3)) * weights).sum() + 3 * (second.sum(axis=(1, 2, 3)) * weights).sum()
                 + 7 * (pair_labels * weights).sum())


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.seen[(self.epoch, batch)] = float(logs["fingerprint"])


@pytest.mark.parametrize("pairs_per_epoch", [10, 4])  # 3 steps per epoch, and 1 (prefetch runs ahead)
def test_keras_fit_resumed_sees_the_same_batches_as_uninterrupted(pairs_per_epoch):
    images = numbered_images(len(LABELS))

    def run(initial_epoch, epochs):
        batches = PairBatches(images, LABELS, pairs_per_epoch=pairs_per_epoch, batch_size=4, seed=9)
        model = ChecksumModel()
        model.compile()
        recorder = Recorder()
        model.fit(batches.dataset(), epochs=epochs, initial_epoch=initial_epoch, verbose=0, shuffle=False,
                  callbacks=[batches.callback(), recorder])
        return batches, recorder.seen

    batches, uninterrupted = run(0, 4)
    _, resumed = run(2, 4)
    steps = batches.steps_per_epoch
    assert sorted(uninterrupted) == [(epoch, step) for epoch in range(4) for step in range(steps)]
    for (epoch, step), fingerprint in uninterrupted.items():
        assert fingerprint == pytest.approx(numpy_fingerprint(batches.batch(epoch, step)), rel=1e-5)
    assert sorted(resumed) == [(epoch, step) for epoch in (2, 3) for step in range(steps)]
    for key, fingerprint in resumed.items():
        assert fingerprint == pytest.approx(uninterrupted[key], rel=1e-5)


def test_pair_batches_callback_sets_the_epoch():
    batches = PairBatches(numbered_images(len(LABELS)), LABELS, 8, batch_size=4)
    callback = batches.callback()
    assert isinstance(callback, keras.callbacks.Callback)
    callback.on_train_begin()
    callback.on_epoch_begin(6)
    assert batches.epoch == 6


def test_pair_batches_validates_inputs():
    images = numbered_images(len(LABELS))
    with pytest.raises(ValueError, match="same length"):
        PairBatches(images[:3], LABELS, 8)
    with pytest.raises(ValueError, match="pairs_per_epoch"):
        PairBatches(images, LABELS, 0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        PairBatches(images, np.zeros(len(LABELS), dtype=int), 8)
    with pytest.raises(ValueError, match="augment"):
        PairBatches(images, LABELS, 8, augment="flip")


def test_n_way_tasks_structure():
    labels = np.array([0, 0, 1, 2, 2, 2, 3, 4, 4])
    query, support, correct = sample_n_way_tasks(labels, n_way=4, num_tasks=300, seed=1)

    assert query.shape == (300,) and support.shape == (300, 4) and correct.shape == (300,)
    for task in range(300):
        support_labels = labels[support[task]]
        assert len(set(support_labels)) == 4  # distinct classes
        assert support_labels[correct[task]] == labels[query[task]]
        assert support[task, correct[task]] != query[task]  # a different image of the true class
        assert np.sum(support_labels == labels[query[task]]) == 1
    assert set(labels[query]) == {0, 2, 4}  # classes 1 and 3 have one image: never the true class
    assert set(correct) == {0, 1, 2, 3}
    again = sample_n_way_tasks(labels, n_way=4, num_tasks=300, seed=1)
    np.testing.assert_array_equal(again[1], support)


def test_n_way_tasks_errors():
    with pytest.raises(ValueError, match="at least 5 classes"):
        sample_n_way_tasks([0, 0, 1, 1], n_way=5, num_tasks=3)
    with pytest.raises(ValueError, match="2 images"):
        sample_n_way_tasks([0, 1, 2], n_way=2, num_tasks=3)
    with pytest.raises(ValueError, match="n_way"):
        sample_n_way_tasks([0, 0, 1], n_way=1, num_tasks=3)
    with pytest.raises(ValueError, match="num_tasks"):
        sample_n_way_tasks([0, 0, 1], n_way=2, num_tasks=0)
