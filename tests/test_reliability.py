"""Probes of a hostile but realistic user with tiny data: never mislead, never lose work.

Each test here failed before the reliability pass (corrupt zip members, damaged or foreign
checkpoints, model files Keras cannot read, train -> verify, output paths checked late, file
permissions, temporary files, clear messages, image-size limits, offline downloads).
"""

import json
import os
import stat
import struct
import uuid
import zipfile
import zlib

import cv2
import numpy as np
import pytest

from siamese_tf.cli import main
from siamese_tf.errors import SiameseDataError

ORL_SIZE = (112, 92)


@pytest.fixture(scope="module")
def orl_people(shared_data_dir):
    """Eight ORL people, 10 images each, as 8-bit gray arrays."""
    from siamese_tf.datasets import load_identity_folders

    path = shared_data_dir / "faces" / "orl_faces_s1-s30.zip"
    if not path.exists():
        pytest.skip(f"ORL faces not found at {path}")
    faces = load_identity_folders(path, image_size=ORL_SIZE, channels=1, max_classes=8)
    return [(name, [(faces.images[index, ..., 0] * 255).astype(np.uint8)
                    for index in np.flatnonzero(faces.labels == label)])
            for label, name in enumerate(faces.class_names)]


def write_people(folder, people, count=None):
    """One subfolder per person with PNG files; returns the folder."""
    for name, images in people[:count]:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for number, image in enumerate(images):
            cv2.imwrite(str(folder / name / f"{number}.png"), image)
    return folder


def zip_folder(folder, archive):
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(folder).as_posix())
    return archive


def corrupt_member(archive, member, where="header"):
    """Damage ``member``'s compressed bytes, leaving the zip's directory intact.

    ``"header"`` breaks the first deflate block header (reading raises ``zlib.error``), ``"middle"``
    overwrites bytes in the middle (usually a CRC mismatch, ``zipfile.BadZipFile``).
    """
    with zipfile.ZipFile(archive) as bundle:
        info = bundle.getinfo(member)
    data = bytearray(archive.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    if where == "header":
        data[start] = 0xFF  # final block of the reserved type 3: "invalid block type"
        expected = zlib.error
    else:
        middle = start + info.compress_size // 2
        data[middle:middle + 16] = b"\xff" * 16
        expected = (zlib.error, zipfile.BadZipFile)
    archive.write_bytes(bytes(data))
    with zipfile.ZipFile(archive) as bundle, pytest.raises(expected):
        bundle.read(member)  # the probe really is corrupt


def train_arguments(data, model, *extra, epochs="1"):
    return ["train", "--data", str(data), "--model", str(model), "--image-size", "32x28", "--epochs", epochs,
            "--pairs-per-epoch", "64", "--validation-fraction", "0.4", *extra]


# --- defect 1: a corrupt member of a zip ---------------------------------------------------------

@pytest.mark.parametrize("where", ["header", "middle"])
def test_a_corrupt_zip_member_is_skipped_with_a_warning_naming_it(orl_people, tmp_path, where):
    from siamese_tf.datasets import load_identity_folders

    archive = zip_folder(write_people(tmp_path / "people", orl_people, 3), tmp_path / "people.zip")
    member = f"{orl_people[1][0]}/4.png"
    corrupt_member(archive, member, where)
    with pytest.warns(UserWarning, match=member.replace("/", ".")):
        faces = load_identity_folders(archive, image_size=(32, 28))
    assert len(faces) == 29
    assert len(faces.skipped) == 1 and member.split("/")[-1] in faces.skipped[0][0]


def test_train_on_a_zip_with_a_corrupt_member_still_trains(orl_people, tmp_path, capsys):
    archive = zip_folder(write_people(tmp_path / "people", orl_people, 6), tmp_path / "people.zip")
    corrupt_member(archive, f"{orl_people[0][0]}/2.png")
    with pytest.warns(UserWarning, match="skipped 1 file"):
        assert main(train_arguments(archive, tmp_path / "people.keras")) == 0
    assert (tmp_path / "people.keras").exists()


def test_lake_runs_with_a_corrupt_member_fail_naming_it(shared_data_dir, tmp_path):
    from siamese_tf.studies.omniglot import read_lake_runs

    source = shared_data_dir / "omniglot" / "lake_runs_format_example.zip"
    if not source.exists():
        pytest.skip(f"{source} not found")
    archive = tmp_path / "runs.zip"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            copy.writestr(info.filename, original.read(info.filename))
        member = next(name for name in original.namelist() if name.endswith(".png"))
    corrupt_member(archive, member)
    with pytest.raises(SiameseDataError, match=member.split("/")[-1]):
        read_lake_runs(archive)


def test_signatures_with_a_corrupt_member_skip_it_with_a_warning(shared_data_dir, tmp_path):
    from siamese_tf.studies.signatures import load_signatures

    folder = shared_data_dir / "signatures"
    archives = sorted(folder.glob("*.zip"))
    if not archives:
        pytest.skip(f"no signature archive under {folder}")
    archive = tmp_path / "signatures.zip"
    with zipfile.ZipFile(archives[0]) as original, zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as copy:
        names = [name for name in original.namelist() if name.lower().endswith(".png")]
        writers = sorted({name.split("/")[-2] for name in names if not name.split("/")[-2].endswith("_forg")})[:2]
        kept = [name for name in names if name.split("/")[-2].removesuffix("_forg") in writers]
        for name in kept:
            copy.writestr(name, original.read(name))
    member = kept[1]
    corrupt_member(archive, member)
    with pytest.warns(UserWarning, match=member.split("/")[-1]):
        signatures = load_signatures(archive, image_size=(40, 60))
    assert len(signatures) == len(kept) - 1


# --- defect 2: model files Keras cannot read ------------------------------------------------------

def _tiny_model():
    from siamese_tf.models import build_siamese_model

    return build_siamese_model("small_cnn", "euclidean", (16, 16, 1), embedding_dim=8, filters=(4, 4, 4, 4))


def test_a_model_file_naming_an_unknown_class_is_a_value_error_naming_file_and_class(tmp_path):
    from siamese_tf.models import load_model, save_model

    path = save_model(_tiny_model(), tmp_path / "model.keras")
    tampered = tmp_path / "tampered.keras"
    with zipfile.ZipFile(path) as original, zipfile.ZipFile(tampered, "w") as copy:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                config["class_name"] = "NoSuchModelClass"
                config["registered_name"] = "siamese_tf>NoSuchModelClass"
                data = json.dumps(config).encode()
            copy.writestr(info, data)
    with pytest.raises(ValueError, match=r"tampered\.keras.*NoSuchModelClass"):
        load_model(tampered)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated"], ids=["empty", "truncated"])
def test_a_damaged_model_file_says_damaged_not_missing(tmp_path, content):
    from siamese_tf.models import load_model

    path = tmp_path / "damaged.keras"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"damaged\.keras") as raised:
        load_model(path)
    assert "not found" not in str(raised.value).lower()


