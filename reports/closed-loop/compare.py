"""Per-case verdicts of the closed-loop study from ``summary_CASE.csv`` (README.md).

Usage: .venv/bin/python reports/closed-loop/compare.py [CASE ...]   (default: every summary)

For each case, over the seeds where every arm ran: the drop (ideal quantized minus hardware
accuracy of the original student, held-out images and chips), each arm's held-out hardware
accuracy after retraining and the recovered fraction ``(after - before) / drop``, mean +- sample
std over the seeds; the goal check (the loop recovers >= 50 % of the drop: on the mean, and on
how many seeds); and the paired comparison loop - CE-through-the-hardware, seed by seed (same
training draw, selection split, test images and chips), with the paired t statistic
``t = mean(d) / (sd(d) / sqrt(n))``. "Beyond seed noise" means ``|t|`` above the two-sided 95 %
Student-t quantile for ``n - 1`` degrees of freedom (4.303 for 3 seeds). Writes
``verdicts.md`` (all cases given) and prints it.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path

from codesign.io import atomic_write_text

HERE = Path("reports/closed-loop")
#: two-sided 95 % quantile of Student's t, by degrees of freedom
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}


def _ms(v: list[float], digits: int = 1) -> str:
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{statistics.mean(v):.{digits}f} +- {sd:.{digits}f}"


def verdict(case: str) -> list[str]:
    rows = list(csv.DictReader((HERE / f"summary_{case}.csv").open()))
    by = {(int(r["seed"]), r["arm"]): r for r in rows}
    seeds = sorted({s for s, _ in by if all((s, a) in by for a in ("loop", "ce_hw", "kdmd_ideal"))})
    if not seeds:
        return [f"### {case}", "", "no seed with every arm run", ""]
    f = {k: {kk: float(vv) for kk, vv in r.items() if kk not in ("arm", "stop", "regressed")}
         for k, r in by.items()}
    drop = [f[(s, "loop")]["drop"] for s in seeds]
    before = [f[(s, "loop")]["before_hw"] for s in seeds]
    out = [f"### {case} ({len(seeds)} seeds: {', '.join(map(str, seeds))})", "",
           f"No retrain: held-out hardware {_ms(before)} %, drop {_ms(drop)} points.", "",
           "| arm | held-out hardware % | recovered % of the drop | per seed recovered % |",
           "|---|---|---|---|"]
    for arm, label in (("loop", "loop (KD+MD through the hardware)"),
                       ("ce_hw", "CE through the hardware"),
                       ("kdmd_ideal", "KD+MD ignoring the hardware")):
        after = [f[(s, arm)]["after_hw"] for s in seeds]
        rec = [100 * f[(s, arm)]["recovered_frac"] for s in seeds]
        out.append(f"| {label} | {_ms(after)} | {_ms(rec)} | "
                   f"{', '.join(f'{x:.0f}' for x in rec)} |")
    rec_loop = [100 * f[(s, "loop")]["recovered_frac"] for s in seeds]
    n_half = sum(x >= 50 for x in rec_loop)
    goal = "holds" if statistics.mean(rec_loop) >= 50 and n_half == len(seeds) else (
        "holds on the mean only" if statistics.mean(rec_loop) >= 50 else "does NOT hold")
    d = [f[(s, "loop")]["after_hw"] - f[(s, "ce_hw")]["after_hw"] for s in seeds]
    line = f"Loop - CE (held-out points, per seed): {', '.join(f'{x:+.1f}' for x in d)}"
    if len(seeds) > 1:
        sd = statistics.stdev(d)
        t = statistics.mean(d) / (sd / math.sqrt(len(d))) if sd > 0 else math.inf
        crit = T95.get(len(d) - 1, 2.0)
        beyond = "beyond seed noise" if abs(t) > crit else "within seed noise"
        line += (f"; mean {statistics.mean(d):+.1f} +- {sd:.1f}, paired t = {t:.2f} "
                 f"(|t| > {crit} needed): **{beyond}**.")
    out += ["", f"Goal (loop recovers >= 50 % of the drop): **{goal}** (mean "
            f"{statistics.mean(rec_loop):.1f} %, {n_half} of {len(seeds)} seeds >= 50 %).",
            "", line, ""]
    return out


if __name__ == "__main__":
    cases = sys.argv[1:] or sorted(p.stem[len("summary_"):] for p in HERE.glob("summary_*.csv"))
    text = "\n".join(line for c in cases for line in verdict(c))
    atomic_write_text(HERE / "verdicts.md", "# Per-case verdicts (compare.py)\n\n" + text)
    print(text)
