"""SiameseCCR: residual branches, crops, hard negative mining, batches, matching, baselines."""

import dataclasses
import re

import keras
import numpy as np
import pytest

from siamese_tf.embeddings import get_embedding
from siamese_tf.heads import L1SimilarityHead
from siamese_tf.libraries import TemplateLibrary
from siamese_tf.models import SiameseModel
from siamese_tf.studies import captcha


def _weighted_layers(model):
    return [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]


@pytest.mark.parametrize("name, depth", [("siamese_ccr_15", 15), ("siamese_ccr_27", 27), ("siamese_ccr_39", 39)])
def test_siamese_ccr_depths_count_like_the_paper(name, depth):
    embedding = get_embedding(name, (44, 44, 1))
    assert tuple(embedding.outputs[0].shape) == (None, 256)
    # Main-path convolutions and the feature layer, plus the head's dense layer; the 1x1 projection
    # shortcuts are not counted (as in ResNet).
    main_path = [layer for layer in _weighted_layers(embedding) if "shortcut" not in layer.name]
    assert len(main_path) + 1 == depth


def test_siamese_ccr_rejects_bad_settings():
    with pytest.raises(ValueError, match="widths"):
        get_embedding("siamese_ccr", (44, 44, 1), widths=(8, 8))
    with pytest.raises(ValueError, match="embedding_dim"):
        get_embedding("siamese_ccr_15", (44, 44, 1), embedding_dim=0)


def test_a_first_stage_stride_of_2_halves_every_stage_and_keeps_the_weights():
    def stage_sizes(embedding):
        return [embedding.get_layer(f"stage{stage}_unit1_out").output.shape[1] for stage in range(1, 5)]

    paper = get_embedding("siamese_ccr_15", (44, 44, 1))
    halved = get_embedding("siamese_ccr_15", (44, 44, 1), first_stage_stride=2)
    assert stage_sizes(paper) == [44, 22, 11, 6]  # "same" padding: ceil(size / 2) at each stride 2
    assert stage_sizes(halved) == [22, 11, 6, 3]
    assert halved.get_layer("stem_conv").output.shape[1] == 44  # the stem still sees every pixel
    assert halved.count_params() == paper.count_params()
    model = captcha.build_siamese_ccr(captcha.CCRConfig(head="euclidean", first_stage_stride=2, widths=(4, 4, 4, 4),
                                                        embedding_dim=8))
    assert model.embedding.get_layer("stage1_unit1_conv2").strides == (2, 2)
    assert model.embedding.get_layer("stage1_unit1_shortcut").strides == (2, 2)
    for bad in (0, 3, 2.0, True):
        with pytest.raises(ValueError, match=f"first_stage_stride must be 1 \\(the paper\\) or 2, got {bad!r}"):
            get_embedding("siamese_ccr_15", (44, 44, 1), first_stage_stride=bad)


def test_center_and_random_crops_take_44_of_48():
    images = np.arange(2 * 48 * 48, dtype=np.float32).reshape(2, 48, 48, 1)
    centre = captcha.center_crop(images)
    assert centre.shape == (2, 44, 44, 1)
    np.testing.assert_array_equal(centre[0, 0, 0], images[0, 2, 2])  # (48 - 44) / 2 = 2
    crop = captcha.RandomCrop(44)(images[1], np.random.default_rng(0))
    assert crop.shape == (44, 44, 1)
    top, left = divmod(int(crop[0, 0, 0] - images[1, 0, 0, 0]), 48)
    assert 0 <= top <= 4 and 0 <= left <= 4
    np.testing.assert_array_equal(crop, images[1, top:top + 44, left:left + 44])
    with pytest.raises(ValueError, match="larger"):
        captcha.center_crop(images, 50)


def _mean_intensity_model():
    """Embedding = mean intensity; head sigmoid(-|a - b|): similarity falls with the brightness gap."""
    inputs = keras.Input((44, 44, 1))
    embedding = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    head = L1SimilarityHead()
    model = SiameseModel(embedding, head)
    head.classifier.set_weights([np.array([[-1.0]], np.float32), np.array([0.0], np.float32)])
    return model


