"""Verification rule of the face apps: detections over a validation gallery, then a fraction.

Label convention: 1 = same person, 0 = someone else.
"""

import sys
import types

import numpy as np
import pytest

from siamese_tf import verification
from siamese_tf.models import build_siamese_model, save_model
from siamese_tf.verification import VerificationResult, Verifier, verify

IMAGE_SHAPE = (32, 32, 1)


@pytest.fixture(scope="module")
def tiny_model():
    return build_siamese_model("small_cnn", "l1", IMAGE_SHAPE, embedding_dim=8, filters=(8, 8))


@pytest.fixture(scope="module")
def gallery():
    rng = np.random.default_rng(0)
    return rng.random((6,) + IMAGE_SHAPE).astype("float32"), rng.random(IMAGE_SHAPE).astype("float32")


def _by_hand(model, input_image, validation_images, detection_threshold, verification_threshold):
    similarities = model.similarity_pairs(np.repeat(input_image[None], len(validation_images), 0), validation_images)
    detections = int(np.sum(similarities > detection_threshold))
    fraction = detections / len(validation_images)
    return similarities, detections, fraction, fraction > verification_threshold


def test_verify_follows_the_detection_and_fraction_rule(tiny_model, gallery):
    validation_images, input_image = gallery
    reference = tiny_model.similarity_pairs(np.repeat(input_image[None], 6, 0), validation_images)
    # a detection threshold between the 3rd and 4th highest similarity gives exactly 3 detections
    ordered = np.sort(reference)[::-1]
    detection_threshold = float((ordered[2] + ordered[3]) / 2)
    for verification_threshold, expected in ((0.4, True), (0.5, False)):
        result = verify(tiny_model, input_image, validation_images, detection_threshold, verification_threshold)
        similarities, detections, fraction, verified = _by_hand(
            tiny_model, input_image, validation_images, detection_threshold, verification_threshold
        )
        assert isinstance(result, VerificationResult)
        np.testing.assert_allclose(result.similarities, similarities, rtol=1e-5, atol=1e-6)
        assert result.detections == detections == 3
        assert result.fraction == pytest.approx(fraction) and result.fraction == pytest.approx(0.5)
        assert result.verified is verified is expected  # 0.5 > 0.5 is False: strict rule
        assert result.detection_threshold == detection_threshold
        assert result.verification_threshold == verification_threshold


def test_verify_uses_stored_thresholds_and_asks_to_calibrate_when_missing(tiny_model, gallery):
    validation_images, input_image = gallery
    tiny_model.thresholds.clear()
    with pytest.raises(ValueError, match="[Cc]alibrate"):
        verify(tiny_model, input_image, validation_images)
    tiny_model.thresholds.update({"detection": 0.5})
    with pytest.raises(ValueError, match="verification"):
        verify(tiny_model, input_image, validation_images)
    tiny_model.thresholds.update({"verification": 0.3})
    result = verify(tiny_model, input_image, validation_images)
    assert (result.detection_threshold, result.verification_threshold) == (0.5, 0.3)
    tiny_model.thresholds.clear()


def test_verify_with_precomputed_embeddings_matches(tiny_model, gallery):
    validation_images, input_image = gallery
    from_images = verify(tiny_model, input_image, validation_images, 0.5, 0.5)
    from_embeddings = verify(tiny_model, input_image, detection_threshold=0.5, verification_threshold=0.5,
                             validation_embeddings=tiny_model.embed(validation_images))
    np.testing.assert_allclose(from_images.similarities, from_embeddings.similarities, rtol=1e-6)


