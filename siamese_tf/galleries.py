"""Encrypted galleries of enrolled people: face images and embeddings protected at rest.

Faces are biometric data. A :class:`Gallery` keeps every stored face crop, embedding and name
encrypted with one symmetric key (``cryptography``'s Fernet: AES-128-CBC with an HMAC-SHA256,
so a wrong key or a changed byte is detected, never decoded into garbage). Layout under the
gallery folder (folders 0700, files 0600)::

    gallery.key          the key, created on first use (only when no key is given elsewhere)
    check.bin            a known text encrypted with the key: tells a wrong key from a damaged file
    events.log           append-only JSON lines: time, event, a random person id, counts;
                         never an image or a name
    people/<id>/         one folder per person; <id> is random, the name is stored encrypted
        person.bin       {"name": ...}
        images/<uuid>.bin    one face crop each (PNG bytes, encrypted)
        embeddings.bin       the crops' embeddings and the model's fingerprint (encrypted)

The key comes from, in order: the ``key`` argument, the ``SIAMESE_TF_GALLERY_KEY`` environment
variable, the ``key_file`` argument, ``<gallery>/gallery.key``. Keeping the key in the gallery
folder protects against copies of the images, not against someone who copies the whole folder:
put it in the environment variable or a key file elsewhere for that.

Every file is written to a hidden temporary name and renamed into place, so a crash leaves either
the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.errors import SiameseDataError
from siamese_tf.settings import PRIVATE_FOLDER_MODE, make_private, write_private_atomic

__all__ = [
    "GALLERY_KEY_VARIABLE",
    "Gallery",
    "GalleryKeyError",
    "PersonRecord",
    "generate_key",
]

GALLERY_KEY_VARIABLE = "SIAMESE_TF_GALLERY_KEY"
KEY_FILE_NAME = "gallery.key"
CHECK_FILE_NAME = "check.bin"
EVENTS_FILE_NAME = "events.log"
CHECK_TEXT = b"siamese_tf gallery v1"
EVENTS = ("enrol", "verify", "identify", "forget")


class GalleryKeyError(SiameseDataError):
    """The key does not open this gallery (a wrong key), or no key is available for it."""


def generate_key() -> str:
    """A new random Fernet key (URL-safe base64 text), e.g. for ``SIAMESE_TF_GALLERY_KEY``."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def _fernet(key, source):
    from cryptography.fernet import Fernet

    try:
        return Fernet(key.encode("ascii") if isinstance(key, str) else key)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise GalleryKeyError(f"the gallery key from {source} is not a valid key (32 url-safe base64-encoded bytes; "
                              f"make one with siamese_tf.galleries.generate_key())") from None


