"""The batch engine: affine maps checked by hand and against OpenCV, P x K batches, exact resume.

The batch tests run on both twins: ``tf.data`` (:mod:`siamese_tf.pipelines`) and vectorised NumPy
(:mod:`siamese_tf.numpy_pipelines`, for machines without TensorFlow). Pair labels: 1 = same.
"""

import math

import cv2
import numpy as np
import pytest
import tensorflow as tf

from siamese_tf.augmentations import Augmenter
from siamese_tf.numpy_pipelines import NumpyClassBalancedPipeline, NumpyPairPipeline
from siamese_tf.pipelines import (
    ClassBalancedPipeline,
    PairPipeline,
    affine_parameters_to_transforms,
    augment_images,
    random_crops,
    step_seed,
)
from siamese_tf.samplers import PairBatches

CLASS_BALANCED_ENGINES = pytest.mark.parametrize("engine", [ClassBalancedPipeline, NumpyClassBalancedPipeline])
PAIR_ENGINES = pytest.mark.parametrize("engine", [PairPipeline, NumpyPairPipeline])

NO_AUGMENTATION = dict(flip=False, brightness=0.0, contrast=0.0, max_rotation=0.0, max_shift=0.0, max_scale=0.0)


def warp(images, transforms):
    height, width = images.shape[1:3]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.constant(images, tf.float32), transforms=transforms, output_shape=[height, width],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST").numpy()


def parameters(*values):
    return [tf.constant([value], tf.float32) for value in values]


def test_a_quarter_turn_moves_the_top_left_pixel_to_the_top_right():
    # Forward map about the centre c: (x, y) -> c + R (x - c); with y pointing down, R(90 degrees)
    # sends (0, 0) of a 5x5 image to (4, 0): the picture turns clockwise on screen.
    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    transforms = affine_parameters_to_transforms(*parameters(math.pi / 2, 0, 0, 1, 1, 0, 0), tf.constant([False]),
                                                 5, 5)
    turned = warp(image, transforms)[0, :, :, 0]
    assert turned[0, 4] == image[0, 0, 0, 0]
    np.testing.assert_allclose(turned, np.rot90(image[0, :, :, 0], k=-1), atol=1e-4)


def test_a_mirror_alone_flips_left_right_and_a_shift_moves_by_whole_pixels():
    image = np.random.default_rng(0).random((1, 6, 7, 1)).astype(np.float32)
    mirrored = warp(image, affine_parameters_to_transforms(*parameters(0, 0, 0, 1, 1, 0, 0), tf.constant([True]), 6, 7))
    np.testing.assert_allclose(mirrored, image[:, :, ::-1], atol=1e-5)
    shifted = warp(image, affine_parameters_to_transforms(*parameters(0, 0, 0, 1, 1, 2, 0), tf.constant([False]), 6, 7))
    np.testing.assert_allclose(shifted[0, :, 2:], image[0, :, :-2], atol=1e-5)
    np.testing.assert_allclose(shifted[0, :, 0], image[0, :, 0], atol=1e-5)  # replicated border