# --- defect 3: train, then verify -----------------------------------------------------------------

def test_train_stores_both_thresholds_so_verify_needs_no_flags(orl_people, tmp_path, capsys):
    from siamese_tf.models import load_model

    data = write_people(tmp_path / "people", orl_people, 6)
    model_path = tmp_path / "people.keras"
    assert main(train_arguments(data, model_path)) == 0
    thresholds = load_model(model_path).thresholds
    assert {"detection", "verification"} <= set(thresholds)
    assert 0.0 <= thresholds["verification"] <= 1.0
    references = tmp_path / "references"
    references.mkdir()
    name, images = orl_people[7]  # a person the model never saw
    for number, image in enumerate(images[1:6]):
        cv2.imwrite(str(references / f"{number}.png"), image)
    cv2.imwrite(str(tmp_path / "query.png"), images[0])
    capsys.readouterr()
    code = main(["verify", "--model", str(model_path), "--image", str(tmp_path / "query.png"),
                 "--references", str(references)])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    result = json.loads(captured.out[captured.out.index("{"):])
    assert code == (0 if result["verified"] else 1)


# --- defect 4: output paths are checked before training -------------------------------------------

def test_a_bad_model_path_is_refused_before_any_training(orl_people, tmp_path, capsys):
    data = write_people(tmp_path / "people", orl_people, 6)
    code = main(train_arguments(data, tmp_path / "people.h5", epochs="50"))
    error = capsys.readouterr()
    assert code == 2
    assert "people.h5" in error.err and ".keras" in error.err
    assert "Epoch" not in error.out + error.err
    assert not (tmp_path / "people_checkpoints").exists()


# --- defects 5 and 6: checkpoints that know their run ---------------------------------------------

@pytest.fixture(scope="module")
def interrupted_template(orl_people, tmp_path_factory):
    """Train 2 of 3 epochs once and keep the backup, as after a crash; tests work on copies."""
    from siamese_tf import training

    folder = tmp_path_factory.mktemp("interrupted")
    data = write_people(folder / "people", orl_people, 6)
    original = training.RunBackup.on_train_end
    try:  # keep the backup as a crash would
        training.RunBackup.on_train_end = lambda self, logs=None: None
        assert main(train_arguments(data, folder / "people.keras", epochs="2")) == 0
    finally:
        training.RunBackup.on_train_end = original
    assert (folder / "people_checkpoints" / "backup" / "latest.weights.h5").exists()
    return folder


