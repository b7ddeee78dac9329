"""The NumPy twin of the batch engine: its warp checked by hand and against TensorFlow's, its
augmentation and crops, and the factories that pick a twin. The batch tests shared with the
``tf.data`` twin live in ``test_pipelines.py`` (run on both). Pair labels: 1 = same.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from siamese_tf.augmentations import Augmenter
from siamese_tf.numpy_pipelines import (
    NumpyClassBalancedPipeline,
    affine_transforms,
    augment_images,
    class_balanced_pipeline,
    pair_pipeline,
    random_crops,
    warp_images,
)
from siamese_tf.pipelines import ClassBalancedPipeline, PairPipeline, affine_parameters_to_transforms

NO_AUGMENTATION = dict(flip=False, brightness=0.0, contrast=0.0, max_rotation=0.0, max_shift=0.0, max_scale=0.0)


def transforms_of(angle=0.0, shear_x=0.0, shear_y=0.0, scale_x=1.0, scale_y=1.0, shift_x=0.0, shift_y=0.0,
                  mirror=False, height=5, width=5):
    values = [np.array([value], np.float32) for value in (angle, shear_x, shear_y, scale_x, scale_y, shift_x, shift_y)]
    return affine_transforms(np, *values, np.array([mirror]), height, width)


def test_a_quarter_turn_moves_the_top_left_pixel_to_the_top_right():
    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    turned = warp_images(image, transforms_of(angle=math.pi / 2))[0, :, :, 0]
    np.testing.assert_allclose(turned, np.rot90(image[0, :, :, 0], k=-1), atol=1e-4)
    assert turned[0, 4] == pytest.approx(image[0, 0, 0, 0], abs=1e-4)


def test_a_half_pixel_shift_averages_neighbours_and_replicates_the_border():
    image = np.array([[0.0, 1.0, 3.0, 7.0]], np.float32).reshape(1, 1, 4, 1)
    shifted = warp_images(image, transforms_of(shift_x=0.5, height=1, width=4))[0, 0, :, 0]
    # Output x reads input x - 0.5: the left edge reads x = -0.5, clamped to pixel 0.
    np.testing.assert_allclose(shifted, [0.0, 0.5, 2.0, 5.0], atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3, 6])  # OpenCV warps at most 4 channels in one call
def test_the_warp_matches_tensorflows_projective_transform(channels):
    rng = np.random.default_rng(0)
    images = rng.random((6, 11, 13, channels)).astype(np.float32)
    parameters = [rng.uniform(-0.5, 0.5, 6), rng.uniform(-0.2, 0.2, 6), rng.uniform(-0.2, 0.2, 6),
                  rng.uniform(0.8, 1.2, 6), rng.uniform(0.8, 1.2, 6), rng.uniform(-3, 3, 6), rng.uniform(-3, 3, 6)]
    parameters = [value.astype(np.float32) for value in parameters]
    mirror = np.array([True, False] * 3)
    numpy_transforms = affine_transforms(np, *parameters, mirror, 11, 13)
    tf_transforms = affine_parameters_to_transforms(*[tf.constant(value) for value in parameters],
                                                    tf.constant(mirror), 11, 13)
    np.testing.assert_allclose(numpy_transforms, tf_transforms.numpy(), atol=1e-5)  # one formula, two libraries
    expected = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.constant(images), transforms=tf_transforms, output_shape=[11, 13], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="NEAREST").numpy()
    warped = warp_images(images, numpy_transforms)
    np.testing.assert_allclose(warped, expected, atol=0.03)  # OpenCV interpolates on a 1/32-pixel grid
    assert np.abs(warped - expected).mean() < 0.005
    assert np.abs(warped - images).mean() > 0.05  # and the warp did move the pictures


def test_warp_images_names_what_it_cannot_run():
    with pytest.raises(ValueError, match=r"transforms must have shape \(2, 8\), got \(1, 8\)"):
        warp_images(np.zeros((2, 4, 4, 1)), np.zeros((1, 8)))
    projective = np.zeros((1, 8))
    projective[0, 6] = 0.1
    with pytest.raises(ValueError, match="only affine transforms"):
        warp_images(np.zeros((1, 4, 4, 1)), projective)
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        warp_images(np.zeros((4, 4, 1)), np.zeros((4, 8)))


def test_augment_images_with_nothing_to_do_returns_the_images():
    images = np.random.default_rng(2).random((4, 9, 9, 1)).astype(np.float32)
    np.testing.assert_allclose(augment_images(images, [0, 1], Augmenter(**NO_AUGMENTATION)), images, atol=1e-6)


def test_augment_images_is_a_function_of_the_seed_and_differs_per_image():
    images = np.tile(np.random.default_rng(3).random((1, 16, 16, 1)).astype(np.float32), (6, 1, 1, 1))
    augmenter = Augmenter(max_rotation=15.0, max_shift=0.1, max_scale=0.1, brightness=0.1, contrast=0.1)
    first = augment_images(images, [5, 2, 1, 2], augmenter)
    np.testing.assert_array_equal(first, augment_images(images, [5, 2, 1, 2], augmenter))
    assert not np.array_equal(first, augment_images(images, [5, 2, 1, 3], augmenter))
    assert not np.allclose(first[0], first[1])  # six copies of one image, six different distortions
    assert first.dtype == np.float32 and first.min() >= 0.0 and first.max() <= 1.0


def test_a_flip_alone_mirrors_about_half_of_the_images():
    images = np.random.default_rng(4).random((200, 5, 6, 1)).astype(np.float32)
    flipped = augment_images(images, [1], Augmenter(**{**NO_AUGMENTATION, "flip": True}))
    mirrored = np.array([np.allclose(result, image[:, ::-1], atol=1e-5) for result, image in zip(flipped, images)])
    unchanged = np.array([np.allclose(result, image, atol=1e-5) for result, image in zip(flipped, images)])
    assert (mirrored ^ unchanged).all()  # each image is either mirrored or left alone
    assert 70 < mirrored.sum() < 130


def test_augment_images_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="Augmenter"):
        augment_images(np.zeros((1, 4, 4, 1)), [0], lambda image, rng: image)
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        augment_images(np.zeros((4, 4, 1)), [0], Augmenter())


def test_random_crops_are_exact_windows_at_every_offset():
    images = np.repeat(np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6, 1), 4, axis=0)
    corners = set()
    for step in range(40):
        crops = random_crops(images, 4, np.random.default_rng(step))
        for crop, image in zip(crops, images):
            top, left = np.argwhere(image[:, :, 0] == crop[0, 0, 0])[0]
            np.testing.assert_array_equal(crop, image[top:top + 4, left:left + 4])
            corners.add((int(top), int(left)))
    assert corners == {(top, left) for top in range(3) for left in range(3)}
    with pytest.raises(ValueError, match="crop size 7 does not fit the 6x6 images"):
        random_crops(images, 7, np.random.default_rng(0))


def test_the_factories_pick_tf_data_where_tensorflow_is_installed():
    # (Without TensorFlow they give the NumPy twins: test_without_tensorflow.py.)
    labels = np.repeat(np.arange(4), 3)
    images = np.zeros((12, 6, 6, 1), np.float32)
    balanced = class_balanced_pipeline(images, labels, 2, 2, steps_per_epoch=2, crop_size=4, parallel_calls=2)
    assert type(balanced) is ClassBalancedPipeline and balanced.parallel_calls == 2 and balanced.crop_size == 4
    assert type(pair_pipeline(images, labels, 8, 4)) is PairPipeline


def test_the_numpy_twin_serves_keras_without_tf_data():
    labels = np.repeat(np.arange(4), 3)
    images = np.random.default_rng(5).random((12, 6, 6, 1)).astype(np.float32)
    batches = NumpyClassBalancedPipeline(images, labels, 2, 2, steps_per_epoch=3, seed=1, crop_size=5,
                                         augment=Augmenter(max_rotation=10.0))
    source = batches.py_dataset()
    assert len(source) == 3
    source.on_epoch_begin()  # Keras starts epoch 0
    for step in range(3):
        np.testing.assert_array_equal(source[step][0], batches.batch(0, step)[0])
        assert source[step][0].shape == (4, 5, 5, 1)
