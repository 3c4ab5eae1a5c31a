"""The user's landscape cache: where ``qhn train`` keeps enumerated cost vectors between runs.

Enumerating ``C(s)`` over all ``2^n`` networks costs seconds at 18–22 bits, and a run, or the
next run of the same task, would otherwise enumerate it again. ``qhn train`` reads and writes
:func:`qhn.landscape.cache_path` files in :func:`user_cache_dir` (each checked against the
task's fingerprint on reading) and keeps the folder under :data:`CACHE_BYTES` by deleting the
least recently used files (:func:`prune`). Sweeps and ``qhn reproduce`` keep theirs in their
own output folder instead, which is never pruned.

``QHN_CACHE_DIR`` names the folder (``off`` disables the cache); otherwise
``$XDG_CACHE_HOME/qhn/landscapes``, or ``~/.cache/qhn/landscapes``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["CACHE_BYTES", "CACHE_ENV", "chosen_cache_dir", "prune", "user_cache_dir"]

logger = logging.getLogger(__name__)

CACHE_ENV = "QHN_CACHE_DIR"

CACHE_BYTES = 2 * 2**30
"""The most the user cache keeps (a 22-bit task's train and test costs take 64 MiB)."""


def user_cache_dir() -> Path | None:
    """The landscape cache folder, or None when ``QHN_CACHE_DIR`` is ``off`` (or empty)."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return chosen_cache_dir(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qhn" / "landscapes"


def chosen_cache_dir(value: str | None) -> Path | None:
    """The folder a ``--landscape-cache`` value names: None (not given) is
    :func:`user_cache_dir`; ``off`` (or empty) is no cache."""
    if value is None:
        return user_cache_dir()
    return None if value.strip().lower() in ("", "off") else Path(value).expanduser()


def prune(cache_dir: Path, max_bytes: int = CACHE_BYTES) -> list[Path]:
    """Delete the least recently used landscape files (``landscape-*.npz``, by modification
    time; reading one refreshes it) until the rest total at most ``max_bytes``. Other files are
    left alone, and a file that cannot be examined or deleted is skipped. Returns the deleted
    paths."""
    entries = []
    for path in cache_dir.glob("landscape-*.npz"):
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    entries.sort(key=lambda entry: entry[0])
    total = sum(size for _, size, _ in entries)
    deleted = []
    for _, size, path in entries:
        if total <= max_bytes:
            break
        try:
            path.unlink()
        except OSError as error:
            logger.warning("could not prune landscape cache file %s: %s", path, error)
            continue
        total -= size
        deleted.append(path)
    return deleted
