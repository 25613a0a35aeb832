"""Benchmarks of the functional crossbar simulator (codesign.sim).

Run::

    python tests/bench/bench_sim.py [--samples 100] [--rounds 3] [--threads 2] [--skip-cli]

Writes two tables:

* ``reports/bench/sim_irdrop.md``: the exact nodal IR-drop solver's time against crossbar size,
  and the fast first-order model's error against it (column currents; random 4-level RRAM
  conductances of the physical preset, random spike rows), next to the error of ignoring the
  wires altogether.
* ``reports/bench/sim.md``: hardware-simulated inference of ``models/student_w4u4.pt`` on
  ``hw_configs/rram_physical_32nm.yaml`` with every non-ideality on (IR drop through the fast
  model) against the ideal quantized network (the checkpoint's own forward), same batch, same
  run, median of ``--rounds``; the goal is at most 1.5x the number of weight slices. Then the
  wall time of ``codesign map models/student_w4u4.pt --hw hw_configs/rram_physical_32nm.yaml
  --data mnist5k --chips 5`` on the full mnist5k test split (a subprocess; goal < 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from codesign.data import load_dataset  # noqa: E402
from codesign.hw.spec import load_spec, preset_path  # noqa: E402
from codesign.sim import network as hn  # noqa: E402
from codesign.sim.irdrop import (  # noqa: E402
    effective_conductance,
    fast_column_currents,
    solve_crossbar,
    transfer_conductance,
)
from codesign.snn.checkpoint import load_checkpoint  # noqa: E402


def irdrop_tables(spec) -> tuple[str, str]:
    d = spec.device
    levels = np.linspace(d.g_off_us, d.g_on_us, d.levels_per_cell) * 1e-6  # S
    v = spec.device.v_read_v
    rng = np.random.default_rng(0)
    rows_t = ["| crossbar | unknowns | exact solve, one input (ms) | transfer matrix, all inputs "
              "(ms) | first-order matrix (ms) |", "|---|---:|---:|---:|---:|"]
    for n in (16, 32, 64, 128, 256):
        G = rng.choice(levels, size=(n, n))
        vv = rng.choice([0.0, v], size=n, p=[0.8, 0.2])
        ts, tt, tf = [], [], []
        for _ in range(3 if n < 256 else 1):
            t = time.perf_counter()
            solve_crossbar(G, vv, 1.9, 5.6)
            ts.append(time.perf_counter() - t)
            if n <= 128:
                t = time.perf_counter()
                transfer_conductance(torch.from_numpy(G), 1.9, 5.6, tol=1e-5)
                tt.append(time.perf_counter() - t)
            t = time.perf_counter()
            effective_conductance(torch.from_numpy(G), 1.9, 5.6)
            tf.append(time.perf_counter() - t)
        tr = f"{1e3 * statistics.median(tt):.1f}" if tt else "not run"
        rows_t.append(f"| {n}x{n} | {2 * n * n} | {1e3 * statistics.median(ts):.1f} | {tr} | "
                      f"{1e3 * statistics.median(tf):.2f} |")
    rows_e = ["| crossbar | r_row / r_col (ohm) | active rows | ideal (no wires): max err | "
              "first-order: max err | first-order: mean err | transfer: max err |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for n in (32, 64, 128):
        for rr, rc in ((1.9, 5.6), (10.0, 10.0), (40.0, 40.0)):
            for rate in (0.2, 1.0):
                errs_i, errs_f, errs_fm, errs_t = [], [], [], []
                for _ in range(3):
                    G = rng.choice(levels, size=(n, n))
                    vv = rng.choice([0.0, v], size=n, p=[1 - rate, rate]) if rate < 1 \
                        else np.full(n, v)
                    exact = solve_crossbar(G, vv, rr, rc)
                    fast = fast_column_currents(G, vv, rr, rc)
                    ideal = vv @ G
                    scale = np.abs(exact).max()
                    errs_i.append(np.abs(ideal - exact).max() / scale)
                    errs_f.append(np.abs(fast - exact).max() / scale)
                    errs_fm.append(np.abs(fast - exact).mean() / scale)
                    if n <= 64:
                        tr = fast_column_currents(G, vv, rr, rc, model="transfer")
                        errs_t.append(np.abs(tr - exact).max() / scale)
                et = f"{100 * max(errs_t):.5f} %" if errs_t else "not run"
                rows_e.append(f"| {n}x{n} | {rr:g} / {rc:g} | {int(rate * 100)} % | "
                              f"{100 * max(errs_i):.3f} % | {100 * max(errs_f):.4f} % | "
                              f"{100 * np.mean(errs_fm):.4f} % | {et} |")
    return "\n".join(rows_t), "\n".join(rows_e)


def inference(samples: int, rounds: int) -> tuple[str, dict]:
    model, _ = load_checkpoint(ROOT / "models" / "student_w4u4.pt")
    model.eval()
    spec = load_spec(preset_path("rram_physical_32nm"))
    data = load_dataset("mnist5k", split_seed=0, test_fraction=0.2)
    x = data.x_test[:samples]
    net = hn.build(model, spec, tuple(x.shape[1:]), nonideal="all")
    gen = hn.program_chip(net, hn.chip_seeds(0, 1)[0])
    t_sim, t_ideal = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        with torch.no_grad():
            model(x)
        t_ideal.append(time.perf_counter() - t)
        t = time.perf_counter()
        hn.predict(net, x, gen, batch=samples)
        t_sim.append(time.perf_counter() - t)
    ti, ts = statistics.median(t_ideal), statistics.median(t_sim)
    slices = {n: i.xbar.cpw for n, i in net.synapses.items()}
    macs = {}
    for n, i in net.synapses.items():
        pos = i.xbar.conv["out_hw"][0] * i.xbar.conv["out_hw"][1] if i.xbar.conv else 1
        macs[n] = i.xbar.k * i.xbar.cout * pos
    # "number of weight slices" of the network: columns per weight, weighted by the MACs
    weighted = sum(macs[n] * slices[n] for n in macs) / sum(macs.values())
    rows = ["| layer | MACs per step | columns per weight (slices x pair) | row blocks |",
            "|---|---:|---:|---:|"]
    for n, i in net.synapses.items():
        rows.append(f"| {n} | {macs[n]} | {i.xbar.cpw} | {i.xbar.nb} |")
    info = {"ideal_s": ti, "sim_s": ts, "ratio": ts / ti, "slices": slices,
            "nonideal": list(net.names), "adc_bits": net.adc.bits, "widest": weighted}
    return "\n".join(rows), info


def cli_wall(threads: int) -> tuple[float, str, dict]:
    cmd = [str(ROOT / ".venv" / "bin" / "codesign"), "map", "models/student_w4u4.pt", "--hw",
           "hw_configs/rram_physical_32nm.yaml", "--data", "mnist5k", "--chips", "5"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        t = time.perf_counter()
        subprocess.run(cmd + ["--out", str(out), "--quiet"], cwd=ROOT, check=True, env=env,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        acc = json.loads((out / "summary.json").read_text())["accuracy"]
    return wall, " ".join(cmd[1:]), acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_spec(preset_path("rram_physical_32nm"))
    head = (f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
            f"(shared with other jobs), torch {torch.__version__}, {args.threads} threads. "
            f"Command: `python tests/bench/bench_sim.py --samples {args.samples} --rounds "
            f"{args.rounds} --threads {args.threads}`.")
    t_rows, e_rows = irdrop_tables(spec)
    (ROOT / "reports" / "bench" / "sim_irdrop.md").write_text(
        "# IR drop: exact nodal solver and fast first-order model\n\n" + head + "\n\n"
        "Circuit and both models: `codesign/sim/irdrop.py`. Conductances drawn uniformly from "
        "the 4 levels of `rram_physical_32nm.yaml` (g_off 2.353 uS .. g_on 40 uS), rows driven "
        "at v_read = 0.1 V with the given probability. Errors are relative to the largest exact "
        "column current, worst (max) and mean over the columns of 3 random arrays. "
        "`first_order` is the cheap linearisation used by default at inference; `transfer` is "
        "the exact linear transfer matrix by conjugate gradients (`nonideal.ir_drop.model`).\n\n"
        "## Exact solver time against crossbar size\n\n" + t_rows + "\n\n"
        "## Fast model error against the exact solver\n\n" + e_rows + "\n",
        encoding="utf-8")
    rows, info = inference(args.samples, args.rounds)
    goal = 1.5 * info["widest"]
    text = ("# Hardware-simulated inference\n\n" + head + "\n\n"
            f"## Simulated chip against the ideal quantized network ({args.samples} mnist5k "
            "test images, same batch, same run)\n\n"
            f"Non-idealities on: {', '.join(info['nonideal'])} (IR drop through the fast "
            f"model); {info['adc_bits']}-bit ADC; median of {args.rounds} rounds.\n\n"
            "| | seconds |\n|---|---:|\n"
            f"| ideal quantized (checkpoint forward, float32) | {info['ideal_s']:.3f} |\n"
            f"| simulated chip (integer datapath on crossbars) | {info['sim_s']:.3f} |\n"
            f"| ratio | {info['ratio']:.2f}x |\n\n"
            "Goal: at most 1.5x the number of weight slices, read as the columns per weight "
            f"(slices x differential pair) weighted by each layer's MACs ({info['widest']:.2f}), "
            f"i.e. {goal:.1f}x: {'met' if info['ratio'] <= goal else 'NOT met'}.\n\n" + rows
            + "\n")
    if not args.skip_cli:
        wall, cmd, acc = cli_wall(args.threads)
        hw = acc["hardware"]
        text += (f"\n## `codesign {cmd}` on the full test split\n\n"
                 f"Wall time {wall:.1f} s ({acc['samples']} test images x {hw['chips']} chips; "
                 f"goal < 30 s: {'met' if wall < 30 else 'NOT met'}). Accuracy: ideal quantized "
                 f"{acc['ideal_quantized']:.2f} %, hardware {hw['mean']:.2f} % (95 % interval "
                 f"{hw['ci95'][0]:.2f}-{hw['ci95'][1]:.2f}), per chip "
                 f"{', '.join(f'{a:.1f}' for a in hw['per_chip'])}; non-idealities "
                 f"{', '.join(acc['nonideal'])}, {acc['adc_bits']}-bit ADC (lossless from "
                 f"{acc['lossless_adc_bits']}).\n")
    (ROOT / "reports" / "bench" / "sim.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
