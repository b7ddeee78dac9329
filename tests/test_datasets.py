"""Tests for siamese_tf.datasets: image decoding, identity/role folders, zips, identity splits."""

import warnings
import zipfile

import cv2
import numpy as np
import pytest

from siamese_tf import datasets
from siamese_tf.datasets import (
    ImageSet,
    load_identity_folders,
    load_role_folders,
    make_image_dataset,
    natural_sort_key,
    read_image,
    split_by_identity,
)
from siamese_tf.errors import SiameseDataError


def write_gray(path, value, size=(6, 5)):
    """A constant gray PNG; the value lets a test tell which file an image came from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full(size, value, dtype=np.uint8))
    return path


def make_identity_tree(root, class_names=("s10", "s2", "s1"), images_per_class=3):
    """Folder per class; pixel value = 10 * class number + image number (s2, image 1 -> 21)."""
    for name in class_names:
        number = int(name[1:])
        for image_number in range(images_per_class):
            write_gray(root / name / f"{image_number}.png", 10 * number + image_number)
    return root


def zip_folder(folder, zip_path, inner_prefix=""):
    with zipfile.ZipFile(zip_path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, inner_prefix + file.relative_to(folder).as_posix())
    return zip_path


# ---------------------------------------------------------------- read_image


def test_read_image_converts_color_to_gray_and_rgb(tmp_path):
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    image[..., 2] = 255  # pure red in OpenCV's BGR order
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), image)

    gray = read_image(path, channels=1)
    rgb = read_image(path, channels=3)

    assert gray.shape == (2, 2, 1) and gray.dtype == np.float32
    # ITU-R BT.601 luma of red: 0.299 * 255 = 76.2 -> 76 in OpenCV's 8-bit conversion.
    np.testing.assert_allclose(gray, 76 / 255, atol=1 / 255)
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_allclose(rgb[0, 0], [1.0, 0.0, 0.0])


def test_read_image_gray_file_to_rgb_repeats_the_channel(tmp_path):
    path = write_gray(tmp_path / "gray.png", 51, size=(3, 4))
    rgb = read_image(path, channels=3)
    assert rgb.shape == (3, 4, 3)
    np.testing.assert_allclose(rgb, 0.2)


def test_read_image_resizes_with_area_averaging(tmp_path):
    # Four 2x2 blocks; INTER_AREA halving gives exactly each block's mean.
    image = np.array([[0, 100, 200, 200], [100, 0, 200, 200], [40, 40, 80, 0], [40, 40, 0, 80]], dtype=np.uint8)
    path = tmp_path / "blocks.png"
    cv2.imwrite(str(path), image)
    resized = read_image(path, image_size=(2, 2))
    np.testing.assert_allclose(resized[..., 0], np.array([[50, 200], [40, 40]]) / 255, atol=1e-6)


def test_read_image_takes_bytes_and_16_bit_pgm(tmp_path):
    image = np.array([[0, 65535], [32768, 65535]], dtype=np.uint16)
    ok, encoded = cv2.imencode(".pgm", image)
    assert ok
    decoded = read_image(encoded.tobytes())
    np.testing.assert_allclose(decoded[..., 0], image / 65535, atol=1e-6)


def test_read_image_composites_transparent_pixels_onto_white(tmp_path):
    image = np.zeros((1, 2, 4), dtype=np.uint8)
    image[0, 1, 3] = 255  # left pixel: black, fully transparent; right pixel: black, opaque
    path = tmp_path / "alpha.png"
    cv2.imwrite(str(path), image)
    np.testing.assert_allclose(read_image(path)[0, :, 0], [1.0, 0.0])


def test_read_image_turns_jpegs_upright_by_exif_orientation(tmp_path):
    pil_image = pytest.importorskip("PIL.Image")
    landscape = np.zeros((20, 40), dtype=np.uint8)
    landscape[:, :10] = 255  # bright strip on the left
    exif = pil_image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    pil_image.fromarray(landscape).save(path, exif=exif)
    upright = read_image(path)[..., 0]
    assert upright.shape == (40, 20)
    # Rotating clockwise puts the left strip at the top.
    assert upright[:8].mean() > 0.9 and upright[12:].mean() < 0.1


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(SiameseDataError, match="empty.png"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(SiameseDataError, match="text.png"):
        read_image(tmp_path / "text.png")
    with pytest.raises(SiameseDataError, match="upload-7"):
        read_image(b"garbage bytes", name="upload-7")
    with pytest.raises(ValueError, match="channels"):
        read_image(b"x", channels=2)
    with pytest.raises(ValueError, match="image_size"):
        read_image(b"x", image_size=(0, 5))


def test_natural_sort_orders_numbers_by_value():
    names = ["s10", "s2", "s1", "001_forg", "001", "a10", "a9"]
    assert sorted(names, key=natural_sort_key) == ["001", "001_forg", "a9", "a10", "s1", "s2", "s10"]


# ---------------------------------------------------------------- identity folders


def test_identity_folders_natural_order_labels_and_pixels(tmp_path):
    root = make_identity_tree(tmp_path / "people")
    image_set = load_identity_folders(root, image_size=None)

    assert image_set.class_names == ["s1", "s2", "s10"]
    assert image_set.images.shape == (9, 6, 5, 1)
    np.testing.assert_array_equal(image_set.labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    expected_values = [10, 11, 12, 20, 21, 22, 100, 101, 102]
    np.testing.assert_allclose(image_set.images[:, 0, 0, 0], np.array(expected_values) / 255, atol=1e-6)
    assert image_set.paths[3].endswith("s2/0.png")
    assert image_set.skipped == []
    assert image_set.counts() == {"s1": 3, "s2": 3, "s10": 3}
    assert len(image_set) == 9 and image_set.num_classes == 3


def test_identity_folders_skip_corrupt_files_with_a_warning(tmp_path):
    root = make_identity_tree(tmp_path / "people")
    (root / "s2" / "broken.png").write_bytes(b"\x89PNG truncated")
    (root / "s2" / "notes.txt").write_text("hello")

    with pytest.warns(UserWarning, match="skipped 2 file"):
        image_set = load_identity_folders(root, image_size=(4, 4))

    assert len(image_set) == 9
    skipped_names = sorted(path.split("/")[-1] for path, _ in image_set.skipped)
    assert skipped_names == ["broken.png", "notes.txt"]
    assert all("decode" in reason for _, reason in image_set.skipped)


def test_identity_folders_record_readme_beside_folders_without_warning(tmp_path):
    root = make_identity_tree(tmp_path / "people")
    (root / "README").write_text("about these faces")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image_set = load_identity_folders(root, image_size=None)
    assert [path.split("/")[-1] for path, _ in image_set.skipped] == ["README"]


def test_identity_folders_drop_small_classes_and_limit(tmp_path):
    root = make_identity_tree(tmp_path / "people", class_names=("s1", "s2", "s3", "s4"))
    for extra in range(2):
        write_gray(root / "s3" / f"extra{extra}.png", 200)
    (root / "s2" / "0.png").unlink()
    (root / "s2" / "1.png").unlink()

    with pytest.warns(UserWarning, match=r"dropped 1 class.*s2 \(1\)"):
        image_set = load_identity_folders(root, image_size=None, min_images_per_class=2)
    assert image_set.class_names == ["s1", "s3", "s4"]
    assert image_set.counts() == {"s1": 3, "s3": 5, "s4": 3}

    limited = load_identity_folders(root, image_size=None, max_classes=2, max_images_per_class=2)
    assert limited.class_names == ["s1", "s2"]
    assert limited.counts() == {"s1": 2, "s2": 1}
    # max_classes counts usable classes: s2 is dropped, so s3 fills the second place.
    with pytest.warns(UserWarning, match="dropped"):
        refilled = load_identity_folders(root, image_size=None, min_images_per_class=2, max_classes=2)
    assert refilled.class_names == ["s1", "s3"]


def test_zip_gives_the_same_set_as_the_folder_and_descends_wrapper(tmp_path):
    root = make_identity_tree(tmp_path / "people")
    (root / "s1" / "bad.png").write_bytes(b"nope")
    archive = zip_folder(root, tmp_path / "people.zip", inner_prefix="wrapper/")

    with pytest.warns(UserWarning):
        from_folder = load_identity_folders(root, image_size=(3, 3))
    with pytest.warns(UserWarning):
        from_zip = load_identity_folders(archive, image_size=(3, 3))

    assert from_zip.class_names == from_folder.class_names
    np.testing.assert_array_equal(from_zip.labels, from_folder.labels)
    np.testing.assert_array_equal(from_zip.images, from_folder.images)
    assert from_zip.paths[0] == str(archive / "wrapper" / "s1" / "0.png")
    assert len(from_zip.skipped) == 1 and from_zip.skipped[0][0].endswith("wrapper/s1/bad.png")


def test_nested_layout_names_classes_by_relative_path(tmp_path):
    for alphabet in ("Latin", "Greek"):
        for character in ("character02", "character10"):
            for drawer in range(2):
                write_gray(tmp_path / "omni" / "images" / alphabet / character / f"{drawer}.png", 9)
    image_set = load_identity_folders(tmp_path / "omni", image_size=None)
    assert image_set.class_names == [
        "Greek/character02", "Greek/character10", "Latin/character02", "Latin/character10"
    ]
    assert image_set.counts()["Latin/character10"] == 2


def test_identity_folders_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_identity_folders(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SiameseDataError, match="empty"):
        load_identity_folders(tmp_path / "empty")
    (tmp_path / "empty_classes" / "s1").mkdir(parents=True)
    with pytest.raises(SiameseDataError, match="empty_classes"):
        load_identity_folders(tmp_path / "empty_classes")
    (tmp_path / "junk" / "s1").mkdir(parents=True)
    (tmp_path / "junk" / "s1" / "a.png").write_text("not an image")
    with pytest.warns(UserWarning), pytest.raises(SiameseDataError, match="no readable images"):
        load_identity_folders(tmp_path / "junk")
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(SiameseDataError, match="fake.zip"):
        load_identity_folders(tmp_path / "fake.zip")
    root = make_identity_tree(tmp_path / "people")
    write_gray(root / "s1" / "big.png", 1, size=(9, 9))
    with pytest.raises(SiameseDataError, match="image_size"):
        load_identity_folders(root, image_size=None)
    with pytest.raises(ValueError, match="min_images_per_class"):
        load_identity_folders(root, min_images_per_class=0)


def test_orl_faces_zip(shared_data_dir):
    archive = shared_data_dir / "faces" / "orl_faces_s1-s30.zip"
    image_set = load_identity_folders(archive, image_size=(56, 46))

    # The data README: subjects s1-s30, 10 PGM images each, 92x112.
    assert image_set.class_names == [f"s{number}" for number in range(1, 31)]
    assert set(image_set.counts().values()) == {10}
    assert image_set.images.shape == (300, 56, 46, 1)
    assert 0.0 <= image_set.images.min() and image_set.images.max() <= 1.0
    # Check one image against OpenCV decoding the zip member directly.
    with zipfile.ZipFile(archive) as opened:
        raw = cv2.imdecode(np.frombuffer(opened.read("orl_faces/s10/3.pgm"), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert raw.shape == (112, 92)
    expected = cv2.resize(raw.astype(np.float32) / 255, (46, 56), interpolation=cv2.INTER_AREA)
    index = image_set.paths.index(str(archive / "orl_faces" / "s10" / "3.pgm"))
    assert image_set.labels[index] == 9
    np.testing.assert_allclose(image_set.images[index, ..., 0], expected, atol=1e-6)


def test_omniglot_small_zip(shared_data_dir):
    image_set = load_identity_folders(shared_data_dir / "omniglot" / "images_background_small1.zip",
                                      image_size=(20, 20))
    # The data README: 5 alphabets, 136 characters x 20 drawers.
    assert image_set.num_classes == 136
    assert set(image_set.counts().values()) == {20}
    assert len({name.split("/")[0] for name in image_set.class_names}) == 5
    assert image_set.class_names[0] == "Balinese/character01"


# ---------------------------------------------------------------- role folders


def test_role_folders(tmp_path):
    for role, value in (("anchor", 10), ("positive", 20), ("negative", 30)):
        for number in range(role == "negative" and 4 or 2):
            write_gray(tmp_path / "data" / role / f"{number}.jpg", value)
    roles = load_role_folders(tmp_path / "data", image_size=(4, 4))

    assert list(roles) == ["anchor", "positive", "negative"]
    assert [len(roles[role]) for role in roles] == [2, 2, 4]
    assert roles["positive"].class_names == ["positive"]
    np.testing.assert_array_equal(roles["negative"].labels, 0)
    np.testing.assert_allclose(roles["negative"].images, 30 / 255, atol=2 / 255)  # JPEG is lossy

    archive = zip_folder(tmp_path / "data", tmp_path / "data.zip", inner_prefix="data/")
    from_zip = load_role_folders(archive, image_size=(4, 4))
    np.testing.assert_array_equal(from_zip["anchor"].images, roles["anchor"].images)


def test_role_folders_missing_or_empty_role_is_named(tmp_path):
    write_gray(tmp_path / "data" / "anchor" / "a.png", 1)
    (tmp_path / "data" / "positive").mkdir()
    with pytest.raises(SiameseDataError, match="positive"):
        load_role_folders(tmp_path / "data")
    with pytest.raises(SiameseDataError, match="negative"):
        load_role_folders(tmp_path / "data", roles=("anchor", "negative"))
    assert len(load_role_folders(tmp_path / "data", roles=("anchor",))["anchor"]) == 1


# ---------------------------------------------------------------- ImageSet and splits


def numbered_image_set(class_sizes):
    """Each image's single pixel holds its index; class k is named 'c{k}'."""
    labels = np.repeat(np.arange(len(class_sizes)), class_sizes)
    images = np.arange(len(labels), dtype=np.float32).reshape(-1, 1, 1, 1) / 1000
    return ImageSet(images, labels, [f"c{k}" for k in range(len(class_sizes))],
                    [f"img{index}" for index in range(len(labels))])


