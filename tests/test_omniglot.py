"""Tests for siamese_tf.studies.omniglot: loading, alphabet splits, rotations, Koch pairs, one-shot
episodes, Lake's runs scorer (with bad input) and tiny training runs. Label convention: 1 = same."""

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from siamese_tf import training
from siamese_tf.datasets import ImageSet
from siamese_tf.downloads import REGISTRY, extract_archive, verify_checksum
from siamese_tf.errors import ChecksumError, SiameseDataError
from siamese_tf.studies import omniglot


@pytest.fixture(scope="module")
def background(shared_data_dir):
    """Both minimal background sets, 3 drawers per character, 28x28, strokes = 1."""
    return omniglot.load_background_small(shared_data_dir, image_size=(28, 28), invert=True, max_images_per_class=3)


@pytest.fixture(scope="module")
def runs_sample(shared_data_dir):
    return shared_data_dir / "omniglot" / "lake_runs_format_example.zip"


def _synthetic_set(num_alphabets=2, characters_per_alphabet=3, drawers=4, side=6):
    """Characters whose images are constant grey levels, file names ``cccc_dd.png`` like Omniglot."""
    images, labels, names, paths = [], [], [], []
    for alphabet in range(num_alphabets):
        for character in range(characters_per_alphabet):
            label = len(names)
            names.append(f"Alpha{alphabet}/character{character + 1:02d}")
            for drawer in range(1, drawers + 1):
                images.append(np.full((side, side, 1), (label + 1) / 100.0, np.float32))
                labels.append(label)
                paths.append(f"root/{names[-1]}/{label:04d}_{drawer:02d}.png")
    return ImageSet(np.stack(images), labels, names, paths)


# --- loading, splits, rotations -------------------------------------------------------------------

def test_background_small_deduplicates_greek_and_latin(background):
    # small1: 136 characters, small2: 156; Greek (24) and Latin (26) are in both -> 242 distinct.
    assert background.num_classes == 136 + 156 - 24 - 26
    assert len(set(background.class_names)) == background.num_classes
    duplicates = [reason for _, reason in background.skipped if reason.startswith("duplicate")]
    assert len(duplicates) == (24 + 26) * 3
    assert background.images.shape[1:] == (28, 28, 1)
    # inverted: mostly background, so the mean is small and strokes are the bright pixels
    assert 0.0 < background.images.mean() < 0.3


def test_alphabets_and_split(background):
    alphabets = omniglot.class_alphabets(background)
    assert len(set(alphabets)) == 8
    train, held = omniglot.split_alphabets(background)
    assert set(omniglot.class_alphabets(held)) == {"Balinese", "Early_Aramaic"}
    assert held.num_classes == 24 + 22 and train.num_classes == background.num_classes - 46
    assert not set(train.class_names) & set(held.class_names)
    with pytest.raises(ValueError, match="Klingon"):
        omniglot.split_alphabets(background, held_out=("Klingon",))


def test_drawer_of():
    assert omniglot.drawer_of("Greek/character01/0394_07.png") == 7
    assert omniglot.drawer_of(r"C:\data\Greek\character01\0394_20.png") == 20
    assert omniglot.drawer_of("notes.png") == -1


def test_add_rotations_makes_new_classes_with_rotated_pixels():
    image_set = _synthetic_set(num_alphabets=1, characters_per_alphabet=2, drawers=2, side=3)
    image_set.images[0, 0, 2, 0] = 1.0  # a mark in the top-right corner of the first image
    rotated = omniglot.add_rotations(image_set, angles=(90, 180))
    assert rotated.num_classes == 3 * image_set.num_classes and len(rotated) == 3 * len(image_set)
    assert rotated.class_names[2] == "Alpha0/character01@rot90"
    # 90 degrees counter-clockwise moves the top-right corner to the top-left, 180 to bottom-left
    assert rotated.images[4, 0, 0, 0] == 1.0 and rotated.labels[4] == 2
    assert rotated.images[8, 2, 0, 0] == 1.0 and rotated.labels[8] == 4
    assert set(omniglot.class_alphabets(rotated)) == {"Alpha0"}
    with pytest.raises(ValueError, match="45"):
        omniglot.add_rotations(image_set, angles=(45,))


