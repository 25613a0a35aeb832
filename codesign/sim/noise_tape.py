"""Read-noise draws as one stream per chip, drawn ahead of use on a helper thread.

Every read of a simulated chip adds one standard normal per column conversion (read noise,
:class:`codesign.sim.nonideal.ReadNoise`): about 10^8 draws per hundred MNIST images, and at
~4.5 ns each (``torch`` draws normals serially, one generator at a time) they cost more than the
rest of the simulation. They do not depend on the currents, so they need not wait for them: a
chip's generator feeds a *tape*, the stream

    z = randn(CHUNK, generator=gen) ++ randn(CHUNK, generator=gen) ++ ...

drawn ``AHEAD`` chunks ahead of the reader by one worker thread while the reader computes (the
crossbar matmuls, the ADC, the neurons). Each read consumes the next ``rows x cols`` values of
its chip's stream in row-major order (:meth:`NoiseTape.add_`), so a seed fixes every draw, the
draws are the generator's own, and chunk boundaries are invisible to the values: torch draws
normals in blocks of 16, so with ``CHUNK`` a multiple of 16 the stream is exactly
``torch.randn(N, generator=gen)`` (tested against it, across chunk sizes). Once a generator has
a tape, only the tape draws from it.
"""

from __future__ import annotations

import os
import weakref
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Optional

import torch

from codesign.threads import intra_op_threads

CHUNK = 1 << 19
"""Draws per chunk (2 MB of float32: small chunks stay in cache between the worker and the
reader; 2M-value chunks made the worker 20 % slower beside the reader)."""
AHEAD = 8
"""Chunks kept drawn ahead of the reader, per chip."""

_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codesign-read-noise")
"""One worker for every tape (``normal_`` is serial and releases the GIL); first in, first out,
so each generator's chunks are drawn in order."""

_TAPES: weakref.WeakKeyDictionary[torch.Generator, NoiseTape] = weakref.WeakKeyDictionary()


def _after_fork_in_child() -> None:
    """A forked child has no worker thread: give it its own worker and no tapes."""
    global _WORKER, _TAPES
    _WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codesign-read-noise")
    _TAPES = weakref.WeakKeyDictionary()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _draw(ref: weakref.ref[torch.Generator], buf: torch.Tensor) -> Optional[torch.Tensor]:
    gen = ref()
    if gen is None:  # the chip is gone: nothing will read this chunk
        return None
    return buf.normal_(generator=gen)


class NoiseTape:
    """The standard normal stream of one generator, ``AHEAD`` chunks of ``chunk`` drawn ahead.

    The chunks live in ``AHEAD + 1`` buffers used in turn (a fresh multi-MB tensor per chunk is
    page-faulted and zeroed by the kernel: drawing into it costs ~7.5 ns a value, into a
    buffer already touched ~4.5 ns); a buffer is drawn again once the reader has left it."""

    def __init__(self, gen: torch.Generator, chunk: int = CHUNK, ahead: int = AHEAD) -> None:
        if chunk <= 0 or chunk % 16:
            raise ValueError(f"noise tape chunk {chunk}: expected a positive multiple of 16")
        self._gen = weakref.ref(gen)
        self.chunk = int(chunk)
        self._pending: deque[Future] = deque()
        for _ in range(max(1, int(ahead))):
            self._submit(torch.empty(self.chunk, dtype=torch.float32))
        # the reader starts on a spare buffer already used up: the first read draws it again
        self._cur = torch.empty(self.chunk, dtype=torch.float32)
        self._pos = self.chunk

    def _submit(self, buf: torch.Tensor) -> None:
        self._pending.append(_WORKER.submit(_draw, self._gen, buf))

    def _piece(self, n: int) -> torch.Tensor:
        """The next ``min(n, left in the current chunk)`` values (a view), at least one."""
        if self._pos == self._cur.numel():  # used up: draw it again, read the next
            self._submit(self._cur)
            cur = self._pending.popleft().result()
            assert cur is not None, "a tape outlived its generator"
            self._cur, self._pos = cur, 0
        take = min(n, self._cur.numel() - self._pos)
        piece = self._cur[self._pos:self._pos + take]
        self._pos += take
        return piece

    def take(self, n: int) -> torch.Tensor:
        """The next ``n`` values of the stream (1-D, float32, a copy)."""
        parts = [torch.empty(0)]
        while n > 0:
            parts.append(self._piece(n).clone())
            n -= parts[-1].numel()
        return torch.cat(parts)

    def add_(self, current: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """``current += z * std`` in place, ``z`` the next ``rows x cols`` values row-major.

        ``current``: ``(rows, cols)`` contiguous; ``std``: ``(rows, 1)``, the noise standard
        deviation of each row (one read: its columns share the drive). Whole rows that sit in
        one chunk are added with the chunk's view; a row split by a chunk boundary in pieces."""
        rows, cols = current.shape
        flat = current.view(-1)
        total, pos = rows * cols, 0
        while pos < total:
            piece = self._piece(total - pos)
            end, a = pos + piece.numel(), pos
            if a % cols:  # the end of a row begun before
                b = min(end, (a // cols + 1) * cols)
                flat[a:b].addcmul_(piece[a - pos:b - pos], std[a // cols])
                a = b
            r0, r1 = a // cols, end // cols
            if r1 > r0:  # whole rows
                b = r1 * cols
                current[r0:r1].addcmul_(piece[a - pos:b - pos].view(r1 - r0, cols), std[r0:r1])
                a = b
            if a < end:  # the start of a row that goes on in the next chunk
                flat[a:end].addcmul_(piece[a - pos:], std[a // cols])
            pos = end
        return current


def tape_of(gen: torch.Generator) -> NoiseTape:
    """The tape of ``gen`` (made, and drawing ahead, on first use)."""
    tape = _TAPES.get(gen)
    if tape is None:
        tape = NoiseTape(gen)
        _TAPES[gen] = tape
    return tape


@contextmanager
def core_for_draws(active: bool) -> Iterator[None]:
    """While ``active`` (read noise on), the reader runs one intra-op thread fewer, so the
    worker drawing the tapes has a core of its own.

    Otherwise the worker shares a core with one of the reader's OpenMP threads, and every
    parallel region of the reader waits for that thread: on 2 cores, 100 images with every
    non-ideality took 1.0 s with 2 reader threads and 0.64 s with 1 (the draws alone ~0.5 s)."""
    n = torch.get_num_threads()
    with intra_op_threads(n - 1 if active and n >= 2 else None):
        yield