def test_confusable_classes_rank_the_most_similar_other_classes():
    model = _mean_intensity_model()
    brightness = {7: 0.1, 3: 0.2, 9: 0.5, 4: 0.9}
    labels = np.array([7, 3, 9, 4, 7, 3])
    images = np.stack([np.full((48, 48, 1), brightness[label], np.float32) for label in labels])
    classes, confusers = captcha.confusable_classes(model, images, labels, top_k=2)
    assert classes.tolist() == [3, 4, 7, 9]
    # Hand-computed from the brightness gaps: 3 (0.2) -> 7 (0.1), 9 (0.5); 4 (0.9) -> 9, 3; ...
    assert confusers.tolist() == [[7, 9], [9, 3], [3, 9], [3, 7]]
    with pytest.raises(ValueError, match="at least 2 classes"):
        captcha.confusable_classes(model, images[:1], labels[:1])


def test_hard_negative_pairs_take_negatives_from_the_confusers():
    labels = np.repeat(np.arange(6), 3)
    classes = np.arange(6)
    confusers = np.array([[1], [0], [3], [2], [5], [4]])  # each class's only confuser
    first, second, pair_labels = captcha.hard_negative_pairs(labels, classes, confusers, 200, 0)
    assert len(first) == 200 and pair_labels.sum() == 100
    same = labels[first] == labels[second]
    np.testing.assert_array_equal(same, pair_labels == 1)
    negatives = pair_labels == 0
    np.testing.assert_array_equal(labels[second][negatives], confusers[labels[first][negatives], 0])
    assert not np.any(first[pair_labels == 1] == second[pair_labels == 1])


def test_class_batches_group_each_class_with_its_confusers():
    labels = np.repeat(np.arange(20), 4)
    images = np.random.default_rng(0).random((80, 48, 48, 1), dtype=np.float32)
    classes = np.arange(20)
    confusers = np.stack([(classes + offset) % 20 for offset in (1, 2, 3, 4, 5)], axis=1)
    batches = captcha.CaptchaClassBatches(images, labels, classes_per_batch=8, images_per_class=2, steps_per_epoch=3,
                                      seed=1, confusers=(classes, confusers), group_size=4)
    batch_images, batch_labels = batches.batch(0, 0)
    assert batch_images.shape == (16, 44, 44, 1)
    order = list(dict.fromkeys(batch_labels.tolist()))
    assert len(order) == 8  # distinct classes, two images each
    assert np.bincount(batch_labels, minlength=20)[order].tolist() == [2] * 8
    for group_start in (0, 4):
        seed_class = order[group_start]
        assert set(order[group_start + 1:group_start + 4]) <= set(confusers[seed_class].tolist())
    again_images, _ = batches.batch(0, 0)
    np.testing.assert_array_equal(batch_images, again_images)  # seeded by (seed, epoch, step)


def test_xla_matcher_ranks_like_the_template_library():
    model = _mean_intensity_model()
    rng = np.random.default_rng(1)
    library_embeddings = rng.random((30, 1), dtype=np.float32)
    queries = rng.random((5, 1), dtype=np.float32)
    library = TemplateLibrary(model, library_embeddings, np.arange(30))
    expected = library.match(query_embeddings=queries, top_k=3).labels
    indices, _ = captcha.xla_top_k_matcher(model, library_embeddings, k=3, chunk_size=4)(queries)
    np.testing.assert_array_equal(indices, expected)
    # Hand check: the best template is the one with the closest value.
    np.testing.assert_array_equal(indices[:, 0], np.abs(queries - library_embeddings[:, 0]).argmin(axis=1))


