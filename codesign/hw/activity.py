"""Crossbar row activity of a layer, measured from its input tensor or assumed dense.

For every output position, time step and sample, the input patch that a row block sees is a
slice of the im2col-unrolled input; its number of non-zero entries is the block's *active rows*
``a``. A crossbar read with ``a = 0`` can be skipped (gated). Counting is vectorised without
materialising im2col: for each kernel offset ``(i, j)`` the strided view ``x[:, i::s, j::s, :]``
(channels last) holds one unrolled row per channel, and the channels of one row block are
contiguous, so ``np.add.reduceat`` over the channel axis gives every block's count at once.

Analog inputs (the first layer under direct encoding) are binarised per the spec's input scheme,
from the driver's codes ``q = round(clip(x, 0, 1) (2^bits - 1))`` against the fixed input full
scale (:func:`codesign.hw.input_codes.input_codes`, the same function the simulator's crossbar
applies): ``bit_serial``: each of the ``bits`` bit planes of ``q`` is one read (``planes =
bits``); ``dac``: a row is active when its code is non-zero (one plane).
Multi-level spike inputs (spikes averaged by a ``k x k`` pooling: ``levels = k*k`` steps of
``1/levels``) are applied exactly as ``ceil(log2(levels + 1))`` bit planes of
``round(x * levels)``.

All statistics are per sample (mean over the batch) and per time step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.errors import CodesignError
from codesign.graph.schema import ConvLayer
from codesign.hw.input_codes import input_codes
from codesign.hw.mapping import LayerMapping

_CHUNK_ELEMS = 1 << 24  # elements of the channels-last copy processed at once


@dataclass(frozen=True)
class BlockActivity:
    """Row-block statistics of one layer, arrays of shape ``(T,)`` (per sample)."""

    active_rows: np.ndarray
    """Sum over row-block reads (all bit planes) of active rows."""
    reads_nonzero: np.ndarray
    """Row-block reads with at least one active row (all bit planes)."""
    positions_active: np.ndarray
    """Output positions with at least one non-zero row-block read."""
    input_rate: np.ndarray
    """Fraction of non-zero input elements."""
    reads_total: float
    """Row-block reads per step when nothing is skipped: ``positions * row_blocks * planes``."""
    rows_total: float
    """Active rows per step if every row were active: ``positions * sum(rows) * planes``."""
    planes: int
    dense: bool
    nonzero_rows: np.ndarray | None = None
    """Sum over row-block reads of rows driven in any plane (a non-zero code: all planes at
    once); equals ``active_rows`` for one plane. Used for synaptic-op counts."""

    @property
    def sop_rows(self) -> np.ndarray:
        return self.active_rows if self.nonzero_rows is None else self.nonzero_rows


def _totals(m: LayerMapping, planes: int) -> tuple[float, float]:
    reads = float(m.positions * m.row_blocks * planes)
    rows = float(m.positions * m.groups * sum(m.block_rows) * planes)
    return reads, rows


def dense_activity(m: LayerMapping, T: int, planes: int = 1) -> BlockActivity:
    """Every row of every read active (an upper bound; padding counts as active)."""
    reads, rows = _totals(m, planes)
    ones = np.ones(T)
    return BlockActivity(active_rows=rows * ones, reads_nonzero=reads * ones,
                         positions_active=m.positions * ones, input_rate=ones,
                         reads_total=reads, rows_total=rows, planes=planes, dense=True,
                         nonzero_rows=rows / planes * ones)


def level_planes(levels: int) -> int:
    """Bit planes of an input with ``levels`` non-zero levels: ``ceil(log2(levels + 1))``."""
    return max(1, int(np.ceil(np.log2(levels + 1))))


def binary_planes(x: np.ndarray, *, analog: bool, scheme: str, bits: int,
                  levels: int = 1) -> list[np.ndarray]:
    """Boolean row-drive planes of ``x``: spikes -> ``[x != 0]``; multi-level spikes -> the bit
    planes of ``round(x * levels)``; analog ``dac`` -> ``[q != 0]``; analog ``bit_serial`` ->
    the ``bits`` bit planes of the driver codes ``q = input_codes(x, bits)`` (a fixed full
    scale of 1, not the batch's maximum)."""
    if not analog and levels > 1:
        q = np.clip(np.rint(x.astype(np.float32, copy=False) * levels), 0, levels).astype(
            np.int32)
        return [((q >> k) & 1).astype(bool) for k in range(level_planes(levels))]
    if not analog:
        return [x != 0]
    q = input_codes(x.astype(np.float32, copy=False), bits).astype(np.int32)
    if scheme == "dac":
        return [q != 0]
    return [((q >> k) & 1).astype(bool) for k in range(bits)]


def _conv_counts(p: np.ndarray, layer: ConvLayer, m: LayerMapping, bidx: np.ndarray):
    """Per-sample (active_rows, nonzero_reads, positions_active-mask) for one plane chunk.

    ``p``: bool ``(N, C, H, W)``. Returns ``(active[N], nonzero[N], pos_any[N, Ho, Wo])``.
    """
    n = p.shape[0]
    kh, kw = m.kernel
    sh, sw = layer.stride
    ph, pw = layer.padding
    dh, dw = getattr(layer, "dilation", (1, 1))
    _, ho, wo = layer.out_shape
    xl = np.zeros((n, p.shape[2] + 2 * ph, p.shape[3] + 2 * pw, p.shape[1]), dtype=np.uint8)
    xl[:, ph:ph + p.shape[2], pw:pw + p.shape[3], :] = p.transpose(0, 2, 3, 1)
    views = [xl[:, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw, :]
             for i in range(kh) for j in range(kw)]
    nb = len(m.block_rows)
    cg = m.in_per_group
    counts = np.zeros((n, ho, wo, m.groups * nb), dtype=np.int32)
    k2 = kh * kw
    for g in range(m.groups):
        sub = [v[..., g * cg:(g + 1) * cg] for v in views]
        base = g * nb
        if m.mode == "im2col" and k2 < 256:
            _im2col_counts(sub, counts, base, bidx, k2)
        else:
            for off, v in enumerate(sub):
                bid = bidx[:, off // kw, off % kw]
                starts = np.flatnonzero(np.r_[True, bid[1:] != bid[:-1]])
                counts[..., base + bid[starts]] += np.add.reduceat(v, starts, axis=3,
                                                                   dtype=np.int32)
    nz = counts > 0
    return (counts.sum(axis=(1, 2, 3), dtype=np.int64), nz.sum(axis=(1, 2, 3)),
            nz.any(axis=3))


def _im2col_counts(sub: list[np.ndarray], counts: np.ndarray, base: int, bidx: np.ndarray,
                   k2: int) -> None:
    """im2col row blocks hold whole channels except at their edges: sum each channel over its
    ``k2`` kernel positions once (a box sum), add whole channels per block with one
    ``reduceat``, then move the kernel positions of channels that straddle a block edge."""
    box = sub[0].copy()
    for v in sub[1:]:
        box += v
    flat = bidx.reshape(bidx.shape[0], k2)                # block of (channel, offset)
    first = flat[:, 0]
    starts = np.flatnonzero(np.r_[True, first[1:] != first[:-1]])
    counts[..., base + first[starts]] += np.add.reduceat(box, starts, axis=3, dtype=np.int32)
    for c in np.flatnonzero(flat[:, -1] != first):        # straddling channels
        for off in np.flatnonzero(flat[c] != first[c]):
            v = sub[off][..., c]
            counts[..., base + first[c]] -= v
            counts[..., base + flat[c, off]] += v


def _linear_counts(p: np.ndarray, m: LayerMapping, bidx: np.ndarray):
    """``p``: bool ``(N, F)``. Same outputs as :func:`_conv_counts` (one position)."""
    bid = bidx[:, 0, 0]
    starts = np.flatnonzero(np.r_[True, bid[1:] != bid[:-1]])
    counts = np.add.reduceat(p.astype(np.uint8), starts, axis=1, dtype=np.int32)
    nz = counts > 0
    return counts.sum(axis=1, dtype=np.int64), nz.sum(axis=1), nz.any(axis=1)[:, None, None]


def row_block_activity(
    x: np.ndarray,
    layer,
    m: LayerMapping,
    *,
    analog: bool = False,
    scheme: str = "bit_serial",
    bits: int = 8,
    levels: int = 1,
    name: str = "layer",
) -> BlockActivity:
    """Row-block activity of ``layer`` from its input ``x`` of shape ``(T, B, *in_shape)``
    (``analog``: the spec's input scheme and ``bits``; ``levels > 1``: multi-level spikes)."""
    x = np.asarray(x)
    in_shape = tuple(layer.in_shape)
    if x.ndim < 3 or int(np.prod(x.shape[2:])) != int(np.prod(in_shape)) or (
            m.op == "conv" and tuple(x.shape[2:]) != in_shape):
        dims = ", ".join(map(str, in_shape))
        raise CodesignError(f"activity[{name!r}]: expected shape (T, B, {dims}), got "
                            f"{tuple(x.shape)}")
    T, B = int(x.shape[0]), int(x.shape[1])
    flat = x.reshape((T * B, *in_shape)) if m.op == "conv" else x.reshape(T * B, -1)
    planes = binary_planes(flat, analog=analog, scheme=scheme, bits=bits, levels=levels)
    if len(planes) > 1:  # rows driven in any plane (synaptic ops), as one more pass
        driven = np.logical_or.reduce(planes).reshape(x.shape)
        nz_act = row_block_activity(driven, layer, m, name=name)
    bidx = m.block_index()
    active = np.zeros(T * B, dtype=np.int64)
    nonzero = np.zeros(T * B, dtype=np.int64)
    pos_any = np.zeros(T * B, dtype=np.int64)
    per = max(1, int(np.prod(in_shape)))
    step = max(1, _CHUNK_ELEMS // per)
    for lo in range(0, T * B, step):
        hi = min(T * B, lo + step)
        any_mask = None
        for p in planes:
            chunk = p[lo:hi]
            if m.op == "conv":
                a, z, pa = _conv_counts(chunk, layer, m, bidx)
            else:
                a, z, pa = _linear_counts(chunk, m, bidx)
            active[lo:hi] += a
            nonzero[lo:hi] += z
            any_mask = pa if any_mask is None else (any_mask | pa)
        pos_any[lo:hi] = any_mask.reshape(hi - lo, -1).sum(axis=1)
    rate = (flat != 0).reshape(T, B, -1).mean(axis=(1, 2))
    reads, rows = _totals(m, len(planes))

    def per_step(v: np.ndarray) -> np.ndarray:
        return v.reshape(T, B).mean(axis=1)

    return BlockActivity(active_rows=per_step(active), reads_nonzero=per_step(nonzero),
                         positions_active=per_step(pos_any), input_rate=rate,
                         reads_total=reads, rows_total=rows, planes=len(planes), dense=False,
                         nonzero_rows=nz_act.active_rows if len(planes) > 1 else None)


def spike_counts(s: np.ndarray, shape: tuple, name: str = "lif") -> np.ndarray:
    """Spikes per sample per step of a LIF output ``(T, B, *shape)`` -> ``(T,)``."""
    s = np.asarray(s)
    if s.ndim < 3 or int(np.prod(s.shape[2:])) != int(np.prod(shape)):
        raise CodesignError(f"activity[{name!r}]: expected LIF spikes of shape (T, B, "
                            f"{', '.join(map(str, shape))}), got {tuple(s.shape)}")
    return (s != 0).reshape(s.shape[0], s.shape[1], -1).sum(axis=2).mean(axis=1)
