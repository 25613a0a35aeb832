"""Wall time of one ``codesign map`` run with measured activity, in process (Python API).

Run::

    python tests/bench/bench_map_cli.py [--model models/teacher_fp.pt] [--hw NAME_OR_PATH]
                                        [--samples 64] [--rounds 3] [--threads N]

What is timed is what ``codesign map MODEL --hw HW --data mnist5k --samples 64 --out DIR`` does
after its imports: :func:`codesign.mapflow.map_model` (load the checkpoint and lower it to the
graph, load mnist5k and take the test split, draw the samples, run the model with hooks, map and
cost) followed by :func:`codesign.report.write_report` (CSV, JSON, two PNG figures). One cold run
(first data load, first matplotlib figure) is reported on its own; the table gives the median of
``--rounds`` warm runs, with the phases timed separately in the same rounds.

The model is ``models/teacher_fp.pt`` when it exists, else a freshly built (untrained)
``vgg-small``, whose spike activity is not that of a trained network (the report says which).
The report is written atomically to ``reports/bench/map_cli.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from codesign.graph.from_model import graph_from_model  # noqa: E402
from codesign.hw import map_network, preset_path  # noqa: E402
from codesign.io import atomic_write_text  # noqa: E402
from codesign.mapflow import load_hw, load_source, load_test_inputs, map_model  # noqa: E402
from codesign.report import write_report  # noqa: E402
from codesign.sim.activity import activity_stats, measure_activity  # noqa: E402
from codesign.snn.checkpoint import save_checkpoint  # noqa: E402
from codesign.snn.zoo import build_model  # noqa: E402

REPORT = ROOT / "reports" / "bench" / "map_cli.md"
TEACHER = ROOT / "models" / "teacher_fp.pt"
DATA = "mnist5k"


def _rel(arg: str) -> str:
    """``arg`` relative to the repository root when it is an absolute path inside it."""
    p = Path(arg)
    return os.path.relpath(p, ROOT) if p.is_absolute() and p.is_relative_to(ROOT) else arg


def command_line(argv: list[str]) -> str:
    """The command that reproduces this run from the repository root, with no absolute paths."""
    return " ".join(shlex.quote(a) for a in
                    ["python", os.path.relpath(__file__, ROOT), *map(_rel, argv)])


def _model_path(arg: str | None, tmp: Path) -> tuple[Path, str]:
    """The checkpoint to map and a line saying what it is."""
    if arg:
        return Path(arg), f"`{_rel(arg)}`"
    if TEACHER.is_file():
        return TEACHER, f"`{TEACHER.relative_to(ROOT)}` (trained)"
    path = tmp / "vgg-small-untrained.pt"
    torch.manual_seed(0)
    save_checkpoint(path, build_model("vgg-small"), {"dataset": DATA, "split_seed": 0})
    return path, ("freshly built **untrained** vgg-small (models/teacher_fp.pt was missing): its "
                  "spike activity is not that of a trained network")


def _phases(model: Path, hw: str, samples: int, out: Path) -> dict[str, float]:
    """The same work as one run, each phase timed."""
    t = {}
    t0 = time.perf_counter()
    src = load_source(model)
    spec = load_hw(hw)
    t["load checkpoint + graph + spec"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert src.model is not None
    x = load_test_inputs(DATA, src.model, split_seed=int(src.meta.get("split_seed", 0)))
    t["load data"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    act = measure_activity(src.model, x, max_samples=samples)
    t["measure activity (forward + hooks)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = map_network(src.graph, spec, activity=act)
    t["map_network (mapping + activity counts + cost)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_report(res, out)
    t["write_report (csv, json, 2 png)"] = time.perf_counter() - t0
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="checkpoint (default: models/teacher_fp.pt)")
    ap.add_argument("--hw", default="rram_physical_32nm", help="preset name or YAML path")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--out", type=Path, default=REPORT)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    hw = args.hw if os.path.isfile(args.hw) else preset_path(args.hw)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model, what = _model_path(args.model, tmp)
        t0 = time.perf_counter()
        res = map_model(model, hw, data=DATA, samples=args.samples)
        write_report(res, tmp / "cold")
        cold = time.perf_counter() - t0
        totals, phases = [], []
        for i in range(args.rounds):
            t0 = time.perf_counter()
            res = map_model(model, hw, data=DATA, samples=args.samples)
            write_report(res, tmp / f"warm{i}")
            totals.append(time.perf_counter() - t0)
            phases.append(_phases(model, hw, args.samples, tmp / f"ph{i}"))
        src = load_source(model)
        n_params = sum(p.numel() for p in src.model.parameters())
        graph = graph_from_model(src.model)
        x = load_test_inputs(DATA, src.model)
        stats = activity_stats(measure_activity(src.model, x, max_samples=args.samples))
    s = res.summary
    load = os.getloadavg()
    med = statistics.median(totals)
    md = [
        "# Benchmark: `codesign map` with measured activity (in process)",
        "",
        f"Command (from the repository root): `{command_line(sys.argv[1:])}`",
        "",
        f"- model: {what}; {src.graph.graph['name']}, {n_params:,} parameters, "
        f"{len(graph)} graph nodes, T = {src.graph.graph['T']}",
        f"- hardware: `{Path(hw).name}` (compat {s['compat']}, mapping {s['mapping']})",
        f"- data: {DATA} test split, {args.samples} samples (seed 0), batch 32",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}, Python {platform.python_version()}, torch "
        f"{torch.__version__}, numpy {np.__version__}",
        f"- load average at the end (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        "(CPUs shared with other jobs: numbers are noisy)",
        "- not included: Python start-up and imports (`codesign --help` alone takes a few "
        "seconds here, mostly importing torch)",
        "",
        "## Wall time",
        "",
        "| run | seconds |",
        "|---|---:|",
        f"| cold (first call in the process) | {cold:.2f} |",
        f"| warm, median of {args.rounds} | {med:.2f} |",
        f"| warm, min / max | {min(totals):.2f} / {max(totals):.2f} |",
        "",
        f"Phases (median of {args.rounds}, timed separately in the same rounds):",
        "",
        "| phase | seconds |",
        "|---|---:|",
    ]
    for k in phases[0]:
        md.append(f"| {k} | {statistics.median(p[k] for p in phases):.3f} |")
    md += [
        "",
        "## Result of the mapped run",
        "",
        f"energy {s['energy_pj'] / 1e6:.4g} uJ, latency {s['latency_ns'] / 1e3:.4g} us, "
        f"area {s['area_mm2']:.4g} mm2, {s['crossbars']} crossbars, "
        f"{s['tops_per_w']:.4g} TOPS/W (dense-op convention)",
        "",
        "| layer | input rate | output rate | energy nJ | latency us |",
        "|---|---:|---:|---:|---:|",
    ]
    for _, r in res.layers.iterrows():
        md.append(f"| {r['layer']} | {r['input_spike_rate']:.4f} | {r['output_spike_rate']:.4f} "
                  f"| {r['energy_pj'] / 1e3:.4g} | {r['latency_ns'] / 1e3:.4g} |")
    md += ["", "Recorded activity memory: "
           f"{stats['mbytes'].sum():.1f} MB for {args.samples} samples.", ""]
    atomic_write_text(args.out, "\n".join(md))
    print("\n".join(md))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
