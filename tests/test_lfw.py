"""Labeled Faces in the Wild: loading (three layouts, crop, bad files), pairs.txt / people.txt, the
protocol's scoring side and the pixel / HOG baselines. Real data: the shared 9-fold copy (skipped when
missing); error cases on tiny hand-made files."""

import math
import warnings
import zipfile

import cv2
import numpy as np
import pytest

from siamese_tf import datasets, metrics
from siamese_tf.datasets import read_image
from siamese_tf.downloads import REGISTRY
from siamese_tf.errors import SiameseDataError
from siamese_tf.samplers import make_pairs
from siamese_tf.studies import faces
from siamese_tf.studies.faces import (
    LFW_CENTER_CROP,
    CenterCrop,
    HogPairScorer,
    LFWFoldReport,
    LFWPair,
    PixelPairScorer,
    fold_pair_indices,
    fold_report,
    lfw_face_crop,
    lfw_fold_report,
    load_lfw,
    locate_lfw,
    read_lfw_pairs,
    read_lfw_people,
    summarise_folds,
)

PEOPLE = {"Ann_Lee": 3, "Bob": 2, "Carl_X": 1}
PAIRS_TEXT = "2\t1\nAnn_Lee\t1\t2\nAnn_Lee\t3\tBob\t1\nBob\t1\t2\nCarl_X\t1\tAnn_Lee\t2\n"
PEOPLE_TEXT = "2\n2\nAnn_Lee\t3\nCarl_X\t1\n1\nBob\t2\n"


