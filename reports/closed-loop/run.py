"""The closed-loop case study (README.md): the shipped W4/U4 student on ``rram_physical_32nm``
(spec values, 6-bit ADC) with CASE's non-idealities, 3 seeds x {loop, CE through the hardware,
KD+MD ignoring the hardware}; "no retrain" is every run's held-out "before".

Usage: .venv/bin/python reports/closed-loop/run.py CASE [SEEDS [ARMS]]
       CASE: a key of ``CASES`` (e.g. programming, ir_drop_first_order); SEEDS default "0,1,2";
       ARMS default every arm, in the order loop, ce_hw, kdmd_ideal

One folder per run, ``reports/closed-loop/runs/CASE/seed{S}_{ARM}/`` (the files of
:func:`codesign.loop.close_loop`); a run whose ``loop.json`` exists is not run again
(resumable: ``loop.json`` is written atomically, last). Then ``summary_CASE.csv`` /
``summary_CASE.md`` (mean +- std over the seeds that ran, held-out chips) are rewritten from
every ``loop.json`` of the case.
Seed 0 runs all arms first, then seed 1, then seed 2. Single thread (shared machine).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

from codesign.data import load_dataset
from codesign.hw.spec import HardwareSpec, load_spec, preset_path
from codesign.io import atomic_write_text
from codesign.loop import LoopConfig, close_loop, table_text

HERE = Path("reports/closed-loop")
STUDENT = "models/student_w4u4.pt"
#: case name -> (the non-idealities simulated (``--nonideal``), spec overrides
#: (:meth:`HardwareSpec.with_overrides` key paths)). The IR-drop model is pinned in every case
#: that simulates IR drop, so a change of the library's default cannot change a case.
CASES: dict[str, tuple[str, dict[str, object]]] = {
    "ir_drop_first_order": ("ir_drop", {"nonideal.ir_drop.model": "first_order"}),
    "ir_drop_first_order_programming": ("ir_drop,programming",
                                        {"nonideal.ir_drop.model": "first_order"}),
    "programming": ("programming", {}),
    "adc5": ("none", {"adc.bits": 5}),
    "read_noise": ("read_noise", {}),
    "ir_drop_exact": ("ir_drop", {"nonideal.ir_drop.model": "transfer"}),
    "ir_drop_exact_programming": ("ir_drop,programming",
                                  {"nonideal.ir_drop.model": "transfer"}),
    "ir_drop_exact_refresh8": ("ir_drop", {"nonideal.ir_drop.model": "transfer"}),
}
#: case name -> LoopConfig settings beyond BUDGET (every other case: the defaults, e.g.
#: ``ir_refresh`` 1, every training chip's IR drop exact)
CASE_CONFIG: dict[str, dict[str, object]] = {"ir_drop_exact_refresh8": {"ir_refresh": 8}}
#: arm name -> (methods, through the hardware)
ARMS = {"loop": ("logit,md", True), "ce_hw": ("ce", True), "kdmd_ideal": ("logit,md", False)}
ARM_LABEL = {"loop": "loop: KD+MD through the hardware", "ce_hw": "CE only through the hardware",
             "kdmd_ideal": "KD+MD ignoring the hardware"}
BUDGET = {"budget_epochs": 2, "train_samples": 512, "val_samples": 200, "test_samples": 300,
          "chips": 2, "eval_chips": 3, "lr": 5e-4, "tolerance": 1.0}


def config(case: str, seed: int, arm: str) -> LoopConfig:
    methods, hardware = ARMS[arm]
    return LoopConfig(methods=methods, hardware=hardware, nonideal=CASES[case][0], seed=seed,
                      **{**BUDGET, **CASE_CONFIG.get(case, {})})


def case_spec(case: str) -> HardwareSpec:
    """The preset with CASE's overrides (spec values otherwise)."""
    spec = load_spec(preset_path("rram_physical_32nm"))
    return spec.with_overrides(CASES[case][1]) if CASES[case][1] else spec


