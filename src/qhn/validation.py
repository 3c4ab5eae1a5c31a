"""Validation helpers for configs and options: each returns the checked value or raises a
:class:`~qhn.errors.ConfigError` naming the key, the value and what would be valid."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence

import numpy as np

from qhn.errors import ConfigError, choices

__all__ = ["check_choice", "check_fraction", "check_int", "check_number", "unknown_key_error"]


def check_choice(key: str, value: object, options: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``options``, else raise naming the key and the choices."""
    if isinstance(value, str) and value in options:
        return value
    message = f"unknown {key} {value!r}; choose one of: {choices(options)}"
    if isinstance(value, str):
        close = difflib.get_close_matches(value, options, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    raise ConfigError(message)


def check_int(key: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` if it is an integer in ``[minimum, maximum]`` (bools refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ConfigError(f"{key} must be an integer {bound}, got {value!r}")
    return int(value)


def check_number(
    key: str,
    value: object,
    *,
    minimum: float = -math.inf,
    maximum: float = math.inf,
    open_min: bool = False,
    open_max: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite number in the given interval."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = (number > minimum if open_min else number >= minimum) and (
            number < maximum if open_max else number <= maximum
        )
    if not ok:
        if maximum == math.inf:
            bound = f"{'>' if open_min else '>='} {minimum:g}"
        else:
            left, right = ("(" if open_min else "["), (")" if open_max else "]")
            bound = f"in {left}{minimum:g}, {maximum:g}{right}"
        raise ConfigError(f"{key} must be a finite number {bound}, got {value!r}")
    return number


def check_fraction(key: str, value: object) -> float:
    """Return ``value`` as a float if it lies strictly between 0 and 1."""
    return check_number(key, value, minimum=0.0, maximum=1.0, open_min=True, open_max=True)


def unknown_key_error(key: str, valid: Iterable[str], where: str = "") -> ConfigError:
    """A :class:`ConfigError` for an unknown key, listing the valid ones and a close match."""
    valid = sorted(valid)
    message = f"unknown key {key!r}{where}; valid keys: {choices(valid)}"
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return ConfigError(message)
