"""The CLI with freed memory kept for reuse (``codesign.allocator``) against glibc's defaults.

Run::

    python tests/bench/bench_allocator.py [--rounds 3]

Each command below runs as its own ``codesign`` process, once with
``CODESIGN_KEEP_FREED_MEMORY=0`` (glibc's default mmap and trim thresholds) and once without
(the CLI's default: :func:`codesign.allocator.keep_freed_memory`), the two alternated and their
order swapped every round. Per run: wall time, user and system CPU, minor page faults and peak
resident memory (``os.wait4`` of that process). The table gives medians over rounds and the
median of the per-round ratios kept/default; the outputs of the two settings are compared for
equality (they must not differ: only where the bytes live changes).

* ``train``: quantization-aware fine-tuning of the shipped teacher at W4/U4, one epoch
  (the first line of ``models/README.md``'s student command, ``--epochs 1``);
* ``map``: ``codesign map models/student_w4u4.pt --hw hw_configs/rram_physical_32nm.yaml
  --data mnist5k --chips 5 --samples 200`` (every non-ideality on);
* ``sweep``: ``codesign sweep-bits models/teacher_fp.pt --hw hw_configs/rram_physical_32nm.yaml
  --data mnist5k --wbits 2,4,8 --ubits 4,8 --adc-bits 6 --samples 500 --workers 2`` (6 points
  and the FP reference, ideal accuracy, on the local process pool).

Writes ``reports/bench/allocator.md`` atomically.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from codesign.allocator import OPT_OUT  # noqa: E402
from codesign.io import atomic_write_text  # noqa: E402

REPORT = ROOT / "reports" / "bench" / "allocator.md"
CLI = [sys.executable, "-c", "from codesign.cli.main import main; main()"]
SETTINGS = {"glibc defaults": "0", "kept for reuse": "1"}


def commands(out: Path) -> dict[str, list[str]]:
    return {
        "train": ["train", "--init", "models/teacher_fp.pt", "--data", "mnist5k", "--wbits", "4",
                  "--ubits", "4", "--epochs", "1", "--lr", "5e-4", "--seed", "0", "--force",
                  "--out", str(out / "student.pt")],
        "map": ["map", "models/student_w4u4.pt", "--hw", "hw_configs/rram_physical_32nm.yaml",
                "--data", "mnist5k", "--chips", "5", "--samples", "200", "--out",
                str(out / "map")],
        "sweep": ["sweep-bits", "models/teacher_fp.pt", "--hw",
                  "hw_configs/rram_physical_32nm.yaml", "--data", "mnist5k", "--wbits", "2,4,8",
                  "--ubits", "4,8", "--adc-bits", "6", "--samples", "500", "--workers", "2",
                  "--out", str(out / "sweep")],
    }


def run_once(args: list[str], keep: str) -> dict[str, float]:
    """One CLI process; its own resource usage from ``os.wait4``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env[OPT_OUT] = keep
    t0 = time.perf_counter()
    proc = subprocess.Popen(CLI + args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{err.decode()}")
    return {"wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "minflt": float(ru.ru_minflt), "maxrss_mb": ru.ru_maxrss / 1024}


def output_of(name: str, out: Path) -> object:
    """What must not change with the allocator: the trained weights, the map summary, the
    sweep's results table."""
    if name == "sweep":
        import pandas as pd

        return pd.read_csv(out / "sweep" / "results.csv")
    if name == "train":
        from codesign.snn.checkpoint import load_checkpoint

        model = load_checkpoint(out / "student.pt")[0]
        return {k: v.clone() for k, v in model.state_dict().items()}
    summary = json.loads((out / "map" / "summary.json").read_text())
    return {"accuracy": summary["accuracy"], "energy_pj": summary.get("energy_pj")}


def _same(a: object, b: object) -> bool:
    if hasattr(a, "equals") and not isinstance(a, torch.Tensor):  # a DataFrame: NaN-aware
        return bool(a.equals(b))  # type: ignore[attr-defined]
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    same: dict[str, bool] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {s: Path(tmp) / keep for s, keep in SETTINGS.items()}
        for d in dirs.values():
            d.mkdir()
        names = list(commands(Path(tmp)))
        for name in names:
            runs[name] = {s: [] for s in SETTINGS}
            for r in range(args.rounds):
                order = list(SETTINGS) if r % 2 == 0 else list(reversed(SETTINGS))
                for s in order:
                    for folder in ("map", "sweep"):  # fresh outputs every run
                        if (dirs[s] / folder).exists():
                            shutil.rmtree(dirs[s] / folder)
                    got = run_once(commands(dirs[s])[name], SETTINGS[s])
                    runs[name][s].append(got)
                    print(f"{name} round {r + 1} {s}: {got['wall_s']:.1f} s, "
                          f"{got['minflt']:.0f} faults", flush=True)
            a, b = (output_of(name, dirs[s]) for s in SETTINGS)
            same[name] = _same(a, b)
    lines = [
        "# The CLI with freed memory kept for reuse vs glibc's defaults",
        "",
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `python tests/bench/bench_allocator.py --rounds {args.rounds}`",
        f"- machine: {platform.machine()}, {os.cpu_count()} logical CPUs (shared: absolute "
        f"times are noisy; the two settings alternate, order swapped every round); python "
        f"{platform.python_version()}; torch {torch.__version__}; "
        f"{os.confstr('CS_GNU_LIBC_VERSION') if hasattr(os, 'confstr') else '?'}",
        "- setting: `codesign.allocator.keep_freed_memory` (the CLI's default) against "
        f"`{OPT_OUT}=0`; one process per run, `os.wait4` resource usage",
        "- train: `codesign train --init models/teacher_fp.pt --data mnist5k --wbits 4 "
        "--ubits 4 --epochs 1 --lr 5e-4 --seed 0`; map: `codesign map models/student_w4u4.pt "
        "--hw hw_configs/rram_physical_32nm.yaml --data mnist5k --chips 5 --samples 200`; "
        "sweep: `codesign sweep-bits models/teacher_fp.pt --hw "
        "hw_configs/rram_physical_32nm.yaml --data mnist5k --wbits 2,4,8 --ubits 4,8 "
        "--adc-bits 6 --samples 500 --workers 2` (resource usage: the driver and the "
        "descendants it waited for, as `os.wait4` counts them)",
        "",
        "| command | setting | wall s | user s | system s | minor faults | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    keys = ("wall_s", "user_s", "sys_s", "minflt", "maxrss_mb")
    for name in names:
        for s in SETTINGS:
            med = {k: statistics.median(x[k] for x in runs[name][s]) for k in keys}
            lines.append(f"| {name} | {s} | {med['wall_s']:.2f} | {med['user_s']:.2f} | "
                         f"{med['sys_s']:.2f} | {med['minflt']:.0f} | {med['maxrss_mb']:.0f} |")
    lines += ["", "Median of per-round ratios, kept / glibc defaults:", "",
              "| command | wall | system CPU | minor faults | peak RSS | outputs identical |",
              "|---|---:|---:|---:|---:|---|"]
    off, on = SETTINGS
    for name in names:
        ratio = {k: statistics.median(y[k] / x[k] if x[k] else float("nan")
                                      for x, y in zip(runs[name][off], runs[name][on], strict=True))
                 for k in keys}
        lines.append(f"| {name} | {ratio['wall_s']:.2f}x | {ratio['sys_s']:.2f}x | "
                     f"{ratio['minflt']:.2f}x | {ratio['maxrss_mb']:.2f}x | "
                     f"{'yes' if same[name] else 'NO'} |")
    atomic_write_text(REPORT, "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
