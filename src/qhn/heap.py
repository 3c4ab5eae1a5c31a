"""How the process's C heap (glibc ``malloc``) keeps freed blocks: a process-wide setting that the
``qhn`` command and the benchmarks make, never the library.

By default glibc maps each large block (from 128 KiB, a threshold it raises as blocks are freed, up
to 32 MiB) with its own ``mmap`` and unmaps it on ``free``, so a loop that allocates and frees the
same few temporaries touches fresh pages on every iteration: one page fault per 4 KiB. Enumerating
the landscape of ``qhn train --task qhn-gaussian`` took 0.9 million such faults, 1.6–2.0 s of
system time, in about half of the fresh processes (which half depends on the order in which
blocks were first freed). :func:`keep_freed_memory` fixes both thresholds instead.
"""

from __future__ import annotations

import ctypes

__all__ = ["COMMAND_MMAP_THRESHOLD", "COMMAND_TRIM_THRESHOLD", "keep_freed_memory"]

#: The ``qhn`` command's mapping threshold: blocks below 64 MiB (a float64 vector over up to 22
#: bits, the enumeration's blocks, a step's temporaries) reuse freed heap memory; larger ones
#: (float64 states from 23 qubits) are still mapped for themselves and returned when freed.
COMMAND_MMAP_THRESHOLD = 64 * 2**20
#: Free memory at the top of the heap beyond this is returned to the system.
COMMAND_TRIM_THRESHOLD = 256 * 2**20

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(
    mmap_threshold: int = COMMAND_MMAP_THRESHOLD, trim_threshold: int = COMMAND_TRIM_THRESHOLD
) -> bool:
    """Let glibc serve blocks below ``mmap_threshold`` bytes from the heap and keep up to
    ``trim_threshold`` bytes of freed memory there for reuse (``mallopt``). Fixing the thresholds
    also turns off glibc's own adjustment of them. Process-wide and never undone; a no-op (False)
    where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )
