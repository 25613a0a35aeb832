"""The exact IR-drop solver against hand-solved circuits and Kirchhoff's law; the fast model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codesign.errors import CodesignError
from codesign.sim.irdrop import (
    fast_column_currents,
    solve_crossbar,
    transfer_conductance,
    transfer_conductance_cg,
)


def test_single_cell_is_three_resistors_in_series():
    G, v, rr, rc = 25e-6, 0.2, 3.0, 7.0
    got = solve_crossbar(np.array([[G]]), np.array([v]), rr, rc)
    assert got == pytest.approx([v / (rr + 1.0 / G + rc)], rel=1e-12)


def test_one_row_two_columns_ladder_by_hand():
    # source -r- a0 -r- a1; each a_c -> cell G -> r_col -> ground (one row: no column segments
    # between cells). Branch conductance g' = 1 / (1/G + r_col); a0 sees g' in parallel with
    # (r + 1/g').
    G, v, r, rc = 40e-6, 0.1, 50.0, 20.0
    zb = 1.0 / G + rc
    zpar = 1.0 / (1.0 / zb + 1.0 / (r + zb))
    i_tot = v / (r + zpar)
    a0 = v - r * i_tot
    expect = [a0 / zb, a0 / (r + zb)]
    got = solve_crossbar(np.full((1, 2), G), np.array([v]), r, rc)
    assert got == pytest.approx(expect, rel=1e-12)
    assert got[1] < got[0]  # the far column sees less voltage


def test_one_column_two_rows_by_hand():
    # Both rows driven at v: row branch g = 1 / (r_row + 1/G); column nodes b0, b1, k = 1/r_col.
    # KCL: g (v - b0) = k (b0 - b1);  g (v - b1) + k (b0 - b1) = k b1
    # => b1 = g v (g + 2k) / (g^2 + 3 g k + k^2), I = k b1.
    G, v, rr, rc = 30e-6, 0.3, 10.0, 1000.0
    g, k = 1.0 / (rr + 1.0 / G), 1.0 / rc
    b1 = g * v * (g + 2 * k) / (g * g + 3 * g * k + k * k)
    got = solve_crossbar(np.full((2, 1), G), np.array([v, v]), rr, rc)
    assert got == pytest.approx([k * b1], rel=1e-12)


def test_uniform_array_tends_to_ideal_and_fast_model_is_first_order():
    R, C, G, v = 16, 8, 20e-6, 0.1
    Gm = np.full((R, C), G)
    vv = np.full(R, v)
    ideal = vv @ Gm
    errs_fast, errs_ideal = [], []
    for r in (1e-1, 1e-2, 1e-3):
        exact = solve_crossbar(Gm, vv, r, r)
        fast = fast_column_currents(Gm, vv, r, r)
        assert np.all(exact < ideal)  # wire resistance only loses current
        errs_ideal.append(np.max(np.abs(ideal - exact)))
        errs_fast.append(np.max(np.abs(fast - exact)))
    # ideal error ~ r (first order), fast model error ~ r^2: ten times smaller r, 100x smaller
    assert errs_ideal[1] / errs_ideal[2] == pytest.approx(10.0, rel=0.05)
    assert errs_fast[1] / errs_fast[2] == pytest.approx(100.0, rel=0.05)
    assert errs_fast[2] < 1e-3 * errs_ideal[2]


def test_kirchhoff_current_law_at_every_node():
    rng = np.random.default_rng(3)
    R, C, rr, rc = 6, 5, 2.5, 4.0
    G = rng.uniform(2e-6, 40e-6, size=(R, C))
    v = rng.choice([0.0, 0.1], size=R)
    v[0] = 0.1
    current, a, b = solve_crossbar(G, v, rr, rc, return_voltages=True)
    scale = v.max() * G.max()
    for r in range(R):
        for c in range(C):
            cell = (a[r, c] - b[r, c]) * G[r, c]
            left = (v[r] if c == 0 else a[r, c - 1]) - a[r, c]
            right = (a[r, c + 1] - a[r, c]) if c + 1 < C else 0.0
            assert left / rr + right / rr - cell == pytest.approx(0.0, abs=1e-9 * scale)
            above = (b[r - 1, c] - b[r, c]) if r > 0 else 0.0
            below = (0.0 if r == R - 1 else b[r + 1, c]) - b[r, c]
            assert above / rc + below / rc + cell == pytest.approx(0.0, abs=1e-9 * scale)
    # the column current is the current into ground, and all the source current ends there
    assert current == pytest.approx(b[-1, :] / rc, rel=1e-12)
    source = sum((v[r] - a[r, 0]) / rr for r in range(R))
    assert current.sum() == pytest.approx(source, rel=1e-9)


def test_fast_model_close_on_realistic_array():
    rng = np.random.default_rng(0)
    R = C = 64
    G = rng.choice(np.linspace(2.353e-6, 40e-6, 4), size=(R, C))
    v = rng.choice([0.0, 0.1], size=R)
    exact = solve_crossbar(G, v, 1.0, 1.0)
    fast = fast_column_currents(G, v, 1.0, 1.0)
    ideal = v @ G
    assert np.max(np.abs(fast - exact)) < 0.1 * np.max(np.abs(ideal - exact))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_zero_wire_resistance_refused(bad):
    with pytest.raises(CodesignError, match="wire resistance"):
        solve_crossbar(np.ones((2, 2)) * 1e-5, np.ones(2) * 0.1, bad, 1.0)
    with pytest.raises(CodesignError, match="wire resistance"):
        solve_crossbar(np.ones((2, 2)) * 1e-5, np.ones(2) * 0.1, 1.0, bad)


def test_transfer_model_is_the_exact_circuit_where_first_order_fails():
    rng = np.random.default_rng(5)
    R, C = 24, 16
    G = rng.uniform(2e-6, 40e-6, size=(R, C))
    for r_row, r_col in ((2.0, 6.0), (60.0, 90.0)):  # mild, then far beyond first order
        for _ in range(2):
            v = rng.choice([0.0, 0.1], size=R)
            exact = solve_crossbar(G, v, r_row, r_col)
            transfer = fast_column_currents(G, v, r_row, r_col, model="transfer")
            assert transfer == pytest.approx(exact, rel=1e-5, abs=1e-12)
    first = fast_column_currents(G, v, 60.0, 90.0)
    assert np.max(np.abs(first - exact)) > 0.2 * np.max(np.abs(exact))


# -- the exact transfer matrix by row-by-row Kron reduction (transfer_conductance)

PRESET_LEVELS_S = np.linspace(2.353e-6, 40e-6, 4)  # rram_physical_32nm.yaml: g_off..g_on, 4 levels


def _exact_transfer(G: np.ndarray, r_row: float, r_col: float) -> np.ndarray:
    """The transfer matrix column by column from the scipy nodal solver: row ``s`` is the
    column currents with only row ``s`` driven at 1 V."""
    R = G.shape[0]
    return np.stack([solve_crossbar(G, np.eye(R)[s], r_row, r_col) for s in range(R)])


def test_transfer_single_cell_and_ladder_by_hand():
    G, rr, rc = 25e-6, 3.0, 7.0
    t = transfer_conductance(torch.tensor([[G]], dtype=torch.float64), rr, rc,
                             dtype=torch.float64)
    assert float(t) == pytest.approx(1.0 / (rr + 1.0 / G + rc), rel=1e-12)
    # one row, two columns: the ladder of test_one_row_two_columns_ladder_by_hand per volt
    G, r, rc = 40e-6, 50.0, 20.0
    zb = 1.0 / G + rc
    zpar = 1.0 / (1.0 / zb + 1.0 / (r + zb))
    a0 = 1.0 - r / (r + zpar)
    t = transfer_conductance(torch.full((1, 2), G, dtype=torch.float64), r, rc,
                             dtype=torch.float64)
    assert t[0].tolist() == pytest.approx([a0 / zb, a0 / (r + zb)], rel=1e-12)


def test_transfer_one_column_by_hand():
    # the circuit of test_one_column_two_rows_by_hand, both rows at v: I = v (T[0] + T[1])
    G, v, rr, rc = 30e-6, 0.3, 10.0, 1000.0
    g, k = 1.0 / (rr + 1.0 / G), 1.0 / rc
    b1 = g * v * (g + 2 * k) / (g * g + 3 * g * k + k * k)
    t = transfer_conductance(torch.full((2, 1), G, dtype=torch.float64), rr, rc,
                             dtype=torch.float64)
    assert float(v * t.sum()) == pytest.approx(k * b1, rel=1e-12)


def test_transfer_uniform_array_against_nodal_solver():
    R, C, G = 12, 9, 20e-6
    Gm = np.full((R, C), G)
    T = transfer_conductance(torch.from_numpy(Gm), 30.0, 30.0, dtype=torch.float64).numpy()
    exact = _exact_transfer(Gm, 30.0, 30.0)
    assert np.abs(T - exact).max() < 1e-11 * exact.max()
    assert np.abs(Gm - exact).max() > 0.05 * G  # the wires matter: the check can fail
    # mirror symmetry does not hold (driven at the left, drained at the bottom), but every
    # unit input loses current along its row: far columns see less
    assert np.all(np.diff(exact, axis=1) < 0)


@pytest.mark.parametrize("R,C,r_row,r_col,seed", [(16, 16, 1.9, 5.6, 1), (16, 16, 40.0, 40.0, 2),
                                                  (32, 32, 1.9, 5.6, 3), (32, 24, 10.0, 3.0, 4),
                                                  (20, 32, 40.0, 40.0, 5)])
def test_transfer_matrix_equals_nodal_solver_on_random_arrays(R, C, r_row, r_col, seed):
    """Every entry of ``T`` (float64) against one nodal solve per unit input."""
    rng = np.random.default_rng(seed)
    G = rng.choice(PRESET_LEVELS_S, size=(R, C))
    T = transfer_conductance(torch.from_numpy(G), r_row, r_col, dtype=torch.float64).numpy()
    exact = _exact_transfer(G, r_row, r_col)
    assert np.abs(T - exact).max() < 1e-10 * exact.max()
    T32 = transfer_conductance(torch.from_numpy(G), r_row, r_col).numpy()  # default float32
    assert np.abs(T32 - exact).max() < 1e-5 * exact.max()


def test_transfer_at_the_preset_size_float32_within_1e4_of_the_largest_current():
    """128x128 with the preset's levels and wires, where first_order errs ~100 %."""
    rng = np.random.default_rng(3)
    n = 128
    G = rng.choice(PRESET_LEVELS_S, size=(n, n))
    g = torch.from_numpy(G)
    T64 = transfer_conductance(g, 1.9, 5.6, dtype=torch.float64).numpy()
    T32 = transfer_conductance(g.float(), 1.9, 5.6).double().numpy()
    for density in (0.2, 1.0):
        v = 0.1 * (rng.random(n) < density)
        v[0] = 0.1
        exact = solve_crossbar(G, v, 1.9, 5.6)
        scale = np.max(np.abs(exact))
        assert np.max(np.abs(v @ T64 - exact)) < 1e-9 * scale
        assert np.max(np.abs(v @ T32 - exact)) < 1e-4 * scale
        assert np.max(np.abs(v @ G - exact)) > 0.5 * scale  # the wires matter a lot here


