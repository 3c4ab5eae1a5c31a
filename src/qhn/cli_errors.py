"""How the ``qhn`` command reports failures: one literal line, an exit code, no traceback.

Exit codes: 2 for usage and configuration errors (a bad value, file or combination, a request
refused before allocating: every :class:`~qhn.errors.QHNError`), 1 for runtime failures (the
operating system refused a read or write, memory ran out, an unexpected error), ``128 + signal``
for a run stopped by SIGINT/SIGTERM. ``qhn --debug …`` shows the traceback instead.
"""

from __future__ import annotations

import errno
from typing import NoReturn

import typer
from typer.core import TyperGroup

__all__ = [
    "DEBUG_FLAG",
    "DEBUG_META",
    "EXIT_RUNTIME",
    "EXIT_USAGE",
    "ErrorPolicyGroup",
    "debug_first",
    "describe",
    "exit_code",
    "fail",
    "one_line",
]

EXIT_USAGE = 2
EXIT_RUNTIME = 1
DEBUG_FLAG = "--debug"
#: Where the root command records ``--debug`` in the click context.
DEBUG_META = "qhn.debug"

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


class ErrorPolicyGroup(TyperGroup):
    """The ``qhn`` command group: turns every escaping exception into one line and an exit code
    (see the module docstring), whether it runs from the console script or a test runner."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as error:
            # Usage errors, typer.Exit and Abort carry their own message and exit code.
            own = type(error).__module__.split(".")[0] in ("click", "typer")
            if own or ctx.meta.get(DEBUG_META):
                raise
            typer.echo(f"error: {describe(error)}", err=True)
            raise typer.Exit(code=exit_code(error)) from None


def debug_first(argv: list[str]) -> list[str]:
    """Arguments with ``--debug`` moved to the front, where the root command reads it, so that it
    may be written anywhere (``qhn train … --debug``)."""
    if DEBUG_FLAG not in argv:
        return list(argv)
    return [DEBUG_FLAG, *(arg for arg in argv if arg != DEBUG_FLAG)]