def test_load_omniglot_bad_sources(tmp_path, shared_data_dir):
    with pytest.raises(FileNotFoundError, match="missing.zip"):
        omniglot.load_omniglot(tmp_path / "missing.zip")
    truncated = tmp_path / "images_background_small1.zip"
    data = (shared_data_dir / "omniglot" / "images_background_small1.zip").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SiameseDataError, match="images_background_small1.zip"):
        omniglot.load_omniglot(truncated)
    # the registry checksum catches a damaged download, and extraction leaves nothing behind
    with pytest.raises(ChecksumError, match="images_background_small1.zip"):
        verify_checksum(truncated, REGISTRY["omniglot_background_small1"].sha256)
    with pytest.raises(SiameseDataError):
        extract_archive(truncated, tmp_path / "extracted")
    assert not (tmp_path / "extracted").exists()
    assert [path.name for path in tmp_path.iterdir()] == ["images_background_small1.zip"]
    with pytest.raises(FileNotFoundError, match="omniglot"):
        omniglot.find_background_small(tmp_path)


# --- Koch pairs ------------------------------------------------------------------------------------

def test_koch_pairs_labels_and_alphabets():
    image_set = _synthetic_set(num_alphabets=2, characters_per_alphabet=3)
    alphabets = omniglot.class_alphabets(image_set)
    first, second, labels = omniglot.sample_koch_pairs(image_set.labels, alphabets, 400, rng=0)
    assert labels.sum() == 200
    same_class = image_set.labels[first] == image_set.labels[second]
    np.testing.assert_array_equal(same_class, labels == 1)
    assert np.all(first[labels == 1] != second[labels == 1])  # two different drawings
    different = labels == 0
    within = alphabets[image_set.labels[first]] == alphabets[image_set.labels[second]]
    assert 0.35 < within[different].mean() < 0.65
    _, _, never_within = omniglot.sample_koch_pairs(image_set.labels, alphabets, 400, rng=0,
                                                    within_alphabet_fraction=0.0)
    first, second, labels = omniglot.sample_koch_pairs(image_set.labels, alphabets, 400, rng=1,
                                                       within_alphabet_fraction=0.0)
    assert not np.any((alphabets[image_set.labels[first]] == alphabets[image_set.labels[second]]) & (labels == 0))


def test_koch_pair_batches_add_distorted_copies():
    image_set = _synthetic_set(side=12)
    image_set.images[:, 3:9, 5:7] = 1.0  # a bar, so affine distortions change pixels
    batches = omniglot.KochPairBatches(image_set.images, image_set.labels, omniglot.class_alphabets(image_set),
                                       base_pairs_per_epoch=10, batch_size=99, seed=3, distortions_per_pair=8)
    assert batches.pairs_per_epoch == 90 and batches.steps_per_epoch == 1
    first, second, labels, distorted = batches.epoch_pairs(0)
    assert distorted.sum() == 80
    (first_images, second_images), batch_labels = batches.batch(0, 0)
    np.testing.assert_array_equal(batch_labels, labels)
    originals = ~distorted
    np.testing.assert_array_equal(first_images[originals], image_set.images[first[originals]])
    changed = np.abs(first_images[distorted] - image_set.images[first[distorted]]).max(axis=(1, 2, 3)) > 0
    assert changed.mean() > 0.5
    (again, _), _ = batches.batch(0, 0)
    np.testing.assert_array_equal(again, first_images)


# --- one-shot episodes and evaluation ---------------------------------------------------------------

def test_episodes_within_alphabet_follow_lake_layout(background):
    episodes = omniglot.sample_one_shot_episodes(background, n_way=20, num_episodes=12, seed=5)
    assert episodes.support_indices.shape == (12, 20) and episodes.num_tasks == 240
    alphabets = omniglot.class_alphabets(background)
    drawers = np.array([omniglot.drawer_of(path) for path in background.paths])
    for supports, queries, alphabet in zip(episodes.support_indices, episodes.query_indices, episodes.alphabets):
        support_classes = background.labels[supports]
        assert len(set(support_classes)) == 20
        np.testing.assert_array_equal(background.labels[queries], support_classes)
        assert set(alphabets[support_classes]) == {alphabet}
        assert len(set(drawers[supports])) == 1 and len(set(drawers[queries])) == 1
        assert drawers[supports][0] != drawers[queries][0]
    repeat = omniglot.sample_one_shot_episodes(background, n_way=20, num_episodes=12, seed=5)
    np.testing.assert_array_equal(repeat.query_indices, episodes.query_indices)
    across = omniglot.sample_one_shot_episodes(background, n_way=20, num_episodes=12, seed=5, within_alphabet=False)
    assert max(len(set(alphabets[background.labels[row]])) for row in across.support_indices) > 1
    with pytest.raises(ValueError, match="60-way"):
        omniglot.sample_one_shot_episodes(background, n_way=60, num_episodes=1)


