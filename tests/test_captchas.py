"""CAPTCHA generator: GB2312 tables, font lookup, rendering, splits, reproducibility, reading back."""

import csv

import numpy as np
import pytest

from siamese_tf.studies import captcha


@pytest.fixture(scope="module")
def cjk_fonts():
    try:
        return captcha.find_cjk_fonts()
    except captcha.NoCJKFontError as error:
        pytest.skip(f"no CJK font installed (apt-get install fonts-wqy-microhei): {error}")


def test_gb2312_levels_have_the_standard_sizes_and_ends():
    level_1, level_2 = captcha.gb2312_characters(1), captcha.gb2312_characters(2)
    assert (len(level_1), len(level_2)) == (3755, 3008)
    # First and last characters of each level, read off the GB2312 table (B0A1, D7F9, D8A1, F7FE).
    assert (level_1[0], level_1[-1], level_2[0], level_2[-1]) == ("啊", "座", "亍", "齄")
    assert not set(level_1) & set(level_2)


def test_gb2312_rejects_unknown_level():
    with pytest.raises(ValueError, match="level must be 1 or 2"):
        captcha.gb2312_characters(3)


def test_missing_fonts_raise_a_message_listing_what_was_searched(tmp_path):
    with pytest.raises(captcha.NoCJKFontError) as caught:
        captcha.find_cjk_fonts(search_dirs=[tmp_path])
    message = str(caught.value)
    assert "wqy-microhei.ttc" in message and "ukai.ttc" in message and str(tmp_path) in message
    assert isinstance(caught.value, FileNotFoundError)


def test_fonts_are_found_through_the_environment_variable(tmp_path, monkeypatch, cjk_fonts):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "uming.ttc").symlink_to(cjk_fonts[0].path)
    monkeypatch.setenv(captcha.FONT_DIRS_VARIABLE, str(tmp_path))
    found = captcha.find_cjk_fonts(search_dirs=None, names=["AR PL UMing CN"])
    assert [font.path for font in found] == [str(tmp_path / "nested" / "uming.ttc")]


def test_coverage_drops_a_character_the_font_lacks(cjk_fonts):
    covered = captcha.covered_characters(cjk_fonts[0], ["啊", "\ue000", "齄"])
    assert covered == ["啊", "齄"]


def test_render_is_seeded_and_draws_the_character(cjk_fonts):
    font = cjk_fonts[0]
    first = captcha.render_captcha("国", font, np.random.default_rng([3, 1]))
    again = captcha.render_captcha("国", font, np.random.default_rng([3, 1]))
    other = captcha.render_captcha("国", font, np.random.default_rng([3, 2]))
    assert first.shape == (48, 48, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # Without noise every pixel is background (all channels >= 150) or ink (blended towards the
    # dark text colour); a many-stroke character leaves plenty of dark pixels.
    clean = captcha.render_captcha("国", font, np.random.default_rng(0), noise_points=(0, 0), noise_lines=(0, 0))
    dark = (clean.max(axis=2) < 110).sum()
    assert dark >= 40
    blank = captcha.render_captcha(" ", font, np.random.default_rng(0), noise_points=(0, 0), noise_lines=(0, 0))
    assert blank.min() >= 150  # nothing drawn: background only


def test_render_rejects_more_than_one_character(cjk_fonts):
    with pytest.raises(ValueError, match="single character"):
        captcha.render_captcha("中国", cjk_fonts[0], 0)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, cjk_fonts):
    if len(cjk_fonts) < 2:
        pytest.skip("the held-out-font split needs two CJK fonts")
    directory = tmp_path_factory.mktemp("captchas")
    held_out = cjk_fonts[-1].name
    metadata = captcha.generate_captcha_dataset(directory, scale=0.002, seed=5, fonts=cjk_fonts, held_out_font=held_out,
                                                 test_a_size=12, test_b_size=9, progress=False)
    return directory, metadata, held_out


