"""IR drop on a crossbar: an exact nodal solver, the exact transfer matrix and a first-order model.

Circuit (both models)
    ``R`` rows, ``C`` columns, cell ``(r, c)`` of conductance ``G[r, c]`` (S) between the row
    node ``a[r, c]`` and the column node ``b[r, c]``. Row ``r`` is driven at its left end with
    ``v[r]`` (V) through one row-wire segment ``r_row`` (ohm) before column 0, and one segment
    ``r_row`` separates neighbouring cells of the row. Column ``c`` flows down through one
    segment ``r_col`` (ohm) between neighbouring cells and one more below the last row into a
    virtual ground (the sensing amplifier holds it at 0 V). The column current read by the ADC
    is the current through that last segment, ``I[c] = b[R-1, c] / r_col``.

Exact model (:func:`solve_crossbar`)
    Kirchhoff's current law at the ``2 R C`` nodes is the sparse symmetric positive definite
    system ``Y u = j`` (nodal analysis): for a row node the wire segments to its left and right
    neighbours (the left end of column 0 is the source ``v[r]``, which moves ``v[r] / r_row``
    to the right-hand side) and the cell; for a column node the segments above and below (the
    one below the last row goes to ground) and the cell. Solved with ``scipy.sparse.linalg``.

Transfer matrix (:func:`transfer_conductance`, ``nonideal.ir_drop.model: transfer``)
    The circuit is linear, so ``I = v @ T`` with ``T`` depending on ``G`` only: computed once
    per programmed crossbar, directly and exactly up to rounding, by Kron reduction (Schur
    complements of the nodal matrix) row by row from the top: each row wire is reduced to a
    Norton equivalent at its column nodes (its tridiagonal inverse is semiseparable: ``O(C)``
    recurrences), and the rows above are carried down the column segments as one ``C x C``
    admittance and a ``C x R`` source matrix. About ``4 R C^3`` flops per crossbar, no
    iteration, batched over crossbars (float32: ~3e-5 of the largest current at 128x128;
    CrossSim instead iterates its circuit solver per input vector).
    :func:`transfer_conductance_cg` computes the same matrix by conjugate gradients
    (cross-check and benchmark baseline).

First-order model (:func:`effective_conductance`, ``model: first_order``)
    One Jacobi step from the ideal currents ``i[r, c] = v[r] G[r, c]`` (first order in the wire
    resistance): the row wire segment ``k`` (left of cell ``k``) carries the currents of the cells
    ``j >= k`` of its row, the column segment below row ``k`` those of the rows ``j <= k``, so

        a[r, c] = v[r] - r_row v[r] sum_j G[r, j] (min(j, c) + 1)
        b[r, c] = r_col sum_j v[j] G[j, c] (R - max(r, j))
        I[c]    = sum_r G[r, c] (a[r, c] - b[r, c])  =  sum_r v[r] G_eff[r, c]

    with ``G_eff[r, c] = G[r, c] (1 - r_row A[r, c] - r_col B[r, c])``,
    ``A[r, c] = sum_j G[r, j] (min(j, c) + 1)`` and ``B[r, c] = sum_k G[k, c] (R - max(k, r))``.
    The model is linear in the inputs, so it is one fixed matrix per programmed crossbar: IR drop
    costs nothing at inference time beyond computing ``G_eff`` once per chip. Its error against the
    exact solver grows as ``(r G N)^2``; ``reports/bench/sim_irdrop.md`` tabulates it.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from codesign.errors import CodesignError
from codesign.threads import intra_op_threads


def _check_inputs(G: np.ndarray, v: np.ndarray, r_row: float, r_col: float) -> None:
    if G.ndim != 2 or G.shape[0] < 1 or G.shape[1] < 1:
        raise CodesignError(f"solve_crossbar: G: expected an (R, C) array, got shape {G.shape}")
    if v.shape != (G.shape[0],):
        raise CodesignError(f"solve_crossbar: v: expected shape ({G.shape[0]},), got {v.shape}")
    if not np.all(np.isfinite(G)) or np.any(G < 0):
        raise CodesignError("solve_crossbar: G: expected finite conductances >= 0 S")
    if not np.all(np.isfinite(v)):
        raise CodesignError("solve_crossbar: v: expected finite voltages (V)")
    for name, r in (("r_row", r_row), ("r_col", r_col)):
        if not (np.isfinite(r) and r > 0):
            raise CodesignError(f"solve_crossbar: {name} = {r!r} ohm: the nodal solver needs a "
                                "wire resistance > 0 ohm per segment")


def _nodal_system(G: np.ndarray, v: np.ndarray, r_row: float, r_col: float
                  ) -> tuple[sp.csr_matrix, np.ndarray]:
    """``Y`` and ``j`` of the nodal equations; row node ``(r, c)`` is unknown ``r*C + c``, column
    node ``(r, c)`` is ``R*C + r*C + c``."""
    R, C = G.shape
    n = R * C
    gr, gc = 1.0 / r_row, 1.0 / r_col
    idx = np.arange(n).reshape(R, C)
    a, b = idx, idx + n
    rows, cols, vals = [], [], []

    def stamp(p: np.ndarray, q: np.ndarray, g: np.ndarray | float) -> None:
        """A conductance ``g`` between nodes ``p`` and ``q`` (arrays of the same shape)."""
        g = np.broadcast_to(np.asarray(g, dtype=float), p.shape).ravel()
        p, q = p.ravel(), q.ravel()
        rows.extend([p, q, p, q])
        cols.extend([p, q, q, p])
        vals.extend([g, g, -g, -g])

    def to_fixed(p: np.ndarray, g: float) -> None:
        """A conductance ``g`` from nodes ``p`` to a fixed potential (source or ground)."""
        p = p.ravel()
        rows.append(p)
        cols.append(p)
        vals.append(np.full(p.shape, g))

    stamp(a, b, G)  # the cells
    if C > 1:
        stamp(a[:, :-1], a[:, 1:], gr)  # row segments between neighbouring cells
    to_fixed(a[:, 0], gr)  # the first row segment, from the source
    if R > 1:
        stamp(b[:-1, :], b[1:, :], gc)  # column segments between neighbouring cells
    to_fixed(b[-1, :], gc)  # the last column segment, to ground
    Y = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(2 * n, 2 * n))
    j = np.zeros(2 * n)
    j[a[:, 0]] = v * gr
    return Y, j


def solve_crossbar(G: np.ndarray, v: np.ndarray, r_row: float, r_col: float, *,
                   return_voltages: bool = False):
    """Exact column currents (A) of the crossbar of the module docstring.

    ``G``: ``(R, C)`` conductances (S); ``v``: ``(R,)`` row voltages (V); ``r_row``, ``r_col``:
    resistance of one row / column wire segment (ohm, > 0). Returns ``(C,)`` amperes, and with
    ``return_voltages`` also the row-node and column-node voltages, each ``(R, C)`` (V).
    """
    G = np.asarray(G, dtype=float)
    v = np.asarray(v, dtype=float)
    _check_inputs(G, v, float(r_row), float(r_col))
    R, C = G.shape
    Y, j = _nodal_system(G, v, float(r_row), float(r_col))
    u = spla.spsolve(Y.tocsc(), j)
    a = u[: R * C].reshape(R, C)
    b = u[R * C:].reshape(R, C)
    current = b[-1, :] / float(r_col)
    if return_voltages:
        return current, a, b
    return current


def effective_conductance(G: torch.Tensor, r_row_ohm: float, r_col_ohm: float) -> torch.Tensor:
    """First-order IR-drop model: ``G_eff`` with ``I = v @ G_eff`` (module docstring).

    ``G``: ``(..., R, C)`` conductances in S (leading dimensions: chips, row blocks, ...).
    Vectorised with cumulative sums; no loop over rows or columns.
    """
    R, C = G.shape[-2], G.shape[-1]
    dev, dt = G.device, G.dtype
    jpos = torch.arange(1, C + 1, device=dev, dtype=dt)  # j + 1
    # A[r, c] = sum_{j <= c} G[r, j] (j + 1) + (c + 1) sum_{j > c} G[r, j]
    left = torch.cumsum(G * jpos, dim=-1)
    total = G.sum(dim=-1, keepdim=True)
    right = total - torch.cumsum(G, dim=-1)
    A = left + jpos * right
    # B[r, c] = sum_{k <= r} G[k, c] (R - r) + sum_{k > r} G[k, c] (R - k)
    rr = torch.arange(R, device=dev, dtype=dt).reshape(R, 1)
    above = torch.cumsum(G, dim=-2) * (R - rr)
    wk = G * (R - rr)
    below = wk.sum(dim=-2, keepdim=True) - torch.cumsum(wk, dim=-2)
    B = above + below
    return G * (1.0 - r_row_ohm * A - r_col_ohm * B)


def _wire_operator(i: torch.Tensor, r_row: float, r_col: float) -> torch.Tensor:
    """``L(i)``: wire voltage drops at every cell from the cell currents ``i`` ``(..., R, C)``.

    Row part: segment ``k`` of row ``r`` carries ``sum_{j >= k} i[r, j]``, and the row node of
    cell ``c`` lies behind segments ``0..c``. Column part: the segment below row ``m`` carries
    ``sum_{k <= m} i[k, c]``, and the column node of row ``r`` sits above segments ``r..R-1``.
    ``L`` is symmetric positive semi-definite (kernels ``min(j, c) + 1`` and ``R - max(k, r)``).
    """
    seg_row = torch.flip(torch.cumsum(torch.flip(i, [-1]), -1), [-1])
    drop_row = torch.cumsum(seg_row, -1)
    seg_col = torch.cumsum(i, -2)
    drop_col = torch.flip(torch.cumsum(torch.flip(seg_col, [-2]), -2), [-2])
    return r_row * drop_row + r_col * drop_col


_EXP_SAFE = 60.0
"""Largest ``|S|`` (log of the row-wire attenuation, :func:`_row_factors`) for which the row
couplings are formed as outer products ``a b^T`` (``exp(60) ~ 1e26``: no overflow in float32);
beyond it (wires far too resistive for the cells) they are formed from ``exp(-|S_i - S_j|)``."""


def _row_factors(G: torch.Tensor, g_row: float
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generators of ``D (L + D)^{-1} D`` for every row wire at once (float64, ``(n, R, C)``).

    ``L + D`` is the row wire's nodal matrix: ``D = diag(G[r])`` the cells, ``L`` the wire
    Laplacian (segment conductance ``g_row``; node 0 also has the driver segment to the source,
    the last node only its left segment). It is a symmetric tridiagonal M-matrix, so its
    inverse ``X`` is semiseparable: with the forward Thomas pivots ``g + p_k`` and multipliers
    ``w_k = g / (g + p_k)``, ``X[i, j] = X[j, j] prod_{i <= k < j} w_k`` for ``i <= j``
    (back substitution of a right-hand side that is zero above row ``j``), and ``X[j, j]`` is
    one over the conductance node ``j`` sees when every other node is eliminated:
    ``left_j + G_j + right_j``, the left and right parts of the wire reduced to one conductance
    each by ``p -> G + g p / (g + p)`` (a segment in series, then a cell in parallel). Every
    recurrence adds positive terms only (no cancellation). With ``S_i = sum_{k < i} log w_k``
    (non-increasing), ``(D X D)[i, j] = a_i b_j`` for ``i <= j``, ``a = G exp(-S)``,
    ``b = G X_diag exp(S)``. Returns ``S``, ``X_diag`` and ``b``.
    """
    n, R, C = G.shape
    left = torch.empty_like(G)
    right = torch.empty_like(G)
    logw = torch.empty_like(G)
    left[..., 0] = g_row  # the driver segment to the source
    p = G[..., 0] + g_row
    logw[..., 0] = -torch.log1p(p / g_row)
    for j in range(1, C):
        left[..., j] = g_row * p / (g_row + p)
        p = G[..., j] + left[..., j]
        logw[..., j] = -torch.log1p(p / g_row)
    right[..., C - 1] = 0.0  # the far end of the row wire is open
    q = G[..., C - 1]
    for j in range(C - 2, -1, -1):
        right[..., j] = g_row * q / (g_row + q)
        q = G[..., j] + right[..., j]
    x_diag = 1.0 / (left + G + right)
    S = torch.cumsum(logw, -1) - logw  # exclusive: S_0 = 0
    return S, x_diag, G * x_diag * torch.exp(S)


