"""Benchmark of the IR-drop models of :mod:`codesign.sim.irdrop` against the exact nodal solver.

Run::

    python tests/bench/bench_irdrop.py [--threads 2] [--arrays 2] [--chip-seed 0]

Writes ``reports/bench/sim_irdrop.md`` with three tables, all from the same run:

* time against crossbar size: the exact nodal solver (one input vector), the exact transfer
  matrix by row-by-row Kron reduction (``transfer``, float32 default and float64), the same
  matrix by conjugate gradients (``transfer_conductance_cg``, the in-run baseline), and the
  first-order matrix;
* error of each fast model against the exact solver (max and mean over the columns, relative to
  the largest exact column current) against size and wire resistance, the transfer model in
  float32 (the default) and float64, with its time per crossbar;
* per-chip cost: the time to program one chip of ``models/student_w4u4.pt`` on
  ``hw_configs/rram_physical_32nm.yaml`` with and without IR drop (the difference is the
  transfer matrices of all its crossbars).

Conductances are drawn uniformly from the preset's 4 levels (g_off .. g_on), rows driven at
v_read with the stated probability; every draw comes from ``numpy.random.default_rng(0)`` and the
chip seed recorded in the report.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from timing import median_seconds  # noqa: E402

from codesign.hw.spec import load_spec, preset_path  # noqa: E402
from codesign.io import atomic_write_text  # noqa: E402
from codesign.sim import network as hn  # noqa: E402
from codesign.sim.irdrop import (  # noqa: E402
    effective_conductance,
    solve_crossbar,
    transfer_conductance,
    transfer_conductance_cg,
)
from codesign.snn.checkpoint import load_checkpoint  # noqa: E402


def size_table(levels: np.ndarray, v: float, rng: np.random.Generator) -> str:
    rows = ["| crossbar | unknowns | exact solve, one input (ms) | transfer float32 (ms) | "
            "transfer float64 (ms) | transfer by CG (baseline) (ms) | CG / transfer float32 | "
            "first-order (ms) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n in (16, 32, 64, 128, 256):
        G = rng.choice(levels, size=(n, n))
        vv = rng.choice([0.0, v], size=n, p=[0.8, 0.2])
        reps = 3 if n <= 64 else 1
        ts, _ = median_seconds(lambda G=G, vv=vv: solve_crossbar(G, vv, 1.9, 5.6), reps)
        g = torch.from_numpy(G)
        tf, _ = median_seconds(lambda g=g: effective_conductance(g, 1.9, 5.6), reps)
        tb, _ = median_seconds(lambda g=g: transfer_conductance(g, 1.9, 5.6), reps)
        td, _ = median_seconds(
            lambda g=g: transfer_conductance(g, 1.9, 5.6, dtype=torch.float64), reps)
        if n <= 128:
            tc, _ = median_seconds(lambda g=g: transfer_conductance_cg(g, 1.9, 5.6, tol=1e-5),
                                   reps)
            cg = f"{1e3 * tc:.1f} | {tc / tb:.1f}x"
        else:
            cg = "not run | -"
        cells = f"{1e3 * tb:.1f} | {1e3 * td:.1f} | {cg}"
        rows.append(f"| {n}x{n} | {2 * n * n} | {1e3 * ts:.1f} | {cells} | {1e3 * tf:.2f} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def error_table(levels: np.ndarray, v: float, rng: np.random.Generator, arrays: int) -> str:
    rows = ["| crossbar | r_row / r_col (ohm) | active rows | ideal (no wires): max err | "
            "first-order: max / mean err | transfer float32: max / mean err | transfer "
            "float64: max err | transfer float32 time per crossbar (ms) |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for n in (32, 64, 128):
        for rr, rc in ((1.9, 5.6), (10.0, 10.0), (40.0, 40.0)):
            errs = {k: {0.2: [], 1.0: []} for k in ("i", "f", "fm", "t", "tm", "d")}
            times = []
            for _ in range(arrays):
                G = rng.choice(levels, size=(n, n))
                g = torch.from_numpy(G)
                t = time.perf_counter()
                T = transfer_conductance(g, rr, rc).numpy()
                times.append(time.perf_counter() - t)
                T64 = transfer_conductance(g, rr, rc, dtype=torch.float64).numpy()
                F = effective_conductance(g, rr, rc).numpy()
                for rate in (0.2, 1.0):
                    vv = rng.choice([0.0, v], size=n, p=[1 - rate, rate]) if rate < 1 \
                        else np.full(n, v)
                    exact = solve_crossbar(G, vv, rr, rc)
                    scale = np.abs(exact).max()
                    e = errs
                    e["i"][rate].append(np.abs(vv @ G - exact).max() / scale)
                    e["f"][rate].append(np.abs(vv @ F - exact).max() / scale)
                    e["fm"][rate].append(np.abs(vv @ F - exact).mean() / scale)
                    e["t"][rate].append(np.abs(vv @ T - exact).max() / scale)
                    e["tm"][rate].append(np.abs(vv @ T - exact).mean() / scale)
                    e["d"][rate].append(np.abs(vv @ T64 - exact).max() / scale)
            for rate in (0.2, 1.0):
                e = {k: errs[k][rate] for k in errs}
                rows.append(
                    f"| {n}x{n} | {rr:g} / {rc:g} | {int(rate * 100)} % | "
                    f"{100 * max(e['i']):.2f} % | {100 * max(e['f']):.3f} % / "
                    f"{100 * np.mean(e['fm']):.3f} % | {100 * max(e['t']):.5f} % / "
                    f"{100 * np.mean(e['tm']):.5f} % | {100 * max(e['d']):.1e} % | "
                    f"{1e3 * statistics.median(times):.0f} |")
                print(rows[-1], flush=True)
    return "\n".join(rows)


def chip_cost(spec, chip_seed: int) -> str:
    model, _ = load_checkpoint(ROOT / "models" / "student_w4u4.pt")
    model.eval()
    shape = (1, 28, 28)
    with_ir = hn.build(model, spec, shape, nonideal="programming,stuck_at,ir_drop")
    without = hn.build(model, spec, shape, nonideal="programming,stuck_at")
    tiles = sum(i.xbar.nb * i.xbar.cb for i in with_ir.synapses.values())
    R, C = spec.crossbar.rows, spec.crossbar.cols
    t = time.perf_counter()
    hn.program_chip(without, chip_seed)
    t0 = time.perf_counter() - t
    t = time.perf_counter()
    hn.program_chip(with_ir, chip_seed)
    t1 = time.perf_counter() - t
    per_layer = ", ".join(f"{n}: {i.xbar.nb} x {i.xbar.cb}" for n, i in with_ir.synapses.items())
    return ("| crossbars per chip | program one chip without IR drop (s) | with IR drop, "
            "`transfer` (s) | IR drop per chip (s) | per crossbar (ms) |\n"
            "|---:|---:|---:|---:|---:|\n"
            f"| {tiles} ({R}x{C}) | {t0:.2f} | {t1:.2f} | {t1 - t0:.2f} | "
            f"{1e3 * (t1 - t0) / tiles:.0f} |\n\n"
            f"Crossbars per layer (row blocks x column blocks): {per_layer}. Chip seed "
            f"{chip_seed}.")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arrays", type=int, default=2, help="random arrays per error row")
    ap.add_argument("--chip-seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_spec(preset_path("rram_physical_32nm"))
    d = spec.device
    levels = np.linspace(d.g_off_us, d.g_on_us, d.levels_per_cell) * 1e-6  # S
    v = d.v_read_v
    rng = np.random.default_rng(0)
    load0 = os.getloadavg()[0]
    t_size = size_table(levels, v, rng)
    t_err = error_table(levels, v, rng, args.arrays)
    t_chip = chip_cost(spec, args.chip_seed)
    load1 = os.getloadavg()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip()
    head = (f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
            f"shared with other jobs (load average {load0:.1f} at start, {load1:.1f} at end), "
            f"torch {torch.__version__}, {args.threads} threads, commit {commit} (plus the "
            f"working tree). Command: `python tests/bench/bench_irdrop.py --threads "
            f"{args.threads} --arrays {args.arrays} --chip-seed {args.chip_seed}`. Random "
            "draws: `numpy.random.default_rng(0)`.")
    text = (
        "# IR drop: exact nodal solver, exact transfer matrix and first-order model\n\n"
        + head + "\n\n"
        "Circuit and models: `codesign/sim/irdrop.py`. `transfer` "
        "(`nonideal.ir_drop.model: transfer`) is the exact linear transfer matrix "
        "`I = v @ G_eff` of each "
        "crossbar by direct row-by-row Kron reduction (no iteration; float32 by default, as in "
        "inference; float64 shown too), batched over crossbars. "
        "`first_order` is the one-step linearisation (shown unclipped; inference clips "
        "`G_eff` at 0). Conductances uniform over the 4 levels of `rram_physical_32nm.yaml` "
        f"(g_off {d.g_off_us:g} uS .. g_on {d.g_on_us:g} uS), rows driven at v_read = {v:g} V "
        "with the given probability. Errors are relative to the largest exact column current, "
        f"max and mean over the columns of {args.arrays} random arrays. Times are single runs "
        "(128x128 and up) or medians of 3, on a loaded machine: read the ratios.\n\n"

        "## Time against crossbar size (1.9 / 5.6 ohm)\n\n" + t_size + "\n\n"
        "The exact solver is per input vector; a transfer matrix serves every input of a "
        "programmed chip (an `R x C` matmul per read).\n\n"
        "## Fast models against the exact solver\n\n" + t_err + "\n\n"
        "## Per-chip cost: `models/student_w4u4.pt` on `hw_configs/rram_physical_32nm.yaml`\n\n"
        + t_chip + "\n")
    atomic_write_text(ROOT / "reports" / "bench" / "sim_irdrop.md", text)
    print(text)


if __name__ == "__main__":
    main()