def test_image_set_subset_select_classes_and_counts():
    image_set = numbered_image_set([2, 3, 1])
    subset = image_set.subset([4, 0])
    np.testing.assert_array_equal(subset.labels, [1, 0])
    assert subset.class_names == ["c0", "c1", "c2"] and subset.paths == ["img4", "img0"]

    selected = image_set.select_classes([2, 0])
    assert selected.class_names == ["c2", "c0"]
    np.testing.assert_array_equal(selected.labels, [1, 1, 0])
    assert selected.paths == ["img0", "img1", "img5"]
    assert selected.counts() == {"c2": 1, "c0": 2}
    with pytest.raises(ValueError, match="out of range"):
        image_set.select_classes([3])
    with pytest.raises(ValueError, match="same length"):
        ImageSet(np.zeros((2, 1, 1, 1)), [0], ["a"], ["p", "q"])
    with pytest.raises(ValueError, match="labels must lie"):
        ImageSet(np.zeros((1, 1, 1, 1)), [1], ["a"], ["p"])


def test_split_by_identity_is_disjoint_complete_and_relabelled():
    image_set = numbered_image_set([3] * 10)
    splits = split_by_identity(image_set, (0.6, 0.2, 0.2), seed=3)

    assert [split.num_classes for split in splits] == [6, 2, 2]
    names = [set(split.class_names) for split in splits]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert names[0] | names[1] | names[2] == set(image_set.class_names)
    for split in splits:
        np.testing.assert_array_equal(np.unique(split.labels), np.arange(split.num_classes))
        for label, path in zip(split.labels, split.paths):
            original_index = int(path[3:])
            assert split.class_names[label] == image_set.class_names[image_set.labels[original_index]]
    again = split_by_identity(image_set, (0.6, 0.2, 0.2), seed=3)
    assert [split.class_names for split in again] == [split.class_names for split in splits]
    other_seeds = {tuple(split_by_identity(image_set, seed=seed)[0].class_names) for seed in range(5)}
    assert len(other_seeds) > 1


