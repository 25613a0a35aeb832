"""Keep freed tensor memory in the process, so that the next tensor does not fault it in again.

PyTorch's CPU allocator takes every tensor buffer from ``malloc`` and frees it when the tensor
dies. glibc serves a request above its mmap threshold (128 kB at start, raised dynamically up to
32 MB) with a fresh ``mmap`` and unmaps it on free, and it hands the top of its heap back to
the kernel once more than the trim threshold lies free there. Either way the next buffer of
that size is new memory: the kernel zero-fills each 4 kB page on its first touch (a minor page
fault). Above 32 MB every buffer is a fresh mapping whatever came before (vgg-small's first
spiking layer outputs 40 MB for 100 images at T = 4). The multi-step layers make a few
multi-MB tensors per layer and step, so a training step pays for them again and again: the
W4/U4 vgg-small step on 64 images at T = 4 took ~22,700 minor faults and ~34 ms of system time
per step, ~5,300 and ~8.5 ms for the float step (``getrusage`` around 8 steps, stop 25).

:func:`keep_freed_memory` sets both thresholds high (``mallopt``), so that buffers up to
:data:`MMAP_THRESHOLD_BYTES` come from the heap and a freed buffer is reused by the next
request instead of being returned: the same W4/U4 step then takes ~400 faults and < 1 ms of
system time, the float step none, and the ideal quantized forward of 100 images runs about
twice as fast. Through the CLI, one epoch of W4/U4 fine-tuning takes 0.86x the wall time and a
small ``sweep-bits`` 0.80x, for 11-15 % more peak resident memory (freed buffers wait in the
heap instead of the kernel; ``tests/bench/bench_allocator.py``). Results do not change: only
where the bytes live does.

glibc only (Linux). Elsewhere, when the user tuned glibc's malloc (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``, or ``glibc.malloc.*`` in ``GLIBC_TUNABLES``), or with
``CODESIGN_KEEP_FREED_MEMORY=0``, it leaves the allocator alone. The setting is per process:
the CLI applies it at start-up and the sweep's pool workers in their initialiser.
"""

from __future__ import annotations

import ctypes
import os

from codesign.errors import CodesignError

M_TRIM_THRESHOLD = -1
"""``mallopt`` parameter number (glibc ``malloc.h``)."""
M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter number (glibc ``malloc.h``)."""

MMAP_THRESHOLD_BYTES = 256 << 20
"""Requests below this come from the heap (bytes); larger ones are still mapped and unmapped
(none of the shipped models' tensors is that large)."""
TRIM_THRESHOLD_BYTES = 1 << 30
"""Free memory kept at the top of the heap before glibc returns any of it (bytes)."""

OPT_OUT = "CODESIGN_KEEP_FREED_MEMORY"
"""Environment variable: ``0`` leaves the allocator alone, ``1`` (the default) applies it."""
USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
"""glibc's own environment settings of the two thresholds (then the user's choice stands)."""

_applied = False


def _user_tuned() -> bool:
    """True when the environment sets glibc's malloc thresholds or tunables."""
    return (any(k in os.environ for k in USER_VARIABLES)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""))


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # not a GNU system
        return False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (module docstring); returns
    whether they are set (``False``: not glibc, opted out, or the user's own settings).
    Idempotent. :data:`OPT_OUT` other than ``0`` or ``1`` is a :class:`CodesignError`."""
    global _applied
    choice = os.environ.get(OPT_OUT, "1")
    if choice not in ("0", "1"):
        raise CodesignError(f"environment variable {OPT_OUT}={choice!r}: expected 0 (glibc's "
                            "default allocator) or 1 (keep freed memory for reuse)")
    if _applied:
        return True
    if choice == "0" or _user_tuned():
        return False
    if not _glibc():
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - a libc without mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    ok = bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)) and ok
    _applied = ok
    return ok