def test_every_affine_component_matches_opencv_warp_affine():
    # The NumPy Augmenter warps with cv2.warpAffine and the forward matrix below; the tf.data path
    # must give the same picture (up to OpenCV's 1/32-pixel fixed-point interpolation).
    angle, shear_x, shear_y, scale_x, scale_y, shift_x, shift_y = 0.3, 0.1, -0.2, 1.1, 0.9, 1.5, -2.0
    height, width = 28, 30
    image = np.random.default_rng(1).random((height, width)).astype(np.float32)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = rotation @ np.array([[1, shear_x], [shear_y, 1]]) @ np.diag([scale_x, scale_y]) @ np.diag([-1.0, 1.0])
    center = np.array([(width - 1) / 2, (height - 1) / 2])
    offset = center + np.array([shift_x, shift_y]) - linear @ center
    expected = cv2.warpAffine(image, np.hstack([linear, offset[:, None]]), (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    transforms = affine_parameters_to_transforms(
        *parameters(angle, shear_x, shear_y, scale_x, scale_y, shift_x, shift_y), tf.constant([True]), height, width)
    warped = warp(image[None, :, :, None], transforms)[0, :, :, 0]
    np.testing.assert_allclose(warped, expected, atol=0.02)
    assert np.abs(warped - image).mean() > 0.1  # and the warp did move the picture


def test_augment_images_with_nothing_to_do_returns_the_images():
    images = np.random.default_rng(2).random((4, 9, 9, 1)).astype(np.float32)
    result = augment_images(images, step_seed(0, 0, 0), Augmenter(**NO_AUGMENTATION)).numpy()
    np.testing.assert_allclose(result, images, atol=1e-6)


def test_augment_images_is_a_function_of_the_seed_and_differs_per_image():
    images = np.tile(np.random.default_rng(3).random((1, 16, 16, 1)).astype(np.float32), (6, 1, 1, 1))
    augmenter = Augmenter(max_rotation=15.0, max_shift=0.1, max_scale=0.1, brightness=0.1, contrast=0.1)
    first = augment_images(images, step_seed(5, 1, 2), augmenter).numpy()
    again = augment_images(images, step_seed(5, 1, 2), augmenter).numpy()
    other_step = augment_images(images, step_seed(5, 1, 3), augmenter).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other_step)
    assert not np.allclose(first[0], first[1])  # six copies of one image, six different distortions
    assert first.min() >= 0.0 and first.max() <= 1.0


def test_augment_images_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="Augmenter"):
        augment_images(np.zeros((1, 4, 4, 1)), step_seed(0, 0, 0), lambda image, rng: image)
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        augment_images(np.zeros((4, 4, 1)), step_seed(0, 0, 0), Augmenter())


def labelled_images(num_classes=6, per_class=(5, 5, 5, 5, 3, 1), side=8):
    labels = np.concatenate([[label] * count for label, count in zip(range(num_classes), per_class)])
    # Each image is filled with its own index, so a batch image names the source image it came from.
    images = np.broadcast_to(np.arange(len(labels), dtype=np.float32)[:, None, None, None] / 100.0,
                             (len(labels), side, side, 1)).copy()
    return images, labels


@CLASS_BALANCED_ENGINES
def test_a_batch_holds_p_distinct_classes_with_k_distinct_images_each(engine):
    images, labels = labelled_images()
    pipeline = engine(images, labels, classes_per_batch=3, images_per_class=4, steps_per_epoch=5)
    for step in range(5):
        batch_images, batch_labels = pipeline.batch(0, step)
        assert batch_images.shape == (12, 8, 8, 1) and batch_labels.dtype == np.int32
        sources = np.rint(batch_images[:, 0, 0, 0] * 100).astype(int)
        np.testing.assert_array_equal(labels[sources], batch_labels)  # each label is its image's
        classes = batch_labels.reshape(3, 4)
        assert (classes == classes[:, :1]).all() and len(set(classes[:, 0])) == 3
        assert 5 not in classes  # the class with a single image gives no same pair
        for group in sources.reshape(3, 4):
            if np.sum(labels == labels[group[0]]) >= 4:
                assert len(set(group)) == 4  # drawn without replacement


@CLASS_BALANCED_ENGINES
def test_a_class_smaller_than_k_repeats_its_images(engine):
    images, labels = labelled_images(num_classes=2, per_class=(2, 3))
    pipeline = engine(images, labels, classes_per_batch=2, images_per_class=4, steps_per_epoch=1)
    batch_images, batch_labels = pipeline.batch(0, 0)
    sources = np.rint(batch_images[:, 0, 0, 0] * 100).astype(int)
    for label, size in ((0, 2), (1, 3)):
        assert set(sources[batch_labels == label]) == set(np.flatnonzero(labels == label))


