"""Exceptions raised by siamese_tf, so callers can tell bad input from bugs."""

from __future__ import annotations

__all__ = [
    "CameraUnavailableError",
    "ChecksumError",
    "DownloadError",
    "SiameseDataError",
]


class SiameseDataError(ValueError):
    """Input data is missing, unreadable or unusable (an empty folder, one identity, ...)."""


class CameraUnavailableError(RuntimeError):
    """A camera index could not be opened; use a video file or an image folder instead."""


class ChecksumError(ValueError):
    """A downloaded or supplied archive does not match its registered SHA-256."""


class DownloadError(OSError):
    """A public file could not be fetched (no network, a refused connection, a missing URL)."""
