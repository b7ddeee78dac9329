"""Download the public data sets by name, check their SHA-256, extract archives atomically.

``REGISTRY`` names each original archive with its URL and, where it could be verified against a
known-good copy, its SHA-256. :func:`download` refuses an archive without a registered checksum
unless called with ``allow_unverified=True`` (it then warns and prints the hash it computed, so you
can pin it). Nothing is ever left half-written under a final name: downloads go to a temporary
file that is renamed only after the checksum matches, and :func:`extract_archive` extracts into a
temporary folder that is renamed into place at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from siamese_tf import settings
from siamese_tf.errors import ChecksumError, DownloadError, SiameseDataError

__all__ = [
    "DataSource",
    "REGISTRY",
    "download",
    "extract_archive",
    "sha256_of",
    "verify_checksum",
]

_CHUNK_BYTES = 1 << 20
_OMNIGLOT_COMMIT = "057f034baf2ecb8530bc5710e5a23584d2a519cc"
_OMNIGLOT_URL = f"https://raw.githubusercontent.com/brendenlake/omniglot/{_OMNIGLOT_COMMIT}/python/"
_OMNIGLOT_CITATION = "Lake, Salakhutdinov & Tenenbaum (2015), Science 350(6266):1332-1338. MIT license."
_LFW_URL = "https://umass-vis-lfw.github.io/"
_LFW_CITATION = (
    "Cite Huang, Ramesh, Berg & Learned-Miller, 'Labeled Faces in the Wild: A Database for Studying Face "
    "Recognition in Unconstrained Environments', UMass Amherst Technical Report 07-49 (2007). A research "
    "benchmark with no license file; the LFW site's disclaimer: LFW is not meant to certify face recognition "
    "for commercial use."
)


@dataclass(frozen=True)
class DataSource:
    """One downloadable file: where it lives, its SHA-256 (None when not verified), its local name."""

    url: str
    sha256: str | None
    filename: str
    description: str


def _omniglot_source(path, sha256, description):
    """An Omniglot file of Lake's repository at the pinned commit; the local name is the file name."""
    return DataSource(url=_OMNIGLOT_URL + path, sha256=sha256, filename=path.rsplit("/", 1)[-1],
                      description=description + _OMNIGLOT_CITATION)


def _lfw_protocol_file(filename, description):
    """A text file of LFW's protocol on the official site (no pinned SHA-256 yet, see below)."""
    return DataSource(url=f"{_LFW_URL}{filename}", sha256=None, filename=filename,
                      description=description + _LFW_CITATION)


REGISTRY = {
    "omniglot_background": _omniglot_source(
        "images_background.zip", None,
        "Omniglot background set: 30 alphabets, 964 characters x 20 drawers, 105x105 PNG. ",
    ),
    "omniglot_evaluation": _omniglot_source(
        "images_evaluation.zip", None,
        "Omniglot evaluation set: 20 alphabets, 659 characters x 20 drawers, 105x105 PNG. ",
    ),
    "omniglot_background_small1": _omniglot_source(
        "images_background_small1.zip", "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
        "Omniglot minimal background set 1: 5 alphabets, 136 characters x 20 drawers. ",
    ),
    "omniglot_background_small2": _omniglot_source(
        "images_background_small2.zip", "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
        "Omniglot minimal background set 2: 5 alphabets, 156 characters x 20 drawers. ",
    ),
    "omniglot_all_runs": _omniglot_source(
        "one-shot-classification/all_runs.zip", "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325",
        "Omniglot 20-way one-shot classification benchmark of Lake et al. (20 runs). ",
    ),
    "orl_faces": DataSource(
        url="https://www.cl.cam.ac.uk/research/dtg/attarchive/pub/data/att_faces.zip",
        sha256=None,
        filename="att_faces.zip",
        description="ORL / AT&T Database of Faces: 40 subjects x 10 images, 92x112 PGM. Credit Olivetti "
        "Research Laboratory; cite Samaria & Harter (1994), IEEE WACV.",
    ),
    # LFW: no SHA-256 is registered because none could be checked here: the shared copy of this
    # setup holds only View 2's first 9 folds (lfw-deepfunneled_folds1-9.zip, pairs_folds1-9.txt,
    # people_folds1-9.txt), different files from these. Pin them after checking a trusted download.
    "lfw_deepfunneled": DataSource(
        url=f"{_LFW_URL}lfw-deepfunneled.zip",
        sha256=None,
        filename="lfw-deepfunneled.zip",
        description="Labeled Faces in the Wild, deep-funneled (aligned) images: 13,233 news photos of 5,749 people, "
        "lfw-deepfunneled/<Name>/<Name>_NNNN.jpg, 250x250 colour JPEG. " + _LFW_CITATION
        + " Deep funneling: Huang, Mattar, Lee & Learned-Miller, 'Learning to Align from Scratch', NIPS 2012.",
    ),
    "lfw_pairs": _lfw_protocol_file(
        "pairs.txt", "LFW View 2 pairs.txt: 10 people-disjoint folds of 300 matched + 300 mismatched pairs "
        "(the verification protocol; read with siamese_tf.studies.faces.read_lfw_pairs). "),
    "lfw_people": _lfw_protocol_file(
        "people.txt", "LFW View 2 people.txt: the people (and image counts) of each of the 10 folds, for the "
        "unrestricted training configuration (read with siamese_tf.studies.faces.read_lfw_people). "),
}


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: str | os.PathLike, expected: str) -> str:
    """Check a file's SHA-256; return the hash, raise :class:`ChecksumError` naming both on mismatch."""
    if not isinstance(expected, str) or len(expected) != 64:
        raise ValueError(f"expected must be a 64-character hex SHA-256, got {expected!r}")
    actual = sha256_of(path)
    if actual != expected.lower():
        raise ChecksumError(f"{path}: SHA-256 is {actual}, expected {expected.lower()}")
    return actual