def test_evaluate_template_matching_counts_hits():
    model = _mean_intensity_model()
    templates = np.stack([np.full((48, 48, 1), value, np.float32) for value in (0.1, 0.4, 0.8)])
    queries = np.stack([np.full((48, 48, 1), value, np.float32) for value in (0.12, 0.5, 0.7, 0.3)])
    figures = captcha.evaluate_template_matching(model, queries, [0, 1, 2, 2], templates, [0, 1, 2], ks=(1, 2))
    # 0.12 -> 0.1 (right), 0.5 -> 0.4 (right), 0.7 -> 0.8 (right), 0.3 -> 0.4 (wrong; 0.8 is third)
    assert figures["top_1"] == 0.75 and figures["top_2"] == 0.75
    assert figures["num_queries"] == 4 and figures["num_templates"] == 3


def test_grid_crops_spread_windows_from_corner_to_corner():
    images = np.arange(2 * 48 * 48, dtype=np.float32).reshape(2, 48, 48, 1)
    crops = captcha.grid_crops(images, 44, grid=3)
    assert crops.shape == (9, 2, 44, 44, 1)
    # Top-left pixels of the 3 x 3 windows: rows and columns 0, 2 and 4 of a 48-pixel image.
    corners = [(int(view[0, 0, 0, 0]) // 48, int(view[0, 0, 0, 0]) % 48) for view in crops]
    assert corners == [(top, left) for top in (0, 2, 4) for left in (0, 2, 4)]
    np.testing.assert_array_equal(crops[8, 1], images[1, 4:48, 4:48])
    assert [int(view[0, 0, 0, 0]) for view in captcha.grid_crops(images, 44, grid=2)] == [0, 4, 4 * 48, 4 * 48 + 4]
    np.testing.assert_array_equal(captcha.grid_crops(images, 44, grid=1)[0], captcha.center_crop(images))
    assert captcha.grid_corners((48, 48), 44, 2) == [(0, 0), (0, 4), (4, 0), (4, 4)]
    assert captcha.grid_corners((48, 40), 36, 1) == [(6, 2)]  # the centre of a non-square image
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=f"grid must be a positive integer, got {bad!r}"):
            captcha.grid_crops(images, 44, grid=bad)
    with pytest.raises(ValueError, match="larger"):
        captcha.grid_crops(images, 50, grid=2)


def _top_left_pixel_model():
    """Embedding = the top-left pixel of the 44x44 window; head sigmoid(-|a - b|)."""
    inputs = keras.Input((44, 44, 1))
    corner = keras.layers.Flatten()(keras.layers.Cropping2D(((0, 43), (0, 43)))(inputs))
    model = SiameseModel(keras.Model(inputs, corner), L1SimilarityHead())
    model.head.classifier.set_weights([np.array([[-1.0]], np.float32), np.array([0.0], np.float32)])
    return model


def test_embed_grid_crops_averages_the_windows_embeddings():
    model = _top_left_pixel_model()
    rows, columns = np.meshgrid(np.arange(48.0), np.arange(48.0), indexing="ij")
    image = (rows ** 2 + columns).astype(np.float32)[None, :, :, None]
    # Windows start at rows and columns 0, 2, 4: mean of r^2 is 20 / 3, mean of c is 2; the centre alone: 4 + 2.
    np.testing.assert_allclose(captcha.embed_grid_crops(model, image, crop_grid=3), [[20 / 3 + 2]], rtol=1e-6)
    np.testing.assert_allclose(captcha.embed_grid_crops(model, image, crop_grid=1), [[6.0]])


def test_grid_crops_outvote_one_stray_pixel_in_template_matching():
    model = _top_left_pixel_model()
    templates = np.stack([np.full((48, 48, 1), value, np.float32) for value in (0.1, 0.5, 0.9)])
    query = np.full((1, 48, 48, 1), 0.5, np.float32)
    query[0, 2, 2] = 0.95  # the centre window's corner: alone it points at 0.9; the 3 x 3 mean is 0.55
    centre = captcha.evaluate_template_matching(model, query, [1], templates, [0, 1, 2], ks=(1,))
    grid = captcha.evaluate_template_matching(model, query, [1], templates, [0, 1, 2], ks=(1,), crop_grid=3)
    assert centre["top_1"] == 0.0 and grid["top_1"] == 1.0
    library = captcha.build_template_library(model, templates, [0, 1, 2], crop_grid=3)
    np.testing.assert_allclose(library.embeddings[:, 0], [0.1, 0.5, 0.9], rtol=1e-6)


def test_baseline_classifiers_have_5_and_11_weighted_layers():
    assert len(_weighted_layers(captcha.lenet5_classifier(10))) == 5
    cnn = captcha.cnn11_classifier(10)
    assert len(_weighted_layers(cnn)) == 11 and tuple(cnn.outputs[0].shape) == (None, 10)
    with pytest.raises(ValueError, match="num_classes"):
        captcha.lenet5_classifier(1)


def test_config_rejects_unknown_choices():
    with pytest.raises(ValueError, match="architecture"):
        captcha.CCRConfig(architecture="resnet")
    with pytest.raises(ValueError, match="mode"):
        captcha.CCRConfig(mode="triplets")
    with pytest.raises(ValueError, match="mining_rounds"):
        captcha.CCRConfig(mining_rounds=-1)
    with pytest.raises(ValueError, match="'cosine'"):
        captcha.CCRConfig(head="cosine")
    with pytest.raises(ValueError, match="'prototypical' does not fit head 'l1'"):
        captcha.CCRConfig(head="l1", loss="prototypical")
    with pytest.raises(ValueError, match="needs mode='in_batch'"):
        captcha.CCRConfig(head="euclidean", loss="triplet", mode="pairs")
    assert captcha.CCRConfig(head="euclidean").loss == "prototypical"
    assert captcha.CCRConfig().loss == "binary_crossentropy"


def test_training_runs_random_then_hard_negative_rounds():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 4)
    images = rng.random((32, 48, 48, 1), dtype=np.float32)
    config = captcha.CCRConfig(random_epochs=1, mining_rounds=1, mining_epochs=1, steps_per_epoch=1,
                           classes_per_batch=4, images_per_class=2, widths=(4, 4, 4, 4), embedding_dim=8, top_k=3)
    model, report = captcha.train_siamese_ccr(images, labels, config)
    assert [round_["kind"] for round_ in report["rounds"]] == ["random", "hard_negatives"]
    # Both rounds draw their batches from the tf.data engine.
    assert [round_["batches"] for round_ in report["rounds"]] == ["ClassBalancedPipeline"] * 2
    classes, confusers = report["confusers"]
    assert classes.tolist() == list(range(8)) and confusers.shape == (8, 3)
    assert not np.any(confusers == classes[:, None])
    assert all(np.isfinite(round_["losses"]).all() for round_ in report["rounds"])


