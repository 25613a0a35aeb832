"""Torch's intra-op thread count, set for one block of work and restored after it.

Used where a computation must not share the cores the way torch would by default: a pool
worker (one thread each), the IR-drop sweep (one thread per worker thread, no barrier), a noisy
simulation (one thread left to the noise draws).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional


@contextmanager
def intra_op_threads(n: Optional[int]) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` and restore the previous count after it,
    also on an exception; ``None`` leaves the setting alone."""
    import torch  # deferred: the sweep's driver imports this before it needs torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