def _source(name):
    if name not in REGISTRY:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def _fetch(url, destination_folder, filename, progress, timeout):
    """Stream ``url`` into a temporary file in ``destination_folder``; return (temp path, sha256)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=destination_folder)
    digest = hashlib.sha256()
    try:
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except urllib.error.URLError as error:
            reason = getattr(error, "reason", error)
            raise DownloadError(f"cannot reach {url} ({reason}); is there a network connection? Download it "
                                f"elsewhere and put it in {destination_folder}") from error
        with os.fdopen(handle, "wb") as output, response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with settings.progress_bar(total=total, unit="B", unit_scale=True, desc=filename,
                                       disable=not progress) as bar:
                for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                    output.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            output.flush()
            os.fsync(output.fileno())
    except BaseException:
        os.unlink(temporary)
        raise
    return Path(temporary), digest.hexdigest()


def download(name: str, data_dir: str | os.PathLike | None = None, force: bool = False, progress: bool = True,
             allow_unverified: bool = False, timeout: float = 60) -> Path:
    """Download a registered file into the data directory and return its local path.

    An existing file with the registered checksum is reused (``force=True`` downloads again).
    The download goes to a temporary file beside the target, is verified, then renamed into place,
    so an interrupted download never leaves a partial file under the final name.

    Args:
        name: a key of :data:`REGISTRY`.
        data_dir: where to put it; default :func:`siamese_tf.settings.data_dir`
            (``SIAMESE_TF_DATA_DIR`` or ``./data``).
        force: download even when a verified copy exists.
        progress: show a tqdm progress bar.
        allow_unverified: accept a file with no registered checksum (warns and prints its SHA-256).
        timeout: network timeout in seconds.

    Raises:
        ValueError: unknown ``name`` (the message lists the known names), or a file without a
            registered checksum and ``allow_unverified=False``.
        ChecksumError: the downloaded bytes do not match the registered SHA-256.
    """
    source = _source(name)
    if source.sha256 is None and not allow_unverified:
        raise ValueError(
            f"{name!r} has no registered SHA-256, so its download cannot be verified; "
            "accept it unverified with --allow-unverified (command line) or download(..., allow_unverified=True)"
        )
    folder = settings.data_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.filename

    if target.is_file() and not force:
        if source.sha256 is None:
            warnings.warn(f"{target}: reusing an existing file that cannot be verified (no registered SHA-256)",
                          stacklevel=2)
            return target
        if sha256_of(target) == source.sha256:
            return target
        warnings.warn(f"{target}: existing file does not match the registered SHA-256; downloading again",
                      stacklevel=2)

    temporary, actual = _fetch(source.url, folder, source.filename, progress, timeout)
    try:
        if source.sha256 is not None and actual != source.sha256:
            raise ChecksumError(
                f"{source.url}: downloaded SHA-256 is {actual}, expected {source.sha256} (file discarded)"
            )
        if source.sha256 is None:
            message = (f"{name}: downloaded without verification; its SHA-256 is {actual} "
                       "(pin it in REGISTRY after checking it against a trusted copy)")
            warnings.warn(message, stacklevel=2)
            print(message)
        os.replace(temporary, target)
    except BaseException:
        if temporary.exists():
            temporary.unlink()
        raise
    return target


def _safe_member_path(member_name, archive_path):
    """The relative path of a zip member, refusing absolute paths and '..' (zip-slip)."""
    normalized = member_name.replace("\\", "/")
    parts = PurePosixPath(normalized).parts
    if normalized.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
        raise SiameseDataError(f"{archive_path}: member {member_name!r} would be written outside the destination")
    return [part for part in parts if part not in ("", ".")]


def extract_archive(archive_path: str | os.PathLike, destination: str | os.PathLike,
                    overwrite: bool = False) -> Path:
    """Extract a zip archive into ``destination`` atomically and return ``destination``.

    Members are extracted into a temporary folder beside ``destination`` that is renamed into place
    only when every member was read and checked (CRC), so a failed extraction leaves nothing behind.
    Members with absolute paths or ``..`` are refused (zip-slip); links are written as plain files.

    Raises:
        FileNotFoundError: the archive does not exist.
        FileExistsError: ``destination`` exists and ``overwrite`` is False.
        SiameseDataError: the archive is truncated, corrupt or unsafe (the message names it).
    """
    archive_path = Path(archive_path)
    destination = Path(destination)
    if not archive_path.is_file():
        raise FileNotFoundError(f"archive not found: {archive_path}")
    if destination.exists() and not overwrite:
        raise FileExistsError(f"{destination} already exists; pass overwrite=True to replace it")
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".extracting", dir=destination.parent))
    try:
        try:
            with zipfile.ZipFile(archive_path) as archive:
                for info in archive.infolist():
                    parts = _safe_member_path(info.filename, archive_path)
                    if not parts:
                        continue
                    target = temporary.joinpath(*parts)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as member, open(target, "wb") as output:
                        shutil.copyfileobj(member, output, _CHUNK_BYTES)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError) as error:
            raise SiameseDataError(f"{archive_path}: corrupt or truncated zip archive ({error})") from error
        if destination.exists():  # overwrite=True: move the old copy aside, swap, then delete it
            old = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".old", dir=destination.parent))
            os.replace(destination, old / destination.name)
            os.replace(temporary, destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, destination)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return destination