@pytest.mark.parametrize("minutes", [0, -1.0, True, "5"])
def test_config_rejects_a_time_budget_that_is_not_positive(minutes):
    with pytest.raises(ValueError, match=f"minutes must be a positive number.*{minutes!r}"):
        captcha.CCRConfig(minutes=minutes)


def _random_captchas(seed):
    """Six characters x four random 48x48 gray images: enough for the rounds' batches and mining."""
    rng = np.random.default_rng(seed)
    return rng.random((24, 48, 48, 1), dtype=np.float32), np.repeat(np.arange(6), 4)


def _tiny_config(**settings):
    """A CCRConfig small enough to train in seconds (Euclidean head, 4 x 2 batches, widths of 4)."""
    tiny = dict(head="euclidean", classes_per_batch=4, images_per_class=2, widths=(4, 4, 4, 4), embedding_dim=8,
                top_k=2)
    return captcha.CCRConfig(**{**tiny, **settings})


def test_time_budget_stops_the_rounds_by_the_clock_in_proportion_to_their_epochs():
    images, labels = _random_captchas(seed=3)
    # Epoch caps far beyond what 18 seconds can run: only the clock can end these rounds.
    config = captcha.CCRConfig(head="euclidean", random_epochs=2000, mining_rounds=1, mining_epochs=1000,
                               steps_per_epoch=10, classes_per_batch=4, images_per_class=2, widths=(4, 4, 4, 4),
                               embedding_dim=8, top_k=2, minutes=0.3)
    _, report = captcha.train_siamese_ccr(images, labels, config)
    random_round, mining_round = report["rounds"]
    assert random_round["stopped_for_time"] and mining_round["stopped_for_time"]
    assert 0 < random_round["steps"] < 2000 * 10 and 0 < mining_round["steps"] < 1000 * 10
    # The random round has two thirds of the epochs, so about two thirds (12 s) of the 18 seconds;
    # the slack covers the first step's tracing and the recalibration on a busy machine.
    assert 8.0 < random_round["seconds"] < 18.0
    assert sum(round_["seconds"] for round_ in report["rounds"]) < 18.0 + 6.0
    assert report["skipped_rounds"] == 0