@CLASS_BALANCED_ENGINES
def test_batches_depend_only_on_seed_epoch_and_step_so_a_resumed_run_sees_the_same(engine):
    images, labels = labelled_images()
    augmenter = Augmenter(max_rotation=10.0, brightness=0.0, contrast=0.0, flip=False)
    pipeline = engine(images, labels, 3, 2, steps_per_epoch=4, seed=7, augment=augmenter)
    twin = engine(images, labels, 3, 2, steps_per_epoch=4, seed=7, augment=augmenter)
    other_seed = engine(images, labels, 3, 2, steps_per_epoch=4, seed=8, augment=augmenter)
    np.testing.assert_array_equal(pipeline.batch(2, 1)[0], twin.batch(2, 1)[0])
    assert not np.array_equal(pipeline.batch(2, 1)[0], other_seed.batch(2, 1)[0])
    assert not np.array_equal(pipeline.batch(2, 1)[0], pipeline.batch(2, 2)[0])
    # A resumed run: Keras announces epoch 3 through the callback; the pass serves epoch 3.
    pipeline.callback().on_epoch_begin(3)
    served = list(pipeline.dataset())
    assert len(served) == 4
    for step, (batch_images, batch_labels) in enumerate(served):
        expected_images, expected_labels = twin.batch(3, step)
        np.testing.assert_allclose(batch_images.numpy(), expected_images, atol=1e-6)
        np.testing.assert_array_equal(batch_labels.numpy(), expected_labels)
    # Consecutive passes give consecutive epochs.
    np.testing.assert_allclose(next(iter(pipeline.dataset()))[0].numpy(), twin.batch(4, 0)[0], atol=1e-6)


@CLASS_BALANCED_ENGINES
def test_augmentation_never_changes_which_images_a_batch_holds(engine):
    images, labels = labelled_images()
    plain = engine(images, labels, 3, 2, steps_per_epoch=3, seed=1)
    augmented = engine(images, labels, 3, 2, steps_per_epoch=3, seed=1,
                                      augment=Augmenter(max_rotation=20.0))
    for step in range(3):
        np.testing.assert_array_equal(plain.batch(0, step)[1], augmented.batch(0, step)[1])


@CLASS_BALANCED_ENGINES
def test_bad_settings_are_named_before_any_training(engine):
    images, labels = labelled_images()
    with pytest.raises(ValueError, match="Augmenter"):
        engine(images, labels, augment=lambda image, rng: image)
    if engine is ClassBalancedPipeline:  # a tf.data setting
        with pytest.raises(ValueError, match="parallel_calls must be a positive integer, got 0"):
            engine(images, labels, 2, 2, parallel_calls=0)
    with pytest.raises(ValueError, match="classes_per_batch=6 but only 5 classes"):
        engine(images, labels, classes_per_batch=6, images_per_class=2)
    with pytest.raises(ValueError, match="images_per_class must be an integer >= 2, got 1"):
        engine(images, labels, classes_per_batch=2, images_per_class=1)
    pipeline = engine(images, labels, 2, 2, steps_per_epoch=3)
    with pytest.raises(ValueError, match="step must lie in 0..2, got 3"):
        pipeline.batch(0, 3)


@PAIR_ENGINES
def test_pair_pipeline_serves_the_pairs_of_pair_batches(engine):
    images, labels = labelled_images()
    python_batches = PairBatches(images, labels, pairs_per_epoch=20, batch_size=8, seed=3)
    pipeline = engine(images, labels, pairs_per_epoch=20, batch_size=8, seed=3)
    assert pipeline.steps_per_epoch == 3
    for step in range(3):  # the last batch holds the 4 pairs left
        (first, second), pair_labels = pipeline.batch(1, step)
        (expected_first, expected_second), expected_labels = python_batches.batch(1, step)
        np.testing.assert_array_equal(first, expected_first)
        np.testing.assert_array_equal(second, expected_second)
        np.testing.assert_array_equal(pair_labels, expected_labels)
    first_sources = np.rint(first[:, 0, 0, 0] * 100).astype(int)
    second_sources = np.rint(second[:, 0, 0, 0] * 100).astype(int)
    np.testing.assert_array_equal(labels[first_sources] == labels[second_sources], pair_labels == 1)


