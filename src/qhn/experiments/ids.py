"""Stable ids of sweep points: a point's configuration and, for a task read from a file, the
bytes of that file (so editing a data file gives new runs, not old results counted as complete).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from qhn.experiments.config import RunConfig, config_hash

__all__ = ["PATH_KEY", "data_digest", "point_id"]

#: The override key of a task's data file (``csv``, ``cost-vector``).
PATH_KEY = "task_options.path"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def data_digest(config: RunConfig) -> str | None:
    """sha256 (hex) of the bytes of the data file ``config.task_options["path"]``; None when the
    task reads no file or the file cannot be read (building the task then names the problem).
    Cached per file by (size, mtime, inode)."""
    raw = config.task_options.get("path")
    if not isinstance(raw, str):
        return None
    path = Path(raw).expanduser()
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key not in _DIGESTS:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            _DIGESTS[key] = digest.hexdigest()
        return _DIGESTS[key]
    except OSError:
        return None


def point_id(config: RunConfig) -> str:
    """``{task}-{objective}-L{layers}-s{seed}-{hash8}``, unsafe characters as ``_`` (a baseline
    point has its ``method`` in place of the objective).

    ``hash8`` is ``config_hash(config)[:8]``; for a task read from a file it is the first 8 hex
    digits of sha256(``config_hash(config)`` + ``":"`` + :func:`data_digest`), so other content
    under the same path gives another id.
    """
    digest = config_hash(config)
    data = data_digest(config)
    if data is not None:
        digest = hashlib.sha256(f"{digest}:{data}".encode()).hexdigest()
    name = config.method or config.objective
    raw = f"{config.task}-{name}-L{config.layers}-s{config.train.seed}-{digest[:8]}"
    return _UNSAFE.sub("_", raw).lstrip(".")