def _spd_inverse(A: torch.Tensor, base: int = 16) -> torch.Tensor:
    """Inverse of symmetric positive definite ``A`` ``(..., m, m)`` by recursive 2x2 block
    elimination (only the upper-right off-diagonal block is read): with ``A = [[P, Q],
    [Q^T, S]]``, ``T = P^{-1} Q`` and the Schur complement ``Z = S - Q^T T``,
    ``A^{-1} = [[P^{-1} + T Z^{-1} T^T, -T Z^{-1}], [-Z^{-1} T^T, Z^{-1}]]``. About
    ``4/3 m^3`` flops, all in batched matrix products (faster here than LAPACK's Cholesky for
    many small matrices); blocks of ``base`` or fewer by LU. No pivoting is needed for SPD
    matrices, and the matrices inverted here have condition numbers below
    ``1 + R max(G) r_col`` (:func:`transfer_conductance`)."""
    m = A.shape[-1]
    if m <= base:
        return torch.linalg.inv_ex(A)[0]
    h = m // 2
    P, Q, S = A[..., :h, :h], A[..., :h, h:], A[..., h:, h:]
    p_inv = _spd_inverse(P, base)
    T = torch.matmul(p_inv, Q)
    z_inv = _spd_inverse(S - torch.matmul(Q.transpose(-1, -2), T), base)
    off = -torch.matmul(T, z_inv)
    out = torch.empty_like(A)
    out[..., :h, :h] = p_inv - torch.matmul(off, T.transpose(-1, -2))
    out[..., :h, h:] = off
    out[..., h:, :h] = off.transpose(-1, -2)
    out[..., h:, h:] = z_inv
    return out