def test_transfer_very_resistive_row_wires_take_the_overflow_safe_path():
    """``r_row G`` ~ 10: the row-wire attenuation underflows exp(-60) (``_EXP_SAFE``)."""
    rng = np.random.default_rng(8)
    G = rng.choice(PRESET_LEVELS_S, size=(3, 64))
    T = transfer_conductance(torch.from_numpy(G), 3e5, 10.0, dtype=torch.float64).numpy()
    exact = _exact_transfer(G, 3e5, 10.0)
    assert np.abs(T - exact).max() < 1e-10 * exact.max()
    assert exact[:, -1].max() < 1e-12 * exact.max()  # the far cells see no voltage


def test_transfer_agrees_with_the_cg_implementation():
    rng = np.random.default_rng(7)
    G = torch.from_numpy(rng.uniform(2e-6, 40e-6, size=(20, 12)))
    a = transfer_conductance(G, 30.0, 50.0, dtype=torch.float64)
    b = transfer_conductance_cg(G, 30.0, 50.0, tol=1e-10)
    assert torch.allclose(a, b, rtol=1e-7, atol=1e-9 * float(b.abs().max()))


def test_transfer_batches_leading_dims_and_chunks():
    rng = np.random.default_rng(9)
    G = torch.from_numpy(rng.choice(PRESET_LEVELS_S, size=(2, 3, 10, 7)))
    out = transfer_conductance(G, 20.0, 30.0, chunk=4, dtype=torch.float64)
    assert out.shape == G.shape and out.dtype == G.dtype
    for i in range(2):
        for j in range(3):
            exact = _exact_transfer(G[i, j].numpy(), 20.0, 30.0)
            assert np.abs(out[i, j].numpy() - exact).max() < 1e-10 * exact.max()


