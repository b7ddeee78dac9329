"""Helpers for benchmark and job reports: a description of the machine and figures rounded for JSON.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "machine_description",
    "measure_matmul_gflops",
    "round_figures",
    "write_report",
]


def machine_description() -> dict[str, Any]:
    """The machine and libraries a figure was measured with: platform, CPUs, GPUs, versions.

    ``gpus`` counts the GPUs the Keras backend sees (TensorFlow's or JAX's); ``tensorflow`` is None
    where TensorFlow is not installed (JAX alone).
    """
    import keras

    from siamese_tf.settings import tensorflow_available

    backend = keras.backend.backend()
    tensorflow_version, gpu_names = None, []
    if tensorflow_available():
        import tensorflow as tf

        tensorflow_version = tf.__version__
        if backend == "tensorflow":
            gpu_names = [device.name for device in tf.config.list_physical_devices("GPU")]
    if backend == "jax":  # through Keras, so that JAX stays an optional dependency
        gpu_names = [device for device in keras.distribution.list_devices() if device.lower().startswith("gpu")]
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "backend": backend,
        "gpus": len(gpu_names),
        "gpu_names": sorted(set(gpu_names)),
        "tensorflow": tensorflow_version,
        "keras": keras.__version__,
    }


def measure_matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    """The machine's speed now: median GFLOP/s of a float32 ``size`` x ``size`` matrix product on the Keras backend.

    Recorded beside time-budgeted figures, because the same training step has taken from 0.08 s to
    0.41 s on this project's 2-core machine type on different days; with the speed at hand, two
    runs' steps and accuracies can be compared. Takes about a second at the default size.
    """
    import keras

    for name, value in (("size", size), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rng = np.random.default_rng(0)
    first = keras.ops.convert_to_tensor(rng.standard_normal((size, size), dtype=np.float32))
    second = keras.ops.convert_to_tensor(rng.standard_normal((size, size), dtype=np.float32))
    keras.ops.convert_to_numpy(keras.ops.matmul(first, second))  # warm-up: kernels and thread pools
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        # Converting to NumPy waits for the product (asynchronous backends return before it ends).
        keras.ops.convert_to_numpy(keras.ops.matmul(first, second))
        seconds.append(time.perf_counter() - started)
    return float(2 * size ** 3 / np.median(seconds) / 1e9)


def round_figures(value: Any, digits: int = 4) -> Any:
    """Round every float in nested dicts/lists (and turn numpy scalars into Python ones) for JSON.

    ``digits`` decimals, except that a float under ``10 ** (1 - digits)`` in size (a learning rate of
    5e-5), which those decimals would leave with one significant digit or none, keeps ``digits``
    significant digits instead: no small figure reads as zero or doubled."""
    if isinstance(value, dict):
        return {key: round_figures(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_figures(item, digits) for item in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if value != 0 and abs(value) < 10.0 ** (1 - digits):
            return float(f"{value:.{digits}g}")
        return round(value, digits)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_report(report: dict[str, Any], name: str, reports_dir: str | os.PathLike | None = None,
                 echo: bool = True) -> Path:
    """Write ``report`` (figures rounded) as ``<reports dir>/<name>.json``, print it, return the path.

    ``reports_dir`` defaults to ``SIAMESE_TF_REPORTS_DIR`` (see :mod:`siamese_tf.settings`).
    ``echo=False`` writes without printing (a long job saving what it has so far).
    """
    from siamese_tf import settings

    folder = settings.reports_dir(reports_dir)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(round_figures(report), indent=2)
    path = folder / f"{name}.json"
    path.write_text(text)
    if echo:
        print(text)
    return path