def transfer_conductance(G: torch.Tensor, r_row: float, r_col: float, *, chunk: int = 64,
                         dtype: torch.dtype = torch.float32, threads: Optional[int] = 1,
                         workers: Optional[int] = None) -> torch.Tensor:
    """Exact IR-drop transfer matrix ``G_eff`` (``I = v @ G_eff``) of each ``(R, C)`` tile.

    The circuit (module docstring) is linear, so the column currents are
    ``sum_r v[r] G_eff[r, :]``. ``G_eff`` is computed directly, without iteration, by Kron
    reduction (Schur complements of the nodal matrix of :func:`solve_crossbar`), one row at a
    time from the top, all tiles batched:

    1. Row wire ``r`` (row nodes ``a[r, :]``; cells ``D = diag(G[r])``; wire Laplacian ``L``
       with the driver segment ``g_r = 1 / r_row`` at node 0) is eliminated: seen from the
       column nodes ``b[r, :]`` it is a Norton source, current into ``b[r]`` =
       ``k_r v[r] - Y_row_r b[r]`` with ``Y_row_r = D - D (L + D)^{-1} D`` and
       ``k_r = g_r D (L + D)^{-1} e_0``; ``(L + D)^{-1}`` is semiseparable, so both come from
       ``O(C)`` recurrences per row (:func:`_row_factors`).
    2. Rows ``0..r`` together, seen from ``b[r, :]``, are ``J = K_r v[0..r] - Y_r b[r]``.
       Through the column segments (``g_c = 1 / r_col``) to ``b[r+1]``: with
       ``M = g_c (Y_r + g_c I)^{-1}``, ``Y' = M Y_r`` (``= g_c I - g_c M``, written without
       the cancellation) and ``K' = M K_r``; then ``Y_{r+1} = Y' + Y_row_{r+1}`` and
       ``K_{r+1} = [K', k_{r+1}]``.
    3. The last row's column nodes drain through one segment to the virtual ground:
       ``b[R-1] = (Y_{R-1} + g_c I)^{-1} K v``, so ``G_eff^T = M_{R-1} K_{R-1}``.

    Every matrix inverted is ``g_c I + Y`` with ``0 <= Y <= sum_r diag(G[r])`` (Loewner
    order: each reduction step only lowers an admittance), so its condition number is below
    ``1 + R max(G) r_col`` (1.03 at 128 rows, 40 uS, 5.6 ohm): :func:`_spd_inverse` is safe
    in float32. Cost about ``(4/3 + 2) C^3 + 2 C^2 r`` flops for row ``r``, ``~4 R C^3`` per
    tile, no iteration; exact up to rounding (float32: ~1e-6 of the largest output at
    128x128, float64: ~1e-13; ``reports/bench/sim_irdrop.md``). Unused rows and columns of a
    tile (g_off filler) load the wires like any other cell and are kept.

    ``G``: ``(..., R, C)`` conductances ``>= 0`` and ``r_row``, ``r_col`` the resistance of one
    segment, in any consistent units (``r * G`` dimensionless); leading dimensions batched,
    ``chunk`` tiles at a time. The sweep runs in ``dtype`` (the row recurrences in float64);
    returned in ``G.dtype``. ``threads``: torch intra-op threads while it runs (restored after;
    ``None`` leaves torch's setting): the sweep is thousands of small batched operations, and on
    a shared machine each one's thread barrier waits for a descheduled thread (60 student
    crossbars: 5.5 s at 1 thread, 62-91 s at 2 threads, load average 12-16 on 2 CPUs).
    ``workers`` (default: the CPU count, at most 4): the tiles split into that many equal
    parts, each swept on its own Python thread (torch releases the GIL inside every operation),
    so the cores share the work without a barrier between them; each tile's result does not
    depend on the split, nor on the other tiles of the call (bit for bit, tested: a lone tile
    is swept paired with a copy of itself, :func:`_transfer_block`). The sweep's cost is
    dominated, for a few tiles, by the per-operation overhead of its ~10^4 small batched
    operations: batch many tiles per call (:func:`codesign.sim.crossbar.wire_tiles` sweeps
    every layer of every chip at once).
    """
    if not (math.isfinite(r_row) and math.isfinite(r_col) and r_row > 0 and r_col > 0):
        raise CodesignError(f"IR drop: r_row = {r_row!r}, r_col = {r_col!r}: the transfer model "
                            "needs wire resistances > 0")
    lead = G.shape[:-2]
    R, C = G.shape[-2], G.shape[-1]
    tiles = G.reshape(-1, R, C).to(torch.float64)
    if not bool(torch.isfinite(tiles).all()) or bool((tiles < 0).any()):
        raise CodesignError("IR drop: the transfer model needs finite conductances >= 0")
    out = torch.empty(tiles.shape, dtype=dtype)
    n = tiles.shape[0]
    parts = max(1, min(n, int(workers) if workers is not None else min(4, os.cpu_count() or 1)))
    bounds = [n * i // parts for i in range(parts + 1)]

    def sweep(lo: int, hi: int) -> None:
        for k0 in range(lo, hi, chunk):
            k1 = min(hi, k0 + chunk)
            out[k0:k1] = _transfer_block(tiles[k0:k1], float(r_row), float(r_col), dtype)

    with intra_op_threads(threads):
        if parts == 1:
            sweep(0, n)
        else:
            with ThreadPoolExecutor(max_workers=parts,
                                    thread_name_prefix="codesign-ir-drop") as pool:
                for f in [pool.submit(sweep, bounds[i], bounds[i + 1]) for i in range(parts)]:
                    f.result()
    return out.reshape(lead + (R, C)).to(G.dtype)


def _transfer_block(G: torch.Tensor, r_row: float, r_col: float, dtype: torch.dtype
                    ) -> torch.Tensor:
    """:func:`transfer_conductance` of ``(n, R, C)`` float64 tiles, the sweep in ``dtype``.

    A batch of one tile is swept paired with a copy of itself: batched matrix products of a
    single matrix take other kernels than those of a batch, with other rounding (seen at
    128x128), so a tile's result must not depend on how many tiles share its batch."""
    if G.shape[0] == 1:
        return _transfer_block(G.repeat(2, 1, 1), r_row, r_col, dtype)[:1]
    n, R, C = G.shape
    g_row, g_col = 1.0 / r_row, 1.0 / r_col
    S, x_diag, b = _row_factors(G, g_row)
    upper = torch.ones(C, C, dtype=torch.bool).triu()  # i <= j
    outer = float(-S.min()) <= _EXP_SAFE
    a = (G * torch.exp(-S)).to(dtype) if outer else None
    bd = b.to(dtype)
    cells = G.to(dtype)

    def row_admittance(r: int) -> torch.Tensor:
        """``Y_row_r = diag(G[r]) - D X D`` ``(n, C, C)`` (``a_i b_j`` for ``i <= j``)."""
        if a is not None:
            P = torch.where(upper, a[:, r, :, None] * bd[:, r, None, :],
                            bd[:, r, :, None] * a[:, r, None, :])
        else:  # X[i, j] = X[m, m] exp(-|S_i - S_j|), m = max(i, j): no overflow
            s_r, xd, g_r = S[:, r], x_diag[:, r], G[:, r]
            P = torch.exp(-(s_r[:, :, None] - s_r[:, None, :]).abs())
            P *= torch.where(upper, xd[:, None, :], xd[:, :, None])
            P *= g_r[:, :, None] * g_r[:, None, :]
            P = P.to(dtype)
        P.neg_().diagonal(dim1=-2, dim2=-1).add_(cells[:, r])
        return P

    # K[:, :, s] = k_s = g_r b[s] (S_0 = 0); column s joins the sweep at row s
    K = (g_row * bd).transpose(-1, -2).contiguous()
    Y = row_admittance(0)
    for r in range(R - 1):
        M = _column_step(Y, g_col)
        K[:, :, : r + 1] = torch.matmul(M, K[:, :, : r + 1])
        Y = torch.baddbmm(row_admittance(r + 1), M, Y)
    return torch.matmul(_column_step(Y, g_col), K).transpose(-1, -2)


def _column_step(Y: torch.Tensor, g_col: float) -> torch.Tensor:
    """``M = g_c (Y + g_c I)^{-1}``: through one column segment, the admittance ``Y`` becomes
    ``M Y`` and the Norton currents ``K`` become ``M K``."""
    A = Y.clone()
    A.diagonal(dim1=-2, dim2=-1).add_(g_col)
    M = _spd_inverse(A)
    M *= g_col
    return M


def transfer_conductance_cg(G: torch.Tensor, r_row: float, r_col: float, *, tol: float = 1e-7,
                         max_iter: int = 2000) -> torch.Tensor:
    """The transfer matrix of :func:`transfer_conductance` by a second, independent algorithm
    (kept as a cross-check and as the benchmark's baseline; about 10x slower at 128x128).

    The circuit is linear, so the column currents are ``sum_r v[r] G_eff[r, :]`` with row ``r``
    of ``G_eff`` the column currents when only row ``r`` is driven at 1 V (the other drivers at
    0 V). With the cell currents ``i = G (a - b)`` and the wire drops ``a - b = v - L(i)``
    (:func:`_wire_operator`), ``i`` solves ``(I + G L) i = G v``; substituting ``i = sqrt(G) z``
    gives the symmetric positive definite system ``(I + sqrt(G) L sqrt(G)) z = sqrt(G) v``,
    solved by conjugate gradients for all ``R`` unit inputs at once (batched; relative residual
    ``tol``). Same circuit as :func:`solve_crossbar`; exact up to ``tol``.
    """
    lead = G.shape[:-2]
    R, C = G.shape[-2], G.shape[-1]
    tiles = G.reshape(-1, R, C).to(torch.float64)
    out = torch.empty_like(tiles)
    eye = torch.eye(R, dtype=torch.float64).reshape(R, R, 1)
    for t in range(tiles.shape[0]):
        d = torch.sqrt(tiles[t])  # (R, C)
        b = eye * d  # unit input j drives row j: b_j = sqrt(G) e_j, shape (R_inputs, R, C)
        z = torch.zeros_like(b)
        res = b.clone()
        p_dir = res.clone()
        rr = (res * res).sum(dim=(-2, -1))
        b2 = rr.clone()
        for _ in range(max_iter):
            ap = p_dir + d * _wire_operator(d * p_dir, r_row, r_col)
            alpha = rr / (p_dir * ap).sum(dim=(-2, -1))
            z += alpha.reshape(-1, 1, 1) * p_dir
            res -= alpha.reshape(-1, 1, 1) * ap
            rr_new = (res * res).sum(dim=(-2, -1))
            if bool((rr_new <= (tol * tol) * b2).all()):
                break
            p_dir = res + (rr_new / rr).reshape(-1, 1, 1) * p_dir
            rr = rr_new
        else:
            raise CodesignError(f"IR drop: conjugate gradients did not converge in {max_iter} "
                                "iterations")
        out[t] = (d * z).sum(dim=-2)  # column currents per unit input: (R_inputs, C)
    return out.reshape(lead + (R, C)).to(G.dtype)


def fast_column_currents(G: np.ndarray, v: np.ndarray, r_row: float, r_col: float, *,
                         model: str = "first_order") -> np.ndarray:
    """Column currents (A) for one input vector, ``v @ G_eff``: ``model="first_order"``
    (:func:`effective_conductance`) or ``"transfer"`` (:func:`transfer_conductance`)."""
    G = np.asarray(G, dtype=float)
    v = np.asarray(v, dtype=float)
    _check_inputs(G, v, float(r_row), float(r_col))
    g = torch.from_numpy(G)
    if model == "transfer":
        g_eff = transfer_conductance(g, float(r_row), float(r_col)).numpy()
    else:
        g_eff = effective_conductance(g, float(r_row), float(r_col)).numpy()
    return v @ g_eff
