"""The exact IR-drop solver against hand-solved circuits and Kirchhoff's law; the fast model."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.errors import CodesignError
from codesign.sim.irdrop import fast_column_currents, solve_crossbar


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