def _interrupted_run(interrupted_template, tmp_path):
    """A private copy of the interrupted run: (data folder, model path, backup folder)."""
    import shutil

    for name in ("people", "people_checkpoints"):
        shutil.copytree(interrupted_template / name, tmp_path / name)
    return tmp_path / "people", tmp_path / "people.keras", tmp_path / "people_checkpoints" / "backup"


def test_a_resumed_run_says_from_which_epoch(interrupted_template, tmp_path, capsys):
    data, model_path, _ = _interrupted_run(interrupted_template, tmp_path)
    capsys.readouterr()
    assert main(train_arguments(data, model_path, epochs="3")) == 0
    assert "resuming from epoch 2" in capsys.readouterr().out


def test_a_checkpoint_of_another_run_is_refused_naming_what_differs(interrupted_template, tmp_path, capsys):
    data, model_path, backup = _interrupted_run(interrupted_template, tmp_path)
    capsys.readouterr()
    other = train_arguments(data, model_path, epochs="3")
    other[other.index("--image-size") + 1] = "36x32"
    assert main(other) == 2
    error = capsys.readouterr().err
    assert "another run" in error and "input_shape" in error and "--fresh" in error
    assert (backup / "latest.weights.h5").exists()  # nothing lost


def test_fresh_discards_a_foreign_checkpoint_and_starts_at_epoch_one(interrupted_template, tmp_path, capsys):
    data, model_path, _ = _interrupted_run(interrupted_template, tmp_path)
    capsys.readouterr()
    assert main(train_arguments(data, model_path, "--head", "euclidean", "--fresh", epochs="1")) == 0
    assert "resuming" not in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_checkpoint_falls_back_to_the_previous_one(interrupted_template, tmp_path, capsys, damage):
    data, model_path, backup = _interrupted_run(interrupted_template, tmp_path)
    latest = backup / "latest.weights.h5"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 3] if damage == "truncated" else b"")
    capsys.readouterr()
    assert main(train_arguments(data, model_path, epochs="3")) == 0
    out = capsys.readouterr().out
    assert "damaged" in out and "latest.weights.h5" in out and "resuming from epoch 1" in out


def test_a_damaged_checkpoint_without_a_good_one_names_the_file_and_what_to_do(interrupted_template, tmp_path,
                                                                               capsys):
    data, model_path, backup = _interrupted_run(interrupted_template, tmp_path)
    for path in backup.iterdir():
        if path.name.endswith(".bkp"):
            path.unlink()
    (backup / "latest.weights.h5").write_bytes(b"not hdf5")
    capsys.readouterr()
    assert main(train_arguments(data, model_path, epochs="3")) == 2
    error = capsys.readouterr().err
    assert "latest.weights.h5" in error and "--fresh" in error and "Traceback" not in error


def test_garbage_training_metadata_is_reported_with_its_file_name(interrupted_template, tmp_path, capsys):
    data, model_path, backup = _interrupted_run(interrupted_template, tmp_path)
    for path in backup.iterdir():
        if path.name.endswith(".bkp"):
            path.unlink()
    (backup / "training_metadata.json").write_text("{garbage")
    capsys.readouterr()
    assert main(train_arguments(data, model_path, epochs="3")) == 2
    assert "training_metadata.json" in capsys.readouterr().err


# --- weak spots -----------------------------------------------------------------------------------

def test_capture_names_are_random_not_uuid1(tmp_path):
    from siamese_tf.captures import save_image_atomic

    path = save_image_atomic(np.zeros((8, 8, 3), np.uint8), tmp_path)
    assert uuid.UUID(path.stem).version == 4