def _write_private(path, data):
    """Write ``data`` to ``path`` (0600) through a hidden temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_private_atomic(path, data)


def _private_folder(path):
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
    return make_private(path)


def _encode_png(image):
    import cv2

    from siamese_tf.captures import to_uint8

    image = to_uint8(np.asarray(image))
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim != 2:
        raise ValueError(f"a gallery image must have shape (H, W), (H, W, 1) or (H, W, 3); got {image.shape}")
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"OpenCV cannot encode an image of shape {image.shape} as PNG")
    return encoded.tobytes()


def _decode_png(data, channels):
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("not a PNG image")
    if image.ndim == 2:
        image = image[..., None]
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 1 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
    elif channels == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image


@dataclass(frozen=True)
class PersonRecord:
    """One enrolled person: the random folder id, the name, and how many images are stored."""

    person_id: str
    name: str
    num_images: int


class Gallery:
    """A folder of enrolled people, every image, embedding and name encrypted at rest.

    Args:
        root: the gallery folder (created 0700 when missing).
        key: a Fernet key (text or bytes); default from ``SIAMESE_TF_GALLERY_KEY``, then ``key_file``.
        key_file: a file holding the key; default ``<root>/gallery.key``, created with mode 0600 for
            a new gallery.

    Raises:
        GalleryKeyError: the key does not open an existing gallery, or an existing gallery's key
            file is missing.
    """

    def __init__(self, root: str | os.PathLike, key: str | bytes | None = None,
                 key_file: str | os.PathLike | None = None) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise SiameseDataError(f"gallery folder {self.root} is a file")
        check_path = self.root / CHECK_FILE_NAME
        is_new = not check_path.exists()
        key, source = self._find_key(key, key_file, is_new)
        self._fernet = _fernet(key, source)
        self.key_source = source
        _private_folder(self.root)
        _private_folder(self.root / "people")
        if is_new:
            _write_private(check_path, self._fernet.encrypt(CHECK_TEXT))
        else:
            self._check_key(check_path, source)
        self.skipped: list[str] = []
        self._names: dict[str, str] = {}

    # --- the key ---
    def _find_key(self, key, key_file, is_new):
        if key is not None:
            return key, "the key argument"
        if os.environ.get(GALLERY_KEY_VARIABLE):
            return os.environ[GALLERY_KEY_VARIABLE], f"${GALLERY_KEY_VARIABLE}"
        path = Path(key_file) if key_file is not None else self.root / KEY_FILE_NAME
        if path.is_file():
            return path.read_bytes().strip(), str(path)
        if not is_new:
            raise GalleryKeyError(f"the gallery {self.root} exists but its key is missing: {path} is not there and "
                                  f"${GALLERY_KEY_VARIABLE} is not set; without the key its images cannot be read")
        key = generate_key().encode("ascii")
        _private_folder(path.parent)
        _write_private(path, key + b"\n")
        return key, str(path)

    def _check_key(self, check_path, source):
        from cryptography.fernet import InvalidToken

        try:
            text = self._fernet.decrypt(check_path.read_bytes())
        except InvalidToken:
            raise GalleryKeyError(f"wrong key for the gallery {self.root}: the key from {source} does not open "
                                  f"{check_path.name}; nothing was read or changed") from None
        if text != CHECK_TEXT:
            raise GalleryKeyError(f"{check_path} holds {text[:40]!r}, not a siamese_tf gallery check")

    # --- encrypted files ---
    def _write(self, path, data):
        return _write_private(path, self._fernet.encrypt(data))

    def _read(self, path):
        """Decrypted bytes of ``path``; a damaged file is a SiameseDataError naming it."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(path.read_bytes())
        except InvalidToken:
            # The key opened check.bin, so this file itself was changed or cut short.
            raise SiameseDataError(f"{path} is damaged (it does not decrypt with this gallery's key)") from None

    # --- people ---
    def _person_folders(self):
        people = self.root / "people"
        return sorted(path for path in people.iterdir() if path.is_dir() and not path.name.startswith("."))

    def _name_of(self, folder):
        return json.loads(self._read(folder / "person.bin"))["name"]

    def _records(self):
        """(id, name) of every person whose record opens; damaged ones are skipped with a warning.

        Names are decrypted once per folder and kept while the folder exists (listing the folder is
        cheap; decrypting a thousand records for every click is not), so a ``forget`` from another
        process is still seen at once.
        """
        records = []
        folders = self._person_folders()
        present = {folder.name for folder in folders}
        self._names = {person_id: name for person_id, name in self._names.items() if person_id in present}
        for folder in folders:
            if folder.name not in self._names:
                try:
                    self._names[folder.name] = self._name_of(folder)
                except (SiameseDataError, FileNotFoundError, ValueError, KeyError) as error:
                    warnings.warn(f"skipping a person record: {error}", stacklevel=3)
                    continue
            records.append((folder.name, self._names[folder.name]))
        return records

    def people(self) -> list[PersonRecord]:
        """Everyone enrolled, sorted by name."""
        return sorted((PersonRecord(person_id, name, len(list((self.root / "people" / person_id / "images")
                                                              .glob("*.bin"))))
                       for person_id, name in self._records()), key=lambda record: record.name)

    def names(self) -> list[str]:
        """The enrolled names, sorted (without counting images, unlike :meth:`people`)."""
        return sorted(name for _, name in self._records())

    def person_id(self, name: str) -> str | None:
        """The random folder id of ``name``, or None when nobody of that name is enrolled."""
        for person_id, stored in self._records():
            if stored == name:
                return person_id
        return None

    def _folder(self, name):
        person_id = self.person_id(name)
        if person_id is None:
            enrolled = ", ".join(self.names()) or "nobody"
            raise KeyError(f"{name!r} is not enrolled in {self.root} (enrolled: {enrolled})")
        return self.root / "people" / person_id

    @staticmethod
    def check_name(name: str) -> str:
        """A person's name: non-empty text of at most 100 characters, stripped of outer spaces."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a person's name must be non-empty text, got {name!r}")
        if len(name.strip()) > 100:
            raise ValueError(f"a person's name must be at most 100 characters, got {len(name.strip())}")
        return name.strip()

    def add_images(self, name: str, images: ArrayLike) -> int:
        """Store face crops of ``name`` (enrolling them when new); returns how many were stored.

        ``images`` is one (H, W, C) image or a batch (N, H, W, C), uint8 or float in [0, 1]. All of
        them are encrypted and written before the person's record appears, so a failure half-way
        leaves no half-enrolled person.
        """
        name = self.check_name(name)
        images = np.asarray(images)
        if images.ndim in (2, 3) and not (images.ndim == 3 and images.shape[-1] not in (1, 3)):
            images = images[None]
        if images.ndim not in (3, 4) or len(images) == 0:
            raise ValueError(f"images must be one image (H, W, C) or a batch (N, H, W, C); got shape {images.shape}")
        encoded = [_encode_png(image) for image in images]  # fails before anything is written
        folder = self.root / "people" / (self.person_id(name) or uuid.uuid4().hex)
        is_new = not folder.exists()
        staging = folder if not is_new else self.root / "people" / f".new-{folder.name}"
        _private_folder(staging)
        _private_folder(staging / "images")
        # Numbered names keep the images in enrolment order, the order of their embeddings.
        first = len(list((staging / "images").glob("*.bin")))
        try:
            for number, data in enumerate(encoded, start=first):
                self._write(staging / "images" / f"{number:06d}-{uuid.uuid4().hex}.bin", data)
            if is_new:
                self._write(staging / "person.bin", json.dumps({"name": name}).encode("utf-8"))
                os.replace(staging, folder)
        except BaseException:
            if is_new:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        return len(encoded)

    def load_images(self, name: str, channels: int | None = None) -> np.ndarray:
        """The stored crops of ``name`` as uint8 (N, H, W, C); damaged files are skipped and listed in ``skipped``.

        ``channels`` (1 or 3) converts gray and colour; default: as stored.
        """
        folder = self._folder(name)
        images = []
        for path in sorted((folder / "images").glob("*.bin")):
            try:
                images.append(_decode_png(self._read(path), channels))
            except (SiameseDataError, ValueError) as error:
                self.skipped.append(str(path))
                warnings.warn(f"skipping a stored image of {name!r}: {error}", stacklevel=2)
        if not images:
            raise SiameseDataError(f"no readable stored image of {name!r} in {folder}")
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise SiameseDataError(f"the stored images of {name!r} differ in shape: {sorted(shapes)}")
        return np.stack(images)

    def save_embeddings(self, name: str, embeddings: ArrayLike, fingerprint: str) -> None:
        """Store the embeddings of ``name``'s images, tagged with the model's ``fingerprint``."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) == 0:
            raise ValueError(f"embeddings must be a non-empty (N, D) array; got shape {embeddings.shape}")
        buffer = io.BytesIO()
        np.savez(buffer, embeddings=embeddings, fingerprint=np.array(str(fingerprint)))
        self._write(self._folder(name) / "embeddings.bin", buffer.getvalue())

    def load_embeddings(self, name: str, fingerprint: str) -> np.ndarray | None:
        """The stored embeddings of ``name`` if they came from the model with ``fingerprint``; else None."""
        path = self._folder(name) / "embeddings.bin"
        if not path.exists():
            return None
        try:
            with np.load(io.BytesIO(self._read(path)), allow_pickle=False) as stored:
                if str(stored["fingerprint"]) != str(fingerprint):
                    return None
                return np.asarray(stored["embeddings"], dtype=np.float32)
        except (SiameseDataError, ValueError, KeyError, OSError) as error:
            warnings.warn(f"recomputing the embeddings of {name!r}: {error}", stacklevel=2)
            return None

    def forget(self, name: str) -> dict[str, int | str]:
        """Remove everything stored of ``name``: images, embeddings and the record.

        Returns what was removed (``images``, ``embeddings``, ``files``, ``person_id``) and logs a
        ``forget`` event with only the random id and the counts. Raises ``KeyError`` naming who is enrolled
        when ``name`` is not.
        """
        folder = self._folder(name)
        images = len(list((folder / "images").glob("*.bin")))
        embeddings = int((folder / "embeddings.bin").exists())
        files = sum(1 for path in folder.rglob("*") if path.is_file())
        # Rename first, so the person disappears at once even if the deletion is interrupted.
        doomed = folder.with_name(f".forget-{folder.name}")
        os.replace(folder, doomed)
        shutil.rmtree(doomed)
        self.log_event("forget", folder.name, images=images, embeddings=embeddings)
        return {"person_id": folder.name, "images": images, "embeddings": embeddings, "files": files}

    # --- the event log ---
    def log_event(self, event: str, person_id: str | None = None, **fields: object) -> dict[str, object]:
        """Append one event (``enrol``, ``verify``, ``identify`` or ``forget``) to ``events.log``.

        Only the random person id and plain figures go in; never an image, an embedding or a name.
        """
        if event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
        for key, value in fields.items():
            if not isinstance(value, (bool, int, float, type(None))):
                raise ValueError(f"event field {key}={value!r}: only numbers and booleans go in the log")
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, "person_id": person_id, **fields}
        path = self.root / EVENTS_FILE_NAME
        # O_APPEND: each line lands whole at the end, even with two writers.
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(handle, (json.dumps(record) + "\n").encode("utf-8"))
        finally:
            os.close(handle)
        return record

    def events(self) -> list[dict[str, object]]:
        """Every logged event, oldest first."""
        path = self.root / EVENTS_FILE_NAME
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"Gallery({str(self.root)!r}, people={len(self._person_folders())}, key from {self.key_source})"