class _LabelScorer:
    """An oracle: features are class labels, similarity 1 for the same label (or all ties)."""

    def __init__(self, labels, constant=False):
        self.labels, self.constant = labels, constant

    def features(self, images):
        return images.reshape(len(images), -1)[:, :1]

    def similarity(self, query_features, support_features):
        if self.constant:
            return np.zeros((len(query_features), len(support_features)))
        return (query_features == support_features.T).astype(float)


def test_evaluate_episodes_oracle_and_ties():
    image_set = _synthetic_set(num_alphabets=1, characters_per_alphabet=6)
    episodes = omniglot.sample_one_shot_episodes(image_set, n_way=5, num_episodes=4, seed=0)
    perfect = omniglot.evaluate_episodes(_LabelScorer(image_set.labels), image_set.images, episodes)
    assert perfect["accuracy"] == 1.0 and perfect["num_tasks"] == 20 and perfect["chance"] == 0.2
    ties = omniglot.evaluate_episodes(_LabelScorer(image_set.labels, constant=True), image_set.images, episodes)
    assert ties["accuracy"] == 0.0
    # constant-grey characters: raw pixels identify them exactly
    assert omniglot.evaluate_episodes(omniglot.PixelScorer(), image_set.images, episodes)["accuracy"] == 1.0


def test_pixel_scorer_is_minus_euclidean():
    queries = np.array([[0.0, 0.0], [3.0, 4.0]])
    supports = np.array([[0.0, 0.0], [6.0, 8.0]])
    np.testing.assert_allclose(omniglot.PixelScorer().similarity(queries, supports), [[0, -10], [-5, -5]], atol=1e-6)


# --- Lake's runs -----------------------------------------------------------------------------------

def test_read_lake_runs_sample(runs_sample):
    runs = omniglot.read_lake_runs(runs_sample, image_size=(28, 28))
    assert [run.name for run in runs] == ["run01", "run02"]
    with zipfile.ZipFile(runs_sample) as archive:
        first_line = archive.read("run02/class_labels.txt").decode().split("\n")[0].split()
    run = runs[1]
    assert run.support_images.shape == (20, 28, 28, 1) and run.query_images.shape == (20, 28, 28, 1)
    assert run.query_paths[0].endswith(first_line[0])
    assert run.support_paths[run.correct_positions[0]].endswith(first_line[1])
    assert all(path.endswith(f"class{k + 1:02d}.png") for k, path in enumerate(run.support_paths))
    scored = omniglot.score_lake_runs(runs, omniglot.PixelScorer())
    assert scored["num_runs"] == 2 and scored["num_tasks"] == 40 and scored["n_way"] == 20
    assert scored["mean_accuracy"] == pytest.approx(np.mean(list(scored["per_run"].values())))
    assert scored["mean_accuracy"] < 0.5  # raw pixels are a weak floor, far from the queries' true classes


def _copy_runs(runs_sample, destination):
    with zipfile.ZipFile(runs_sample) as archive:
        archive.extractall(destination)
    return destination


def test_runs_where_queries_copy_their_class_score_perfectly(runs_sample, tmp_path):
    folder = _copy_runs(runs_sample, tmp_path / "runs")
    for labels_file in folder.glob("run*/class_labels.txt"):
        for line in labels_file.read_text().split("\n"):
            if line.strip():
                query, support = line.split()
                shutil.copyfile(folder / support, folder / query)
    scored = omniglot.score_lake_runs(folder, omniglot.PixelScorer(), image_size=(28, 28))
    assert scored["per_run"] == {"run01": 1.0, "run02": 1.0}


