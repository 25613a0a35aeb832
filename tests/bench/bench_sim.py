"""Benchmarks of the functional crossbar simulator (codesign.sim).

Run::

    python tests/bench/bench_sim.py [--samples 100] [--rounds 3] [--threads 2] [--skip-cli]

Writes one report (the IR-drop tables are ``tests/bench/bench_irdrop.py``'s):

* ``reports/bench/sim.md``: hardware-simulated inference of ``models/student_w4u4.pt`` on
  ``hw_configs/rram_physical_32nm.yaml`` with every non-ideality on (IR drop through the
  preset's per-chip conductance-matrix model) against the ideal quantized network (the
  checkpoint's own forward), same batch, same run, median of ``--rounds``; the goal is at
  most 1.5x the number of weight slices. Then the
  wall time of ``codesign map models/student_w4u4.pt --hw hw_configs/rram_physical_32nm.yaml
  --data mnist5k --chips 5`` on the full mnist5k test split (a subprocess; goal < 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from codesign.allocator import keep_freed_memory  # noqa: E402
from codesign.data import load_dataset  # noqa: E402
from codesign.hw.spec import load_spec, preset_path  # noqa: E402
from codesign.sim import network as hn  # noqa: E402
from codesign.snn.checkpoint import load_checkpoint  # noqa: E402


def inference(samples: int, rounds: int) -> tuple[str, dict]:
    model, _ = load_checkpoint(ROOT / "models" / "student_w4u4.pt")
    model.eval()
    spec = load_spec(preset_path("rram_physical_32nm"))
    data = load_dataset("mnist5k", split_seed=0, test_fraction=0.2)
    x = data.x_test[:samples]
    net = hn.build(model, spec, tuple(x.shape[1:]), nonideal="all")
    gen = hn.program_chip(net, hn.chip_seeds(0, 1)[0])
    t_sim, t_ideal, c_sim, c_ideal = [], [], [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        with torch.no_grad():
            model(x)
        t_ideal.append(time.perf_counter() - t)
        c_ideal.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        hn.predict(net, x, gen, batch=samples)
        t_sim.append(time.perf_counter() - t)
        c_sim.append(time.process_time() - c)
    ti, ts = statistics.median(t_ideal), statistics.median(t_sim)
    ci, cs = statistics.median(c_ideal), statistics.median(c_sim)
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
    info = {"ideal_s": ti, "sim_s": ts, "ratio": ts / ti, "ideal_cpu_s": ci, "sim_cpu_s": cs,
            "slices": slices,
            "nonideal": list(net.names), "adc_bits": net.adc.bits, "widest": weighted,
            "ir_model": spec.nonideal.ir_drop.model if spec.nonideal is not None else None}
    return "\n".join(rows), info


def cli_wall(threads: int) -> tuple[float, str, dict]:
    cmd = [str(ROOT / ".venv" / "bin" / "codesign"), "map", "models/student_w4u4.pt", "--hw",
           "hw_configs/rram_physical_32nm.yaml", "--data", "mnist5k", "--chips", "5"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        t = time.perf_counter()
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        load0 = os.getloadavg()[0]
        subprocess.run(cmd + ["--out", str(out), "--quiet"], cwd=ROOT, check=True, env=env,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        acc = json.loads((out / "summary.json").read_text())["accuracy"]
        acc["_cpu_s"], acc["_load"] = cpu, (load0, os.getloadavg()[0])
    return wall, " ".join(cmd[1:]), acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()
    kept = keep_freed_memory()  # as the CLI does (codesign.allocator)
    torch.set_num_threads(args.threads)
    flags = " --skip-cli" if args.skip_cli else ""
    head = (f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
            f"(shared with other jobs), torch {torch.__version__}, {args.threads} threads. "
            f"Command: `python tests/bench/bench_sim.py --samples {args.samples} --rounds "
            f"{args.rounds} --threads {args.threads}{flags}`. Allocator: "
            + ("freed memory kept for reuse (`codesign.allocator`), as in the CLI." if kept
               else "glibc's defaults."))
    load = os.getloadavg()
    rows, info = inference(args.samples, args.rounds)
    goal = 1.5 * info["widest"]
    text = ("# Hardware-simulated inference\n\n" + head + "\n\n"
            f"## Simulated chip against the ideal quantized network ({args.samples} mnist5k "
            "test images, same batch, same run)\n\n"
            f"Non-idealities on: {', '.join(info['nonideal'])} (IR drop: the preset's "
            f"`model: {info['ir_model']}` conductance matrix per chip, programmed before the "
            "timed rounds; at read time a plain matmul like any other); "
            f"{info['adc_bits']}-bit ADC; median of {args.rounds} rounds.\n\n"
            "| | seconds |\n|---|---:|\n"
            f"| ideal quantized (checkpoint forward, float32) | {info['ideal_s']:.3f} |\n"
            f"| simulated chip (integer datapath on crossbars) | {info['sim_s']:.3f} |\n"
            f"| ratio | {info['ratio']:.2f}x |\n"
            f"| process CPU time: ideal / simulated / ratio | {info['ideal_cpu_s']:.3f} / "
            f"{info['sim_cpu_s']:.3f} / {info['sim_cpu_s'] / info['ideal_cpu_s']:.2f}x |\n\n"
            f"Load average (1 min) at the start and end of this measurement: {load[0]:.1f}, "
            f"{os.getloadavg()[0]:.1f}.\n\n"
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
                 f"{hw['ci95'][0]:.2f}-{hw['ci95'][1]:.2f}); process CPU time "
                 f"{acc['_cpu_s']:.1f} s, load average {acc['_load'][0]:.1f} at the start, "
                 f"{acc['_load'][1]:.1f} at the end; per chip "
                 f"{', '.join(f'{a:.1f}' for a in hw['per_chip'])}; non-idealities "
                 f"{', '.join(acc['nonideal'])}, {acc['adc_bits']}-bit ADC (lossless from "
                 f"{acc['lossless_adc_bits']}).\n")
    (ROOT / "reports" / "bench" / "sim.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
