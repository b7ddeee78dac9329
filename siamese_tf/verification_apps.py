"""The face-verification app's logic: enrol, verify, identify and forget, over an encrypted gallery.

:class:`FaceVerificationApp` joins a calibrated :class:`~siamese_tf.models.SiameseModel` and a
:class:`~siamese_tf.galleries.Gallery`. Every camera frame goes through one face crop: the largest
face OpenCV's detector finds, grown by ``face_margin``, kept as an RGB crop in the model input's
aspect ratio, :data:`STORED_CROP_SIDE` pixels on its shorter side (what the gallery stores,
encrypted), then turned into the model's input exactly as the loaders do (float in [0, 1], gray
when the model is gray, ``INTER_AREA`` resize). :data:`DEFAULT_FACE_MARGIN` makes that crop match
the LFW centre crop the face models train on: on deep-funneled LFW images the detector's box is
116 px wide (median of 200) and centred, and the centre crop is 120 px.

Decisions follow the seed apps' two-threshold rule (:mod:`siamese_tf.verification`), both thresholds
read from the model file: a gallery image is a *detection* when its similarity to the frame is above
the detection threshold, and the person is *verified* when the fraction of detections is above the
verification threshold. Label convention: 1 = same person.

The web page around it is :mod:`siamese_tf.web_apps`.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.errors import SiameseDataError
from siamese_tf.galleries import Gallery

if TYPE_CHECKING:
    from siamese_tf.models import SiameseModel

__all__ = [
    "DEFAULT_FACE_MARGIN",
    "DEFAULT_ENROL_IMAGES",
    "STORED_CROP_SIDE",
    "EnrolResult",
    "FaceVerificationApp",
    "IdentifyResult",
    "NoFaceError",
    "VerifyResult",
    "check_app_model",
    "folder_of_frames",
    "model_fingerprint",
]

DEFAULT_FACE_MARGIN = 0.02
STORED_CROP_SIDE = 128
DEFAULT_ENROL_IMAGES = 10
# A camera frame larger than this (in pixels) is refused: no webcam sends one, and detection on it is slow.
MAX_FRAME_PIXELS = 4096 * 4096


class NoFaceError(SiameseDataError):
    """The image holds no face that the detector finds."""


def _rgb_uint8(frame):
    """An RGB(A) or gray frame, uint8 or float in [0, 1] -> RGB uint8 (the browser sends RGB)."""
    from siamese_tf.captures import to_uint8

    frame = to_uint8(frame)
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.shape[2] == 1:
        return np.repeat(frame, 3, axis=2)
    return np.ascontiguousarray(frame[..., :3])


def check_app_model(model: object, source: str = "the model") -> SiameseModel:
    """``model`` if it is a SiameseModel on images with both calibrated thresholds, else a clear ValueError."""
    from siamese_tf.models import SiameseModel

    if not isinstance(model, SiameseModel):
        raise ValueError(f"{source} is a {type(model).__name__}, not a siamese_tf SiameseModel (an embedding network "
                         f"and a similarity head): train one with `python -m siamese_tf train` or `make demo`")
    shape = tuple(model.input_image_shape)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ValueError(f"{source} takes inputs of shape {shape}, not images (height, width, 1 or 3 channels)")
    missing = [key for key in ("detection", "verification") if key not in (model.thresholds or {})]
    if missing:
        raise ValueError(f"{source} has no calibrated {' and '.join(missing)} threshold (stored: "
                         f"{sorted(model.thresholds or {})}); the app only uses thresholds chosen on validation "
                         f"people: train it with `python -m siamese_tf train` (it stores both) or calibrate it "
                         f"with siamese_tf.metrics.calibrate and verification.calibrate_verification_threshold")
    return model


def model_fingerprint(model: SiameseModel) -> str:
    """SHA-256 of the embedding's weights: stored embeddings from another model are recomputed."""
    digest = hashlib.sha256()
    for weight in model.embedding.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


@dataclass
class EnrolResult:
    """What :meth:`FaceVerificationApp.enrol` stored: images added, frames without a face, gallery size."""

    name: str
    stored: int
    frames_without_face: int
    gallery_size: int

    @property
    def message(self) -> str:
        skipped = f"; {self.frames_without_face} frame(s) had no face and were skipped" if self.frames_without_face \
            else ""
        return (f"Enrolled {self.name}: {self.stored} image(s) stored, encrypted; "
                f"{self.gallery_size} in the gallery{skipped}.")