def test_runs_bad_input_names_the_file(runs_sample, tmp_path):
    folder = _copy_runs(runs_sample, tmp_path / "runs")
    (folder / "run01" / "test" / "item07.png").unlink()
    with pytest.raises(SiameseDataError, match=r"class_labels.txt, line 7: .*item07.png"):
        omniglot.read_lake_runs(folder)

    folder = _copy_runs(runs_sample, tmp_path / "runs2")
    labels_file = folder / "run02" / "class_labels.txt"
    lines = labels_file.read_text().split("\n")
    lines[2] = "run02/test/item03.png run02/training/class99.png"
    labels_file.write_text("\n".join(lines))
    with pytest.raises(SiameseDataError, match=r"line 3: names run02/training/class99.png"):
        omniglot.read_lake_runs(folder)
    lines[2] = "run02/test/item03.png"
    labels_file.write_text("\n".join(lines))
    with pytest.raises(SiameseDataError, match=r"line 3: expected"):
        omniglot.read_lake_runs(folder)

    empty = tmp_path / "empty"
    (empty / "run01" / "test").mkdir(parents=True)
    with pytest.raises(SiameseDataError, match="class_labels.txt"):
        omniglot.read_lake_runs(empty)
    with pytest.raises(FileNotFoundError, match="all_runs.zip"):
        omniglot.read_lake_runs(tmp_path / "all_runs.zip")
    truncated = tmp_path / "truncated_runs.zip"
    truncated.write_bytes(Path(runs_sample).read_bytes()[:5000])
    with pytest.raises(SiameseDataError, match="truncated_runs.zip"):
        omniglot.read_lake_runs(truncated)


def test_undecodable_run_image_is_named(runs_sample, tmp_path):
    folder = _copy_runs(runs_sample, tmp_path / "runs")
    (folder / "run01" / "training" / "class03.png").write_bytes(b"not a png")
    with pytest.raises(SiameseDataError, match="class03.png"):
        omniglot.read_lake_runs(folder)


# --- losses and training ---------------------------------------------------------------------------

def test_neighbourhood_loss_hand_computed():
    # classes [0, 0, 1]; image 2 has no partner and is left out.
    distances = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]], np.float32)
    labels = np.array([0, 0, 1])
    first = -np.log(np.exp(-1.0) / (np.exp(-1.0) + np.exp(-4.0)))
    second = -np.log(np.exp(-1.0) / (np.exp(-1.0) + np.exp(-1.0)))
    loss = float(omniglot.neighbourhood_loss(labels, distances))
    assert loss == pytest.approx((first + second) / 2, rel=1e-5)


def test_train_conv4_tiny_logs_one_shot_accuracy(background):
    train, held = omniglot.split_alphabets(background)
    episodes = omniglot.sample_one_shot_episodes(held, n_way=5, num_episodes=2, seed=0)
    model = omniglot.build_conv4_model((28, 28, 1), embedding_dim=16, filters=(8, 8, 8, 8))
    history, one_shot, budget = omniglot.train_conv4(model, train, held, episodes, num_epochs=2, steps_per_epoch=2,
                                                     classes_per_batch=4, images_per_class=2, seed=0)
    assert len(history.history["val_one_shot_accuracy"]) == 2 and budget.steps == 4
    assert all(0.0 <= value <= 1.0 for value in one_shot.history)
    assert one_shot.best_accuracy == max(one_shot.history)
    momenta = [layer.momentum for layer in model.embedding.layers if "batch_normalization" in layer.name]
    assert momenta == [0.9] * 4
    # the scorer's compiled embedding agrees with SiameseModel.embed
    np.testing.assert_allclose(omniglot.ModelScorer(model).features(held.images[:5]), model.embed(held.images[:5]),
                               atol=1e-5)


def test_train_conv4_with_class_proxies_changes_the_embedding_and_scores_the_siamese_model(background):
    train, held = omniglot.split_alphabets(background)
    episodes = omniglot.sample_one_shot_episodes(held, n_way=5, num_episodes=2, seed=0)
    model = omniglot.build_conv4_model((28, 28, 1), embedding_dim=16, filters=(8, 8, 8, 8), head="cosine")
    before = model.embed(held.images[:4])
    history, one_shot, budget = omniglot.train_conv4(model, train, held, episodes, num_epochs=2, steps_per_epoch=2,
                                                     classes_per_batch=4, images_per_class=2, loss="proxies", seed=0)
    assert history.model.name == "proxy_trainer" and history.model.output_shape == (None, train.num_classes)
    assert len(one_shot.history) == 2 and budget.steps == 4
    assert not np.allclose(model.embed(held.images[:4]), before)  # the proxies trained the model's own embedding
    assert 0.0 <= one_shot.best_accuracy <= 1.0


