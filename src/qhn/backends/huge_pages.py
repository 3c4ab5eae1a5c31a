"""State buffers on transparent huge pages, where Linux allows."""

from __future__ import annotations

import functools

import torch

__all__ = ["HUGE_PAGE_BYTES", "empty_on_huge_pages"]

#: Allocations from this size ask Linux for transparent huge pages: a fresh state is written
#: once per call, and faulting it in by 2 MiB pages instead of 4 KiB ones costs about a third
#: (measured: 24 ms instead of 67 ms for 128 MiB).
HUGE_PAGE_BYTES = 4 * 2**20
_MADV_HUGEPAGE = 14


@functools.cache
def _madvise():
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc.madvise


def empty_on_huge_pages(batch: int, size: int, dtype: torch.dtype) -> torch.Tensor:
    """``torch.empty((batch, size))`` on the CPU, backed by huge pages where Linux allows (an
    advice: ignored where it is not honoured)."""
    out = torch.empty(batch, size, dtype=dtype)
    nbytes = out.numel() * out.element_size()
    madvise = _madvise() if nbytes >= HUGE_PAGE_BYTES else None
    if madvise is not None:
        page = 2**21
        start = (out.data_ptr() + page - 1) & ~(page - 1)
        stop = (out.data_ptr() + nbytes) & ~(page - 1)
        if stop > start:
            madvise(start, stop - start, _MADV_HUGEPAGE)
    return out