@dataclass
class VerifyResult:
    """A verification: the verdict, the fraction of gallery images detected, both thresholds."""

    name: str
    verified: bool
    fraction: float
    detections: int
    gallery_size: int
    detection_threshold: float
    verification_threshold: float
    similarities: np.ndarray = field(repr=False)
    seconds: float = 0.0

    @property
    def matched(self) -> np.ndarray:
        """Indices of the gallery images above the detection threshold, most similar first."""
        order = np.argsort(-self.similarities)
        return order[self.similarities[order] > self.detection_threshold]

    @property
    def message(self) -> str:
        verdict = "VERIFIED" if self.verified else "NOT VERIFIED"
        return (f"{verdict}: {self.name}. {self.detections} of {self.gallery_size} gallery images match "
                f"(fraction {self.fraction:.2f}; verified above {self.verification_threshold:.2f}); a gallery "
                f"image matches above similarity {self.detection_threshold:.3f}.")


@dataclass
class IdentifyResult:
    """An identification: the best enrolled person whose fraction passes, or None, and every candidate."""

    name: str | None
    fraction: float
    candidates: list[tuple[str, float, float]]  # (name, fraction, best similarity), best first
    verification_threshold: float
    seconds: float = 0.0

    @property
    def message(self) -> str:
        if self.name is None:
            best = (f" (closest: {self.candidates[0][0]}, fraction {self.candidates[0][1]:.2f})"
                    if self.candidates else "")
            return (f"UNKNOWN: nobody enrolled passes the verification threshold "
                    f"{self.verification_threshold:.2f}{best}.")
        return f"IDENTIFIED: {self.name} (fraction {self.fraction:.2f} above {self.verification_threshold:.2f})."


class FaceVerificationApp:
    """Enrol, verify, identify and forget people with one model and one encrypted gallery.

    Args:
        model: a :class:`~siamese_tf.models.SiameseModel` with ``thresholds["detection"]`` and
            ``thresholds["verification"]`` (chosen on validation people, stored in the model file).
        gallery: the encrypted :class:`~siamese_tf.galleries.Gallery`.
        face_margin: how much the detected face box grows on every side (a fraction of its size).

    Embeddings of every enrolled person are kept in memory (decrypted once) and, encrypted, in the
    gallery; a template index over all of them answers :meth:`identify`.
    """

    def __init__(self, model: SiameseModel, gallery: Gallery, face_margin: float = DEFAULT_FACE_MARGIN) -> None:
        self.model = check_app_model(model)
        self.gallery = gallery
        if not 0 <= float(face_margin) <= 2:
            raise ValueError(f"face_margin must lie in [0, 2], got {face_margin!r}")
        self.face_margin = float(face_margin)
        self.detection_threshold = float(model.thresholds["detection"])
        self.verification_threshold = float(model.thresholds["verification"])
        self.fingerprint = model_fingerprint(model)
        self._embeddings: dict[str, np.ndarray] = {}
        self._index = None
        self._index_names: list[str] = []
        self._index_owners = np.zeros(0, np.int64)
        self.warm_up()

    @classmethod
    def from_paths(cls, model_path: str | os.PathLike, gallery_dir: str | os.PathLike,
                   key: str | bytes | None = None, key_file: str | os.PathLike | None = None,
                   face_margin: float = DEFAULT_FACE_MARGIN) -> FaceVerificationApp:
        """Load the model file and open (or create) the gallery folder."""
        from siamese_tf.models import load_model

        model = check_app_model(load_model(model_path), str(model_path))
        return cls(model, Gallery(gallery_dir, key=key, key_file=key_file), face_margin)

    def warm_up(self) -> None:
        """Run the model once, so that the first click does not pay for building its function."""
        self.model.embed(np.zeros((1, *self.model.input_image_shape), np.float32))

    # --- one face crop for everything ---
    def face_crop(self, frame: ArrayLike) -> np.ndarray:
        """The stored face crop of a camera frame: RGB uint8 of :attr:`stored_crop_size`.

        Raises:
            NoFaceError: the detector finds no face.
            ValueError: the frame is not an image.
        """
        import cv2

        from siamese_tf.captures import detect_face, face_region

        frame = np.asarray(frame)
        if frame.ndim not in (2, 3) or frame.size == 0 or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
            raise ValueError(f"a camera frame must be an image (H, W) or (H, W, 1/3/4); got shape {frame.shape}")
        if frame.shape[0] * frame.shape[1] > MAX_FRAME_PIXELS:
            raise ValueError(f"a camera frame of {frame.shape[1]}x{frame.shape[0]} pixels is too large "
                             f"(at most {MAX_FRAME_PIXELS} pixels)")
        frame = _rgb_uint8(frame)
        box = detect_face(frame)
        if box is None:
            raise NoFaceError("no face found in the camera image: face the camera, in good light, not too far")
        height, width = self.stored_crop_size
        region = face_region(frame, box, (height, width), self.face_margin)
        return cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA)

    @property
    def stored_crop_size(self) -> tuple[int, int]:
        """(height, width) of a stored crop: the model input's aspect ratio, the shorter side
        :data:`STORED_CROP_SIDE` pixels (enough to embed again for a larger model later)."""
        height, width = self.model.input_image_shape[:2]
        scale = STORED_CROP_SIDE / min(height, width)
        return round(height * scale), round(width * scale)

    def model_inputs(self, crops: ArrayLike) -> np.ndarray:
        """Stored crops (N, S, S, 3 or 1) uint8 -> the model's inputs, as the image loaders make them."""
        import cv2

        height, width, channels = self.model.input_image_shape
        inputs = []
        for crop in np.asarray(crops):
            image = crop.astype(np.float32) / 255.0
            if channels == 1 and image.shape[-1] == 3:
                image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            elif channels == 3 and image.shape[-1] == 1:
                image = cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2RGB)
            if image.shape[:2] != (height, width):
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            inputs.append(image.reshape(height, width, channels))
        return np.stack(inputs).astype(np.float32)

    def embed_crops(self, crops: ArrayLike) -> np.ndarray:
        """Embeddings (N, D) of stored crops."""
        return self.model.embed(self.model_inputs(crops))

    # --- the gallery's embeddings and the index ---
    def embeddings_of(self, name: str) -> np.ndarray:
        """The embeddings of ``name``'s gallery (from memory, the encrypted store, or recomputed)."""
        if name not in self._embeddings:
            stored = self.gallery.load_embeddings(name, self.fingerprint)
            if stored is None:  # new model, or never stored: embed the stored crops again
                stored = self.embed_crops(self.gallery.load_images(name))
                self.gallery.save_embeddings(name, stored, self.fingerprint)
            self._embeddings[name] = stored
        return self._embeddings[name]

    def rebuild_index(self) -> None:
        """Build the template index over everyone enrolled (done on the first identification after a change)."""
        from siamese_tf.indexes import build_index

        names = self.gallery.names()
        if not names:
            self._index, self._index_names, self._index_owners = None, [], np.zeros(0, np.int64)
            return
        blocks = [self.embeddings_of(name) for name in names]
        self._index = build_index(self.model, np.concatenate(blocks))
        # Which person each index entry belongs to: positions in ``_index_names``, fixed until the next change.
        self._index_names = names
        self._index_owners = np.repeat(np.arange(len(names)), [len(block) for block in blocks])

    def _invalidate(self, name):
        self._embeddings.pop(name, None)
        self._index = None

    # --- the four actions ---
    def enrol(self, name: str, frames: ArrayLike | list[np.ndarray]) -> EnrolResult:
        """Add the faces in ``frames`` to ``name``'s gallery (enrolling them when new).

        Frames without a face are skipped and counted; if none has a face, nothing is stored.
        """
        name = Gallery.check_name(name)
        frames = list(frames) if not isinstance(frames, np.ndarray) or frames.ndim == 4 else [frames]
        if not frames:
            raise ValueError("enrol needs at least one camera frame")
        crops, without_face = [], 0
        for frame in frames:
            try:
                crops.append(self.face_crop(frame))
            except NoFaceError:
                without_face += 1
        if not crops:
            raise NoFaceError(f"none of the {len(frames)} frame(s) shows a face the detector finds; nothing was "
                              f"stored for {name}")
        crops = np.stack(crops)
        new_embeddings = self.embed_crops(crops)
        old = self.embeddings_of(name) if self.gallery.person_id(name) else np.zeros((0, new_embeddings.shape[1]))
        self.gallery.add_images(name, crops)
        embeddings = np.concatenate([old, new_embeddings]).astype(np.float32)
        self.gallery.save_embeddings(name, embeddings, self.fingerprint)
        self._invalidate(name)
        self._embeddings[name] = embeddings
        self.gallery.log_event("enrol", self.gallery.person_id(name), images=len(crops),
                               frames_without_face=without_face)
        return EnrolResult(name, len(crops), without_face, len(embeddings))

    def verify(self, name: str, frame: ArrayLike) -> VerifyResult:
        """Is the face in ``frame`` the enrolled ``name``? (KeyError when ``name`` is not enrolled.)"""
        from siamese_tf.verification import verify

        started = time.perf_counter()
        name = Gallery.check_name(name)
        person_id = self.gallery.person_id(name)
        if person_id is None:
            enrolled = ", ".join(self.gallery.names()) or "nobody yet"
            raise KeyError(f"{name!r} is not enrolled (enrolled: {enrolled})")
        # The seeds' two-threshold rule, as everywhere in the package.
        decision = verify(self.model, self.model_inputs(self.face_crop(frame)[None])[0],
                          detection_threshold=self.detection_threshold,
                          verification_threshold=self.verification_threshold,
                          validation_embeddings=self.embeddings_of(name))
        result = VerifyResult(name, decision.verified, decision.fraction, decision.detections,
                              len(decision.similarities), decision.detection_threshold,
                              decision.verification_threshold, decision.similarities, time.perf_counter() - started)
        self.gallery.log_event("verify", person_id, verified=result.verified, fraction=round(result.fraction, 4))
        return result

    def identify(self, frame: ArrayLike) -> IdentifyResult:
        """Who, among everyone enrolled, is the face in ``frame``? (None when nobody passes.)"""
        started = time.perf_counter()
        if self._index is None:
            self.rebuild_index()
        if self._index is None:
            raise KeyError("nobody is enrolled yet: enrol someone first")
        query = self.embed_crops(self.face_crop(frame)[None])
        similarities = self._index.similarities(query)[0]
        detected = similarities > self.detection_threshold
        names, owners = self._index_names, self._index_owners
        fractions = np.bincount(owners, weights=detected, minlength=len(names)) / np.bincount(owners)
        best = np.full(len(names), -np.inf)
        np.maximum.at(best, owners, similarities)
        order = np.lexsort((-best, -fractions))
        candidates = [(names[i], float(fractions[i]), float(best[i])) for i in order[:5]]
        winner = candidates[0] if candidates and candidates[0][1] > self.verification_threshold else None
        result = IdentifyResult(winner[0] if winner else None, winner[1] if winner else 0.0, candidates,
                                self.verification_threshold, time.perf_counter() - started)
        self.gallery.log_event("identify", self.gallery.person_id(winner[0]) if winner else None,
                               identified=winner is not None, candidates=len(names))
        return result

    def forget(self, name: str) -> dict[str, int | str]:
        """Remove ``name``'s images, embeddings and index entries; returns what was removed."""
        name = Gallery.check_name(name)
        removed = self.gallery.forget(name)
        self._invalidate(name)
        return removed

    def gallery_images(self, name: str) -> np.ndarray:
        """``name``'s stored crops (decrypted in memory only), in the order of their embeddings."""
        return self.gallery.load_images(name)

    def __repr__(self) -> str:
        return (f"FaceVerificationApp(model input {self.model.input_image_shape}, detection "
                f"{self.detection_threshold:.4f}, verification {self.verification_threshold:.2f}, {self.gallery!r})")


def folder_of_frames(folder: str | os.PathLike) -> list[np.ndarray]:
    """RGB uint8 frames from the image files of ``folder`` (sorted), for enrolling without a camera."""
    from siamese_tf.captures import FrameSource

    if not Path(folder).is_dir():
        raise FileNotFoundError(f"no such folder of images: {folder}")
    with FrameSource(folder) as frames:
        return list(frames)
