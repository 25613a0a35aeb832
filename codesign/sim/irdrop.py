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
    per programmed crossbar by block line relaxation (exact tridiagonal solves along all row
    wires, then all column wires, all ``R`` unit inputs at once), exact to a tolerance at any
    size (at 128x128 with 1.9 / 5.6 ohm: < 1e-4 of the largest current; CrossSim instead
    iterates its circuit solver per input vector). :func:`transfer_conductance_cg` computes the
    same matrix by conjugate gradients (cross-check).

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

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from codesign.errors import CodesignError


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


def _tridiag_factor(diag: torch.Tensor, g: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Thomas factors of the symmetric tridiagonal matrices ``tridiag(-g, diag, -g)`` (one per
    leading index, size ``n = diag.shape[-1]``): pivots ``m`` and multipliers ``w = g / m``."""
    n = diag.shape[-1]
    m = [diag[..., 0]]
    for i in range(1, n):
        m.append(diag[..., i] - g * g / m[-1])
    mm = torch.stack(m, dim=-1)
    return mm, g / mm


def _tridiag_inverse(diag: torch.Tensor, g: float) -> torch.Tensor:
    """Dense inverses ``(..., n, n)`` of ``tridiag(-g, diag, -g)`` (``diag``: ``(..., n)``), by
    the Thomas algorithm on the identity (stable: the matrices are diagonally dominant)."""
    n = diag.shape[-1]
    m, w = _tridiag_factor(diag, g)
    eye = torch.eye(n, dtype=diag.dtype)
    y = [eye[0] / m[..., 0:1]]
    for i in range(1, n):
        y.append((eye[i] + g * y[-1]) / m[..., i: i + 1])
    x = [y[-1]]
    for i in range(n - 2, -1, -1):
        x.append(y[i] + w[..., i: i + 1] * x[-1])
    return torch.stack(x[::-1], dim=-2)


def transfer_conductance(G: torch.Tensor, r_row: float, r_col: float, *, tol: float = 1e-6,
                         max_iter: int = 500, chunk: int = 8,
                         dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Exact IR-drop transfer matrix ``G_eff`` (``I = v @ G_eff``) of each ``(R, C)`` tile.

    The circuit is linear, so the column currents are ``sum_r v[r] G_eff[r, :]``: row ``s`` of
    ``G_eff`` is the column currents when only row ``s`` is driven at 1 V (the other drivers at
    0 V). All ``R`` unit inputs are solved at once by block Gauss-Seidel line relaxation on the
    nodal equations of :func:`solve_crossbar`: with the column nodes ``b`` fixed, each row wire
    is one tridiagonal system ``(L_row + diag G[r]) a[r] = G[r] b[r] + e_0 v[r] / r_row``; with
    ``a`` fixed, each column wire is ``(L_col + diag G[:, c]) b[:, c] = G[:, c] a[:, c]``
    (``L`` the wire Laplacians; source and ground segments on the diagonal). The inverses of
    these ``R + C`` tridiagonal matrices are computed once per tile (Thomas algorithm), so a
    sweep is two batched matrix products, ``~4 R^2 C^2`` flops per tile. The sweep is the
    exact block Gauss-Seidel iteration of a symmetric positive definite system, so it
    converges; its rate is about ``prod(G / (G + lambda_min))`` over the two wire layers
    (``lambda_min ~ (pi / 2N)^2 / r``), so wires that are stiff against the cells converge in
    a few sweeps (preset 128x128 at 1.9 / 5.6 ohm: 7 sweeps). Stops when the estimated
    remaining error ``d_k rho / (1 - rho)`` (``d_k`` the largest change of an output current
    in sweep ``k``, ``rho = d_k / d_{k-1}``) is below ``tol`` times the tile's largest output.

    ``G``: ``(..., R, C)`` conductances and ``r_row``, ``r_col`` resistances in any consistent
    units (``r * G`` dimensionless); leading dimensions batched, ``chunk`` tiles at a time
    (memory: about ``5 chunk R^2 C`` numbers). Computed in ``dtype`` (float32: about twice as
    fast, rounding ~1e-6 of the largest output, so keep ``tol >= 1e-5`` there), returned in
    ``G.dtype``.
    """
    if not (r_row > 0 and r_col > 0):
        raise CodesignError(f"IR drop: r_row = {r_row!r}, r_col = {r_col!r}: the transfer model "
                            "needs wire resistances > 0")
    lead = G.shape[:-2]
    R, C = G.shape[-2], G.shape[-1]
    tiles = G.reshape(-1, R, C).to(dtype)
    out = torch.empty_like(tiles)
    for k0 in range(0, tiles.shape[0], chunk):
        out[k0: k0 + chunk] = _transfer_block(tiles[k0: k0 + chunk], float(r_row), float(r_col),
                                              tol, max_iter)
    return out.reshape(lead + (R, C)).to(G.dtype)


def _transfer_block(G: torch.Tensor, r_row: float, r_col: float, tol: float, max_iter: int
                    ) -> torch.Tensor:
    """:func:`transfer_conductance` of ``(n, R, C)`` tiles (computed in their dtype)."""
    n, R, C = G.shape
    gr, gc = 1.0 / r_row, 1.0 / r_col
    dt = G.dtype
    row_deg = torch.ones(C, dtype=dt)
    row_deg[:-1] += 1.0  # segments at a row node: the one to the left (the source at c = 0)...
    col_deg = torch.ones(R, dtype=dt)
    col_deg[1:] += 1.0  # ...and at a column node: the one below (ground at r = R-1)
    a_inv = _tridiag_inverse(G + gr * row_deg, gr)  # (n, R, C, C), one per row wire
    gt = G.transpose(-1, -2).contiguous()  # (n, C, R)
    b_inv = _tridiag_inverse(gt + gc * col_deg, gc)  # (n, C, R, R), one per column wire
    src = gr * a_inv[..., 0, :]  # (n, R, C): row wire r driven at 1 V, column nodes at 0 V
    ar = torch.arange(R)
    b = None  # column-node voltages, layout (n, c, s, r): tile, column, driven row, row
    prev, d_prev = None, None
    current = torch.zeros(n, C, R, dtype=dt)
    for _ in range(max_iter):
        if b is None:
            a = torch.zeros(n, R, R, C, dtype=dt)  # layout (n, r, s, c)
        else:
            x = b.permute(0, 3, 2, 1).contiguous()
            x *= G[:, :, None, :]
            a = torch.matmul(x, a_inv)
        a[:, ar, ar, :] += src
        y = a.permute(0, 3, 2, 1).contiguous()
        y *= gt[:, :, None, :]
        b = torch.matmul(y, b_inv)
        current = gc * b[..., R - 1]  # (n, C, R): current into ground per driven row
        if prev is not None:
            d = (current - prev).abs().amax(dim=(-2, -1))
            scale = current.abs().amax(dim=(-2, -1))
            if d_prev is not None:
                rho = torch.clamp(d / torch.clamp(d_prev, min=1e-300), max=0.999)
                if bool((d * rho / (1.0 - rho) <= tol * scale).all()):
                    break
            d_prev = d
        prev = current
    else:
        raise CodesignError(f"IR drop: the transfer model did not converge in {max_iter} sweeps "
                            f"(r_row G = {r_row * float(G.max()):.3g}, r_col G = "
                            f"{r_col * float(G.max()):.3g}: wires too resistive for the cells)")
    return current.transpose(-1, -2)


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
