"""In-batch losses checked against plain-Python loops over pairs and triplets."""

import itertools

import keras
import numpy as np
import pytest

from siamese_tf.losses import (
    InBatchLoss,
    in_batch_binary_crossentropy,
    in_batch_contrastive,
    prototypical_loss,
    triplet_loss,
)

LABELS = np.array([0, 0, 1, 1, 2, 2, 0])


def _random_distances(seed=0):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(len(LABELS), 3))
    return np.linalg.norm(points[:, None] - points[None], axis=-1).astype("float32")


def _numpy(value):
    return float(keras.ops.convert_to_numpy(value))


def _pairs():
    same, different = [], []
    for i, j in itertools.permutations(range(len(LABELS)), 2):
        (same if LABELS[i] == LABELS[j] else different).append((i, j))
    return same, different


def test_in_batch_bce_balances_same_and_different_pairs():
    probabilities = np.random.default_rng(1).uniform(0.05, 0.95, size=(7, 7)).astype("float32")
    same, different = _pairs()
    expected = 0.5 * (np.mean([-np.log(probabilities[i, j]) for i, j in same])
                      + np.mean([-np.log(1 - probabilities[i, j]) for i, j in different]))
    assert _numpy(in_batch_binary_crossentropy(LABELS, probabilities)) == pytest.approx(expected, rel=1e-5)


def test_in_batch_contrastive_matches_loop():
    distances = _random_distances()
    same, different = _pairs()
    expected = 0.5 * (np.mean([0.5 * distances[i, j] ** 2 for i, j in same])
                      + np.mean([0.5 * max(1.0 - distances[i, j], 0) ** 2 for i, j in different]))
    assert _numpy(in_batch_contrastive(LABELS, distances, margin=1.0)) == pytest.approx(expected, rel=1e-5)


def _triplets():
    for anchor, positive, negative in itertools.permutations(range(len(LABELS)), 3):
        if LABELS[anchor] == LABELS[positive] and LABELS[anchor] != LABELS[negative]:
            yield anchor, positive, negative


def test_batch_all_triplet_loss_averages_the_active_triplets():
    distances, margin = _random_distances(2), 0.5
    losses = [max(distances[a, p] - distances[a, n] + margin, 0) for a, p, n in _triplets()]
    active = [value for value in losses if value > 1e-12]
    assert _numpy(triplet_loss(LABELS, distances, margin, "batch_all")) == pytest.approx(np.mean(active), rel=1e-5)


def test_batch_hard_triplet_loss_uses_hardest_positive_and_negative():
    distances, margin = _random_distances(3), 0.5
    per_anchor = []
    for anchor in range(len(LABELS)):
        positives = [distances[anchor, j] for j in range(len(LABELS)) if j != anchor and LABELS[j] == LABELS[anchor]]
        negatives = [distances[anchor, j] for j in range(len(LABELS)) if LABELS[j] != LABELS[anchor]]
        per_anchor.append(max(max(positives) - min(negatives) + margin, 0))
    assert _numpy(triplet_loss(LABELS, distances, margin, "batch_hard")) == pytest.approx(np.mean(per_anchor), rel=1e-5)


def test_semi_hard_triplet_loss_matches_loop():
    distances, margin = _random_distances(4), 0.5
    losses = []
    for anchor, positive in itertools.permutations(range(len(LABELS)), 2):
        if LABELS[anchor] != LABELS[positive]:
            continue
        negatives = [distances[anchor, n] for n in range(len(LABELS)) if LABELS[n] != LABELS[anchor]]
        farther = [d for d in negatives if d > distances[anchor, positive]]
        chosen = min(farther) if farther else max(negatives)
        losses.append(max(distances[anchor, positive] - chosen + margin, 0))
    assert _numpy(triplet_loss(LABELS, distances, margin, "semi_hard")) == pytest.approx(np.mean(losses), rel=1e-5)


def test_in_batch_loss_class_round_trips_and_names_bad_values():
    loss = InBatchLoss("triplet", margin=0.3, mining="semi_hard")
    restored = InBatchLoss.from_config(loss.get_config())
    assert (restored.kind, restored.margin, restored.mining) == ("triplet", 0.3, "semi_hard")
    distances = _random_distances(5)
    assert _numpy(loss(LABELS, distances)) == pytest.approx(_numpy(triplet_loss(LABELS, distances, 0.3, "semi_hard")))
    with pytest.raises(ValueError, match="'quadruplet'"):
        InBatchLoss("quadruplet")
    with pytest.raises(ValueError, match="'hardest'"):
        InBatchLoss("triplet", mining="hardest")


def _prototype_loop_loss(points, labels):
    losses = []
    for i in range(len(points)):
        logits = {}
        for label in sorted(set(labels)):
            members = [k for k in range(len(points)) if labels[k] == label and k != i]
            prototype = points[members].mean(axis=0)
            logits[label] = -np.sum((points[i] - prototype) ** 2)
        values = np.array(list(logits.values()))
        losses.append(np.log(np.exp(values).sum()) - logits[labels[i]])
    return float(np.mean(losses))


def test_prototypical_loss_matches_explicit_prototypes_with_the_query_left_out():
    rng = np.random.default_rng(3)
    labels = np.array([2, 0, 1, 0, 2, 1, 1, 0, 2])  # 3 classes x 3 images, shuffled
    points = rng.normal(size=(len(labels), 4))
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1).astype("float32")
    expected = _prototype_loop_loss(points, labels)
    assert _numpy(prototypical_loss(labels, distances)) == pytest.approx(expected, rel=1e-4)
    assert _numpy(InBatchLoss("prototypical")(labels, distances)) == pytest.approx(expected, rel=1e-4)


def test_prototypical_loss_hand_computed_two_classes_of_two():
    # Points on a line: class 0 at 0 and 1, class 1 at 3 and 5. Query 0 (x = 0): its own class's
    # prototype is the other image, 1 -> d2 1; class 1's prototype 4 -> d2 16.
    points = np.array([[0.0], [1.0], [3.0], [5.0]])
    labels = np.array([0, 0, 1, 1])
    distances = np.abs(points - points.T).astype("float32")
    # Query 1 (x = 1): own 0 -> 1, other 4 -> 9. Query 2 (x = 3): own 5 -> 4, other 0.5 -> 6.25.
    # Query 3 (x = 5): own 3 -> 4, other 0.5 -> 20.25.
    per_query = [np.log(np.exp(-1) + np.exp(-16)) + 1,
                 np.log(np.exp(-1) + np.exp(-9)) + 1,
                 np.log(np.exp(-4) + np.exp(-6.25)) + 4,
                 np.log(np.exp(-4) + np.exp(-20.25)) + 4]
    assert _numpy(prototypical_loss(labels, distances)) == pytest.approx(np.mean(per_query), rel=1e-5)
