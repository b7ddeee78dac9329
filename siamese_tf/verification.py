"""Face verification with a gallery of validation images (the rule of the seed face apps).

An input image is compared with every validation image of the enrolled person:

- a validation image is a *detection* when ``similarity > detection_threshold``
  (similarity scale, higher = same; see :func:`siamese_tf.metrics.calibrate`);
- the input is *verified* when ``detections / number of validation images >
  verification_threshold`` (a fraction in [0, 1]; see :func:`choose_verification_threshold`).

Both thresholds default to the calibrated values stored in ``model.thresholds`` (``"detection"``
and ``"verification"``), which are saved with the model. Labels: 1 = same person.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.errors import SiameseDataError

if TYPE_CHECKING:
    from siamese_tf.models import SiameseModel

__all__ = [
    "IMAGE_EXTENSIONS",
    "VerificationResult",
    "Verifier",
    "calibrate_verification_threshold",
    "choose_verification_threshold",
    "verification_fractions",
    "verify",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")


@dataclass
class VerificationResult:
    """Outcome of :func:`verify` for one input image.

    Attributes:
        verified: True when ``fraction > verification_threshold``.
        fraction: detections / number of validation images.
        detections: how many validation images had ``similarity > detection_threshold``.
        similarities: (M,) similarity of the input to each validation image (higher = same).
        detection_threshold: the per-image threshold used (similarity scale).
        verification_threshold: the fraction threshold used.
    """

    verified: bool
    fraction: float
    detections: int
    similarities: np.ndarray = field(repr=False)
    detection_threshold: float
    verification_threshold: float


def _stored_threshold(model, key, given):
    if given is not None:
        return _as_number(given, f"{key}_threshold")
    thresholds = getattr(model, "thresholds", None) or {}
    if key not in thresholds:
        raise ValueError(
            f"No {key} threshold given and the model has none stored (model.thresholds has "
            f"{sorted(thresholds)}). Calibrate first: siamese_tf.metrics.calibrate(model, ...) sets "
            f"'detection', siamese_tf.verification.calibrate_verification_threshold(...) sets "
            f"'verification'; or pass {key}_threshold=..."
        )
    return _as_number(thresholds[key], f"model.thresholds[{key!r}]")


def _as_number(value, name):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _check_verification_threshold(value):
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"verification_threshold is a fraction of validation images and must lie in [0, 1]; got {value}"
        )
    return value


def _check_images(model, images, name, single=False):
    """Images as float32 (N, H, W, C) matching the model input; a single image may omit N, and a
    one-channel model also takes (H, W)."""
    expected = tuple(model.input_image_shape)
    images = np.asarray(images, dtype=np.float32)
    given_shape = images.shape
    if expected[-1] == 1 and images.ndim == (2 if single else 3) and tuple(images.shape[-2:]) == expected[:2]:
        images = images[..., None]
    if single and images.ndim == len(expected):
        images = images[None]
    if images.ndim != len(expected) + 1 or tuple(images.shape[1:]) != expected or (single and len(images) != 1):
        wanted = f"({', '.join(map(str, expected))})" if single else f"(N, {', '.join(map(str, expected))})"
        raise ValueError(f"{name} must have shape {wanted} for this model; got {given_shape}")
    return images


def _embed_validation(model, validation_images, validation_embeddings):
    if validation_embeddings is not None:
        if validation_images is not None:
            raise ValueError("Pass either validation_images or validation_embeddings, not both")
        validation_embeddings = np.asarray(validation_embeddings, dtype=np.float32)
        if validation_embeddings.ndim != 2 or len(validation_embeddings) == 0:
            raise ValueError(
                f"validation_embeddings must be a non-empty (M, D) array; got shape {validation_embeddings.shape}"
            )
        return validation_embeddings
    if validation_images is None:
        raise ValueError("verify needs validation_images (or precomputed validation_embeddings)")
    validation_images = _check_images(model, validation_images, "validation_images")
    if len(validation_images) == 0:
        raise ValueError("validation_images is empty: enroll at least one validation image")
    return model.embed(validation_images)


def _decide(similarities, detection_threshold, verification_threshold):
    detections = int(np.sum(similarities > detection_threshold))
    fraction = detections / len(similarities)
    return VerificationResult(
        verified=bool(fraction > verification_threshold),
        fraction=float(fraction),
        detections=detections,
        similarities=similarities,
        detection_threshold=float(detection_threshold),
        verification_threshold=float(verification_threshold),
    )


def verify(model: SiameseModel, input_image: ArrayLike, validation_images: ArrayLike | None = None,
           detection_threshold: float | None = None, verification_threshold: float | None = None,
           validation_embeddings: ArrayLike | None = None) -> VerificationResult:
    """Verify one input image against a gallery of validation images of one person.

    Args:
        model: a :class:`siamese_tf.models.SiameseModel`.
        input_image: (H, W, C) float32 in [0, 1] matching the model input ((1, H, W, C) and, for
            one-channel models, (H, W) are accepted too).
        validation_images: (M, H, W, C) images of the enrolled person; or pass
            ``validation_embeddings`` (M, D) from ``model.embed`` to skip re-embedding them.
        detection_threshold: similarity above which a validation image counts as a detection;
            default ``model.thresholds["detection"]``.
        verification_threshold: fraction of detections above which the input is verified;
            default ``model.thresholds["verification"]``.

    Returns:
        A :class:`VerificationResult`.
    """
    detection_threshold = _stored_threshold(model, "detection", detection_threshold)
    verification_threshold = _check_verification_threshold(
        _stored_threshold(model, "verification", verification_threshold)
    )
    input_image = _check_images(model, input_image, "input_image", single=True)
    library = _embed_validation(model, validation_images, validation_embeddings)
    similarities = np.asarray(model.similarity_to_library(model.embed(input_image), library)).reshape(-1)
    return _decide(similarities, detection_threshold, verification_threshold)


def verification_fractions(model: SiameseModel, input_images: ArrayLike, validation_images: ArrayLike | None = None,
                           detection_threshold: float | None = None,
                           validation_embeddings: ArrayLike | None = None) -> np.ndarray:
    """Detection fraction of each input image (N, H, W, C) against one validation gallery.

    All inputs are embedded in one go; returns an (N,) array of
    ``count(similarity > detection_threshold) / M``.
    """
    detection_threshold = _stored_threshold(model, "detection", detection_threshold)
    input_images = _check_images(model, input_images, "input_images")
    if len(input_images) == 0:
        raise ValueError("input_images is empty")
    library = _embed_validation(model, validation_images, validation_embeddings)
    similarities = np.asarray(model.similarity_to_library(model.embed(input_images), library))
    return np.mean(similarities > detection_threshold, axis=1)


def choose_verification_threshold(fractions: ArrayLike, labels: ArrayLike) -> float:
    """Fraction threshold with the best accuracy under the rule ``verified = fraction > threshold``.

    ``fractions`` are detection fractions in [0, 1] (see :func:`verification_fractions`);
    ``labels`` 1 = the input is the enrolled person, 0 = someone else. Candidates lie midway
    between neighbouring observed fractions (with 0 and 1 as outer neighbours) plus 1.0 (reject
    everyone); among equally accurate thresholds the highest (strictest) wins.
    """
    from siamese_tf.metrics import check_scores_and_labels

    fractions, labels = check_scores_and_labels(fractions, labels, similarities_name="fractions")
    if np.any((fractions < 0) | (fractions > 1)):
        raise ValueError(f"fractions must lie in [0, 1]; got values from {fractions.min()} to {fractions.max()}")
    values = np.unique(np.r_[0.0, fractions, 1.0])
    candidates = np.r_[1.0, ((values[:-1] + values[1:]) / 2.0)[::-1]]  # strictest first
    verified = fractions[None, :] > candidates[:, None]
    accuracies = np.mean(verified == (labels[None, :] == 1), axis=1)
    return float(candidates[int(np.argmax(accuracies))])


def calibrate_verification_threshold(model: SiameseModel, input_images: ArrayLike, labels: ArrayLike,
                                     validation_images: ArrayLike | None = None,
                                     detection_threshold: float | None = None,
                                     validation_embeddings: ArrayLike | None = None) -> float:
    """Choose and store ``model.thresholds["verification"]`` from labelled input images.

    ``input_images`` (N, H, W, C) are compared with one validation gallery; ``labels`` say whether
    each input shows the enrolled person (1) or not (0). The detection threshold defaults to the
    calibrated ``model.thresholds["detection"]``. Returns the chosen fraction threshold.
    """
    fractions = verification_fractions(model, input_images, validation_images, detection_threshold,
                                       validation_embeddings)
    threshold = choose_verification_threshold(fractions, labels)
    model.thresholds["verification"] = threshold
    return threshold


def _image_files(folder):
    return sorted(path for path in Path(folder).iterdir()
                  if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS)


class Verifier:
    """A model plus an enrolled gallery, embedded once; :meth:`verify` checks one input image.

    Args:
        model: a :class:`siamese_tf.models.SiameseModel`.
        validation_images: (M, H, W, C) images of the enrolled person.
        detection_threshold, verification_threshold: override the model's stored thresholds.
    """

    def __init__(self, model: SiameseModel, validation_images: ArrayLike, detection_threshold: float | None = None,
                 verification_threshold: float | None = None) -> None:
        self.model = model
        self.validation_images = _check_images(model, validation_images, "validation_images")
        if len(self.validation_images) == 0:
            raise ValueError("validation_images is empty: enroll at least one validation image")
        self.validation_embeddings = model.embed(self.validation_images)
        self.detection_threshold = detection_threshold
        self.verification_threshold = verification_threshold
        self.skipped = 0

    def verify(self, image: ArrayLike) -> VerificationResult:
        """Verify one image (H, W, C); returns a :class:`VerificationResult`."""
        return verify(
            self.model, image,
            detection_threshold=self.detection_threshold,
            verification_threshold=self.verification_threshold,
            validation_embeddings=self.validation_embeddings,
        )

    @classmethod
    def from_folder(cls, model_path: str | os.PathLike, folder: str | os.PathLike,
                    detection_threshold: float | None = None,
                    verification_threshold: float | None = None) -> Verifier:
        """Load a saved model and enroll every image in ``folder``.

        Images are read with :func:`siamese_tf.datasets.read_image` at the model's input size
        and channels. Unreadable files are skipped with a warning and counted in ``.skipped``.
        """
        from siamese_tf.datasets import read_image
        from siamese_tf.models import load_model

        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"Validation image folder not found: {folder}")
        model = load_model(model_path)
        height, width, channels = model.input_image_shape
        images, skipped = [], 0
        for path in _image_files(folder):
            try:
                images.append(read_image(path, image_size=(height, width), channels=channels))
            except (ValueError, OSError) as error:
                skipped += 1
                warnings.warn(f"Skipping unreadable validation image {path}: {error}", stacklevel=2)
        if not images:
            raise SiameseDataError(
                f"No readable images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}"
                + (f"; skipped {skipped} unreadable file(s)" if skipped else "")
            )
        verifier = cls(model, np.stack(images), detection_threshold, verification_threshold)
        verifier.skipped = skipped
        return verifier
