"""The label convention of the whole package: **1 = same**, 0 = different.

Pair labels, losses, metrics and thresholds all use these two constants; similarities are
higher for "same". ``tests/test_label_convention.py`` pins them.
"""

from __future__ import annotations

__all__ = ["DIFFERENT_LABEL", "SAME_LABEL"]

SAME_LABEL = 1
DIFFERENT_LABEL = 0