def jpeg_bytes(seed, size=(50, 50)):
    """A small colour JPEG: a smooth random pattern, different for every seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(5, 5, 3), dtype=np.uint8)
    image = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def tiny_members(top):
    """``{member name: bytes}`` of a tiny LFW under the folder ``top`` ("" for none)."""
    prefix = f"{top}/" if top else ""
    members = {}
    for person_index, (name, count) in enumerate(PEOPLE.items()):
        for number in range(1, count + 1):
            members[f"{prefix}{name}/{name}_{number:04d}.jpg"] = jpeg_bytes(10 * person_index + number)
    return members


def write_folder(root, top, extra=None):
    for name, data in {**tiny_members(top), **(extra or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_zip(path, top, extra=None, folders=()):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in {**tiny_members(top), **(extra or {})}.items():
            archive.writestr(name, data)
        for folder in folders:
            archive.writestr(zipfile.ZipInfo(folder.rstrip("/") + "/"), b"")
    return path


@pytest.fixture(scope="module")
def shared_lfw(shared_data_dir):
    """The shared 9-fold LFW (``faces/lfw/`` under SIAMESE_TF_DATA_DIR); skips when it is not there."""
    if not (shared_data_dir / "faces" / "lfw" / "pairs_folds1-9.txt").is_file():
        pytest.skip(f"shared LFW not found under {shared_data_dir}/faces/lfw")
    return locate_lfw(shared_data_dir)


# --- pairs.txt and people.txt ------------------------------------------------------------------------

def test_read_lfw_pairs_on_the_shared_file(shared_lfw):
    assert shared_lfw.images.name == "lfw-deepfunneled_folds1-9.zip" and shared_lfw.people.name == "people_folds1-9.txt"
    pairs = read_lfw_pairs(shared_lfw.pairs)
    assert pairs.num_folds == 9 and pairs.pairs_per_fold == 300
    for number in range(1, 10):
        labels = pairs.labels(number)
        assert len(labels) == 600 and labels[:300].tolist() == [1] * 300 and labels[300:].tolist() == [0] * 300
        same = pairs.fold(number)[:300]
        assert all(pair.name1 == pair.name2 and pair.number1 != pair.number2 for pair in same)
        assert all(pair.name1 != pair.name2 for pair in pairs.fold(number)[300:])
    assert pairs.fold(1)[0] == LFWPair("Abel_Pacheco", 1, "Abel_Pacheco", 4, 1)
    assert pairs.location(1, 0).endswith("pairs_folds1-9.txt line 2")
    assert pairs.location(9, 599).endswith("line 5401")
    with pytest.raises(ValueError, match="from 1 to 9"):
        pairs.fold(0)
    with pytest.raises(ValueError, match="from 1 to 9"):
        pairs.fold(10)


def test_read_lfw_people_folds_are_disjoint(shared_lfw):
    people = read_lfw_people(shared_lfw.people)
    assert len(people) == 9 and sum(len(fold) for fold in people) == 5140
    assert [len(fold) for fold in people][:2] == [601, 555]
    assert sum(count for fold in people for _, count in fold) == 11450
    names = [{name for name, _ in fold} for fold in people]
    for first in range(9):
        for second in range(first):
            assert not names[first] & names[second], (first + 1, second + 1)
    pairs = read_lfw_pairs(shared_lfw.pairs)
    for number in range(1, 10):  # each fold's pairs use only that fold's people
        assert pairs.people([number]) <= names[number - 1]


def test_tiny_pairs_and_people_files(tmp_path):
    (tmp_path / "pairs.txt").write_text(PAIRS_TEXT)
    pairs = read_lfw_pairs(tmp_path / "pairs.txt")
    assert pairs.num_folds == 2 and pairs.pairs_per_fold == 1
    assert pairs.folds == [[("Ann_Lee", 1, "Ann_Lee", 2, 1), ("Ann_Lee", 3, "Bob", 1, 0)],
                           [("Bob", 1, "Bob", 2, 1), ("Carl_X", 1, "Ann_Lee", 2, 0)]]
    assert pairs.line_numbers == [[2, 3], [4, 5]] and pairs.people([2]) == {"Bob", "Carl_X", "Ann_Lee"}
    (tmp_path / "people.txt").write_text(PEOPLE_TEXT)
    assert read_lfw_people(tmp_path / "people.txt") == [[("Ann_Lee", 3), ("Carl_X", 1)], [("Bob", 2)]]
    # View 1's formats: one set, spaces instead of tabs, a blank line at the end
    (tmp_path / "pairsDevTrain.txt").write_text("1\nBob 1 2\nBob 2 Carl_X 1\n\n")
    view1 = read_lfw_pairs(tmp_path / "pairsDevTrain.txt")
    assert view1.folds == [[("Bob", 1, "Bob", 2, 1), ("Bob", 2, "Carl_X", 1, 0)]]
    (tmp_path / "peopleDevTrain.txt").write_text("2\nBob\t2\nCarl_X\t1\n")
    assert read_lfw_people(tmp_path / "peopleDevTrain.txt") == [[("Bob", 2), ("Carl_X", 1)]]


@pytest.mark.parametrize("text, line, words", [
    ("2\t1\nAnn_Lee\t1\t2\nAnn_Lee\t3\tBob\t1\n", None, ["ends at line 3", "fold 2", "2 fold(s) of 1"]),  # too few
    ("1\t2\nAnn_Lee\t1\t2\nAnn_Lee\t3\tBob\t1\nBob\t1\t2\nBob\t1\tAnn_Lee\t2\n", 3,
     ["matched pair 2 of fold 1", "4 field"]),                                       # a mismatched line too early
    ("1\t1\nAnn_Lee\t1\t2\nAnn_Lee\t3\tBob\t1\nBob\t1\t2\n", 4, ["more lines than the header"]),  # too many
    ("1\t1\nAnn_Lee\tone\t2\nAnn_Lee\t3\tBob\t1\n", 2, ["'one' is not a whole number"]),
    ("1\t1\nAnn_Lee\t0\t2\nAnn_Lee\t3\tBob\t1\n", 2, ["at least 1"]),
    ("1\t1\nAnn_Lee\t1\t2\tx\t3\nAnn_Lee\t3\tBob\t1\n", 2, ["5 field"]),
    ("1\t1\nAnn_Lee\t1\t2\nAnn_Lee\t3\tAnn_Lee\t1\n", 3, ["names one person twice"]),
    ("1\t1\nAnn_Lee\t2\t2\nAnn_Lee\t3\tBob\t1\n", 2, ["with itself"]),
    ("nine\t300\n", 1, ["'nine' is not a whole number"]),
    ("9\t300\t1\n", 1, ["header"]),
    ("", None, ["empty"]),
])
def test_bad_pairs_files_name_the_file_and_line(tmp_path, text, line, words):
    _assert_bad_file_is_named(read_lfw_pairs, tmp_path / "pairs.txt", text, line, words)


@pytest.mark.parametrize("text, line, words", [
    ("2\n2\nAnn_Lee\t3\n1\nBob\t2\n", 4, ["person 2 of 2 of fold 1", "'1'"]),     # count too big
    ("2\n1\nAnn_Lee\t3\nCarl_X\t1\n1\nBob\t2\n", 4, ["number of people of fold 2", "fold 1 disagree"]),  # too small
    ("1\n2\nAnn_Lee\t3\nAnn_Lee\t1\n", 4, ["listed twice"]),
    ("1\n1\nAnn_Lee\tthree\n", 3, ["'three' is not a whole number"]),
    ("1\n1\nAnn_Lee\t3\nBob\t2\n", 4, ["more lines than the counts"]),
    ("3\n1\nAnn_Lee\t3\n", None, ["ends at line 3 before fold 2"]),
    ("1 2\n", 1, ["header"]),
])
def test_bad_people_files_name_the_file_and_line(tmp_path, text, line, words):
    _assert_bad_file_is_named(read_lfw_people, tmp_path / "people.txt", text, line, words)


def _assert_bad_file_is_named(reader, path, text, line, words):
    """``reader(path)`` on ``text`` raises SiameseDataError naming the file, the line and ``words``."""
    path.write_text(text)
    with pytest.raises(SiameseDataError) as caught:
        reader(path)
    message = str(caught.value)
    assert str(path) in message
    if line is not None:
        assert f"line {line}:" in message
    for word in words:
        assert word in message, message


def test_missing_text_files_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        read_lfw_pairs(tmp_path / "nowhere.txt")
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        read_lfw_people(tmp_path / "nowhere.txt")


# --- loading images ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["zip lfw-deepfunneled/", "folder holding lfw/ beside pairs.txt",
                                    "zip of person folders", "folder lfw_funneled/", "nested Kaggle folders"])
def test_the_layouts_users_get_load_alike(tmp_path, layout):
    reference = load_lfw(write_zip(tmp_path / "reference.zip", ""), image_size=(20, 20))
    if layout == "zip lfw-deepfunneled/":
        path = write_zip(tmp_path / "lfw-deepfunneled.zip", "lfw-deepfunneled")
    elif layout == "folder holding lfw/ beside pairs.txt":
        path = write_folder(tmp_path / "download", "lfw", {"pairs.txt": PAIRS_TEXT.encode(),
                                                           "people.txt": PEOPLE_TEXT.encode()})
    elif layout == "zip of person folders":
        path = write_zip(tmp_path / "people.zip", "")
    elif layout == "folder lfw_funneled/":
        path = write_folder(tmp_path / "funneled", "lfw_funneled") / "lfw_funneled"
    else:
        path = write_folder(tmp_path / "kaggle", "lfw-deepfunneled/lfw-deepfunneled")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about in any of them
        image_set = load_lfw(path, image_size=(20, 20))
    assert image_set.class_names == ["Ann_Lee", "Bob", "Carl_X"]
    assert image_set.paths == ["Ann_Lee/Ann_Lee_0001.jpg", "Ann_Lee/Ann_Lee_0002.jpg", "Ann_Lee/Ann_Lee_0003.jpg",
                               "Bob/Bob_0001.jpg", "Bob/Bob_0002.jpg", "Carl_X/Carl_X_0001.jpg"]
    assert image_set.labels.tolist() == [0, 0, 0, 1, 1, 2] and image_set.skipped == []
    assert image_set.images.shape == (6, 20, 20, 1)
    np.testing.assert_array_equal(image_set.images, reference.images)


def test_the_crop_is_one_function_for_every_path(tmp_path):
    """Zip and folder loads, the loader's crop hook and a single image read all use lfw_face_crop."""
    face = np.arange(250 * 250, dtype=np.float32).reshape(250, 250)
    np.testing.assert_array_equal(lfw_face_crop(face), face[65:185, 65:185])
    assert LFW_CENTER_CROP == CenterCrop(0.48) and LFW_CENTER_CROP.box() == (65, 65, 120, 120)
    np.testing.assert_array_equal(LFW_CENTER_CROP(face), lfw_face_crop(face))
    colour = np.zeros((250, 250, 3), np.uint8)
    assert lfw_face_crop(colour).shape == (120, 120, 3) and lfw_face_crop(colour, 0.5).shape == (125, 125, 3)
    for bad in (0, 1.5, "half", True):
        with pytest.raises(ValueError, match="fraction"):
            lfw_face_crop(face, bad)

    members = {f"lfw/P/P_{number:04d}.jpg": jpeg_bytes(number, size=(250, 250)) for number in (1, 2)}
    zip_path = tmp_path / "lfw.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    folder = tmp_path / "folder"
    for name, data in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    from_zip = load_lfw(zip_path, image_size=(32, 32), channels=3)
    from_folder = load_lfw(folder, image_size=(32, 32), channels=3)
    np.testing.assert_array_equal(from_zip.images, from_folder.images)
    # the same as one image read on its own with the same crop (what a verification app would do)
    single = read_image(members["lfw/P/P_0001.jpg"], (32, 32), channels=3, crop=lfw_face_crop)
    np.testing.assert_array_equal(from_zip.images[0], single)
    # and as cropping the decoded image by hand, then converting and resizing
    decoded = cv2.imdecode(np.frombuffer(members["lfw/P/P_0001.jpg"], np.uint8), cv2.IMREAD_COLOR)
    by_hand = cv2.cvtColor(decoded[65:185, 65:185].astype(np.float32) / 255.0, cv2.COLOR_BGR2RGB)
    by_hand = cv2.resize(by_hand, (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(from_zip.images[0], by_hand, atol=1e-6)
    uncropped = load_lfw(zip_path, image_size=None, crop=None)
    assert uncropped.images.shape == (2, 250, 250, 1)
    assert load_lfw(zip_path, image_size=None).images.shape == (2, 120, 120, 1)
    assert load_lfw(zip_path, image_size=None, crop=0.4).images.shape == (2, 100, 100, 1)


def test_an_unreadable_jpeg_in_a_zip_is_named_and_counted(tmp_path):
    path = write_zip(tmp_path / "lfw.zip", "lfw", {"lfw/Bob/Bob_0003.jpg": b"\xff\xd8 not really a jpeg",
                                                   "lfw/Dan/Dan_0001.jpg": b""})
    with pytest.warns(UserWarning) as caught:
        image_set = load_lfw(path, image_size=(16, 16))
    messages = " ".join(str(warning.message) for warning in caught)
    assert "Bob_0003.jpg" in messages and "skipped 2 file(s)" in messages
    assert "Dan (0)" in messages  # Dan had one file and it was unreadable: dropped, named
    assert len(image_set.skipped) == 2 and image_set.skipped[0][0].endswith("lfw/Bob/Bob_0003.jpg")
    assert image_set.class_names == ["Ann_Lee", "Bob", "Carl_X"] and len(image_set) == 6


def test_a_person_folder_with_no_images_is_named(tmp_path):
    folder = write_folder(tmp_path / "data", "lfw")
    (folder / "lfw" / "Empty_Person").mkdir()
    (folder / "lfw" / "Thumbs_Only").mkdir()
    (folder / "lfw" / "Thumbs_Only" / "Thumbs.db").write_bytes(b"clutter")  # ignored, so the folder is empty
    with pytest.warns(UserWarning, match=r"2 folder\(s\) holding no files.*Empty_Person.*Thumbs_Only"):
        image_set = load_lfw(folder, image_size=(16, 16))
    assert image_set.class_names == ["Ann_Lee", "Bob", "Carl_X"]
    assert [reason for _, reason in image_set.skipped] == ["folder holding no files"] * 2
    # in a zip, an empty folder exists as its own entry
    path = write_zip(tmp_path / "lfw.zip", "lfw", folders=["lfw/", "lfw/Ann_Lee/", "lfw/Nobody/"])
    with pytest.warns(UserWarning, match="Nobody"):
        from_zip = load_lfw(path, image_size=(16, 16))
    assert len(from_zip.skipped) == 1 and from_zip.skipped[0][0].endswith("lfw/Nobody")


def test_people_and_min_images_decode_only_what_is_asked(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "lfw.zip", "lfw-deepfunneled")
    decoded = []
    real_read_image = datasets.read_image

    def counting_read_image(source, *args, name=None, **kwargs):
        decoded.append(name)
        return real_read_image(source, *args, name=name, **kwargs)

    monkeypatch.setattr(datasets, "read_image", counting_read_image)
    image_set = load_lfw(path, image_size=(16, 16), people={"Carl_X", "Bob"})
    assert image_set.class_names == ["Bob", "Carl_X"] and len(image_set) == 3
    assert len(decoded) == 3 and not any("Ann_Lee" in name for name in decoded)
    decoded.clear()
    image_set = load_lfw(path, image_size=(16, 16), min_images=2)
    assert image_set.class_names == ["Ann_Lee", "Bob"] and len(decoded) == 5
    assert load_lfw(path, image_size=(16, 16), people=["Ann_Lee", "Carl_X"], min_images=3).class_names == ["Ann_Lee"]
    with pytest.raises(SiameseDataError, match="1 of the 2 requested.*Zed"):
        load_lfw(path, people=["Bob", "Zed"])
    with pytest.raises(ValueError, match="one string"):
        load_lfw(path, people="Bob")
    with pytest.raises(ValueError, match="min_images"):
        load_lfw(path, min_images=0)
    with pytest.raises(SiameseDataError, match="nobody has 4"):
        load_lfw(path, min_images=4)
    with pytest.raises(FileNotFoundError):
        load_lfw(tmp_path / "nowhere.zip")


def test_fold_pair_indices_and_a_missing_image(tmp_path):
    image_set = load_lfw(write_zip(tmp_path / "lfw.zip", "lfw"), image_size=(16, 16))
    (tmp_path / "pairs.txt").write_text(PAIRS_TEXT)
    pairs = read_lfw_pairs(tmp_path / "pairs.txt")
    first, second, labels = fold_pair_indices(image_set, pairs, fold=1)
    assert first.tolist() == [0, 2] and second.tolist() == [1, 3] and labels.tolist() == [1, 0]
    first, second, labels = fold_pair_indices(image_set, pairs.fold(2))
    assert first.tolist() == [3, 5] and second.tolist() == [4, 1] and labels.tolist() == [1, 0]

    (tmp_path / "pairs_bad.txt").write_text("1\t1\nAnn_Lee\t1\t2\nAnn_Lee\t3\tBob\t7\n")
    bad = read_lfw_pairs(tmp_path / "pairs_bad.txt")
    with pytest.raises(SiameseDataError,
                       match=r"pairs_bad.txt line 3: .*Bob/Bob_0007.jpg.*Bob has image\(s\) \[1, 2\]"):
        fold_pair_indices(image_set, bad, fold=1)
    with pytest.raises(SiameseDataError, match=r"pair 1 of 1: .*Zed/Zed_0001.jpg.*not among the 3 people"):
        fold_pair_indices(image_set, [("Zed", 1, "Bob", 1, 0)])
    with pytest.raises(ValueError, match="fold=1..2"):
        fold_pair_indices(image_set, pairs)
    with pytest.raises(ValueError, match="label"):
        fold_pair_indices(image_set, [("Bob", 1, "Bob", 2, 2)])


def test_the_read_image_crop_hook_checks_what_the_crop_returns(tmp_path):
    data = jpeg_bytes(1)
    with pytest.raises(SiameseDataError, match="the crop turned"):
        read_image(data, crop=lambda pixels: pixels[:0], name="x.jpg")
    with pytest.raises(ValueError, match="crop must be a function"):
        read_image(data, crop="centre")
    assert read_image(data, crop=lambda pixels: pixels[:10, :20]).shape == (10, 20, 1)


def test_locate_lfw_finds_the_users_layout(tmp_path):
    with pytest.raises(SiameseDataError, match="No LFW found.*lfw-deepfunneled.zip.*download lfw_deepfunneled"):
        locate_lfw(tmp_path)
    write_zip(tmp_path / "lfw-deepfunneled.zip", "lfw-deepfunneled")
    (tmp_path / "pairs.txt").write_text(PAIRS_TEXT)
    with pytest.raises(SiameseDataError):  # people.txt still missing
        locate_lfw(tmp_path)
    (tmp_path / "people.txt").write_text(PEOPLE_TEXT)
    assert locate_lfw(tmp_path) == (tmp_path / "lfw-deepfunneled.zip", tmp_path / "pairs.txt", tmp_path / "people.txt")


def test_the_download_registry_names_lfw_and_its_citations():
    for name, filename in (("lfw_deepfunneled", "lfw-deepfunneled.zip"), ("lfw_pairs", "pairs.txt"),
                           ("lfw_people", "people.txt")):
        source = REGISTRY[name]
        assert source.url == f"https://umass-vis-lfw.github.io/{filename}" and source.filename == filename
        assert source.sha256 is None  # not checkable here: the shared copy is a 9-fold subset
        assert "Huang, Ramesh, Berg & Learned-Miller" in source.description and "07-49" in source.description
        assert "commercial" in source.description
    assert "NIPS 2012" in REGISTRY["lfw_deepfunneled"].description


# --- the protocol's scoring side -----------------------------------------------------------------------

def test_summarise_folds_standard_error_by_hand():
    def report(fold, accuracy, auc):
        return LFWFoldReport(fold, (), "accuracy", 0.0, accuracy, accuracy, auc, 0.1 * fold, np.zeros(2),
                             np.ones(2), 600)

    summary = summarise_folds([report(1, 0.60, 0.70), report(2, 0.70, 0.80), report(3, 0.80, 0.75)])
    # mean 0.7; deviations -0.1, 0, 0.1; sample variance (0.01 + 0 + 0.01) / 2 = 0.01; s = 0.1
    assert summary["mean_accuracy"] == pytest.approx(0.7)
    assert summary["accuracy_standard_error"] == pytest.approx(0.1 / math.sqrt(3))  # 0.05774
    assert summary["mean_auc"] == pytest.approx(0.75) and summary["mean_eer"] == pytest.approx(0.2)
    assert summary["num_folds"] == 3 and summary["test_folds"] == [1, 2, 3]
    assert math.isnan(summarise_folds([report(1, 0.6, 0.7)])["accuracy_standard_error"])
    with pytest.raises(ValueError, match="once"):
        summarise_folds([report(1, 0.6, 0.7), report(1, 0.6, 0.7)])
    with pytest.raises(ValueError, match="at least one"):
        summarise_folds([])


def test_the_threshold_comes_from_the_training_folds_only():
    labels = {1: [1, 1, 0, 0], 2: [1, 1, 0, 0], 3: [1, 1, 0, 0]}
    # folds 1 and 2 separate at 0.5; fold 3 (the test fold) would want a threshold near 2.5
    similarities = {1: [0.9, 0.8, 0.2, 0.1], 2: [0.7, 0.6, 0.4, 0.3], 3: [3.0, 2.9, 2.1, 0.0]}
    report = fold_report(similarities, labels, test_fold=3)
    assert report.threshold_folds == (1, 2)
    assert report.threshold == pytest.approx(metrics.choose_threshold([0.9, 0.8, 0.2, 0.1, 0.7, 0.6, 0.4, 0.3],
                                                                      [1, 1, 0, 0] * 2))
    assert 0.4 < report.threshold < 0.6
    # at ~0.5 fold 3 calls 3.0, 2.9 and 2.1 "same": 3 of 4 right; its AUC is still perfect
    assert report.accuracy == pytest.approx(0.75) and report.auc == pytest.approx(1.0)
    assert report.threshold_fold_accuracy == pytest.approx(1.0) and report.eer == pytest.approx(0.0)
    assert report.num_pairs == 4 and report.false_accept_rates[0] == 0 and report.true_accept_rates[-1] == 1
    assert fold_report(similarities, labels, 3, threshold_folds=[2]).threshold_folds == (2,)
    assert set(report.to_dict()) >= {"accuracy", "auc", "eer", "threshold", "roc"}
    with pytest.raises(ValueError, match="test fold 3 cannot also choose"):
        fold_report(similarities, labels, 3, threshold_folds=[2, 3])
    with pytest.raises(ValueError, match="fold 4"):
        fold_report(similarities, labels, 3, threshold_folds=[4])


def test_every_kind_of_scorer_gives_the_same_report(tmp_path):
    image_set = load_lfw(write_zip(tmp_path / "lfw.zip", "lfw"), image_size=(16, 16))
    (tmp_path / "pairs.txt").write_text(PAIRS_TEXT)
    pairs = read_lfw_pairs(tmp_path / "pairs.txt")
    pixels = PixelPairScorer()

    def as_function(first, second):
        return pixels.similarity(pixels.features(first), pixels.features(second))

    class ModelLike:  # what a SiameseModel offers
        def similarity_pairs(self, first, second):
            return as_function(first, second)

    reports = [lfw_fold_report(scorer, image_set, pairs, test_fold=2) for scorer in (pixels, as_function, ModelLike())]
    for report in reports[1:]:
        assert report.threshold == pytest.approx(reports[0].threshold)
        assert report.accuracy == reports[0].accuracy and report.auc == pytest.approx(reports[0].auc)
    assert reports[0].threshold_folds == (1,)
    cross = faces.lfw_cross_validation(pixels, image_set, pairs)
    assert [report.test_fold for report in cross] == [1, 2]
    assert cross[1].threshold == pytest.approx(reports[0].threshold)
    with pytest.raises(ValueError, match="a scorer is"):
        lfw_fold_report(object(), image_set, pairs, test_fold=2)
    with pytest.raises(ValueError, match="returned 1 similarities for 2 pairs"):
        lfw_fold_report(lambda first, second: [0.5], image_set, pairs, test_fold=2)
    with pytest.raises(ValueError, match="cannot also choose"):
        lfw_fold_report(pixels, image_set, pairs, test_fold=2, threshold_folds=[1, 2])


def test_the_cross_dataset_report_describes_each_image_once_and_scores_the_drawn_pairs():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 4)
    # each person a pattern of their own, each photo of them that pattern with noise: AUC above 0.5
    images = (rng.random((6, 16, 16, 1))[labels] + 0.8 * rng.random((24, 16, 16, 1))).astype(np.float32) / 1.8
    image_set = datasets.ImageSet(images, labels, [f"person {label}" for label in range(6)],
                                  [f"face{index}.png" for index in range(24)])
    pixels = PixelPairScorer()
    described = []

    class CountingPixels:
        def features(self, batch):
            described.append(len(batch))
            return pixels.features(batch)

        def similarity(self, first, second):
            return pixels.similarity(first, second)

    def as_function(first, second):
        return pixels.similarity(pixels.features(first), pixels.features(second))

    report = faces.cross_dataset_report({"counted": CountingPixels(), "function": as_function}, image_set,
                                        num_pairs=200, seed=3)
    assert described == [24]  # 200 pairs of 24 faces: every face once, in one call
    assert report["counted"]["auc"] == pytest.approx(report["function"]["auc"])
    assert report["counted"]["num_pairs"] == 200
    # the pairs are make_pairs' draw from the labels and the seed
    (first, second), pair_labels = make_pairs(images, labels, 200, seed=3)
    expected = metrics.roc_auc(as_function(first, second), pair_labels)
    assert report["function"]["auc"] == pytest.approx(expected) and 0.5 < expected <= 1

    class WrongRows(CountingPixels):
        def features(self, batch):
            return pixels.features(batch[:-1])

    with pytest.raises(ValueError, match="23 rows for 24 images"):
        faces.cross_dataset_report({"wrong": WrongRows()}, image_set, num_pairs=200)


def test_baseline_scorers_behave():
    rng = np.random.default_rng(0)
    images = rng.random((4, 32, 32, 1)).astype(np.float32)
    for scorer in (PixelPairScorer(), HogPairScorer(), HogPairScorer(metric="cosine")):
        features = scorer.features(images)
        assert len(features) == 4
        same = scorer.similarity(features, features)
        different = scorer.similarity(features, features[::-1])
        assert np.all(same >= different - 1e-9) and np.all(same[:2] > different[:2])
        with pytest.raises(ValueError, match="same"):
            scorer.similarity(features, features[:2])
    brighter = np.clip(images * 0.5 + 0.25, 0, 1)  # pixels: brightness and contrast do not count
    pixels = PixelPairScorer()
    np.testing.assert_allclose(pixels.similarity(pixels.features(images), pixels.features(brighter)), 0, atol=1e-5)
    assert HogPairScorer().features(images).shape == (4, 3 * 3 * 36)
    with pytest.raises(ValueError, match="metric"):
        HogPairScorer(metric="l1")
    with pytest.raises(ValueError, match="at least 16x16"):
        HogPairScorer().features(images[:, :8, :8])


@pytest.fixture(scope="module")
def folds_8_and_9(shared_lfw):
    """The shared LFW's people of folds 8 and 9 (about 2,400 images), 64x64 gray, cropped."""
    pairs = read_lfw_pairs(shared_lfw.pairs)
    return load_lfw(shared_lfw.images, people=pairs.people([8, 9])), pairs


def test_baselines_on_fold_9_of_the_shared_lfw(folds_8_and_9):
    image_set, pairs = folds_8_and_9
    assert image_set.images.shape[1:] == (64, 64, 1) and image_set.skipped == []
    figures = {}
    for name, scorer in (("pixels", PixelPairScorer()), ("hog", HogPairScorer())):
        report = lfw_fold_report(scorer, image_set, pairs, test_fold=9, threshold_folds=[8])
        figures[name] = report
        print(f"LFW fold 9, threshold from fold 8, {name}: accuracy {report.accuracy:.3f}, AUC {report.auc:.3f}, "
              f"EER {report.eer:.3f}, threshold {report.threshold:.4g}")
        assert report.test_fold == 9 and report.threshold_folds == (8,) and report.num_pairs == 600
        assert report.auc > 0.6 and report.accuracy > 0.55
    assert figures["hog"].auc > figures["pixels"].auc  # gradients beat raw pixels on LFW


def test_the_lfw_benchmark_smoke_run_trains_scores_and_saves(shared_lfw, shared_data_dir, tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lfw_verification.py"
    spec = importlib.util.spec_from_file_location("lfw_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    benchmark.main(["--smoke", "--data-dir", str(shared_data_dir), "--reports-dir", str(tmp_path),
                    "--save-model", str(tmp_path / "lfw.keras")])
    report = json.loads((tmp_path / "lfw_verification.json").read_text())
    assert report["test_fold"] == 9 and report["train_folds"] == [7, 8] and report["threshold_folds"] == [7, 8]
    # The fused scorer's threshold: its metric part scores each threshold fold's pairs from a fit without them.
    assert report["threshold_scores"].startswith("the network's own, the descriptor metric's cross-fitted")
    assert report["cross_fit_seconds"] > 0
    # The default chosen on validation folds 7 and 8: two networks, each trained for half the clock.
    assert report["method"] == "fused" and report["network"] == "contrastive+class_proxy"
    # Chosen on folds 7 and 8 on 2026-12-05: two descriptor metrics share the descriptor half, the default
    # one on the faces at 64x64 and the finer one at 128x128 (LFW loaded at 128, the networks' copy resized).
    assert report["fused_weights"] == {"contrastive": 0.25, "class_proxy": 0.25, "descriptor": 0.25,
                                       "descriptor_2": 0.25}
    assert {name: (descriptor["image_size"], descriptor["grid"], descriptor["hog_cell"])
            for name, descriptor in report["descriptors"].items()} == {"descriptor": (64, 8, 8),
                                                                        "descriptor_2": (128, 12, 16)}
    networks = report["networks"]
    assert set(networks) == {"contrastive", "class_proxy"}
    # The report rounds to 4 decimals, so the sum of the rounded parts may differ in the last digit.
    assert report["training_seconds"] == pytest.approx(sum(part["training_seconds"] for part in networks.values()),
                                                        abs=2e-4)
    assert report["recipe"]["minutes"] == 0.5 and networks["contrastive"]["training_seconds"] < 0.5 * 60
    # The fused scorer, each network, the two networks without the metric and the metric, beside the baselines.
    assert set(report["results"]) == {"fused", "contrastive_model", "class_proxy_model", "network_ensemble",
                                      "descriptor_metric", "descriptor_2_metric", "pixels", "hog"}
    for figures in report["results"].values():
        assert 0.0 <= figures["accuracy"] <= 1.0 and 0.0 <= figures["auc"] <= 1.0
        assert figures["num_pairs"] == 600 and figures["threshold_folds"] == [7, 8]
    from siamese_tf.models import load_model

    assert report["model_paths"] == {method: str(tmp_path / f"lfw_{method}.keras")
                                     for method in ("contrastive", "class_proxy")}
    for method, model_path in report["model_paths"].items():  # each network with its own threshold
        thresholds = load_model(model_path).thresholds
        assert thresholds["detection"] == pytest.approx(report["results"][f"{method}_model"]["threshold"], abs=1e-4)
    with pytest.raises(SystemExit, match="--model gives 1 saved network\\(s\\); --network contrastive\\+class_proxy "
                                         "has 2"):
        benchmark.main(["--smoke", "--model", report["model_path"], "--data-dir", str(shared_data_dir),
                        "--reports-dir", str(tmp_path)])
    # The saved ensemble scored again without training (the metric refitted: it is deterministic) gives
    # the same figures, the networks' files in --network's order.
    rescored_dir = tmp_path / "rescored"
    benchmark.main(["--smoke", "--model", report["model_paths"]["contrastive"], report["model_paths"]["class_proxy"],
                    "--data-dir", str(shared_data_dir), "--reports-dir", str(rescored_dir), "--no-cross-dataset"])
    rescored = json.loads((rescored_dir / "lfw_verification.json").read_text())
    assert rescored["model_loaded_from"] == report["model_paths"] and "training_seconds" not in rescored
    for name in ("fused", "contrastive_model", "class_proxy_model", "network_ensemble", "descriptor_metric",
                 "descriptor_2_metric"):
        for figure in ("accuracy", "auc", "threshold"):
            assert rescored["results"][name][figure] == pytest.approx(report["results"][name][figure], abs=2e-4), \
                (name, figure)
    assert report["descriptor_metric_path"] == report["descriptor_metric_paths"]["descriptor"]
    for name, metric_path in report["descriptor_metric_paths"].items():  # each metric saved with its descriptor
        metric = faces.LearnedMetricScorer.load(metric_path)
        assert metric.fitted and metric.num_components == report["descriptor_components"]
        assert metric.metric == report["descriptor_metric"] == "joint_bayesian"  # the fold-8 winner is the default
        assert metric.descriptor.image_size == report["descriptors"][name]["image_size"]
    orl = report["cross_dataset_orl"]
    assert orl["people"] == 30 and 0.0 <= orl["fused"]["auc"] <= 1.0 and orl["pixels"]["auc"] > 0.6


def test_the_lfw_benchmark_descriptors_default_to_the_packages_and_bad_text_is_a_usage_error(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lfw_verification.py"
    spec = importlib.util.spec_from_file_location("lfw_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    parsed = benchmark._descriptors(benchmark._descriptors_text(faces.LFW_FACE_DESCRIPTORS))
    assert tuple(parsed) == faces.LFW_FACE_DESCRIPTORS
    assert faces.LFW_FACE_DESCRIPTORS[1] == faces.FINE_FACE_DESCRIPTOR
    assert benchmark._descriptors("96/10/12") == [faces.FaceDescriptor(grid=10, hog_cell=12, image_size=96)]
    for text, words in (("64/8", "'64/8' is not SIZE/GRID/HOG_CELL"), ("64/8/8,x/8/8", "'x/8/8' is not"),
                        ("8/8/8", "image_size must be")):
        with pytest.raises(SystemExit) as stopped:  # argparse's usage error, before any data is read
            benchmark.main(["--smoke", "--descriptors", text, "--data-dir", "/nowhere"])
        assert stopped.value.code == 2
        error = capsys.readouterr().err
        assert "--descriptors" in error and words in error


def test_the_lfw_benchmark_can_choose_the_threshold_on_people_it_never_trained_on(shared_lfw, shared_data_dir,
                                                                                 tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lfw_verification.py"
    spec = importlib.util.spec_from_file_location("lfw_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    benchmark.main(["--smoke", "--threshold-fold", "8", "--network", "pairs_l1", "--no-baselines",
                    "--descriptor-metric", "wccn", "--no-cross-dataset", "--data-dir", str(shared_data_dir),
                    "--reports-dir", str(tmp_path)])
    report = json.loads((tmp_path / "lfw_verification.json").read_text())
    assert report["train_folds"] == [7, 8] and report["threshold_folds"] == [8]
    assert report["threshold_scores"] == "each scorer's own"  # fold 8's people were never fitted on
    assert report["descriptor_metric"] == "wccn"
    assert report["method"] == "fused" and report["network"] == "pairs_l1"  # fusion takes the seeds' L1 network too
    assert set(report["results"]) == {"fused", "pairs_l1_model", "descriptor_metric", "descriptor_2_metric"}
    assert all(figures["threshold_folds"] == [8] for figures in report["results"].values())
    assert report["train_people"] == 60  # the smoke run's 60 people of fold 7; fold 8's only set the threshold
    with pytest.raises(SystemExit, match="threshold fold 9 must be one of at least two training folds"):
        benchmark.main(["--threshold-fold", "9", "--data-dir", str(shared_data_dir), "--reports-dir", str(tmp_path)])


def test_the_lfw_benchmark_cross_validates_every_fold_with_its_own_training(shared_lfw, shared_data_dir, tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lfw_verification.py"
    spec = importlib.util.spec_from_file_location("lfw_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    benchmark.main(["--smoke", "--all-folds", "--method", "contrastive", "--minutes", "0.05", "--no-cross-dataset",
                    "--data-dir", str(shared_data_dir), "--reports-dir", str(tmp_path),
                    "--save-model", str(tmp_path / "cv.keras")])
    report = json.loads((tmp_path / "lfw_verification_all_folds.json").read_text())
    assert report["complete"] and report["test_folds"] == [8, 9]  # a smoke run tests the last two folds
    tested = [fold["test_fold"] for fold in report["folds"]]
    assert tested == [8, 9]
    for fold in report["folds"]:  # each fold trained and thresholded without its own people
        assert fold["test_fold"] not in fold["train_folds"] and fold["test_fold"] not in fold["threshold_folds"]
        assert Path(fold["model_path"]).name == f"cv_fold{fold['test_fold']}.keras"
    assert set(report["summary"]) == {"contrastive_model", "pixels", "hog"}
    for name, summary in report["summary"].items():
        accuracies = [fold["results"][name]["accuracy"] for fold in report["folds"]]
        assert summary["accuracies"] == accuracies
        assert summary["mean_accuracy"] == pytest.approx(np.mean(accuracies), abs=1e-4)
        # LFW's tables: the sample standard deviation over sqrt(k)
        assert summary["accuracy_standard_error"] == pytest.approx(np.std(accuracies, ddof=1) / np.sqrt(2), abs=1e-4)
    with pytest.raises(SystemExit, match="--all-folds chooses the folds itself: drop --test-fold"):
        benchmark.main(["--all-folds", "--test-fold", "9", "--data-dir", str(shared_data_dir)])


@pytest.mark.parametrize("method, head", [("pairs_l1", "L1SimilarityHead"), ("class_proxy", "DistanceHead")])
def test_the_lfw_benchmark_trains_the_other_recipes_side_by_side(shared_lfw, shared_data_dir, tmp_path,
                                                                      method, head):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lfw_verification.py"
    spec = importlib.util.spec_from_file_location("lfw_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    benchmark.main(["--smoke", "--method", method, "--minutes", "0.05", "--no-baselines", "--no-cross-dataset",
                    "--data-dir", str(shared_data_dir), "--reports-dir", str(tmp_path),
                    "--save-model", str(tmp_path / "pairs.keras")])
    report = json.loads((tmp_path / "lfw_verification.json").read_text())
    assert report["method"] == method and report["network"] == method and set(report["results"]) == {f"{method}_model"}
    assert 0.0 <= report["results"][f"{method}_model"]["auc"] <= 1.0 and report["epochs"] >= 1
    from siamese_tf.models import load_model

    assert type(load_model(tmp_path / "pairs.keras").head).__name__ == head


def test_an_unknown_pair_method_is_named():
    from siamese_tf.studies import faces

    with pytest.raises(ValueError, match="method must be one of .*'triplets'"):
        faces.train_pair_model(None, "triplets")


def test_load_lfw_folds_loads_the_training_people_and_the_scored_folds(shared_data_dir):
    from siamese_tf.studies import faces

    lfw = faces.load_lfw_folds([1], [9], image_size=(24, 24), max_train_people=20, data_dir=shared_data_dir)
    fold_1 = sorted(name for name, _ in lfw.people[0])
    assert lfw.train.class_names == fold_1[:20]  # the first 20 by name, nobody else
    assert set(lfw.images.class_names) == set(fold_1[:20]) | lfw.pairs.people([9])
    (first, second), labels = faces.fold_pair_images(lfw.images, lfw.pairs, 9)
    assert first.shape == second.shape == (600, 24, 24, 1)
    np.testing.assert_array_equal(labels, lfw.pairs.labels(9))  # 1 = same, in the file's order
    first_indices, second_indices, _ = faces.fold_pair_indices(lfw.images, lfw.pairs, 9)
    np.testing.assert_array_equal(first, lfw.images.images[first_indices])
    np.testing.assert_array_equal(second, lfw.images.images[second_indices])
    adrian = lfw.people_set(["Adrian_McPherson"])  # fold 9's first pair: his photos 1 and 2
    assert adrian.class_names == ["Adrian_McPherson"] and len(adrian) >= 2
    with pytest.raises(SiameseDataError, match=r"1 of the people asked for were not loaded, e.g. \['Nobody_Here'\]"):
        lfw.people_set(["Adrian_McPherson", "Nobody_Here"])
    whole = faces.load_lfw_folds([], [9], image_size=(24, 24), whole_folds=True, data_dir=shared_data_dir)
    assert whole.images.num_classes == len(whole.people[8]) > len(whole.pairs.people([9]))
    assert whole.train.num_classes == 0 and whole.files.pairs.name == "pairs_folds1-9.txt"


@pytest.mark.parametrize("train_folds, scored_folds, message", [
    ([1, 9], [9], r"fold\(s\) \[9\] cannot be both trained on and scored"),
    ([1], [12], "fold 12 is not in .*pairs_folds1-9.txt"),
])
def test_load_lfw_folds_names_bad_folds(shared_data_dir, train_folds, scored_folds, message):
    from siamese_tf.studies import faces

    with pytest.raises(ValueError, match=message):
        faces.load_lfw_folds(train_folds, scored_folds, data_dir=shared_data_dir)