def run_all(case: str, seeds: list[int], arms: list[str] | None = None) -> None:
    data = load_dataset("mnist5k", split_seed=0)
    spec = case_spec(case)
    for seed in seeds:
        for arm in arms or list(ARMS):
            out = HERE / "runs" / case / f"seed{seed}_{arm}"
            if (out / "loop.json").is_file():
                print(f"{out}: done, kept", flush=True)
                continue
            t = time.perf_counter()
            res = close_loop(STUDENT, spec, data, out, config(case, seed, arm), log=print)
            wall = time.perf_counter() - t
            atomic_write_text(out / "wall_s.txt", f"{wall:.1f}\n")
            print(table_text(res))
            print(f"{out}: wall {wall:.0f} s", flush=True)


def _ms(v: list[float]) -> str:
    if not v:
        return "-"
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{statistics.mean(v):.1f} +- {sd:.1f}"


def summarize(case: str) -> None:
    rows = []
    for f in sorted((HERE / "runs" / case).glob("seed*_*/loop.json")):
        d = json.loads(f.read_text())
        seed, arm = f.parent.name.split("_", 1)
        wall = f.parent / "wall_s.txt"
        b, a = d["before"], d["after"]
        drop = b["ideal_quantized"] - b["hardware"]
        rows.append({"seed": int(seed[4:]), "arm": arm, "before_hw": b["hardware"],
                     "after_hw": a["hardware"], "before_ideal": b["ideal_quantized"],
                     "after_ideal": a["ideal_quantized"], "drop": drop,
                     "recovered_frac": (a["hardware"] - b["hardware"]) / drop if drop > 0
                     else float("nan"),
                     "after_chip_spread": max(a["per_chip"]) - min(a["per_chip"]),
                     "rounds": len(d["rounds"]) - 1, "best_round": d["best_round"],
                     "stop": d["stop_reason"], "regressed": d["regressed"],
                     "wall_s": float(wall.read_text()) if wall.is_file() else float("nan")})
    keys = list(rows[0]) if rows else []
    csv = ",".join(keys) + "\n" + "".join(
        ",".join(f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + "\n"
        for r in rows)
    atomic_write_text(HERE / f"summary_{case}.csv", csv)
    lines = ["| arm | seeds | held-out hardware % | ideal quantized % | % of the drop recovered |"
             " kept round (per seed) |", "|---|---|---|---|---|---|"]
    base = [r for r in rows if r["arm"] == "loop"] or rows
    if base:
        lines.append(f"| no retrain | {len(base)} | {_ms([r['before_hw'] for r in base])} | "
                     f"{_ms([r['before_ideal'] for r in base])} | 0 | - |")
    for arm in ARMS:
        rs = [r for r in rows if r["arm"] == arm]
        if not rs:
            lines.append(f"| {ARM_LABEL[arm]} | 0 | not run | | | |")
            continue
        lines.append(f"| {ARM_LABEL[arm]} | {len(rs)} | {_ms([r['after_hw'] for r in rs])} | "
                     f"{_ms([r['after_ideal'] for r in rs])} | "
                     f"{_ms([100 * r['recovered_frac'] for r in rs])} | "
                     f"{', '.join(str(r['best_round']) for r in rs)} |")
    per = ["", "| seed | arm | before % | after % | drop (points) | recovered % | rounds | "
           "stop | regressed | after: chip spread (points) | wall s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per.append(f"| {r['seed']} | {r['arm']} | {r['before_hw']:.2f} | {r['after_hw']:.2f} | "
                   f"{r['drop']:.2f} | {100 * r['recovered_frac']:.1f} | {r['rounds']} | "
                   f"{r['stop']} | {r['regressed']} | {r['after_chip_spread']:.2f} | "
                   f"{r['wall_s']:.0f} |")
    atomic_write_text(HERE / f"summary_{case}.md", "\n".join(lines + per) + "\n")
    print("\n".join(lines + per))


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) < 2 or sys.argv[1] not in CASES:
        sys.exit(f"usage: run.py CASE [SEEDS]; CASE one of {', '.join(CASES)}")
    arms = sys.argv[3].split(",") if len(sys.argv) > 3 else None
    if arms and any(a not in ARMS for a in arms):
        sys.exit(f"run.py: ARMS {sys.argv[3]!r}: expected a comma list of {', '.join(ARMS)}")
    run_all(sys.argv[1], [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "0,1,2")
                          .split(",")], arms)
    summarize(sys.argv[1])
