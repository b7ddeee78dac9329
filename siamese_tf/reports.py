"""Helpers for benchmark and job reports: a description of the machine and figures rounded for JSON.
"""

from __future__ import annotations

import platform
from typing import Any

import numpy as np

__all__ = [
    "machine_description",
    "round_figures",
]


def machine_description() -> dict[str, Any]:
    import os

    import keras
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def round_figures(value: Any, digits: int = 4) -> Any:
    """Round every float in nested dicts/lists (and turn numpy scalars into Python ones) for JSON."""
    if isinstance(value, dict):
        return {key: round_figures(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_figures(item, digits) for item in value]
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits)
    if isinstance(value, np.integer):
        return int(value)
    return value
