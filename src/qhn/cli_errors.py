"""How the ``qhn`` command reports failures: one literal line, an exit code, no traceback.

Exit codes: 2 for usage and configuration errors (a bad value, file or combination, a request
refused before allocating: every :class:`~qhn.errors.QHNError`), 1 for runtime failures (the
operating system refused a read or write, memory ran out, an unexpected error), ``128 + signal``
for a run stopped by SIGINT/SIGTERM. ``qhn --debug …`` shows the traceback instead.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import NoReturn

import typer

__all__ = [
    "DEBUG_FLAG",
    "EXIT_RUNTIME",
    "EXIT_USAGE",
    "describe",
    "exit_code",
    "fail",
    "one_line",
    "run_app",
]

EXIT_USAGE = 2
EXIT_RUNTIME = 1
DEBUG_FLAG = "--debug"

#: What to do about common operating-system errors.
_OS_ADVICE = {
    errno.ENOSPC: "free some disk space or choose another --out",
    errno.EDQUOT: "free some disk space or choose another --out",
    errno.EROFS: "the file system is read-only; choose another --out",
    errno.EACCES: "check the permissions or choose another path",
    errno.EPERM: "check the permissions or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "the path is a folder; give a file",
    errno.ENOENT: "check the path",
}


def one_line(text: str) -> str:
    """``text`` with its lines joined, so a message is always a single line."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe(error: BaseException) -> str:
    """The user-facing sentence for an error (without the ``error:`` prefix)."""
    from qhn.errors import QHNError

    if isinstance(error, QHNError):
        return one_line(str(error))
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        if error.filename2:
            where += f" → {error.filename2}"
        reason = error.strerror or str(error) or type(error).__name__
        advice = _OS_ADVICE.get(error.errno or -1)
        return one_line(f"cannot access{where}: {reason}" + (f"; {advice}" if advice else ""))
    if isinstance(error, MemoryError):
        detail = f" ({error})" if str(error) else ""
        return one_line(f"out of memory{detail}; use fewer shots, bits or examples")
    return one_line(
        f"internal error {type(error).__name__}: {error} (run qhn {DEBUG_FLAG} … for the "
        "traceback and please report it)"
    )


def exit_code(error: BaseException) -> int:
    """2 for configuration errors (every QHNError), 1 for everything else."""
    from qhn.errors import QHNError

    return EXIT_USAGE if isinstance(error, QHNError) else EXIT_RUNTIME


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` on stderr literally (no markup) and exit with ``code``."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code=code)


def run_app(app: typer.Typer, argv: list[str] | None = None) -> NoReturn:
    """Run the typer ``app`` with this module's error policy; ``--debug`` anywhere in the
    arguments re-raises unexpected errors with their traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    args = [arg for arg in args if arg != DEBUG_FLAG]
    if debug:
        os.environ["QHN_DEBUG"] = "1"
    try:
        app(args=args, prog_name="qhn")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:
        if debug:
            raise
        typer.echo(f"error: {describe(error)}", err=True)
        sys.exit(exit_code(error))
    sys.exit(0)
