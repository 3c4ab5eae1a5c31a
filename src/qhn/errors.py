"""The exceptions qhn raises.

Every error says what was wrong, the value received and what would be valid.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CapabilityError", "ConfigError", "MemoryBudgetError", "QHNError", "choices"]


class QHNError(Exception):
    """Base class of every error raised on purpose by qhn."""


class ConfigError(QHNError, ValueError):
    """An invalid value, name, shape or combination of options."""


class CapabilityError(QHNError):
    """A backend or estimator was asked for something it cannot do."""


class MemoryBudgetError(QHNError, MemoryError):
    """Refused before allocating: the request would not fit in the memory budget."""


def choices(options: Iterable[object]) -> str:
    """Format valid options for an error message: ``'a, b, c'``."""
    return ", ".join(str(o) for o in options)
