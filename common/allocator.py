"""glibc's malloc told to keep the memory that a network's activations free, instead of returning it to the
kernel and faulting it in again at the next call.

By default glibc serves blocks above a moving threshold (at most 32 MiB) with ``mmap`` and trims the heap
when more than twice that threshold lies free at its top. A pose network on a batch of crops allocates and
frees many activations of several MiB each, so every call gave back and re-faulted its working set (RTMPose-s
at batch 9: about 6600 page faults a call, none with this setting). The fix PyTorch's CPU tuning guide
reaches with jemalloc or tcmalloc, here with glibc's own ``mallopt``. A user's own malloc tuning in the
environment is left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: blocks up to 32 MiB come from the heap, which keeps them
TRIM_THRESHOLD = 2**30  # the heap is trimmed only when more than 1 GiB lies free at its top
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")

_state = {"applied": False}


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (once per process); returns whether they are set by this call or
    an earlier one. Nothing is changed off glibc or where the environment tunes malloc already."""
    if _state["applied"]:
        return True
    if platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in USER_SETTINGS):
        return False
    mallopt = ctypes.CDLL(None).mallopt
    _state["applied"] = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _state["applied"]