def test_euclidean_head_trains_with_the_prototypical_loss_and_mines_confusers():
    images, labels = _random_captchas(seed=1)
    config = captcha.CCRConfig(head="euclidean", random_epochs=1, mining_rounds=1, mining_epochs=1, steps_per_epoch=1,
                           classes_per_batch=4, images_per_class=2, widths=(4, 4, 4, 4), embedding_dim=8, top_k=2)
    model, report = captcha.train_siamese_ccr(images, labels, config)
    assert model.output_kind == "distance" and model.loss.kind == "prototypical"
    classes, confusers = report["confusers"]
    assert confusers.shape == (6, 2) and not np.any(confusers == classes[:, None])
    assert all(np.isfinite(round_["losses"]).all() for round_ in report["rounds"])


def test_anneal_last_round_lowers_only_the_last_rounds_rate_and_hands_the_rate_back():
    images, labels = _random_captchas(seed=4)
    config = _tiny_config(random_epochs=2, mining_rounds=2, mining_epochs=1, steps_per_epoch=3, learning_rate=1e-2,
                          anneal_last_round=True)
    model, report = captcha.train_siamese_ccr(images, labels, config)
    # The random and first mining rounds keep 1e-2; the last round's 3 steps run at 1, 0.525 and 0.05 of it.
    assert [round_["final_learning_rate"] for round_ in report["rounds"]] == pytest.approx([1e-2, 1e-2, 5e-4])
    assert [round_["steps"] for round_ in report["rounds"]] == [6, 3, 3]
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-2)
    # Without mining rounds the random round is the last one.
    config = dataclasses.replace(config, mining_rounds=0, random_epochs=1)
    _, report = captcha.train_siamese_ccr(images, labels, config)
    assert [round_["final_learning_rate"] for round_ in report["rounds"]] == pytest.approx([5e-4])