def test_irdrop_fast_batches_leading_dims_in_units_of_dg():
    """``IRDropFast.apply`` on (chips, row blocks, col blocks, R, C) tiles in units of dG equals
    the exact per-tile solve in siemens, divided by dG."""
    from codesign.hw.nonideal import IRDrop
    from codesign.sim.nonideal import IRDropFast

    dg = (40e-6 - 2.353e-6) / 3  # S
    rng = np.random.default_rng(11)
    g_dg = rng.choice(PRESET_LEVELS_S, size=(2, 1, 3, 8, 6)) / dg
    params = IRDrop(r_row_ohm=1.9, r_col_ohm=5.6, model="transfer")
    out = IRDropFast(params, dg).apply(torch.from_numpy(g_dg).to(torch.float32))
    assert out.shape == g_dg.shape and out.dtype == torch.float32
    v = np.array([0.1, 0, 0.1, 0.1, 0, 0, 0.1, 0.1])
    for idx in [(0, 0, 0), (1, 0, 2), (0, 0, 1)]:
        exact = solve_crossbar(g_dg[idx] * dg, v, 1.9, 5.6) / dg
        assert (v @ out[idx].double().numpy()) == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("r_row,r_col,g", [(0.0, 1.0, 1e-5), (1.0, -2.0, 1e-5),
                                           (float("nan"), 1.0, 1e-5), (1.0, 1.0, -1e-5),
                                           (1.0, 1.0, float("inf"))])
