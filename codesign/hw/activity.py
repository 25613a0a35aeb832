"""Crossbar row activity of a layer, measured from its input tensor or assumed dense.

For every output position, time step and sample, the input patch that a row block sees is a
slice of the im2col-unrolled input; its number of non-zero entries is the block's *active rows*
``a``. A crossbar read with ``a = 0`` can be skipped (gated). Counting is vectorised without
materialising im2col: for each kernel offset ``(i, j)`` the strided view ``x[:, i::s, j::s, :]``
(channels last) holds one unrolled row per channel, and the channels of one row block are
contiguous, so ``np.add.reduceat`` over the channel axis gives every block's count at once.

Analog inputs (the first layer under direct encoding) are binarised per the spec's input scheme:
``bit_serial``: ``|x|`` is quantised to ``bits`` levels of its maximum and each bit plane is one
read (``planes = bits``); ``dac``: a row is active when its input is non-zero (one plane).

All statistics are per sample (mean over the batch) and per time step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.errors import CodesignError
from codesign.graph.schema import ConvLayer
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
                         reads_total=reads, rows_total=rows, planes=planes, dense=True)


def binary_planes(x: np.ndarray, *, analog: bool, scheme: str, bits: int) -> list[np.ndarray]:
    """Boolean row-drive planes of ``x``: spikes -> ``[x != 0]``; analog ``dac`` -> ``[x != 0]``;
    analog ``bit_serial`` -> the ``bits`` bit planes of ``round(|x| / max|x| * (2^bits - 1))``."""
    if not analog or scheme == "dac":
        return [x != 0]
    mag = np.abs(x.astype(np.float32, copy=False))
    peak = float(mag.max()) if mag.size else 0.0
    if peak == 0.0:
        return [np.zeros(x.shape, dtype=bool)] * bits
    q = np.rint(mag * ((2**bits - 1) / peak)).astype(np.int32)
    return [((q >> k) & 1).astype(bool) for k in range(bits)]


def _conv_counts(p: np.ndarray, layer: ConvLayer, m: LayerMapping, bidx: np.ndarray):
    """Per-sample (reads_nonzero, active_rows, positions_active-mask) for one plane chunk.

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
    nb = len(m.block_rows)
    cg = m.in_per_group
    counts = np.zeros((n, ho, wo, m.groups * nb), dtype=np.int32)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            view = xl[:, h0:h0 + sh * (ho - 1) + 1:sh, w0:w0 + sw * (wo - 1) + 1:sw, :]
            bid = bidx[:, i, j]
            starts = np.flatnonzero(np.r_[True, bid[1:] != bid[:-1]])
            for g in range(m.groups):
                sub = view[..., g * cg:(g + 1) * cg]
                sums = np.add.reduceat(sub, starts, axis=3, dtype=np.int32)
                counts[..., g * nb + bid[starts]] += sums
    nz = counts > 0
    return (counts.sum(axis=(1, 2, 3), dtype=np.int64), nz.sum(axis=(1, 2, 3)),
            nz.any(axis=3))


def _linear_counts(p: np.ndarray, m: LayerMapping, bidx: np.ndarray):
    """``p``: bool ``(N, F)``. Same outputs as :func:`_conv_counts` (one position)."""
    bid = bidx[:, 0, 0]
    starts = np.flatnonzero(np.r_[True, bid[1:] != bid[:-1]])
    counts = np.add.reduceat(p.astype(np.uint8), starts, axis=1, dtype=np.int32)
    nz = counts > 0
    return counts.sum(axis=1, dtype=np.int64), nz.sum(axis=1), nz.any(axis=1)[:, None, None]


def measure_activity(
    x: np.ndarray,
    layer,
    m: LayerMapping,
    *,
    analog: bool = False,
    scheme: str = "bit_serial",
    bits: int = 8,
    name: str = "layer",
) -> BlockActivity:
    """Row-block activity of ``layer`` from its input ``x`` of shape ``(T, B, *in_shape)``."""
    x = np.asarray(x)
    in_shape = tuple(layer.in_shape)
    if x.ndim < 3 or int(np.prod(x.shape[2:])) != int(np.prod(in_shape)) or (
            m.op == "conv" and tuple(x.shape[2:]) != in_shape):
        dims = ", ".join(map(str, in_shape))
        raise CodesignError(f"activity[{name!r}]: expected shape (T, B, {dims}), got "
                            f"{tuple(x.shape)}")
    T, B = int(x.shape[0]), int(x.shape[1])
    flat = x.reshape((T * B, *in_shape)) if m.op == "conv" else x.reshape(T * B, -1)
    planes = binary_planes(flat, analog=analog, scheme=scheme, bits=bits) if analog else [
        flat != 0]
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
                         reads_total=reads, rows_total=rows, planes=len(planes), dense=False)


def spike_counts(s: np.ndarray, shape: tuple, name: str = "lif") -> np.ndarray:
    """Spikes per sample per step of a LIF output ``(T, B, *shape)`` -> ``(T,)``."""
    s = np.asarray(s)
    if s.ndim < 3 or int(np.prod(s.shape[2:])) != int(np.prod(shape)):
        raise CodesignError(f"activity[{name!r}]: expected LIF spikes of shape (T, B, "
                            f"{', '.join(map(str, shape))}), got {tuple(s.shape)}")
    return (s != 0).reshape(s.shape[0], s.shape[1], -1).sum(axis=2).mean(axis=1)
