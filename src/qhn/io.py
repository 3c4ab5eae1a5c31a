"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Each writer fills a temporary file in the target's directory (same filesystem, so the rename is
atomic), flushes and fsyncs it, then moves it over the target (``os.replace``) and fsyncs the
directory. On any failure the temporary file is removed and the previous file is left untouched.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_png",
    "atomic_write_text",
    "json_default",
]


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    target = Path(path)
    temp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open applies the process umask to 0o666, so the result has ordinary file permissions
    # (mkstemp would give 0o600).
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); skipped where a directory cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with _atomic_file(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically (written with ``\\n`` line endings)."""
    atomic_write_bytes(path, text.encode(encoding))


def json_default(value: Any) -> Any:
    """``json`` fallback for the values a run produces: tensors, numpy scalars and arrays, paths
    and sets."""
    if hasattr(value, "tolist"):  # torch.Tensor, numpy arrays and numpy scalars
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON: {value!r}")


def atomic_write_json(
    path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2, sort_keys: bool = False
) -> None:
    """Replace ``path`` with ``obj`` as JSON atomically.

    The text is built before the file is touched, so an unserializable object changes nothing.
    Non-finite floats are written as ``NaN``/``Infinity`` (Python's JSON dialect).
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=json_default)
    atomic_write_text(path, text + "\n")


def atomic_torch_save(path: str | os.PathLike[str], obj: Any) -> None:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    with _atomic_file(path) as handle:
        torch.save(obj, handle)


def atomic_write_png(path: str | os.PathLike[str], figure: Any, *, dpi: int = 120) -> None:
    """Render a matplotlib figure to PNG in memory, then write it atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