def test_split_by_identity_gives_every_split_a_class_and_checks_inputs():
    image_set = numbered_image_set([2, 2, 2])
    assert [split.num_classes for split in split_by_identity(image_set, (0.9, 0.05, 0.05))] == [1, 1, 1]
    with pytest.raises(ValueError, match="3 class"):
        split_by_identity(image_set, (0.25, 0.25, 0.25, 0.25))
    with pytest.raises(ValueError, match="sum to 1"):
        split_by_identity(image_set, (0.5, 0.2))


def test_make_image_dataset_batches_and_disables_autotune():
    images = np.arange(5 * 2 * 2 * 1, dtype=np.float32).reshape(5, 2, 2, 1)
    labels = np.array([0, 1, 0, 1, 1])
    dataset = make_image_dataset(images, labels, batch_size=2)
    assert dataset.options().autotune.enabled is False
    batches = list(dataset.as_numpy_iterator())
    assert [len(batch_images) for batch_images, _ in batches] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([batch_images for batch_images, _ in batches]), images)
    np.testing.assert_array_equal(np.concatenate([batch_labels for _, batch_labels in batches]), labels)
    only_images = list(make_image_dataset(images, batch_size=4).as_numpy_iterator())
    assert [batch.shape[0] for batch in only_images] == [4, 1]
    with pytest.raises(ValueError, match="same length"):
        make_image_dataset(images, labels[:3])


def test_resolve_archive(tmp_path):
    (tmp_path / "faces.zip").write_bytes(b"")
    assert datasets.resolve_archive(tmp_path / "faces") == tmp_path / "faces.zip"
    with pytest.raises(FileNotFoundError, match="other"):
        datasets.resolve_archive(tmp_path / "other")
