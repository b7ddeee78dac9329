"""Tests for the chairlift generator, the mask-domain loader and mask-guided classification.

Pair labels: 1 = same (image with the mask of its own class), 0 = different.
Class ids: 0 = closed, 1 = open.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from siamese_tf.embeddings import get_embedding  # noqa: E402
from siamese_tf.errors import SiameseDataError  # noqa: E402
from siamese_tf.studies import mask_guided  # noqa: E402
from siamese_tf.studies.mask_guided import CLOSED, OPEN, MaskGuidedData  # noqa: E402


@pytest.fixture(scope="module")
def small_data():
    return mask_guided.generate_chairlift_data(num_domains=3, train_per_domain=10, validation_per_domain=0,
                                              test_per_domain=6, image_size=(32, 32), seed=3, progress=False)


def _toy_data(class_ids, domain_ids, num_domains, size=8):
    """Images whose pixel values name their index; masks whose value names (domain, class)."""
    count = len(class_ids)
    images = np.stack([np.full((size, size, 3), i / 100, np.float32) for i in range(count)])
    masks = np.stack([[np.full((size, size, 3), (2 * d + c) / 10, np.float32) for c in (0, 1)]
                      for d in range(num_domains)])
    return MaskGuidedData(images, class_ids, domain_ids, masks, [f"d{d}" for d in range(num_domains)])


# --- generator ----------------------------------------------------------------------------------

def test_generator_shapes_splits_and_imbalance(small_data):
    train, test = small_data["train"], small_data["test"]
    assert train.images.shape == (30, 32, 32, 3) and test.images.shape == (18, 32, 32, 3)
    assert len(small_data["validation"]) == 0
    assert train.masks.shape == (3, 2, 32, 32, 3)
    assert train.images.min() >= 0 and train.images.max() <= 1
    # Masks are binary, equal across channels, and the open and closed masks differ.
    assert set(np.unique(train.masks)) <= {0.0, 1.0}
    assert np.array_equal(train.masks[..., 0], train.masks[..., 2])
    for domain_id, domain in enumerate(small_data["domains"]):
        assert not np.array_equal(train.masks[domain_id, CLOSED], train.masks[domain_id, OPEN])
        # Per-domain imbalance: exactly round(count * open fraction) open images per split.
        row = train.counts()[domain_id]
        assert row["open"] == round(10 * domain.open_fraction) and row["total"] == 10
        assert mask_guided.OPEN_FRACTION_RANGE[0] <= domain.open_fraction <= mask_guided.OPEN_FRACTION_RANGE[1]


def test_generator_is_seeded_and_domains_differ(small_data):
    again = mask_guided.generate_chairlift_data(num_domains=3, train_per_domain=10, validation_per_domain=0,
                                               test_per_domain=6, image_size=(32, 32), seed=3, progress=False)
    assert np.array_equal(again["train"].images, small_data["train"].images)
    other = mask_guided.generate_chairlift_data(num_domains=1, train_per_domain=2, validation_per_domain=0,
                                               test_per_domain=0, image_size=(32, 32), seed=4, progress=False)
    assert not np.array_equal(other["train"].masks[0], small_data["train"].masks[0])
    # first_domain gives chairlifts that are not among the first ones.
    later = mask_guided.generate_chairlift_data(num_domains=1, train_per_domain=0, validation_per_domain=0,
                                               test_per_domain=0, image_size=(32, 32), seed=3, first_domain=2,
                                               progress=False)
    assert np.array_equal(later["train"].masks[0], small_data["train"].masks[2])


def test_bar_is_drawn_where_the_mask_says():
    domain = mask_guided.make_domain(5)
    rng = np.random.default_rng(0)
    for class_id in (CLOSED, OPEN):
        own, other = mask_guided.render_mask(domain, class_id), mask_guided.render_mask(domain, 1 - class_id)
        only_own = (own > 0) & (other == 0)
        # Averaged over images, the pixels of this class's bar look like the bar colour more
        # often than they do when the bar is in the other position.
        with_bar = np.mean([mask_guided.render_image(domain, class_id, rng)[only_own] for _ in range(6)], axis=0)
        without = np.mean([mask_guided.render_image(domain, 1 - class_id, rng)[only_own] for _ in range(6)], axis=0)
        bar_color = np.asarray(domain.bar_color) * domain.light_gain * np.asarray(domain.tint)
        assert np.mean(np.abs(with_bar - bar_color)) < np.mean(np.abs(without - bar_color))


def test_generator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_domains"):
        mask_guided.generate_chairlift_data(num_domains=0, progress=False)
    with pytest.raises(ValueError, match="image_size"):
        mask_guided.generate_chairlift_data(num_domains=1, image_size=(4, 4), progress=False)
    with pytest.raises(ValueError, match="class_id"):
        mask_guided.render_mask(mask_guided.make_domain(0), 2)


# --- loader -------------------------------------------------------------------------------------

def test_written_layout_loads_back_and_bad_files_are_skipped(tmp_path):
    generated = mask_guided.generate_chairlift_data(num_domains=2, train_per_domain=3, validation_per_domain=0,
                                                   test_per_domain=0, image_size=(32, 32), seed=1,
                                                   output_dir=tmp_path, progress=False)
    domain_name = generated["domains"][0].name
    (tmp_path / "train" / domain_name / "closed" / "broken.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="broken.png"):
        loaded = mask_guided.load_mask_domains(tmp_path / "train", image_size=(32, 32))
    assert loaded.skipped == 1
    assert loaded.domain_names == tuple(d.name for d in generated["domains"])
    assert np.array_equal(np.sort(loaded.class_ids), np.sort(generated["train"].class_ids))
    # Masks written at 200x200 and read back at 32x32 overlap the generator's own masks well.
    generated_masks = generated["train"].masks
    overlap = np.sum(loaded.masks * generated_masks) / np.sum(np.maximum(loaded.masks, generated_masks))
    assert overlap > 0.5
    index_lines = (tmp_path / "index.csv").read_text().splitlines()
    assert index_lines[0] == "split,domain,class,path" and len(index_lines) == 1 + 6


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        mask_guided.load_mask_domains(tmp_path / "missing")
    domain = tmp_path / "lift_a"
    (domain / "open").mkdir(parents=True)
    cv2.imwrite(str(domain / "open" / "a.png"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(domain / "open_mask.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(SiameseDataError, match="closed_mask"):
        mask_guided.load_mask_domains(tmp_path)


# --- pairs, models, evaluation ------------------------------------------------------------------

def test_image_mask_pairs_are_balanced_and_within_domain():
    data = _toy_data(class_ids=[0, 1, 1], domain_ids=[0, 0, 1], num_domains=2)
    image_indices, mask_indices, labels = mask_guided.image_mask_pairs(data)
    # Hand-written: image 0 (domain 0, closed) with masks 0 (same) and 1; image 2 (domain 1, open)
    # with masks 2 and 3 (same).
    assert image_indices.tolist() == [0, 0, 1, 1, 2, 2]
    assert mask_indices.tolist() == [0, 1, 0, 1, 2, 3]
    assert labels.tolist() == [1, 0, 0, 1, 0, 1]
    (images, masks), labels = mask_guided.validation_pairs(data)
    assert np.allclose(images[:, 0, 0, 0], [0, 0, 0.01, 0.01, 0.02, 0.02])
    assert np.allclose(masks[:, 0, 0, 0], [0.0, 0.1, 0.0, 0.1, 0.2, 0.3])


def test_mask_pair_batches_cover_every_pair_once_per_epoch():
    data = _toy_data(class_ids=[0, 1, 0, 1, 1], domain_ids=[0, 0, 1, 1, 1], num_domains=2)
    batches = mask_guided.MaskPairBatches(data, batch_size=4, seed=1)
    seen = []
    for (images, masks), labels in batches.dataset():
        for image, mask, label in zip(np.asarray(images), np.asarray(masks), np.asarray(labels)):
            image_index = int(round(image[0, 0, 0] * 100))
            mask_index = int(round(mask[0, 0, 0] * 10))
            # The label says whether the mask's class is the image's class, within its domain.
            assert mask_index // 2 == data.domain_ids[image_index]
            assert label == float(mask_index % 2 == data.class_ids[image_index])
            seen.append((image_index, mask_index))
    assert sorted(seen) == sorted(zip(*mask_guided.image_mask_pairs(data)[:2]))
    assert len(batches) == 3


def test_mask_pair_batches_without_tensorflow_cover_every_pair_once_per_epoch_reshuffled(monkeypatch):
    from siamese_tf import settings

    monkeypatch.setattr(settings, "tensorflow_available", lambda: False)  # a machine with JAX alone
    data = _toy_data(class_ids=[0, 1, 0, 1, 1], domain_ids=[0, 0, 1, 1, 1], num_domains=2)
    source = mask_guided.MaskPairBatches(data, batch_size=4, seed=1).training_source()
    assert not hasattr(source, "element_spec") and len(source) == 3  # a PyDataset, not tf.data

    def epoch_pairs():
        seen = []
        for step in range(len(source)):
            (images, masks), labels = source[step]
            for image, mask, label in zip(images, masks, labels):
                image_index, mask_index = int(round(image[0, 0, 0] * 100)), int(round(mask[0, 0, 0] * 10))
                assert label == float(mask_index % 2 == data.class_ids[image_index])  # 1 = same class
                seen.append((image_index, mask_index))
        source.on_epoch_end()
        return seen

    first, second = epoch_pairs(), epoch_pairs()
    assert sorted(first) == sorted(second) == sorted(zip(*mask_guided.image_mask_pairs(data)[:2]))
    assert first != second  # shuffled anew each epoch


def test_sister_embedding_shape_and_registry():
    embedding = get_embedding("mask_guided_sister", (20, 20, 3))
    # 20 -> 18 -> 16 (two valid 3x3 convs) -> 8 (pool): 8 * 8 * 64 features into Dense(2).
    assert embedding.output_shape == (None, 2)
    assert embedding.count_params() == (3 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (8 * 8 * 64 * 2 + 2)
    with pytest.raises(ValueError, match="embedding_dim"):
        get_embedding("mask_guided_sister", (20, 20, 3), embedding_dim=0)


class _FixedEmbeddingModel:
    """Stands in for a SiameseModel: embeds an image as its (mean value, 0)."""

    def embed(self, images, batch_size=64):
        values = np.asarray(images).reshape(len(images), -1).mean(axis=1)
        return np.stack([values, np.zeros_like(values)], axis=1)


def test_prediction_takes_the_nearer_mask_of_the_own_domain():
    # Masks embed at 0.0/0.1 (domain 0) and 0.2/0.3 (domain 1); images at i / 100.
    data = _toy_data(class_ids=[0, 0, 0, 0], domain_ids=[0, 0, 1, 1], num_domains=2, size=4)
    data.images[:] = np.array([0.02, 0.09, 0.24, 0.26])[:, None, None, None]
    distances = mask_guided.mask_distances(_FixedEmbeddingModel(), data)
    assert np.allclose(distances, [[0.02, 0.08], [0.09, 0.01], [0.04, 0.06], [0.06, 0.04]])
    assert mask_guided.predict_with_masks(_FixedEmbeddingModel(), data).tolist() == [0, 1, 0, 1]


def test_per_domain_accuracy_and_table():
    data = _toy_data(class_ids=[0, 0, 0, 1, 1, 0], domain_ids=[0, 0, 0, 0, 1, 1], num_domains=2)
    predicted = [0, 0, 1, 1, 0, 0]
    rows, summary = mask_guided.per_domain_accuracy(data, predicted)
    assert [row["accuracy"] for row in rows] == [0.75, 0.5]
    # Domain 0: closed recall 2/3, open recall 1/1; domain 1: open 0/1, closed 1/1.
    assert rows[0]["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert rows[1]["balanced_accuracy"] == pytest.approx(0.5)
    assert summary["mean_accuracy"] == pytest.approx(0.625)
    assert summary["overall_accuracy"] == pytest.approx(4 / 6)
    table = mask_guided.accuracy_table({"siamese": rows, "classifier": rows})
    assert "| d0 | 4 | 1 | 75.0 | 75.0 |" in table and "**62.50**" in table
    with pytest.raises(ValueError, match="predictions"):
        mask_guided.per_domain_accuracy(data, [0, 1])


def test_shared_mask_loss_equals_the_mean_pair_loss(small_data):
    from siamese_tf.losses import contrastive_loss

    test = small_data["test"]
    model = mask_guided.build_mask_guided_siamese(test.image_shape, margin=2.0)
    (images, masks), labels = mask_guided.validation_pairs(test)
    distances = np.asarray(model((images, masks)))
    expected = float(np.mean(np.asarray(contrastive_loss(labels, distances, margin=2.0))))
    assert mask_guided.shared_mask_loss(model, test, batch_size=7) == pytest.approx(expected, rel=1e-4)


def test_siamese_and_classifier_train_a_few_steps(small_data):
    train, test = small_data["train"], small_data["test"]
    model = mask_guided.build_mask_guided_siamese(train.image_shape, learning_rate=3e-3)
    before = mask_guided.shared_mask_loss(model, train)
    history = mask_guided.train_mask_guided_siamese(model, train, num_epochs=3, validation_data=test,
                                                    batch_size=15)
    assert len(history.history["loss"]) == 3 and len(history.history["val_loss"]) == 3
    # val_loss is the loss over the validation domains' own pairs, after the epoch's training.
    assert history.history["val_loss"][-1] == pytest.approx(mask_guided.shared_mask_loss(model, test), rel=1e-4)
    assert mask_guided.shared_mask_loss(model, train) < before
    history = mask_guided.train_mask_guided_siamese(model, train, num_epochs=1, batch_size=20, method="pairs")
    assert len(history.history["loss"]) == 1
    predicted = mask_guided.predict_with_masks(model, test)
    assert predicted.shape == (18,) and set(predicted.tolist()) <= {0, 1}
    figure = mask_guided.plot_embedding_by_domain(model, test, columns=2)
    assert len(figure.axes) == 3
    with pytest.raises(ValueError, match="method"):
        mask_guided.train_mask_guided_siamese(model, train, num_epochs=1, method="triplets")

    classifier = mask_guided.build_classifier(train.image_shape)
    history = mask_guided.train_classifier(classifier, train, num_epochs=2, batch_size=15)
    assert len(history.history["loss"]) == 2
    assert mask_guided.predict_classifier(classifier, test).shape == (18,)
