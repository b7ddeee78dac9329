"""Tests for siamese_tf.augmentations."""

import numpy as np
import pytest

from siamese_tf.augmentations import Augmenter, augment_image

NO_CHANGE = dict(flip=False, brightness=0.0, contrast=0.0, max_rotation=0.0, max_shift=0.0, max_scale=0.0,
                 max_shear=0.0)


class HighestDraws(np.random.Generator):
    """A generator whose uniform draws are always the upper limit and whose random() is 0 (always 'keep')."""

    def __init__(self):
        super().__init__(np.random.PCG64(0))

    def uniform(self, low=0.0, high=1.0, size=None):
        return high

    def random(self, size=None):
        return 0.0


def ramp_image(height=5, width=5, channels=1):
    values = np.arange(height * width * channels, dtype=np.float32) / (height * width * channels)
    return values.reshape(height, width, channels)


@pytest.mark.parametrize("shape", [(12, 10, 1), (12, 10, 3), (12, 10)])
def test_shape_dtype_and_range_are_kept(shape):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    for seed in range(10):
        augmented = augment_image(image, np.random.default_rng(seed), brightness=0.5, contrast=0.5,
                                  max_rotation=30, max_shift=0.2, max_scale=0.3, max_shear=0.3)
        assert augmented.shape == shape and augmented.dtype == np.float32
        assert augmented.min() >= 0.0 and augmented.max() <= 1.0


def test_same_generator_state_same_result_and_seeds_differ():
    image = ramp_image(16, 16)
    first = augment_image(image, np.random.default_rng(3))
    again = augment_image(image, np.random.default_rng(3))
    other = augment_image(image, np.random.default_rng(4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_neutral_settings_return_the_image_unchanged():
    image = ramp_image(7, 6, 3)
    np.testing.assert_array_equal(augment_image(image, 0, **NO_CHANGE), image)
    # With component_probability 0 every affine part is left out.
    unchanged = augment_image(image, 1, flip=False, brightness=0, contrast=0, max_rotation=40, max_shift=0.3,
                              max_scale=0.4, max_shear=0.5, component_probability=0.0)
    np.testing.assert_array_equal(unchanged, image)


def test_flip_mirrors_left_right_about_half_the_time():
    image = ramp_image(4, 6)
    settings = dict(NO_CHANGE, flip=True)
    outcomes = [augment_image(image, seed, **settings) for seed in range(40)]
    mirrored = [np.array_equal(result, image[:, ::-1]) for result in outcomes]
    same = [np.array_equal(result, image) for result in outcomes]
    assert all(m or s for m, s in zip(mirrored, same))
    assert 8 <= sum(mirrored) <= 32


def test_shift_in_pixels_moves_content_and_replicates_the_border():
    image = ramp_image(5, 5)
    settings = dict(NO_CHANGE, max_shift=2.0, shift_in_pixels=True)
    shifted = augment_image(image, HighestDraws(), **settings)[..., 0]
    # +2 px right and down: output[y, x] = input[y - 2, x - 2], edge rows/columns repeated.
    source_rows = np.clip(np.arange(5) - 2, 0, 4)
    np.testing.assert_allclose(shifted, image[..., 0][np.ix_(source_rows, source_rows)], atol=1e-6)


def test_rotation_by_90_degrees_about_the_centre():
    image = np.zeros((5, 5, 1), dtype=np.float32)
    image[2, 4] = 1.0  # right of the centre pixel (2, 2)
    rotated = augment_image(image, HighestDraws(), **dict(NO_CHANGE, max_rotation=90.0))[..., 0]
    expected = np.zeros((5, 5))
    expected[4, 2] = 1.0  # +90 degrees with y pointing down: right of centre goes below it
    np.testing.assert_allclose(rotated, expected, atol=1e-5)


def test_scale_about_the_centre():
    image = np.zeros((9, 9, 1), dtype=np.float32)
    image[4, 6] = 1.0  # two pixels right of the centre (4, 4)
    scaled = augment_image(image, HighestDraws(), **dict(NO_CHANGE, max_scale=0.5))[..., 0]
    # Scale 1.5: the point moves to 4 + 1.5 * 2 = 7 on the x axis.
    assert np.unravel_index(np.argmax(scaled), scaled.shape) == (4, 7)


def test_brightness_and_contrast_by_hand():
    image = np.array([[0.2, 0.6]], dtype=np.float32)[..., None]
    brighter = augment_image(image, HighestDraws(), **dict(NO_CHANGE, brightness=0.1))
    np.testing.assert_allclose(brighter[..., 0], [[0.3, 0.7]], atol=1e-6)
    # Contrast 1.1 around the mean 0.4: 0.4 + 1.1 * (-0.2, 0.2).
    stronger = augment_image(image, HighestDraws(), **dict(NO_CHANGE, contrast=0.1))
    np.testing.assert_allclose(stronger[..., 0], [[0.18, 0.62]], atol=1e-6)
    white = np.ones((2, 2, 1), dtype=np.float32)
    np.testing.assert_array_equal(augment_image(white, HighestDraws(), **dict(NO_CHANGE, brightness=0.3)), white)


def test_augmenter_matches_augment_image_and_round_trips_its_config():
    augmenter = Augmenter(brightness=0.2, max_rotation=5.0, max_shear=0.1)
    image = ramp_image(10, 10)
    np.testing.assert_array_equal(
        augmenter(image, np.random.default_rng(2)),
        augment_image(image, np.random.default_rng(2), brightness=0.2, max_rotation=5.0, max_shear=0.1),
    )
    config = augmenter.get_config()
    assert config["brightness"] == 0.2 and config["flip"] is True
    assert Augmenter(**config) == augmenter
    assert Augmenter.from_config(config).get_config() == config


def test_koch_preset_uses_the_paper_ranges():
    config = Augmenter.koch().get_config()
    assert config["max_rotation"] == 10.0
    assert config["max_shear"] == 0.3
    assert config["max_scale"] == pytest.approx(0.2)  # scale 0.8 - 1.2
    assert config["max_shift"] == 2.0 and config["shift_in_pixels"] is True
    assert config["independent_axes"] is True and config["component_probability"] == 0.5
    assert config["flip"] is False and config["brightness"] == 0.0 and config["contrast"] == 0.0
    character = np.ones((105, 105, 1), dtype=np.float32)
    character[40:60, 50:55] = 0.0
    distorted = Augmenter.koch()(character, np.random.default_rng(0))
    assert distorted.shape == character.shape
    # Ink moves by at most a few pixels: the stroke's centre of mass stays near the original one.
    ink_rows, ink_cols = np.nonzero(distorted[..., 0] < 0.5)
    assert abs(ink_rows.mean() - 49.5) < 6 and abs(ink_cols.mean() - 52) < 6


def test_invalid_settings_are_named():
    with pytest.raises(ValueError, match="max_rotation"):
        augment_image(ramp_image(), 0, max_rotation=-1)
    with pytest.raises(ValueError, match="max_scale"):
        Augmenter(max_scale=1.0)
    with pytest.raises(ValueError, match="component_probability"):
        Augmenter(component_probability=2)
    with pytest.raises(ValueError, match="image"):
        augment_image(np.zeros(5), 0)