@PAIR_ENGINES
def test_pair_pipeline_augments_both_sides_reproducibly_and_resumes_exactly(engine):
    images = np.random.default_rng(4).random((30, 12, 12, 1)).astype(np.float32)
    labels = np.repeat(np.arange(6), 5)
    augmenter = Augmenter(max_rotation=20.0, max_shift=0.1)
    pipeline = engine(images, labels, pairs_per_epoch=16, batch_size=8, seed=5, augment=augmenter)
    twin = engine(images, labels, pairs_per_epoch=16, batch_size=8, seed=5, augment=augmenter)
    plain = engine(images, labels, pairs_per_epoch=16, batch_size=8, seed=5)
    (first, second), _ = pipeline.batch(2, 1)
    (plain_first, plain_second), _ = plain.batch(2, 1)
    assert not np.allclose(first, plain_first) and not np.allclose(second, plain_second)
    # A resumed run (Keras announces epoch 2) is served exactly what a run that never stopped got.
    pipeline.callback().on_epoch_begin(2)
    served = list(pipeline.dataset())
    for _ in range(2):
        list(twin.dataset())  # epochs 0 and 1 of the uninterrupted run
    uninterrupted = list(twin.dataset())
    assert len(served) == 2
    for step, ((served_first, served_second), served_labels) in enumerate(served):
        (other_first, other_second), other_labels = uninterrupted[step]
        np.testing.assert_array_equal(served_first.numpy(), other_first.numpy())
        np.testing.assert_array_equal(served_second.numpy(), other_second.numpy())
        np.testing.assert_array_equal(served_labels.numpy(), other_labels.numpy())
        # batch() runs the same ops outside tf.data: equal up to float rounding of fused kernels
        (expected_first, expected_second), expected_labels = twin.batch(2, step)
        np.testing.assert_allclose(served_first.numpy(), expected_first, atol=1e-6)
        np.testing.assert_allclose(served_second.numpy(), expected_second, atol=1e-6)
        np.testing.assert_array_equal(served_labels.numpy(), expected_labels)
    with pytest.raises(ValueError, match="Augmenter"):
        engine(images, labels, 16, augment=lambda image, rng: image)


def test_random_crops_are_exact_windows_at_every_offset():
    images = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6, 1)
    corners = set()
    for step in range(40):
        crops = random_crops(np.repeat(images, 4, axis=0), 4, step_seed(0, 0, step)).numpy()
        for crop, image in zip(crops, np.repeat(images, 4, axis=0)):
            top, left = np.argwhere(image[:, :, 0] == crop[0, 0, 0])[0]
            np.testing.assert_array_equal(crop, image[top:top + 4, left:left + 4])  # a window, not resampled
            corners.add((int(top), int(left)))
    assert corners == {(top, left) for top in range(3) for left in range(3)}  # every position is reached
    with pytest.raises(ValueError, match="crop size 7 does not fit the 6x6 images"):
        random_crops(images, 7, step_seed(0, 0, 0))


@CLASS_BALANCED_ENGINES
def test_a_cropping_pipeline_serves_crops_and_names_a_crop_that_does_not_fit(engine):
    images, labels = labelled_images(side=10)
    pipeline = engine(images, labels, 2, 2, steps_per_epoch=2, crop_size=8)
    assert pipeline.batch(0, 0)[0].shape == (4, 8, 8, 1)
    assert next(iter(pipeline.dataset()))[0].shape == (4, 8, 8, 1)
    assert next(iter(pipeline.frozen_dataset()))[0].shape == (4, 8, 8, 1)  # validation batches are crops too
    with pytest.raises(ValueError, match="crop_size must be an integer from 1 to the image side 10 or None, got 12"):
        engine(images, labels, 2, 2, crop_size=12)