def test_everything_that_holds_a_face_is_private(orl_people, tmp_path):
    from siamese_tf.plots import plot_pairs

    data = write_people(tmp_path / "people", orl_people, 6)
    model_path = tmp_path / "people.keras"
    assert main(train_arguments(data, model_path)) == 0
    images = np.stack([orl_people[0][1][0], orl_people[1][1][0]])[..., None] / 255.0
    plot_pairs(images[:1], images[1:], np.array([0]), path=tmp_path / "pairs.png")
    for path in [model_path, tmp_path / "people_checkpoints" / "best.keras", tmp_path / "pairs.png"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_save_model_leaves_no_stray_temporary_file_and_cleans_old_ones(tmp_path):
    from siamese_tf.models import load_model, save_model

    stray = tmp_path / ".model.keras.partial-1234.keras"
    stray.write_bytes(b"half written")
    os.utime(stray, (0, 0))  # left behind by a save killed long ago
    fresh = tmp_path / ".other.keras.partial-99.keras"
    fresh.write_bytes(b"another process is writing this one")
    path = save_model(_tiny_model(), tmp_path / "model.keras")
    assert sorted(file.name for file in tmp_path.iterdir()) == [fresh.name, "model.keras"]
    load_model(path)


def test_one_validation_identity_is_explained(orl_people, tmp_path, capsys):
    data = write_people(tmp_path / "people", orl_people, 3)
    code = main(train_arguments(data, tmp_path / "people.keras", "--validation-fraction", "0.2"))
    error = capsys.readouterr().err
    assert code == 2
    assert "validation" in error and "identities" in error


def test_a_truncated_zip_says_truncated(orl_people, tmp_path):
    from siamese_tf.datasets import load_identity_folders

    archive = zip_folder(write_people(tmp_path / "people", orl_people, 2), tmp_path / "people.zip")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(SiameseDataError, match="truncated"):
        load_identity_folders(archive)


def test_capture_from_an_empty_folder_says_there_was_nothing_to_read(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["capture", "--source", str(tmp_path / "empty"), "--output", str(tmp_path / "out"), "--count", "3"])
    assert code == 2
    assert "no image" in capsys.readouterr().err.lower()


def test_ctrl_c_during_capture_says_what_was_saved_and_exits_130(tmp_path, capsys, monkeypatch):
    from siamese_tf import captures

    def interrupted_frames(self):
        yield np.zeros((64, 64, 3), np.uint8)
        yield np.zeros((64, 64, 3), np.uint8)
        raise KeyboardInterrupt

    monkeypatch.setattr(captures.FrameSource, "__iter__", interrupted_frames)
    source = tmp_path / "frames"
    source.mkdir()
    cv2.imwrite(str(source / "0.png"), np.zeros((64, 64, 3), np.uint8))
    code = main(["capture", "--source", str(source), "--output", str(tmp_path / "out"), "--count", "5",
                 "--crop", "center", "--size", "32x32"])
    captured = capsys.readouterr()
    assert code == 130
    assert "saved 2" in captured.out + captured.err and "Traceback" not in captured.err
    assert len(list((tmp_path / "out").iterdir())) == 2


@pytest.mark.parametrize("shape", [(3, 3), (10, 4000)])
def test_verify_refuses_images_far_from_the_model_aspect_ratio(orl_people, tmp_path, capsys, shape):
    from siamese_tf.models import save_model

    model = _tiny_model()
    model.thresholds.update({"detection": -1.0, "verification": 0.5})
    model_path = save_model(model, tmp_path / "model.keras")
    references = write_people(tmp_path / "references", orl_people, 1) / orl_people[0][0]
    cv2.imwrite(str(tmp_path / "odd.png"), np.full(shape, 255, np.uint8))
    code = main(["verify", "--model", str(model_path), "--image", str(tmp_path / "odd.png"),
                 "--references", str(references)])
    assert code == 2
    assert "odd.png" in capsys.readouterr().err


def test_a_huge_image_is_refused_before_it_is_decoded(tmp_path):
    from siamese_tf.datasets import read_image

    path = tmp_path / "huge.png"
    cv2.imwrite(str(path), np.zeros((8000, 8000), np.uint8))
    with pytest.raises(SiameseDataError, match=r"huge\.png.*pixels"):
        read_image(path, image_size=(64, 64))


def test_download_offline_is_one_clear_line(tmp_path, capsys, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    code = main(["download", "omniglot_background_small1", "--data-dir", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == 2
    assert "network" in error.lower() and "Traceback" not in error
    assert not list(tmp_path.iterdir())


def test_download_of_an_unverified_entry_needs_the_flag(tmp_path, capsys, monkeypatch):
    from siamese_tf import downloads

    origin = tmp_path / "origin.zip"
    origin.write_bytes(b"data")
    monkeypatch.setitem(downloads.REGISTRY, "unpinned",
                        downloads.DataSource(origin.as_uri(), None, "unpinned.zip", "no hash"))
    assert main(["download", "unpinned", "--data-dir", str(tmp_path / "data")]) == 2
    assert "--allow-unverified" in capsys.readouterr().err
    with pytest.warns(UserWarning):
        assert main(["download", "unpinned", "--data-dir", str(tmp_path / "data"), "--allow-unverified"]) == 0
    assert (tmp_path / "data" / "unpinned.zip").read_bytes() == b"data"

