"""Face data: where the ORL / AT&T faces are found.
"""

from __future__ import annotations

import os
from pathlib import Path

from siamese_tf import settings
from siamese_tf.errors import SiameseDataError

__all__ = [
    "FACE_DATA_CANDIDATES",
    "locate_face_data",
]


FACE_DATA_CANDIDATES = (
    "faces/orl_faces_s1-s30.zip",
    "faces/orl_faces",
    "faces/att_faces",
    "orl_faces",
    "att_faces",
)


def locate_face_data(data_dir: str | os.PathLike | None = None) -> Path:
    """Find the ORL / AT&T faces under ``data_dir`` (a zip or an extracted folder)."""
    root = settings.data_dir(data_dir)
    for candidate in FACE_DATA_CANDIDATES:
        if (root / candidate).exists():
            return root / candidate
    raise SiameseDataError(
        f"No ORL faces found under {root}; looked for {', '.join(FACE_DATA_CANDIDATES)}. "
        f"Set SIAMESE_TF_DATA_DIR or pass --data-dir (the shared copy is ../shared/data)."
    )
