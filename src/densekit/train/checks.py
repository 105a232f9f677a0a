"""Checks of configuration values, with messages that name the key."""

from __future__ import annotations

import math
from typing import Any

from densekit.errors import InputError


def whole(value: Any, where: str, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{where} must be a whole number of at least {minimum}, got {value!r}")


def positive(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InputError(f"{where} must be a number above 0, got {value!r}")
    if not math.isfinite(value):
        raise InputError(f"{where} must be finite, got {value!r}")