def test_train_conv4_refuses_bad_settings_before_training(background):
    train, held = omniglot.split_alphabets(background)
    episodes = omniglot.sample_one_shot_episodes(held, n_way=5, num_episodes=1, seed=0)
    model = omniglot.build_conv4_model((28, 28, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    for settings, message in ((dict(minutes=0), "minutes must be a positive number of minutes or None, got 0"),
                              (dict(pipeline="numpy"), "pipeline must be 'tf.data' or 'python', got 'numpy'"),
                              (dict(loss="arcface"), "got 'arcface'"),
                              (dict(classes_per_batch=10_000), "classes_per_batch=10000 but only")):
        with pytest.raises(ValueError, match=re.escape(message)):
            omniglot.train_conv4(model, train, held, episodes, num_epochs=1, steps_per_epoch=1, **settings)
    with pytest.raises(ValueError, match="head must be 'euclidean' or 'cosine', got 'l1'"):
        omniglot.build_conv4_model(head="l1")


def test_shift_images_moves_and_fills_with_zeros():
    images = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    down = omniglot.shift_images(images, 1, axis=1)[0, :, :, 0]
    left = omniglot.shift_images(images, -1, axis=2)[0, :, :, 0]
    np.testing.assert_array_equal(down, [[0, 0, 0], [1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(left, [[2, 3, 0], [5, 6, 0], [8, 9, 0]])


def test_shift_averaged_features_are_the_mean_of_five_embeddings():
    model = omniglot.build_conv4_model((28, 28, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    images = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    variants = [images] + [omniglot.shift_images(images, offset, axis) for axis in (1, 2) for offset in (2, -2)]
    expected = np.mean([model.embed(variant) for variant in variants], axis=0)
    np.testing.assert_allclose(omniglot.ModelScorer(model, test_time_shift=2).features(images), expected, atol=1e-5)
    with pytest.raises(ValueError, match="-1"):
        omniglot.ModelScorer(model, test_time_shift=-1)


def test_grid_views_average_nine_embeddings_of_the_image_moved_by_every_offset_pair():
    model = omniglot.build_conv4_model((28, 28, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    images = np.random.default_rng(1).random((3, 28, 28, 1)).astype(np.float32)

    def moved(rows, columns):  # by hand: pad with zeros, then cut the window back out
        padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
        return padded[:, 2 - rows:30 - rows, 2 - columns:30 - columns]

    assert np.array_equal(moved(2, 0)[0, 2:, :, 0], images[0, :-2, :, 0]) and not moved(2, 0)[0, :2].any()
    expected = np.mean([model.embed(moved(rows, columns)) for rows in (-2, 0, 2) for columns in (-2, 0, 2)], axis=0)
    scorer = omniglot.ModelScorer(model, test_time_grid=omniglot.TEST_TIME_GRID_OFFSETS)
    assert omniglot.TEST_TIME_GRID_OFFSETS == (-2, 0, 2) and len(scorer.view_offsets) == 9
    np.testing.assert_allclose(scorer.features(images), expected, atol=1e-5)
    # A grid of 0 alone is the image as given; the 5-view cross keeps its layout.
    np.testing.assert_allclose(omniglot.ModelScorer(model, test_time_grid=[0]).features(images), model.embed(images),
                               atol=1e-6)
    assert omniglot.ModelScorer(model, test_time_shift=1).view_offsets == [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
    assert omniglot.ModelScorer(model).view_offsets == [(0, 0)]


@pytest.mark.parametrize("options, message", [
    ({"test_time_grid": []}, r"non-empty sequence of integer pixel offsets, got \(\)"),
    ({"test_time_grid": [0, 1.5]}, r"got \(0, 1.5\)"),
    ({"test_time_grid": [0, 2], "test_time_shift": 1}, "not both"),
])
def test_model_scorer_names_a_bad_view_grid(options, message):
    with pytest.raises(ValueError, match=message):
        omniglot.ModelScorer(None, **options)


def test_the_grid_offsets_scale_with_the_image_side():
    # Chosen at 28 x 28: a larger image moves by the same fraction of its side, rounded to whole pixels.
    assert omniglot.scaled_test_time_grid(omniglot.TEST_TIME_GRID_SIZE) == omniglot.TEST_TIME_GRID_OFFSETS
    assert omniglot.scaled_test_time_grid(56) == (-4, 0, 4)
    assert omniglot.scaled_test_time_grid(105) == (-8, 0, 8)  # 7.5 pixels, rounded to even
    assert omniglot.scaled_test_time_grid(14) == (-1, 0, 1)
    for bad in (0, -28, 28.0, True):
        with pytest.raises(ValueError, match=f"image_size must be a positive number of pixels, got {bad!r}"):
            omniglot.scaled_test_time_grid(bad)


def test_a_view_grid_that_moves_images_out_of_the_frame_is_refused():
    model = omniglot.build_conv4_model((28, 28, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    with pytest.raises(ValueError, match="shift of 28 pixels moves 28x28 images out of the frame"):
        omniglot.ModelScorer(model, test_time_grid=[-28, 0]).features(np.zeros((1, 28, 28, 1), np.float32))


class _FakeVariable:
    def __init__(self, value):
        self.value = value

    def assign(self, value):
        self.value = value


class _FakeModel:
    def __init__(self):
        self.stop_training = False
        self.optimizer = type("Optimizer", (), {"learning_rate": _FakeVariable(1.0)})()


def test_time_budget_stops_and_anneals_by_elapsed_time(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(training.time, "perf_counter", lambda: clock[0])
    budget = omniglot.TimeBudget(minutes=1.0, learning_rate=0.01, final_fraction=0.1)
    budget.set_model(_FakeModel())
    budget.on_train_begin()
    budget.on_train_batch_begin(0)
    assert budget.model.optimizer.learning_rate.value == pytest.approx(0.01)
    clock[0] = 130.0  # half-way: cosine at its midpoint, 0.1 + 0.9 * 0.5 of the start value
    budget.on_train_batch_begin(1)
    assert budget.model.optimizer.learning_rate.value == pytest.approx(0.01 * 0.55)
    budget.on_train_batch_end(1)
    assert not budget.model.stop_training and budget.steps == 1
    clock[0] = 160.0
    budget.on_train_batch_end(2)
    assert budget.model.stop_training and budget.elapsed_seconds == 60.0
    clock[0] = 170.0
    budget.on_train_end()
    clock[0] = 500.0  # read long after training ended: the run's own time
    assert budget.elapsed_seconds == 70.0
    with pytest.raises(ValueError, match="minutes"):
        omniglot.TimeBudget(minutes=None, learning_rate=0.1)


def test_train_koch_small_runs_and_scores_runs(runs_sample):
    image_set = _synthetic_set(num_alphabets=2, characters_per_alphabet=4, drawers=3, side=16)
    train, held = omniglot.split_alphabets(image_set, held_out=("Alpha1",))
    episodes = omniglot.sample_one_shot_episodes(held, n_way=3, num_episodes=2, seed=0)
    model = omniglot.build_koch_model((16, 16, 1), padding="same")
    history, one_shot, _ = omniglot.train_koch(model, train, held, episodes, num_epochs=1, base_pairs_per_epoch=4,
                                               distortions_per_pair=1, batch_size=8, optimizer="sgd",
                                               learning_rate=0.01)
    assert "val_one_shot_accuracy" in history.history and len(one_shot.history) == 1
    scored = omniglot.score_lake_runs(runs_sample, model, image_size=(16, 16))
    assert scored["num_tasks"] == 40 and 0.0 <= scored["mean_accuracy"] <= 1.0
    with pytest.raises(ValueError, match="rmsprop"):
        omniglot.train_koch(model, train, held, episodes, optimizer="rmsprop")


def test_koch_embedding_is_the_paper_size():
    model = omniglot.build_koch_model()
    assert model.embedding.count_params() == 38_947_648 and model.output_kind == "probability"


def test_conv4_augmenter_strength_scales_every_range():
    base, strong = omniglot.conv4_augmenter(), omniglot.conv4_augmenter(2.0)
    for name in ("max_rotation", "max_shift", "max_scale", "max_shear"):
        assert getattr(strong, name) == pytest.approx(2 * getattr(base, name))
    with pytest.raises(ValueError, match="0"):
        omniglot.conv4_augmenter(0)


@pytest.mark.parametrize("minutes, networks", [(None, 1), (0.5, 1), (5, 1), (11.99, 1), (12, 2), (24, 4), (30, 5)])
def test_each_network_of_the_default_ensemble_gets_at_least_six_minutes(minutes, networks):
    assert omniglot.MINUTES_PER_NETWORK == 6.0
    assert omniglot.choose_ensemble_size(minutes) == networks


@pytest.mark.parametrize("minutes", [0, -3, float("nan"), float("inf"), True, "24"])
def test_choose_ensemble_size_names_a_bad_budget(minutes):
    with pytest.raises(ValueError, match=re.escape(f"got {minutes!r}")):
        omniglot.choose_ensemble_size(minutes)


class _TableScorer:
    """A scorer whose features are the images' first pixel and whose similarities come from a table."""

    def __init__(self, table):
        self.table = np.asarray(table, np.float64)

    def features(self, images):
        return np.asarray(images, np.float32).reshape(len(images), -1)[:, :1]

    def similarity(self, query_features, support_features):
        rows = query_features[:, 0].astype(int)
        columns = support_features[:, 0].astype(int)
        return self.table[np.ix_(rows, columns)]


def test_ensemble_scorer_averages_standardised_similarities():
    # 2 queries (ids 0, 1) x 3 supports (ids 2, 3, 4); member A has a 10x larger scale than member B.
    table_a = np.zeros((5, 5))
    table_a[0, 2:5] = [30.0, 0.0, 0.0]     # A: query 0 -> support 0, sure
    table_a[1, 2:5] = [0.0, 9.0, 10.0]     # A: query 1 -> support 2, barely
    table_b = np.zeros((5, 5))
    table_b[0, 2:5] = [0.0, 2.0, 1.0]      # B: query 0 -> support 1
    table_b[1, 2:5] = [0.0, 3.0, 0.0]      # B: query 1 -> support 1, sure
    ensemble = omniglot.EnsembleScorer([_TableScorer(table_a), _TableScorer(table_b)])
    ids = np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1)
    features = ensemble.features(ids)
    assert features.shape == (5, 2)
    similarities = ensemble.similarity(features[:2], features[2:])

    def standardise(row):
        row = np.asarray(row, np.float64)
        return (row - row.mean()) / row.std()

    expected = np.stack([(standardise(table_a[q, 2:5]) + standardise(table_b[q, 2:5])) / 2 for q in (0, 1)])
    np.testing.assert_allclose(similarities, expected, atol=1e-12)
    # Standardising makes the vote blind to a member's scale: A x 100 changes nothing ...
    louder = omniglot.EnsembleScorer([_TableScorer(100 * table_a), _TableScorer(table_b)])
    np.testing.assert_allclose(louder.similarity(*np.split(louder.features(ids), [2])), similarities, atol=1e-12)
    # ... whereas summing raw similarities lets the louder member decide every query.
    raw = 100 * table_a[:2, 2:5] + table_b[:2, 2:5]
    assert raw.argmax(axis=1).tolist() == table_a[:2, 2:5].argmax(axis=1).tolist() == [0, 2]
    assert similarities.argmax(axis=1).tolist() == [1, 1]


def test_ensemble_scorer_of_models_runs_episodes_and_rejects_misuse(background):
    _, held = omniglot.split_alphabets(background)
    episodes = omniglot.sample_one_shot_episodes(held, n_way=5, num_episodes=2, seed=0)
    single = omniglot.build_conv4_model((28, 28, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    alone = omniglot.evaluate_episodes(omniglot.ModelScorer(single), held.images, episodes)
    # An ensemble of one model ranks like the model (standardising keeps each row's order).
    same = omniglot.evaluate_episodes(omniglot.EnsembleScorer([single]), held.images, episodes)
    assert same["accuracy"] == alone["accuracy"]
    other = omniglot.build_conv4_model((28, 28, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    pair = omniglot.evaluate_episodes(omniglot.EnsembleScorer([single, other], test_time_shift=1), held.images,
                                      episodes)
    assert 0.0 <= pair["accuracy"] <= 1.0 and pair["num_tasks"] == alone["num_tasks"]
    gridded = omniglot.EnsembleScorer([single, other], test_time_grid=(-2, 0, 2))
    assert all(member.test_time_grid == (-2, 0, 2) for member in gridded.scorers)
    with pytest.raises(ValueError, match="at least one"):
        omniglot.EnsembleScorer([])
    with pytest.raises(ValueError, match="features"):
        omniglot.EnsembleScorer([single]).similarity(np.zeros((1, 8)), np.zeros((2, 8)))