def test_transfer_bad_input_is_a_codesign_error(r_row, r_col, g):
    with pytest.raises(CodesignError, match="transfer model needs"):
        transfer_conductance(torch.full((3, 3), g, dtype=torch.float64), r_row, r_col)


def test_transfer_restores_torch_threads():
    before = torch.get_num_threads()
    G = torch.full((4, 4), 1e-5, dtype=torch.float64)
    transfer_conductance(G, 1.0, 1.0, threads=1)
    assert torch.get_num_threads() == before
    with pytest.raises(CodesignError):
        transfer_conductance(G, 0.0, 1.0, threads=1)
    assert torch.get_num_threads() == before


def test_transfer_split_over_workers_is_bit_for_bit_the_serial_sweep():
    """The tiles' parts on worker threads (and sub-chunks of any size) change no bit."""
    gen = torch.Generator().manual_seed(3)
    g = 0.5 + 3.0 * torch.rand((7, 16, 12), generator=gen)
    serial = transfer_conductance(g, 0.02, 0.05, workers=1, chunk=64)
    for workers, chunk in ((2, 64), (3, 2), (7, 1)):
        split = transfer_conductance(g, 0.02, 0.05, workers=workers, chunk=chunk)
        assert torch.equal(split, serial)
    # and one tile alone is that tile of the batch
    assert torch.equal(transfer_conductance(g[4:5], 0.02, 0.05, workers=1), serial[4:5])


def test_transfer_of_a_crossbar_does_not_depend_on_the_other_tiles_of_the_call():
    """At 128 x 128, a batched product of one matrix rounds differently from the same matrix in
    a batch; the sweep never forms a batch of one (lone tiles are paired), so a tile's transfer
    is the same alone, in any split and beside any other tiles (what lets the simulator sweep
    every layer of a chip in one call)."""
    gen = torch.Generator().manual_seed(5)
    levels = torch.tensor([2.353, 15.0, 27.0, 40.0]) * 1e-6  # rram_physical_32nm levels, S
    g = levels[torch.randint(0, 4, (3, 128, 128), generator=gen)]
    together = transfer_conductance(g, 1.9, 5.6, workers=1)
    for workers, chunk in ((3, 64), (1, 1), (2, 2)):
        assert torch.equal(transfer_conductance(g, 1.9, 5.6, workers=workers, chunk=chunk),
                           together)
    for k in range(3):
        assert torch.equal(transfer_conductance(g[k], 1.9, 5.6), together[k])