def test_verify_rejects_bad_shapes_and_thresholds(tiny_model, gallery):
    validation_images, input_image = gallery
    with pytest.raises(ValueError, match=r"\(32, 32, 1\).*got \(28, 28, 1\)"):
        verify(tiny_model, np.zeros((28, 28, 1)), validation_images, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 1\).*got \(6, 32, 32, 3\)"):
        verify(tiny_model, input_image, np.zeros((6, 32, 32, 3)), 0.5, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        verify(tiny_model, input_image, validation_images, 0.5, 1.5)
    with pytest.raises(ValueError, match="empty"):
        verify(tiny_model, input_image, np.zeros((0,) + IMAGE_SHAPE), 0.5, 0.5)
    # a grayscale (H, W) image is accepted for a one-channel model
    assert verify(tiny_model, input_image[..., 0], validation_images, 0.5, 0.5).similarities.shape == (6,)


def test_verifier_embeds_gallery_once(tiny_model, gallery, monkeypatch):
    validation_images, input_image = gallery
    verifier = Verifier(tiny_model, validation_images, detection_threshold=0.5, verification_threshold=0.5)
    embedded_sizes = []
    original_embed = tiny_model.embed
    monkeypatch.setattr(tiny_model, "embed", lambda images, *a, **k: embedded_sizes.append(len(images))
                        or original_embed(images, *a, **k))
    first = verifier.verify(input_image)
    second = verifier.verify(validation_images[0])
    assert embedded_sizes == [1, 1]  # only the input images; the gallery was embedded in __init__
    expected = verify(tiny_model, input_image, validation_images, 0.5, 0.5)
    np.testing.assert_allclose(first.similarities, expected.similarities, rtol=1e-5)
    expected_second = verify(tiny_model, validation_images[0], validation_images, 0.5, 0.5)
    np.testing.assert_allclose(second.similarities, expected_second.similarities, rtol=1e-5)


def test_choose_verification_threshold_hand_computed():
    # genuine inputs 0.8, 0.6, 0.3; impostors 0.4, 0.1, 0.0.
    # candidates (strictest first) 1.0, 0.9, 0.7, 0.5, 0.35, 0.2, 0.05:
    # 0.5 -> accepts 0.8, 0.6: 5/6; 0.2 -> accepts 0.8, 0.6, 0.3, 0.4: 5/6; strictest wins
    fractions = [0.8, 0.6, 0.3, 0.4, 0.1, 0.0]
    labels = [1, 1, 1, 0, 0, 0]
    threshold = verification.choose_verification_threshold(fractions, labels)
    assert threshold == pytest.approx(0.5)
    # separable: midway between the lowest genuine and the highest impostor fraction
    assert verification.choose_verification_threshold([1.0, 0.9, 0.2, 0.0], [1, 1, 0, 0]) == pytest.approx(0.55)
    # everyone genuine with fraction 1.0 except an impostor at 1.0 too: 1.0 > t never holds at t = 1
    assert verification.choose_verification_threshold([1.0, 1.0, 1.0], [1, 1, 0]) < 1.0


def test_choose_verification_threshold_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        verification.choose_verification_threshold([0.2, 1.2], [1, 0])
    with pytest.raises(ValueError, match="2 fractions but 3 labels"):
        verification.choose_verification_threshold([0.2, 0.5], [1, 0, 1])


def test_calibrate_verification_threshold_stores_fraction_threshold(tiny_model, gallery):
    validation_images, _ = gallery
    rng = np.random.default_rng(5)
    inputs = np.r_[validation_images[:3], rng.random((3,) + IMAGE_SHAPE).astype("float32")]
    labels = [1, 1, 1, 0, 0, 0]
    # a detection threshold midway between two middle similarities, so float noise cannot flip one
    values = np.unique(tiny_model.similarity_to_library(tiny_model.embed(inputs), tiny_model.embed(validation_images)))
    detection_threshold = float((values[len(values) // 2 - 1] + values[len(values) // 2]) / 2)
    tiny_model.thresholds.clear()
    tiny_model.thresholds["detection"] = detection_threshold
    threshold = verification.calibrate_verification_threshold(tiny_model, inputs, labels, validation_images)
    fractions = np.array([
        verify(tiny_model, image, validation_images, detection_threshold, 0.0).fraction for image in inputs
    ])
    assert 0 < fractions.mean() < 1
    np.testing.assert_allclose(
        verification.verification_fractions(tiny_model, inputs, validation_images), fractions
    )
    assert threshold == verification.choose_verification_threshold(fractions, labels)
    assert tiny_model.thresholds["verification"] == threshold
    tiny_model.thresholds.clear()


def test_verifier_from_folder_loads_model_and_images(tmp_path, tiny_model, gallery, monkeypatch):
    import cv2

    validation_images, input_image = gallery
    model_path = save_model(tiny_model, tmp_path / "model.keras")
    folder = tmp_path / "validation"
    folder.mkdir()
    for index, image in enumerate(validation_images[:4]):
        cv2.imwrite(str(folder / f"{index}.png"), (image[..., 0] * 255).astype(np.uint8))
    (folder / "broken.jpg").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored: not an image extension")

    def read_image(source, image_size=(105, 105), channels=1):
        image = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"cannot read {source}")
        image = cv2.resize(image, (image_size[1], image_size[0]))
        return (image.astype(np.float32) / 255.0)[..., None]

    try:
        from siamese_tf.datasets import read_image as real_read_image  # noqa: F401
    except ImportError:  # datasets.read_image not written yet: stand in for it
        monkeypatch.setitem(sys.modules, "siamese_tf.datasets", types.SimpleNamespace(read_image=read_image))

    with pytest.warns(UserWarning, match="broken.jpg"):
        verifier = Verifier.from_folder(model_path, folder, detection_threshold=0.5, verification_threshold=0.5)
    assert verifier.skipped == 1
    assert verifier.validation_images.shape == (4,) + IMAGE_SHAPE
    result = verifier.verify(input_image)
    assert result.similarities.shape == (4,)
    with pytest.raises(FileNotFoundError, match="missing"):
        Verifier.from_folder(model_path, tmp_path / "missing")