@pytest.mark.parametrize("settings, message", [
    (dict(anneal_last_round="yes"), "anneal_last_round must be True or False, got 'yes'"),
    (dict(anneal_last_round=True, cosine_decay=True), "both schedule the learning rate; choose one"),
])
def test_config_refuses_a_bad_last_round_annealing(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        captcha.CCRConfig(**settings)


def test_cosine_decay_runs_one_schedule_across_every_round():
    images, labels = _random_captchas(seed=2)
    config = _tiny_config(random_epochs=2, mining_rounds=1, mining_epochs=1, steps_per_epoch=2, learning_rate=1e-2,
                          cosine_decay=True)
    assert config.total_steps() == 6
    model, _ = captcha.train_siamese_ccr(images, labels, config)
    optimizer = model.optimizer
    # The step counter ran on across both rounds and the rate reached the schedule's floor (5%).
    assert int(optimizer.iterations.numpy()) == 6
    np.testing.assert_allclose(float(optimizer.learning_rate.numpy()), 1e-2 * 0.05, rtol=1e-5)
    constant = captcha.build_siamese_ccr(captcha.CCRConfig(head="euclidean", widths=(4, 4, 4, 4), embedding_dim=8,
                                                   learning_rate=1e-2))
    np.testing.assert_allclose(float(constant.optimizer.learning_rate.numpy()), 1e-2, rtol=1e-6)


def test_weight_averaging_ends_each_round_on_the_moving_average_of_the_weights(monkeypatch):
    images, labels = _random_captchas(seed=3)
    momentum = 0.5
    config = captcha.CCRConfig(head="euclidean", random_epochs=1, mining_rounds=0, steps_per_epoch=3,
                               classes_per_batch=4, images_per_class=2, widths=(4, 4, 4, 4), embedding_dim=8,
                               learning_rate=1e-2, ema_momentum=momentum)
    model = captcha.build_siamese_ccr(config)
    assert model.optimizer.use_ema and model.optimizer.ema_momentum == momentum
    seen = []

    class RecordWeights(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append([np.array(variable) for variable in self.model.trainable_variables])

    original_train = captcha.recipe.train_siamese

    def train_recording(model_, batches, epochs, verbose=0, callbacks=()):
        return original_train(model_, batches, epochs, verbose=verbose, callbacks=[*callbacks, RecordWeights()])

    monkeypatch.setattr(captcha.recipe, "train_siamese", train_recording)
    model, report = captcha.train_siamese_ccr(images, labels, config, model=model)
    assert report["rounds"][0]["steps"] == 3 and len(seen) == 3
    # By hand: the average starts at the first step's weights, then a = m a + (1 - m) w.
    average = seen[0]
    for weights in seen[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
    final = [np.array(variable) for variable in model.trainable_variables]
    for expected, got, last in zip(average, final, seen[-1]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # ... which is not where the last step left the weights.
    assert any(not np.allclose(got, last) for got, last in zip(final, seen[-1]))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, True, "0.9"])
def test_config_rejects_a_weight_averaging_momentum_outside_0_1(bad):
    with pytest.raises(ValueError, match=f"ema_momentum must be a number in \\[0, 1\\).*got {bad!r}"):
        captcha.CCRConfig(ema_momentum=bad)


def test_batch_norm_recalibration_sets_the_statistics_of_the_data():
    inputs = keras.Input((4, 4, 2))
    network = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.99)(inputs))
    batch_norm = network.layers[-1]
    rng = np.random.default_rng(0)
    images = np.concatenate([rng.normal(3.0, 0.1, (20, 4, 4, 1)), rng.normal(-1.0, 2.0, (20, 4, 4, 1))],
                            axis=-1).astype(np.float32)
    assert captcha.recalibrate_batch_norm(network, images) == 1
    # Moving statistics now equal the data's per-channel mean and (biased) variance ...
    np.testing.assert_allclose(np.asarray(batch_norm.moving_mean), images.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(batch_norm.moving_variance), images.var(axis=(0, 1, 2)), rtol=1e-3)
    # ... and the layer keeps its momentum.
    assert batch_norm.momentum == 0.99


def test_batch_norm_recalibration_pools_the_statistics_of_its_batches():
    inputs = keras.Input((4, 4, 2))
    network = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.99)(inputs))
    batch_norm = network.layers[-1]
    rng = np.random.default_rng(1)
    # Batches of 16, 16 and 8 with very different means: the variance must include their spread.
    images = np.concatenate([rng.normal(0.0, 1.0, (16, 4, 4, 2)), rng.normal(5.0, 1.0, (16, 4, 4, 2)),
                             rng.normal(-3.0, 0.5, (8, 4, 4, 2))]).astype(np.float32)
    assert captcha.recalibrate_batch_norm(network, images, batch_size=16) == 1
    np.testing.assert_allclose(np.asarray(batch_norm.moving_mean), images.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(batch_norm.moving_variance), images.var(axis=(0, 1, 2)), rtol=1e-3)
    assert batch_norm.momentum == 0.99
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {bad!r}"):
            captcha.recalibrate_batch_norm(network, images, batch_size=bad)
