"""Binary-drive crossbar reads by table lookup, exact on a dyadic conductance grid.

A read with binary row drives ``x`` (spikes, or one plane of a bit-serial input) is a sum of
selected rows of the read matrix: ``I[c] = sum_r x_r G[r, c]``. The matrix product spends one
multiply-add per row and column on it. Grouping the rows in eights (the method of four
Russians) instead: for each group ``q`` of rows ``8q .. 8q+7`` a table holds all 256 partial
sums ``S_q[p, c] = sum_i p_i G[8q + i, c]`` (``p_i``: bit ``i`` of ``p``), and a read is

    I[c] = sum_q S_q[p_q, c],    p_q = sum_i x_{8q+i} 2^i,

16 row gathers and adds for a 128-row block instead of 128 multiply-adds per column
(:func:`table_product`: ``F.embedding_bag``, which sums whole table rows with vector loads).
The pattern ``p_q`` of eight 0/1 bytes is read as one little-endian 64-bit word ``w`` and packed
by one multiplication: ``(w * 0x0102040810204080) >> 56`` carries byte ``i`` to bit ``56 + i``
(all other partial products land on distinct bits below 56 or wrap past 63), see
:func:`table_index`.

Exactness
    The read matrix is held on a dyadic grid (:func:`on_sum_grid`): every conductance is an
    integer multiple of ``u = 2^e`` with ``e`` chosen so that the largest column sum of
    ``|G|`` is at most ``2^23 u``. Every partial sum of 0/1-weighted cells is then an integer
    multiple of ``u`` below ``2^24 u``, exactly representable in float32, so the matrix product
    (in any order the BLAS picks), the table sums and a float64 product all give the same
    currents, bit for bit. The grid moves a conductance by at most ``u / 2``: relative to a
    128-row column sum, ``2^-24``; relative to one cell, about ``1e-5`` -- three orders of
    magnitude below the read noise of the presets and the ADC's LSB.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

GROUP = 8
"""Rows per table group (256 patterns; one packed byte of the drive)."""
_MAGIC = 0x0102040810204080
"""``sum_i 2^(56 - 7 i)``: multiplies byte ``i`` (0 or 1) of a word onto bit ``56 + i``."""


def on_sum_grid(g: torch.Tensor) -> torch.Tensor:
    """Each read matrix ``g[..., :, :]`` ``(rows, cols)`` (float32) rounded to its dyadic grid
    ``2^e``, on which any sum of its cells down a column is exact in float32: ``e =
    ceil(log2(max_c sum_r |g|)) - 23`` (module docstring). One grid per matrix (a chip's row
    block), so a chip's read does not depend on the other chips beside it."""
    total = g.abs().sum(-2).amax(-1, keepdim=True).unsqueeze(-1)  # (..., 1, 1)
    e = torch.ceil(torch.log2(total.clamp(min=torch.finfo(torch.float32).tiny))) - 23
    step = torch.exp2(e)  # powers of two: the scaling below is exact
    return torch.round(g / step) * step


def table_applies(drive: torch.Tensor) -> bool:
    """A drive ``(n, K)`` the tables can read: binary ``uint8`` with ``K`` a multiple of
    :data:`GROUP`, contiguous (its bytes are read as words), on a little-endian host (byte
    ``i`` of a word is its row ``8q + i``)."""
    return (drive.dtype == torch.uint8 and drive.dim() == 2 and drive.shape[1] % GROUP == 0
            and drive.is_contiguous() and sys.byteorder == "little")


def table_bytes(k: int, cols: int) -> int:
    """Bytes of :func:`build_table` of a ``(k, cols)`` float32 read matrix: ``32 k cols * 4``."""
    return k // GROUP * 256 * cols * 4


def build_table(g: torch.Tensor) -> torch.Tensor:
    """The partial sums of read matrix ``g`` ``(K, cols)`` (``K`` a multiple of
    :data:`GROUP`): ``(K / 8 * 256, cols)``, row ``256 q + p`` = ``sum_i p_i g[8q + i]``.
    Built by doubling: the patterns with bit ``i`` set are those without it plus row ``i``
    (one addition per entry; exact on :func:`on_sum_grid`)."""
    k, cols = g.shape
    rows = g.reshape(k // GROUP, GROUP, cols)
    table = torch.zeros((k // GROUP, 1, cols), dtype=g.dtype)
    for i in range(GROUP):
        table = torch.cat([table, table + rows[:, i:i + 1]], dim=1)
    return table.reshape(-1, cols)


def table_index(drive: torch.Tensor) -> torch.Tensor:
    """Table rows ``(n, K / 8)`` (int64) of binary drive ``drive`` ``(n, K)`` (uint8 0/1,
    :func:`table_applies`): ``256 q + p_q`` (module docstring)."""
    n, k = drive.shape
    words = drive.view(torch.int64)  # (n, K / 8): little-endian, byte i = row 8q + i
    groups = torch.arange(k // GROUP, dtype=torch.int64) * 256
    return (((words * _MAGIC) >> 56) & 255).add_(groups)


def table_product(drive: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``drive @ g`` ``(n, cols)`` float32 for binary ``drive`` ``(n, K)`` and ``table =
    build_table(g)``: one table row per group of eight drive rows, summed."""
    return F.embedding_bag(table_index(drive), table, mode="sum")