def clustered_confusers(num_classes=20, cluster=4):
    """Each class's confusers are the other classes of its cluster of ``cluster`` consecutive ids."""
    classes = np.arange(num_classes)
    rows = np.stack([[other for other in range(c - c % cluster, c - c % cluster + cluster) if other != c]
                     for c in classes])
    return classes, rows


@CLASS_BALANCED_ENGINES
def test_hard_negative_groups_fill_a_batch_with_whole_clusters_of_confusers(engine):
    labels = np.repeat(np.arange(20), 3)
    images = np.random.default_rng(0).random((60, 8, 8, 1), dtype=np.float32)
    pipeline = engine(images, labels, classes_per_batch=8, images_per_class=2, steps_per_epoch=6,
                                     seed=3, confusers=clustered_confusers(), group_size=4)
    seen = set()
    for step in range(6):
        batch_images, batch_labels = pipeline.batch(0, step)
        assert batch_images.shape == (16, 8, 8, 1)
        classes = batch_labels.reshape(8, 2)
        assert (classes == classes[:, :1]).all() and len(set(classes[:, 0])) == 8
        # Groups of 4 from clusters of 4: the 8 classes are exactly two whole clusters.
        clusters = sorted(set(classes[:, 0] // 4))
        assert len(clusters) == 2 and sorted(classes[:, 0]) == [c * 4 + i for c in clusters for i in range(4)]
        seen.update(clusters)
    assert len(seen) > 2  # the clusters themselves are random
    # Without confusers, 8 random classes of 20 are almost never two whole clusters.
    uniform = engine(images, labels, 8, 2, steps_per_epoch=6, seed=3)
    assert any(len(set(uniform.batch(0, step)[1] // 4)) > 2 for step in range(6))


@CLASS_BALANCED_ENGINES
def test_hard_negative_groups_skip_confusers_that_cannot_serve_k_images_and_resume_exactly(engine):
    labels = np.concatenate([np.repeat(np.arange(8), 2), [8]])  # class 8 has one image
    images = np.random.default_rng(1).random((17, 8, 8, 1), dtype=np.float32)
    classes = np.arange(9)
    rows = np.array([[8, (c + 1) % 8] for c in range(8)] + [[0, 1]])
    pipeline = engine(images, labels, 4, 2, steps_per_epoch=3, seed=5, confusers=(classes, rows),
                                     group_size=3)
    twin = engine(images, labels, 4, 2, steps_per_epoch=3, seed=5, confusers=(classes, rows),
                                 group_size=3)
    for step in range(3):
        batch_labels = pipeline.batch(1, step)[1]
        assert 8 not in batch_labels and len(set(batch_labels)) == 4
    pipeline.callback().on_epoch_begin(1)
    for step, (_, served_labels) in enumerate(pipeline.dataset()):
        np.testing.assert_array_equal(served_labels.numpy(), twin.batch(1, step)[1])


@CLASS_BALANCED_ENGINES
def test_bad_confusers_are_named(engine):
    images, labels = labelled_images()
    classes, rows = np.arange(5), np.zeros((5, 2), int)
    with pytest.raises(ValueError, match="group_size must be an integer >= 2, got 1"):
        engine(images, labels, 2, 2, confusers=(classes, rows), group_size=1)
    with pytest.raises(ValueError, match=r"shape \(5, top_k\).*got \(4, 2\)"):
        engine(images, labels, 2, 2, confusers=(classes, rows[:4]))
    with pytest.raises(ValueError, match=r"not in labels: \[42\]"):
        engine(images, labels, 2, 2, confusers=(np.array([0, 1, 2, 3, 42]), rows))
    with pytest.raises(ValueError, match="pair"):
        engine(images, labels, 2, 2, confusers=rows)
