"""The encrypted gallery: nothing readable at rest, wrong keys and damaged files named, forget leaves nothing."""

import json
import os
import stat

import numpy as np
import pytest

from siamese_tf.errors import SiameseDataError
from siamese_tf.galleries import GALLERY_KEY_VARIABLE, Gallery, GalleryKeyError, generate_key

IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG")


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch):
    monkeypatch.delenv(GALLERY_KEY_VARIABLE, raising=False)


def faces(count, seed=0, shape=(128, 128, 3)):
    return np.random.default_rng(seed).integers(0, 256, size=(count, *shape), dtype=np.uint8)


def every_file(root):
    return [path for path in root.rglob("*") if path.is_file()]


def test_images_round_trip_and_nothing_is_stored_in_plain_form(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    images = faces(3)
    assert gallery.add_images("Ada Lovelace", images) == 3
    np.testing.assert_array_equal(gallery.load_images("Ada Lovelace"), images)
    for path in every_file(tmp_path / "gallery"):
        data = path.read_bytes()
        assert not data.startswith(IMAGE_MAGIC), f"{path} is a plain image"
        assert b"Ada Lovelace" not in data, f"{path} holds the name in plain text"


def test_images_keep_their_enrolment_order_across_two_enrolments(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    first, second = faces(2, seed=1), faces(2, seed=2)
    gallery.add_images("ada", first)
    gallery.add_images("ada", second)
    np.testing.assert_array_equal(gallery.load_images("ada"), np.concatenate([first, second]))
    assert [record.num_images for record in gallery.people()] == [4]


def test_folders_are_0700_and_files_0600(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    gallery.add_images("ada", faces(1))
    gallery.save_embeddings("ada", np.ones((1, 4)), "model-a")
    gallery.log_event("enrol", gallery.person_id("ada"), images=1)
    for path in (tmp_path / "gallery").rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} has mode {oct(mode)}"


def test_a_wrong_key_is_named_and_changes_nothing(tmp_path):
    Gallery(tmp_path / "gallery").add_images("ada", faces(1))
    before = {path: path.read_bytes() for path in every_file(tmp_path / "gallery")}
    with pytest.raises(GalleryKeyError, match=r"wrong key for the gallery .*the key argument"):
        Gallery(tmp_path / "gallery", key=generate_key())
    assert {path: path.read_bytes() for path in every_file(tmp_path / "gallery")} == before


def test_a_key_from_the_environment_opens_the_gallery_and_no_key_file_is_written(tmp_path, monkeypatch):
    key = generate_key()
    monkeypatch.setenv(GALLERY_KEY_VARIABLE, key)
    Gallery(tmp_path / "gallery").add_images("ada", faces(1))
    assert not (tmp_path / "gallery" / "gallery.key").exists()
    monkeypatch.delenv(GALLERY_KEY_VARIABLE)
    with pytest.raises(GalleryKeyError, match="its key is missing"):
        Gallery(tmp_path / "gallery")
    assert Gallery(tmp_path / "gallery", key=key).names() == ["ada"]


def test_a_key_that_is_not_a_key_is_refused(tmp_path):
    with pytest.raises(GalleryKeyError, match="not a valid key"):
        Gallery(tmp_path / "gallery", key="hunter2")


def test_a_damaged_image_is_skipped_and_named_and_the_rest_is_intact(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    images = faces(3)
    gallery.add_images("ada", images)
    damaged = sorted((tmp_path / "gallery" / "people").rglob("images/*.bin"))[1]
    data = bytearray(damaged.read_bytes())
    data[40] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="damaged"):
        loaded = gallery.load_images("ada")
    np.testing.assert_array_equal(loaded, images[[0, 2]])
    assert gallery.skipped == [str(damaged)]


def test_a_damaged_person_record_is_skipped_with_a_warning(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    gallery.add_images("ada", faces(1))
    gallery.add_images("grace", faces(1, seed=1))
    record = tmp_path / "gallery" / "people" / gallery.person_id("ada") / "person.bin"
    record.write_bytes(record.read_bytes()[:-5])
    with pytest.warns(UserWarning, match="person.bin is damaged"):
        assert Gallery(tmp_path / "gallery").names() == ["grace"]


def test_forget_removes_every_file_of_that_person_only(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    gallery.add_images("ada", faces(2))
    gallery.add_images("grace", faces(2, seed=1))
    gallery.save_embeddings("ada", np.ones((2, 4)), "model-a")
    ada_folder = tmp_path / "gallery" / "people" / gallery.person_id("ada")
    ada_files = every_file(ada_folder)
    removed = gallery.forget("ada")
    assert removed["images"] == 2 and removed["embeddings"] == 1 and removed["files"] == len(ada_files) == 4
    assert not ada_folder.exists() and not any(path.exists() for path in ada_files)
    assert gallery.names() == ["grace"]
    assert not list((tmp_path / "gallery" / "people").glob(".*")), "a hidden leftover of the forget"


def test_a_forget_by_another_process_is_seen_at_once(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    gallery.add_images("ada", faces(1))
    assert gallery.names() == ["ada"]
    Gallery(tmp_path / "gallery").forget("ada")
    assert gallery.names() == [] and gallery.person_id("ada") is None


def test_forget_of_someone_not_enrolled_names_who_is(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    gallery.add_images("grace", faces(1))
    with pytest.raises(KeyError, match=r"'ada' is not enrolled .*grace"):
        gallery.forget("ada")


def test_embeddings_are_returned_only_for_the_model_that_made_them(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    gallery.add_images("ada", faces(2))
    gallery.save_embeddings("ada", np.arange(8).reshape(2, 4), "model-a")
    np.testing.assert_array_equal(gallery.load_embeddings("ada", "model-a"), np.arange(8).reshape(2, 4))
    assert gallery.load_embeddings("ada", "model-b") is None


def test_the_event_log_is_appended_and_holds_no_name_or_image(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    gallery.add_images("Ada Lovelace", faces(1))
    person = gallery.person_id("Ada Lovelace")
    gallery.log_event("enrol", person, images=1)
    gallery.log_event("verify", person, verified=True, fraction=0.8)
    text = (tmp_path / "gallery" / "events.log").read_text()
    assert "Ada Lovelace" not in text
    assert [event["event"] for event in gallery.events()] == ["enrol", "verify"]
    assert json.loads(text.splitlines()[1])["person_id"] == person
    with pytest.raises(ValueError, match="only numbers and booleans"):
        gallery.log_event("verify", person, name="Ada Lovelace")
    with pytest.raises(ValueError, match="event must be one of"):
        gallery.log_event("delete-everything")


def test_a_failed_enrolment_leaves_no_half_enrolled_person(tmp_path, monkeypatch):
    gallery = Gallery(tmp_path / "gallery")
    calls = []

    def failing_write(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(path, data)

    original = gallery._write
    monkeypatch.setattr(gallery, "_write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        gallery.add_images("ada", faces(3))
    monkeypatch.undo()
    assert gallery.names() == []
    assert os.listdir(tmp_path / "gallery" / "people") == []


@pytest.mark.parametrize("name, message", [("", "non-empty"), ("   ", "non-empty"), (None, "non-empty"),
                                           ("x" * 101, "at most 100")])
def test_bad_names_are_refused(tmp_path, name, message):
    with pytest.raises(ValueError, match=message):
        Gallery(tmp_path / "gallery").add_images(name, faces(1))


def test_a_bad_image_batch_is_refused_before_anything_is_written(tmp_path):
    gallery = Gallery(tmp_path / "gallery")
    with pytest.raises(ValueError, match="must have shape"):
        gallery.add_images("ada", np.zeros((2, 8, 8, 5), np.uint8))
    assert gallery.names() == []


def test_a_file_where_the_gallery_folder_should_be_is_named(tmp_path):
    (tmp_path / "gallery").write_text("")
    with pytest.raises(SiameseDataError, match="is a file"):
        Gallery(tmp_path / "gallery")
