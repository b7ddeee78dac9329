"""Signature verification: preprocessing, loaders (writer folders, CEDAR, zip), bad input, writer splits,
pairs, batches, the in-batch loss and the three branches (SigNet, DeepSign, MobileNetV2).

Label convention: 1 = two genuine signatures of one writer, 0 = a forgery against a genuine one.
"""

import warnings
import zipfile

import cv2
import keras
import numpy as np
import pytest

from siamese_tf import metrics
from siamese_tf.embeddings import get_embedding
from siamese_tf.errors import SiameseDataError
from siamese_tf.studies import signatures

SMALL = (32, 48)


def _signature_image(seed, height=60, width=120, offset=0):
    """A white page with a dark scribble (a polyline), dark ink ~20, paper ~235."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width), 235, np.uint8)
    points = np.stack([np.linspace(10, width - 10, 6), rng.uniform(15, height - 15, 6) + offset], 1).astype(np.int32)
    cv2.polylines(page, [points], False, 20, thickness=3)
    return page


def _write_png(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def _writer_folder_tree(root):
    """Writer 001: 3 genuine + 2 forgeries; 002: 2 + 1; 003: 1 genuine (left out); 004: no forgeries (left out);
    one corrupt file, one blank page and one extremely wide image in writer 001 (all three skipped)."""
    layout = {"001": 3, "001_forg": 2, "002": 2, "002_forg": 1, "003": 1, "003_forg": 2, "004": 3}
    for folder, count in layout.items():
        for index in range(count):
            _write_png(root / folder / f"{index:02d}.png", _signature_image(hash((folder, index)) % 1000))
    (root / "001" / "corrupt.png").write_bytes(b"this is not a png")
    _write_png(root / "001" / "blank.png", np.full((60, 120), 235, np.uint8))
    wide = np.full((10, 600), 235, np.uint8)
    cv2.line(wide, (5, 5), (595, 5), 20, 2)
    _write_png(root / "001" / "wide.png", wide)
    return root


# --- preprocessing -----------------------------------------------------------------------------

def test_preprocess_makes_ink_one_and_paper_zero():
    page = np.full((50, 100), 230, np.uint8)
    page[20:30, 10:90] = 15  # a thick bar of ink
    result = signatures.preprocess_signature(page, image_size=(20, 40), crop_to_ink=False, max_aspect_distortion=None)
    assert result.shape == (20, 40, 1) and result.dtype == np.float32
    # rows 20..29 of 50 map to rows 8..11 of 20; columns 10..89 of 100 to 4..35 of 40
    assert np.all(result[9:11, 6:34, 0] == 1.0)
    assert np.all(result[:6, :, 0] == 0.0) and np.all(result[14:, :, 0] == 0.0)


def test_preprocess_keep_gray_keeps_ink_darkness_and_clears_paper():
    page = np.full((50, 100), 230, np.uint8)
    page[10:20, 10:90] = 15    # dark ink: 1 - 15/255
    page[30:40, 10:90] = 100   # lighter ink, still below Otsu's threshold: 1 - 100/255
    page[45, 5] = 200          # paper noise a little darker than the paper
    result = signatures.preprocess_signature(page, image_size=(50, 100), crop_to_ink=False,
                                             max_aspect_distortion=None, keep_gray=True)
    np.testing.assert_allclose(result[12:18, 12:88, 0], 1 - 15 / 255, atol=1e-6)
    np.testing.assert_allclose(result[32:38, 12:88, 0], 1 - 100 / 255, atol=1e-6)
    assert result[45, 5, 0] == 0.0 and result[0, 0, 0] == 0.0
    binary = signatures.preprocess_signature(page, image_size=(50, 100), crop_to_ink=False,
                                             max_aspect_distortion=None)
    assert np.all(binary[32:38, 12:88, 0] == 1.0)  # the paper's binary image loses the difference


def test_preprocess_crop_to_ink_fills_the_frame():
    page = np.full((100, 200), 230, np.uint8)
    page[40:60, 50:150] = 10  # 20 x 100 box of ink, aspect 5
    result = signatures.preprocess_signature(page, image_size=(10, 50), median_kernel=1)
    assert np.all(result == 1.0)  # after cropping, the whole input is ink
    blurred = signatures.preprocess_signature(page, image_size=(10, 50))
    assert blurred[0, 0, 0] < 1.0 and np.all(blurred[2:8, 2:48] == 1.0)  # the median rounds only the corners


def test_preprocess_median_blur_removes_a_speck_and_steps_are_returned():
    page = np.full((40, 80), 230, np.uint8)
    page[15:25, 10:70] = 10
    page[3, 3] = 10  # an isolated dark pixel
    _, steps = signatures.preprocess_signature(page, image_size=(40, 80), crop_to_ink=False, return_steps=True)
    assert steps["binary"][3, 3] == 0  # the threshold keeps the speck as ink ...
    assert steps["median_blur"][3, 3] == 255  # ... and the 3x3 median removes it
    assert set(steps) == {"gray", "binary", "median_blur", "cropped", "resized", "inverted"}


def test_preprocess_rejects_blank_and_extreme_aspect_ratio_and_bad_settings():
    with pytest.raises(SiameseDataError, match="blank"):
        signatures.preprocess_signature(np.full((30, 60), 200, np.uint8), SMALL, name="empty.png")
    wide = np.full((10, 400), 230, np.uint8)
    wide[4:6, 5:395] = 10
    with pytest.raises(SiameseDataError, match="aspect ratio"):
        signatures.preprocess_signature(wide, (155, 220), name="wide.png")
    with pytest.raises(ValueError, match="median_kernel"):
        signatures.preprocess_signature(_signature_image(0), SMALL, median_kernel=2)


# --- loaders and bad input ---------------------------------------------------------------------

def test_writer_folder_loader_counts_skips_and_exclusions(tmp_path):
    root = _writer_folder_tree(tmp_path / "signatures")
    with pytest.warns(UserWarning) as caught:
        loaded = signatures.load_signatures(root, image_size=SMALL)
    messages = " ".join(str(warning.message) for warning in caught)
    assert "skipped 3 file(s)" in messages and "left out 2 writer(s)" in messages
    assert loaded.writer_names == ["001", "002"]
    assert loaded.counts() == {"001": (3, 2), "002": (2, 1)}
    assert len(loaded) == 8 and loaded.image_shape == (32, 48, 1)
    reasons = dict((name, reason) for name, reason in loaded.excluded_writers)
    assert "1 genuine" in reasons["003"] and "0 forgeries" in reasons["004"]
    skipped_names = sorted(path.rsplit("/", 1)[-1] for path, _ in loaded.skipped)
    assert skipped_names == ["blank.png", "corrupt.png", "wide.png"]


def test_zip_reads_like_the_folder(tmp_path):
    root = _writer_folder_tree(tmp_path / "signatures")
    archive = tmp_path / "signatures.zip"
    with zipfile.ZipFile(archive, "w") as writer:
        for file in sorted(root.rglob("*.png")):
            writer.write(file, "signatures/" + file.relative_to(root).as_posix())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_folder = signatures.load_signatures(root, image_size=SMALL)
        from_zip = signatures.load_signatures(archive, image_size=SMALL)
    assert from_zip.writer_names == from_folder.writer_names
    np.testing.assert_array_equal(from_zip.images, from_folder.images)
    np.testing.assert_array_equal(from_zip.genuine, from_folder.genuine)


def test_cedar_layout(tmp_path):
    root = tmp_path / "cedar"
    for writer in (1, 2):
        for index in (1, 2, 3):
            _write_png(root / "full_org" / f"original_{writer}_{index}.png", _signature_image(writer * 10 + index))
        for index in (1, 2):
            _write_png(root / "full_forg" / f"forgeries_{writer}_{index}.png", _signature_image(writer * 20 + index))
    _write_png(root / "full_org" / "notes_1.png", _signature_image(99))
    with pytest.warns(UserWarning, match="skipped 1 file"):
        loaded = signatures.load_signatures(root, image_size=SMALL)
    assert loaded.writer_names == ["1", "2"]
    assert loaded.counts() == {"1": (3, 2), "2": (3, 2)}


def test_no_usable_writer_and_unknown_layout(tmp_path):
    for index in range(2):
        _write_png(tmp_path / "only" / "005" / f"{index}.png", _signature_image(index))
    with (pytest.warns(UserWarning, match="left out 1 writer"),
          pytest.raises(SiameseDataError, match="no usable writer")):
        signatures.load_signatures(tmp_path / "only", image_size=SMALL)
    with pytest.raises(ValueError, match="layout"):
        signatures.load_signatures(tmp_path / "only", layout="gpds")
    with pytest.raises(FileNotFoundError):
        signatures.load_signatures(tmp_path / "missing")


# --- splits and pairs --------------------------------------------------------------------------

def _toy_set(genuine_counts=(3, 4, 2, 3, 2), forgery_counts=(2, 1, 3, 2, 1)):
    writers, genuine = [], []
    for writer, (genuine_count, forgery_count) in enumerate(zip(genuine_counts, forgery_counts)):
        writers += [writer] * (genuine_count + forgery_count)
        genuine += [True] * genuine_count + [False] * forgery_count
    count = len(writers)
    images = np.arange(count, dtype=np.float32).reshape(count, 1, 1, 1) * np.ones((1, 4, 4, 1), np.float32)
    return signatures.SignatureSet(images, writers, genuine, [f"{w:03d}" for w in range(len(genuine_counts))],
                                   [f"image{index}" for index in range(count)])


def test_signature_pairs_match_the_paper_counts():
    toy = _toy_set()
    first, second, labels = signatures.signature_pairs(toy)
    # per writer: C(g, 2) genuine pairs and g * f forgery pairs
    expected_positive = 3 + 6 + 1 + 3 + 1
    expected_negative = 3 * 2 + 4 * 1 + 2 * 3 + 3 * 2 + 2 * 1
    assert labels.sum() == expected_positive and (labels == 0).sum() == expected_negative
    assert np.all(toy.writers[first] == toy.writers[second])  # never across writers
    assert np.all(toy.genuine[first])  # the first image is always genuine
    assert np.all(toy.genuine[second] == (labels == 1))  # second is genuine exactly for label 1
    assert len(set(zip(first.tolist(), second.tolist()))) == len(labels)  # no duplicates
    assert np.all(first != second)


def test_split_writers_is_disjoint_and_complete():
    toy = _toy_set()
    train, validation, test = signatures.split_writers(toy, (0.6, 0.2, 0.2), seed=3)
    names = [set(part.writer_names) for part in (train, validation, test)]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    assert set.union(*names) == set(toy.writer_names)
    assert len(train) + len(validation) + len(test) == len(toy)
    # relabelled sets keep each image with its own writer and kind
    for part in (train, validation, test):
        for image, writer, genuine in zip(part.images, part.writers, part.genuine):
            original = int(image[0, 0, 0])
            assert toy.writer_names[toy.writers[original]] == part.writer_names[writer]
            assert toy.genuine[original] == genuine


def test_check_writers_disjoint_catches_overlap_even_with_leading_zeros():
    toy = _toy_set()
    first = toy.select_writers([0, 1])
    renamed = toy.select_writers([2])
    renamed.writer_names = ["1"]  # "001" and "1" are the same writer
    with pytest.raises(SiameseDataError, match="writer-disjoint"):
        signatures.check_writers_disjoint(first, renamed)
    signatures.check_writers_disjoint(first, toy.select_writers([2, 3]))  # no error


def test_real_signatures_split_by_writer(shared_data_dir):
    archive = shared_data_dir / "signatures" / "signatures_50writers.zip"
    if not archive.exists():
        pytest.skip(f"{archive} not found")
    loaded = signatures.load_signatures(archive, image_size=(16, 24))
    assert loaded.num_writers == 50 and not loaded.excluded_writers
    assert len(loaded) + len(loaded.skipped) == 1267
    assert all(genuine >= 2 and forged >= 1 for genuine, forged in loaded.counts().values())
    splits = signatures.split_writers(loaded, seed=0)
    signatures.check_writers_disjoint(*splits)
    assert [part.num_writers for part in splits] == [30, 10, 10]
    ink_fraction = loaded.images.mean()
    assert 0.02 < ink_fraction < 0.6  # ink is the minority, and present


# --- batches and loss --------------------------------------------------------------------------

def test_signature_pair_batches_are_balanced_and_epoch_seeded():
    toy = _toy_set()
    pairs = signatures.signature_pairs(toy)
    batches = signatures.SignaturePairBatches(toy.images, pairs, pairs_per_epoch=20, batch_size=8, seed=1)
    assert batches.steps_per_epoch == 3
    first, second, labels = batches.epoch_pairs(4)
    assert labels.sum() == 10 and len(labels) == 20
    again = batches.epoch_pairs(4)
    np.testing.assert_array_equal(first, again[0])
    (first_images, second_images), batch_labels = batches.batch(4, 2)
    assert first_images.shape == (4, 4, 4, 1) and batch_labels.shape == (4,)
    with pytest.raises(SiameseDataError, match="both labels"):
        signatures.SignaturePairBatches(toy.images, (pairs[0][:2], pairs[1][:2], np.ones(2)), 10)


def test_writer_batches_compose_writers_with_genuine_and_forgeries():
    toy = _toy_set()
    batches = signatures.SignatureWriterBatches(toy, writers_per_batch=3, genuine_per_writer=2,
                                                forgeries_per_writer=1, steps_per_epoch=2, seed=0)
    images, codes = batches.batch(0, 1)
    assert images.shape == (9, 4, 4, 1)
    writers, genuine = codes.astype(int) // 2, codes.astype(int) % 2 == 1
    assert len(set(writers.tolist())) == 3
    for writer in set(writers.tolist()):
        assert genuine[writers == writer].sum() == 2 and (~genuine[writers == writer]).sum() == 1
    # the codes agree with the images' own writers
    originals = images[:, 0, 0, 0].astype(int)
    np.testing.assert_array_equal(writers, toy.writers[originals])
    np.testing.assert_array_equal(genuine, toy.genuine[originals])
    with pytest.raises(ValueError, match="writers_per_batch"):
        signatures.SignatureWriterBatches(toy, writers_per_batch=6)


def test_writer_contrastive_loss_by_hand():
    # images: 0, 1 genuine of writer 0; 2 forgery of writer 0; 3 genuine of writer 1
    codes = signatures.signature_codes([0, 0, 0, 1], [True, True, False, True])
    np.testing.assert_array_equal(codes, [1, 1, 0, 3])
    distances = np.array([[0.0, 0.4, 0.3, 0.9],
                          [0.4, 0.0, 1.2, 0.2],
                          [0.3, 1.2, 0.0, 0.5],
                          [0.9, 0.2, 0.5, 0.0]], np.float32)
    # positives: (0,1) twice, d = 0.4 -> 0.5 * 0.16 = 0.08
    # skilled: (0,2),(2,0) d = 0.3 -> 0.5 * 0.49 = 0.245 ; (1,2),(2,1) d = 1.2 -> 0 ; mean 0.1225
    expected = 0.5 * (0.08 + 0.1225)
    value = float(signatures.writer_contrastive_loss(codes, distances))
    assert value == pytest.approx(expected, abs=1e-6)
    # random forgeries (genuine of different writers): (0,3) d=0.9 -> 0.005, (1,3) d=0.2 -> 0.32; mean 0.1625
    with_random = float(signatures.writer_contrastive_loss(codes, distances, random_forgery_weight=2.0))
    assert with_random == pytest.approx(expected + 2.0 * 0.1625, abs=1e-6)


def test_distance_gallery_indices():
    distances = np.array([5.0, 1.0, 3.0, 9.0, 7.0, 2.0, 8.0])
    groups = signatures.distance_gallery_indices(distances, per_group=2)
    assert groups["low"].tolist() == [1, 5]
    assert groups["high"].tolist() == [6, 3]
    assert sorted(distances[groups["middle"]].tolist()) == [3.0, 5.0]
    with pytest.raises(ValueError):
        signatures.distance_gallery_indices(distances, per_group=3)


# --- branches ----------------------------------------------------------------------------------

def _parameters(model):
    return int(model.count_params())


def test_signet_matches_the_paper_parameter_count():
    assert _parameters(get_embedding("signet", (155, 220, 1))) == 6_460_864  # 6.46 M in Dey et al. 2017
    with pytest.raises(ValueError, match="at least 67"):
        get_embedding("signet", (66, 100, 1))


def test_deepsign_size_and_unit_norm_output():
    model = get_embedding("deepsign", (48, 72, 1))
    assert abs(_parameters(model) - 256_992) / 256_992 < 0.01  # the paper's count, within 1 %
    outputs = np.asarray(model(np.random.default_rng(0).random((3, 48, 72, 1), dtype=np.float32)))
    assert outputs.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(outputs, axis=1), 1.0, atol=1e-5)


def test_mobilenet_v2_branch_adapter_and_errors(tmp_path):
    model = get_embedding("mobilenet_v2", (32, 48, 1), alpha=0.35)
    assert model.weights_source == "random"
    adapter = model.get_layer("gray_to_rgb")
    assert adapter.input.shape[-1] == 1 and adapter.output.shape[-1] == 3
    # training=True: batch statistics (a fresh network's moving statistics make its features tiny)
    outputs = np.asarray(model(np.random.default_rng(0).random((2, 32, 48, 1), dtype=np.float32), training=True))
    np.testing.assert_allclose(np.linalg.norm(outputs, axis=1), 1.0, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="weights"):
        get_embedding("mobilenet_v2", (32, 48, 1), weights=str(tmp_path / "missing.h5"))
    with pytest.raises(ValueError, match="1-channel"):
        get_embedding("mobilenet_v2", (32, 48, 3))


def test_signet_saves_and_loads_with_its_normalisation(tmp_path):
    from siamese_tf.models import build_siamese_model, load_model

    model = build_siamese_model("signet", "euclidean", input_shape=(67, 67, 1))  # the smallest SigNet input
    images = np.random.default_rng(1).random((2, 67, 67, 1), dtype=np.float32)
    sizes = signatures.model_size(model, tmp_path / "signet.keras")
    assert sizes["parameters"] == _parameters(model.embedding) and sizes["file_bytes"] > 4 * sizes["parameters"]
    loaded = load_model(tmp_path / "signet.keras")
    np.testing.assert_allclose(loaded.embed(images), model.embed(images), atol=1e-5)


def test_evaluate_signature_model_sets_a_distance_threshold():
    from siamese_tf.models import build_siamese_model

    toy = _toy_set()
    model = build_siamese_model("deepsign", "euclidean", input_shape=(32, 32, 1))
    toy.images = np.random.default_rng(2).random((len(toy), 32, 32, 1), dtype=np.float32)
    validation, test = toy.select_writers([0, 1, 2]), toy.select_writers([3, 4])
    figures, similarities, labels = signatures.evaluate_signature_model(model, validation, test)
    assert len(similarities) == len(labels) == (3 + 3 * 2) + (1 + 2 * 1)  # writers 3 and 4
    assert figures["distance_threshold"] == pytest.approx(-model.thresholds["detection"])
    assert np.all(similarities <= 0)  # similarity = -distance
    assert 0.0 <= figures["auc"] <= 1.0 and 0.0 <= figures["accuracy"] <= 1.0


def test_train_signature_branch_keeps_the_best_epoch_and_anneals_the_learning_rate():
    toy = _toy_set()
    toy.images = np.random.default_rng(3).random((len(toy), 32, 32, 1), dtype=np.float32)
    train, validation = toy.select_writers([0, 1, 2]), toy.select_writers([3, 4])
    model, record = signatures.train_signature_branch(
        "deepsign", train, validation, epochs=3, steps_per_epoch=2, learning_rate=1e-3, writers_per_batch=2,
        genuine_per_writer=2, forgeries_per_writer=1, cosine_decay=True, log=None)
    assert record["epochs_run"] == 3 and len(record["val_auc"]) == 3
    assert record["best_epoch"] == int(np.argmax(record["val_auc"])) + 1
    # after all 6 steps the cosine schedule sits at its floor, 5% of the starting rate
    rate = float(model.optimizer.learning_rate.numpy())
    assert rate == pytest.approx(5e-5, rel=1e-3)
    with pytest.raises(ValueError, match="decay_steps"):
        signatures.compile_for_writer_batches(model, decay_steps=0)


def test_train_signature_branch_keeps_the_best_or_the_last_epoch():
    toy = _toy_set()
    toy.images = np.random.default_rng(4).random((len(toy), 32, 32, 1), dtype=np.float32)
    train, validation = toy.select_writers([0, 1, 2]), toy.select_writers([3, 4])
    settings = dict(epochs=3, steps_per_epoch=2, learning_rate=1e-2, writers_per_batch=2, genuine_per_writer=2,
                    forgeries_per_writer=1, log=None)
    for keep, pick in (("best", max), ("last", lambda values: values[-1])):
        model, record = signatures.train_signature_branch("deepsign", train, validation, keep=keep, **settings)
        assert record["kept"] == keep
        # The returned weights score the validation writers as the kept epoch did.
        area = metrics.roc_auc(*signatures.pair_similarities(model, validation))
        assert area == pytest.approx(pick(record["val_auc"]), abs=1e-6)
    with pytest.raises(ValueError, match="'first'"):
        signatures.train_signature_branch("deepsign", train, validation, keep="first", **settings)


def test_train_signature_branch_without_validation_writers_trains_the_same_last_epoch():
    toy = _toy_set()
    toy.images = np.random.default_rng(5).random((len(toy), 32, 32, 1), dtype=np.float32)
    train, validation = toy.select_writers([0, 1, 2]), toy.select_writers([3, 4])
    settings = dict(epochs=2, steps_per_epoch=2, learning_rate=1e-2, writers_per_batch=2, genuine_per_writer=2,
                    forgeries_per_writer=1, keep="last", log=None)
    scored, _ = signatures.train_signature_branch("deepsign", train, validation, **settings)
    model, record = signatures.train_signature_branch("deepsign", train, None, **settings)
    assert record["epochs_run"] == 2 and record["val_auc"] == [] and record["best_epoch"] is None
    # Scoring validation writers after each epoch never changes what is trained.
    for with_scores, without_scores in zip(scored.get_weights(), model.get_weights()):
        np.testing.assert_allclose(without_scores, with_scores, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="keep='best'.*validation_set"):
        signatures.train_signature_branch("deepsign", train, None, **{**settings, "keep": "best"})


def test_ink_rule_scores_pairs_by_ink_statistics():
    toy = _toy_set(genuine_counts=(2,), forgery_counts=(1,))
    images = np.zeros((3, 2, 2, 1), np.float32)
    images[0, 0, 0] = 0.5                      # genuine: darkness 0.5, amount 0.5
    images[1, :, 0] = 0.5                      # genuine: darkness 0.5, amount 1.0
    images[2, 0, :] = 1.0                      # forgery: darkness 1.0, amount 2.0
    toy.images = images
    pairs = (np.array([0, 0]), np.array([1, 2]), np.array([1, 0]))
    darkness, labels = signatures.ink_rule_similarities(toy, "darkness", pairs)
    amount, _ = signatures.ink_rule_similarities(toy, "amount", pairs)
    np.testing.assert_allclose(darkness, [0.0, -0.5])
    np.testing.assert_allclose(amount, [-0.5, -1.5])
    assert labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="'width'"):
        signatures.ink_rule_similarities(toy, "width", pairs)


def test_signature_augmenter_scales_ranges_never_mirrors_and_rejects_bad_strength():
    base, strong = signatures.signature_augmenter(1.0), signatures.signature_augmenter(2.0)
    for name in ("max_rotation", "max_shift", "max_scale", "max_shear"):
        assert getattr(strong, name) == pytest.approx(2 * getattr(base, name))
    assert base.max_rotation == pytest.approx(5.0) and not strong.flip
    assert signatures.signature_augmenter().max_rotation == pytest.approx(5.0 * signatures.SIGNATURE_AUGMENT_STRENGTH)
    # A jittered signature keeps its shape, its value range and most of its ink.
    image = np.zeros((72, 108, 1), np.float32)
    image[30:42, 20:90] = 0.8
    jittered = strong(image, np.random.default_rng(0))
    assert jittered.shape == image.shape and jittered.min() >= 0.0 and jittered.max() <= 0.8 + 1e-5
    assert 0.5 < jittered.sum() / image.sum() < 1.5
    for bad in (0, -1.0, True, "2"):
        with pytest.raises(ValueError, match="strength"):
            signatures.signature_augmenter(bad)


def test_writer_folds_cover_every_writer_once():
    signature_set_for_folds = _toy_set()
    folds = signatures.writer_folds(signature_set_for_folds, num_folds=3, seed=1)
    names = [name for fold in folds for name in fold.writer_names]
    assert sorted(names) == sorted(signature_set_for_folds.writer_names)
    sizes = [fold.num_writers for fold in folds]
    assert max(sizes) - min(sizes) <= 1
    assert [fold.writer_names for fold in signatures.writer_folds(signature_set_for_folds, 3, seed=1)] == [
        fold.writer_names for fold in folds]
    with pytest.raises(ValueError, match="num_folds must be an integer >= 2, got 1"):
        signatures.writer_folds(signature_set_for_folds, num_folds=1)
    with pytest.raises(ValueError, match="cannot deal"):
        signatures.writer_folds(signature_set_for_folds, num_folds=signature_set_for_folds.num_writers + 1)


def test_transformed_writers_are_new_writers_with_every_image_turned_the_same_way():
    images = np.zeros((3, 2, 3, 1), np.float32)
    images[:, 0, 0, 0] = 1.0  # ink in the top-left corner of every image
    images[2, 1, 2, 0] = 0.5
    signature_set = signatures.SignatureSet(images=images, writers=[0, 0, 1], genuine=[True, False, True],
                                            writer_names=["007", "008"], paths=["a", "b", "c"])
    turned = signatures.add_transformed_writers(signature_set)
    assert turned.writer_names == ["007", "008", "007 (flip_left_right)", "008 (flip_left_right)",
                                   "007 (flip_up_down)", "008 (flip_up_down)", "007 (rotate_180)",
                                   "008 (rotate_180)"]
    np.testing.assert_array_equal(turned.writers, [0, 0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7])
    np.testing.assert_array_equal(turned.genuine, [True, False, True] * 4)  # a forgery stays a forgery
    np.testing.assert_array_equal(turned.images[:3], images)
    # The top-left ink moves to the top-right, the bottom-left and the bottom-right corner.
    assert [tuple(np.argwhere(image[..., 0] == 1.0)[0]) for image in turned.images[3::3]] == [(0, 2), (1, 0), (1, 2)]
    np.testing.assert_array_equal(turned.images[11, ..., 0], [[0.5, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert turned.paths[3:6] == ["a (flip_left_right)", "b (flip_left_right)", "c (flip_left_right)"]
    assert turned.counts()["008 (rotate_180)"] == signature_set.counts()["008"] == (1, 0)
    np.testing.assert_array_equal(signature_set.images, images)  # the input is left alone
    only_mirrored = signatures.add_transformed_writers(signature_set, "flip_left_right")
    assert only_mirrored.num_writers == 4 and len(only_mirrored) == 6
    assert signatures.add_transformed_writers(signature_set, ()).writer_names == ["007", "008"]
    with pytest.raises(ValueError, match="unknown writer transform 'rotate_90'"):
        signatures.add_transformed_writers(signature_set, ["flip_up_down", "rotate_90"])
    with pytest.raises(ValueError, match="each writer transform may appear once"):
        signatures.add_transformed_writers(signature_set, ["flip_up_down", "flip_up_down"])


def test_normalised_ink_takes_away_the_darkness_shortcut_and_keeps_the_strokes():
    images = np.zeros((2, 4, 4, 1), np.float32)
    images[0, 1, 1:3, 0] = [0.9, 0.7]  # a dark pen
    images[1, 2, 0:3, 0] = [0.3, 0.2, 0.1]  # a light pen
    signature_set = signatures.SignatureSet(images=images, writers=[0, 0], genuine=[True, False],
                                            writer_names=["w"], paths=["a", "b"])
    normalised = signatures.normalise_ink(signature_set)
    # ranks within each image: (rank - 0.5) / count
    np.testing.assert_allclose(normalised.images[0, 1, 1:3, 0], [0.75, 0.25], atol=1e-6)
    np.testing.assert_allclose(normalised.images[1, 2, 0:3, 0], [5 / 6, 0.5, 1 / 6], atol=1e-6)
    for image, original in zip(normalised.images, images):
        assert image[original > 0].mean() == pytest.approx(0.5, abs=1e-6)  # the same darkness for every pen
        np.testing.assert_array_equal(image > 0, original > 0)  # the same strokes
    assert signatures.ink_rule_similarities(normalised, "darkness")[0] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_array_equal(signature_set.images, images)  # the input is left alone
    tied = images.copy()
    tied[0, 1, 1:4, 0] = [0.4, 0.4, 0.9]  # two equal values share ranks 1 and 2: 1.5 each
    tied_set = signatures.SignatureSet(images=tied, writers=[0, 0], genuine=[True, False], writer_names=["w"],
                                       paths=["a", "b"])
    np.testing.assert_allclose(signatures.normalise_ink(tied_set).images[0, 1, 1:4, 0], [1 / 3, 1 / 3, 5 / 6],
                               atol=1e-6)


def test_local_response_normalization_matches_tensorflow_and_a_hand_computed_value():
    import tensorflow as tf

    from siamese_tf.studies.signatures.networks import LocalResponseNormalization

    inputs = np.random.default_rng(0).normal(size=(2, 3, 4, 7)).astype(np.float32)
    layer = LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=0.1, beta=0.75)
    expected = tf.nn.local_response_normalization(inputs, depth_radius=2, bias=2.0, alpha=0.1, beta=0.75).numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(inputs)), expected, rtol=1e-5, atol=1e-6)
    # Channel 0 of [1, 2, 3]: its window (radius 1) holds channels 0 and 1, 1 + 4 = 5.
    single = LocalResponseNormalization(depth_radius=1, bias=1.0, alpha=1.0, beta=1.0)(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(single)[0, 0], 1.0 / (1.0 + 5.0), rtol=1e-6)
    restored = LocalResponseNormalization.from_config(layer.get_config())
    assert (restored.depth_radius, restored.bias, restored.alpha, restored.beta) == (2, 2.0, 0.1, 0.75)


def test_turn_images_matches_the_writer_transforms_and_round_trips_its_config():
    images = np.random.default_rng(3).random((2, 3, 4, 1), dtype=np.float32)
    for transform in signatures.WRITER_TRANSFORMS:
        layer = signatures.TurnImages(transform)
        np.testing.assert_array_equal(np.asarray(layer(images)), signatures.WRITER_TRANSFORMS[transform](images))
        again = signatures.TurnImages.from_config(layer.get_config())
        assert again.transform == transform
    assert set(signatures.TURN_AXES) == set(signatures.WRITER_TRANSFORMS)
    with pytest.raises(ValueError, match="unknown transform 'rotate_90'"):
        signatures.TurnImages("rotate_90")


def test_shift_images_moves_the_ink_fills_paper_and_round_trips_its_config():
    images = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5, 1) + 1
    # By hand: down 1 and left 2 puts pixel (r, c) at (r + 1, c - 2); the top row and the two right columns are paper.
    expected = np.zeros_like(images)
    expected[:, 1:, :3] = images[:, :3, 2:]
    layer = signatures.ShiftImages(1, -2)
    np.testing.assert_array_equal(np.asarray(layer(images)), expected)
    np.testing.assert_array_equal(np.asarray(signatures.ShiftImages(0, 0)(images)), images)
    again = signatures.ShiftImages.from_config(layer.get_config())
    assert (again.rows, again.columns) == (1, -2)
    with pytest.raises(ValueError, match="rows must be a whole number of pixels, got 1.5"):
        signatures.ShiftImages(1.5, 0)
    with pytest.raises(ValueError, match=r"a shift of \(0, 5\) pixels leaves nothing of 4x5 images"):
        signatures.ShiftImages(0, 5)(images)


def test_shifted_views_average_the_turned_views_over_five_positions_and_save(tmp_path):
    from siamese_tf.models import build_siamese_model, half_precision_copy, load_model, save_model

    branch = get_embedding("deepsign", (48, 72, 1))
    views = signatures.with_turned_views(branch, ["rotate_180"], shift=3)
    images = np.random.default_rng(5).random((3, 48, 72, 1), dtype=np.float32)
    outputs = np.asarray(views(images))
    assert outputs.shape == (3, 5 * 2 * 128)
    squared = []
    for offset in [(0, 0), (-3, 0), (3, 0), (0, -3), (0, 3)]:
        moved = np.asarray(signatures.ShiftImages(*offset)(images))
        for turn in (lambda batch: batch, signatures.WRITER_TRANSFORMS["rotate_180"]):
            embedded = np.asarray(branch(np.ascontiguousarray(turn(moved))))
            squared.append(((embedded[0] - embedded[1:]) ** 2).sum(axis=1))
    np.testing.assert_allclose(np.linalg.norm(outputs[0] - outputs[1:], axis=1), np.sqrt(np.mean(squared, axis=0)),
                               rtol=1e-4)
    assert views.count_params() == branch.count_params()
    model = build_siamese_model(views, "euclidean")
    save_model(model, tmp_path / "shifted.keras")
    np.testing.assert_allclose(load_model(tmp_path / "shifted.keras").embed(images), model.embed(images), atol=1e-6)
    half = half_precision_copy(views)
    np.testing.assert_allclose(np.asarray(half(images), np.float32), outputs, atol=2e-2)
    # The unshifted views come first and are the views of shift 0 (outputs scaled by 1 / sqrt(views)).
    unshifted = np.asarray(signatures.with_turned_views(branch, ["rotate_180"], shift=0)(images))
    np.testing.assert_allclose(unshifted * np.sqrt(2), outputs[:, :2 * 128] * np.sqrt(10), atol=1e-5)
    for shift in (-1, 2.5, True):
        with pytest.raises(ValueError, match=f"shift must be a whole number of pixels.*got {shift!r}"):
            signatures.with_turned_views(branch, ["rotate_180"], shift=shift)
    assert signatures.SHIFTED_VIEWS_PIXELS == 12  # the cross-validated default (benchmarks/RESULTS.md)


def test_turned_views_distance_is_the_root_mean_square_over_the_views_and_saves(tmp_path):
    from siamese_tf.models import build_siamese_model, load_model, save_model

    branch = get_embedding("deepsign", (48, 72, 1))
    views = signatures.with_turned_views(branch)
    images = np.random.default_rng(4).random((3, 48, 72, 1), dtype=np.float32)
    outputs = np.asarray(views(images))
    assert outputs.shape == (3, 4 * 128)
    np.testing.assert_allclose(np.linalg.norm(outputs, axis=1), 1.0, atol=1e-5)
    # By hand: the branch's squared distance between the first image and the others, for the
    # images as given and turned each way, averaged over the four views.
    squared = []
    for turn in [lambda batch: batch, *signatures.WRITER_TRANSFORMS.values()]:
        embedded = np.asarray(branch(np.ascontiguousarray(turn(images))))
        squared.append(((embedded[0] - embedded[1:]) ** 2).sum(axis=1))
    np.testing.assert_allclose(np.linalg.norm(outputs[0] - outputs[1:], axis=1), np.sqrt(np.mean(squared, axis=0)),
                               rtol=1e-4)
    assert views.count_params() == branch.count_params()  # the same weights, shared by the views
    model = build_siamese_model(views, "euclidean")
    save_model(model, tmp_path / "views.keras")
    np.testing.assert_allclose(load_model(tmp_path / "views.keras").embed(images), model.embed(images), atol=1e-6)
    mirrored_only = signatures.with_turned_views(branch, ["flip_left_right"])
    assert np.asarray(mirrored_only(images)).shape == (3, 2 * 128)
    for transforms in (["rotate_90"], ["rotate_180", "rotate_180"], []):
        with pytest.raises(ValueError, match=f"got {transforms}".replace("[", r"\[").replace("]", r"\]")):
            signatures.with_turned_views(branch, transforms)