def test_dataset_splits_follow_the_paper_layout(tiny_dataset):
    directory, metadata, held_out = tiny_dataset
    level_1, level_2 = metadata["num_level_1"], metadata["num_level_2"]
    assert (level_1, level_2) == (round(3755 * 0.002), round(3008 * 0.002))
    sizes = metadata["split_sizes"]
    assert sizes["train"] == 4 * level_1 and sizes["support_a"] == level_1 and sizes["support_b"] == level_2
    assert sizes["test_a"] == 12 and sizes["test_b"] == 9 and sizes["test_b_held_out_font"] == 9
    with open(directory / "index.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(sizes.values())
    characters = metadata["characters"]
    for row in rows:
        assert characters[int(row["label"])] == row["character"]
        is_level_1 = row["split"] in ("train", "test_a", "support_a")
        assert (int(row["label"]) < level_1) == is_level_1 and int(row["level"]) == (1 if is_level_1 else 2)
        assert (row["font"] == held_out) == row["split"].endswith("held_out_font")
        assert (directory / row["path"]).is_file()
    train_labels = [int(row["label"]) for row in rows if row["split"] == "train"]
    assert np.bincount(train_labels).tolist() == [4] * level_1


def test_dataset_is_reproducible_and_reused(tiny_dataset, tmp_path, cjk_fonts):
    directory, metadata, held_out = tiny_dataset
    again = captcha.generate_captcha_dataset(tmp_path, scale=0.002, seed=5, fonts=cjk_fonts, held_out_font=held_out,
                                              test_a_size=12, test_b_size=9, progress=False)
    assert again == metadata
    for name in ("train/00003.png", "test_b_held_out_font/00008.png"):
        assert (tmp_path / name).read_bytes() == (directory / name).read_bytes()
    # Same settings: reused as is; other settings: refused.
    assert captcha.generate_captcha_dataset(tmp_path, scale=0.002, seed=5, fonts=cjk_fonts, held_out_font=held_out,
                                             test_a_size=12, test_b_size=9, progress=False) == metadata
    with pytest.raises(FileExistsError):
        captcha.generate_captcha_dataset(tmp_path, scale=0.002, seed=6, fonts=cjk_fonts, held_out_font=held_out,
                                          test_a_size=12, test_b_size=9, progress=False)


def test_a_render_seed_keeps_the_plan_and_draws_every_image_anew(tiny_dataset, tmp_path, cjk_fonts):
    directory, metadata, held_out = tiny_dataset
    validation = captcha.generate_captcha_dataset(tmp_path, scale=0.002, seed=5, fonts=cjk_fonts,
                                                  held_out_font=held_out, test_a_size=12, test_b_size=9,
                                                  progress=False, render_seed=7)
    assert validation["render_seed"] == 7 and "render_seed" not in metadata
    assert {key: value for key, value in validation.items() if key != "render_seed"} == metadata
    original, redrawn = (captcha.load_captcha_split(folder, "test_a") for folder in (directory, tmp_path))
    np.testing.assert_array_equal(original.labels, redrawn.labels)  # the same characters, in the same order
    assert original.fonts == redrawn.fonts
    assert not np.array_equal(original.images, redrawn.images)  # new CAPTCHAs of them
    with pytest.raises(ValueError, match="render_seed must be a non-negative integer or None, got -1"):
        captcha.generate_captcha_dataset(tmp_path / "bad", scale=0.002, seed=5, fonts=cjk_fonts, render_seed=-1)


def test_load_split_reads_images_and_skips_a_broken_file(tiny_dataset, tmp_path):
    import shutil

    directory, metadata, _ = tiny_dataset
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    split = captcha.load_captcha_split(copy, "support_b")
    assert split.images.shape == (metadata["num_level_2"], 48, 48, 1)
    assert 0 <= split.images.min() and split.images.max() <= 1
    first_level_2 = metadata["num_level_1"]
    assert split.labels.tolist() == list(range(first_level_2, first_level_2 + metadata["num_level_2"]))
    (copy / "support_b" / "00000.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="unreadable"):
        broken = captcha.load_captcha_split(copy, "support_b")
    assert broken.skipped == 1 and len(broken) == metadata["num_level_2"] - 1
    rgb = captcha.load_captcha_split(copy, "support_a", gray=False)
    assert rgb.images.shape[-1] == 3


def test_bad_arguments_name_the_value(tmp_path, cjk_fonts):
    with pytest.raises(ValueError, match="scale"):
        captcha.plan_captcha_dataset(scale=0, fonts=cjk_fonts)
    with pytest.raises(ValueError, match="Comic Sans"):
        captcha.plan_captcha_dataset(scale=0.001, fonts=cjk_fonts, held_out_font="Comic Sans")
    with pytest.raises(ValueError, match="no font for training"):
        captcha.plan_captcha_dataset(scale=0.001, fonts=cjk_fonts[:1], held_out_font=cjk_fonts[0].name)
    with pytest.raises(ValueError, match="Unknown split"):
        captcha.load_captcha_split(tmp_path, "validation")
    with pytest.raises(FileNotFoundError, match="No CAPTCHA data set"):
        captcha.load_captcha_split(tmp_path, "train")
