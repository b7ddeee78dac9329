"""Run-time settings read from arguments and environment variables.

Precedence everywhere: an explicit argument, then the environment variable, then the default.

| setting | environment variable | default |
|---|---|---|
| smoke mode (tiny, fast runs for CI) | ``SIAMESE_TF_SMOKE`` | off |
| data directory | ``SIAMESE_TF_DATA_DIR`` | ``./data`` |
| models directory | ``SIAMESE_TF_MODELS_DIR`` | ``./models`` |
| reports directory | ``SIAMESE_TF_REPORTS_DIR`` | ``./reports`` |

TensorFlow is optional on the JAX backend (:func:`tensorflow_available`): GPU machines often have
JAX and no TensorFlow, and there the training batches come from NumPy instead of ``tf.data``.
"""

from __future__ import annotations

import os
import random
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, TypeVar

import numpy as np

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = [
    "DATA_DIR_VARIABLE",
    "MODELS_DIR_VARIABLE",
    "PRIVATE_FILE_MODE",
    "PRIVATE_FOLDER_MODE",
    "REPORTS_DIR_VARIABLE",
    "SMOKE_VARIABLE",
    "data_dir",
    "make_private",
    "models_dir",
    "pick",
    "progress_bar",
    "progress_verbosity",
    "reports_dir",
    "seed_everything",
    "smoke_mode",
    "tensorflow_available",
    "write_private_atomic",
]

SMOKE_VARIABLE = "SIAMESE_TF_SMOKE"
DATA_DIR_VARIABLE = "SIAMESE_TF_DATA_DIR"
MODELS_DIR_VARIABLE = "SIAMESE_TF_MODELS_DIR"
REPORTS_DIR_VARIABLE = "SIAMESE_TF_REPORTS_DIR"

_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"", "0", "false", "no", "off"}

_T = TypeVar("_T")


def progress_verbosity(verbose: str | int = "auto") -> int:
    """The Keras ``verbose`` level for ``fit``: "auto" gives the live progress bar (1) in a terminal
    or a notebook and one line per epoch (2) when output goes to a file or a pipe, where the bar's
    carriage-return updates would flood the log. An integer is returned unchanged."""
    if verbose != "auto":
        if isinstance(verbose, bool) or verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
        return verbose
    import sys

    return 1 if _live_display(sys.stdout) else 2


def _live_display(stream) -> bool:
    """Whether output on ``stream`` is seen live (a notebook, or a terminal) rather than kept in a
    file or a pipe, where carriage-return updates pile up."""
    import sys

    return "ipykernel" in sys.modules or bool(getattr(stream, "isatty", lambda: False)())


class _LinePerUpdate:
    """A stream for tqdm in a log file: each update on a line of its own instead of a carriage-return
    overwrite (which a file keeps, piling every update onto one line)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable: Iterable | None = None, *, desc: str, unit: str = "it", total: int | None = None,
                 disable: bool = False, **options: Any) -> tqdm:
    """A tqdm progress bar on stderr for long work: live in a terminal or a notebook; in a file or a
    pipe (a log), one plain line at most every 30 seconds and at the end, so logs stay readable.
    ``options`` go to tqdm (e.g. ``unit_scale=True`` for bytes)."""
    import sys

    from tqdm.auto import tqdm

    if _live_display(sys.stderr):
        return tqdm(iterable, desc=desc, unit=unit, total=total, disable=disable, **options)
    # A log line at most every 30 seconds, whatever refresh the caller asked of a live bar; tqdm's
    # monitor thread also redraws a bar idle for maxinterval (10 s by default), so that goes up too.
    options["mininterval"] = max(30.0, float(options.get("mininterval", 0.0)))
    options["maxinterval"] = max(options["mininterval"], float(options.get("maxinterval", 0.0)))
    options = {"ascii": True, "ncols": 100, **options}
    return tqdm(iterable, desc=desc, unit=unit, total=total, disable=disable, file=_LinePerUpdate(sys.stderr),
                **options)


def smoke_mode() -> bool:
    """Return True when ``SIAMESE_TF_SMOKE`` asks for tiny, fast runs (CI, quick checks)."""
    value = os.environ.get(SMOKE_VARIABLE, "").strip().lower()
    if value in _TRUE_WORDS:
        return True
    if value in _FALSE_WORDS:
        return False
    raise ValueError(
        f"{SMOKE_VARIABLE}={value!r} is not understood; use one of "
        f"{sorted(_TRUE_WORDS | _FALSE_WORDS - {''})}"
    )


def pick(full_value: _T, smoke_value: _T) -> _T:
    """Return ``smoke_value`` in smoke mode and ``full_value`` otherwise."""
    return smoke_value if smoke_mode() else full_value


def _directory(path, variable, default):
    if path is None:
        path = os.environ.get(variable) or default
    return Path(path).expanduser()


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """Directory holding user data and the public data sets (``SIAMESE_TF_DATA_DIR``)."""
    return _directory(path, DATA_DIR_VARIABLE, "data")


def models_dir(path: str | os.PathLike | None = None) -> Path:
    """Directory for saved models and checkpoints (``SIAMESE_TF_MODELS_DIR``)."""
    return _directory(path, MODELS_DIR_VARIABLE, "models")


@cache
def tensorflow_available() -> bool:
    """Whether TensorFlow can be imported here (then ``tf.data`` serves the training batches).

    Without it (``KERAS_BACKEND=jax`` on a machine with JAX alone) the package still imports, and
    the face recipes, class-proxy training and :class:`~siamese_tf.samplers.EpochSeededBatches`
    train from NumPy batches (``keras.utils.PyDataset``). What needs ``tf.data`` itself (the
    :mod:`siamese_tf.pipelines` engine, ``dataset()``) raises ImportError naming the missing package.
    """
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def reports_dir(path: str | os.PathLike | None = None) -> Path:
    """Directory for JSON figures and PNG plots (``SIAMESE_TF_REPORTS_DIR``)."""
    return _directory(path, REPORTS_DIR_VARIABLE, "reports")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and Keras (and so TensorFlow) random generators."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    import keras

    random.seed(int(seed))
    np.random.seed(int(seed))
    keras.utils.set_random_seed(int(seed))


# One policy for everything that may hold a face or another person's data (captures, galleries,
# models, checkpoints, report figures): readable by the owner only.
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


def make_private(path: str | os.PathLike) -> Path:
    """Restrict ``path`` to its owner (files 0600, folders 0700) and return it as a Path.

    A no-op where the file system has no POSIX permissions.
    """
    path = Path(path)
    mode = PRIVATE_FOLDER_MODE if path.is_dir() else PRIVATE_FILE_MODE
    try:
        os.chmod(path, mode)
    except (NotImplementedError, PermissionError):  # e.g. a mounted Windows share
        pass
    return path


def write_private_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` readable by its owner only (0600), whole or not at all.

    The bytes go to a hidden temporary file beside ``path`` (created 0600), are flushed to disk and
    renamed into place: a reader, or a crash, never sees half a file. The folder must exist.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(data)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path
