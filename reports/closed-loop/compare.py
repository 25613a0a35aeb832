"""Per-case verdicts of the closed-loop study from ``summary_CASE.csv`` (README.md).

Usage: .venv/bin/python reports/closed-loop/compare.py [CASE ...]   (default: every summary)

For each case, over the seeds where every arm ran: the drop (ideal quantized minus hardware
accuracy of the original student, held-out images and chips), each arm's held-out hardware
accuracy after retraining and the recovered fraction ``(after - before) / drop``, mean +- sample
std over the seeds; the goal check (the loop recovers >= 50 % of the drop: on the mean, and on
how many seeds); and the paired comparison loop - CE-through-the-hardware, seed by seed (same
training draw, selection split, test images and chips), with the paired t statistic
``t = mean(d) / (sd(d) / sqrt(n))``. "Beyond seed noise" means ``|t|`` above the two-sided 95 %
Student-t quantile for ``n - 1`` degrees of freedom (4.303 for 3 seeds). A case that ran the
loop arm only (:data:`PAIRED`: one change to another case's loop, every draw the same) gets the
loop row, the goal check and the paired comparison against that case's loop instead. Writes
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
#: loop-only case -> the case whose loop it changes in one setting (paired by seed)
PAIRED = {"ir_drop_exact_refresh8": "ir_drop_exact"}
ARMS = (("loop", "loop (KD+MD through the hardware)"), ("ce_hw", "CE through the hardware"),
        ("kdmd_ideal", "KD+MD ignoring the hardware"))


def _ms(v: list[float], digits: int = 1) -> str:
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{statistics.mean(v):.{digits}f} +- {sd:.{digits}f}"


def _summary(case: str) -> dict[tuple[int, str], dict[str, float]]:
    """``summary_CASE.csv`` as ``{(seed, arm): numeric columns}``."""
    rows = list(csv.DictReader((HERE / f"summary_{case}.csv").open()))
    return {(int(r["seed"]), r["arm"]): {k: float(v) for k, v in r.items()
                                         if k not in ("seed", "arm", "stop", "regressed")}
            for r in rows}


def _recovered(r: dict[str, float]) -> float:
    """Percent of the drop recovered, ``100 (after - before) / drop``, from the summary's
    4-decimal accuracies (its ``recovered_frac`` column is rounded to 4 decimals itself)."""
    return 100 * (r["after_hw"] - r["before_hw"]) / r["drop"]


def _paired(d: list[float], what: str) -> str:
    """``what`` per seed, mean +- sd and the paired t verdict (module docstring)."""
    line = f"{what} (held-out points, per seed): {', '.join(f'{x:+.1f}' for x in d)}"
    if len(d) > 1:
        sd = statistics.stdev(d)
        t = statistics.mean(d) / (sd / math.sqrt(len(d))) if sd > 0 else math.inf
        crit = T95.get(len(d) - 1, 2.0)
        beyond = "beyond seed noise" if abs(t) > crit else "within seed noise"
        line += (f"; mean {statistics.mean(d):+.1f} +- {sd:.1f}, paired t = {t:.2f} "
                 f"(|t| > {crit} needed): **{beyond}**.")
    return line


def verdict(case: str) -> list[str]:
    f = _summary(case)
    seeds = sorted({s for s, _ in f if all((s, a) in f for a, _ in ARMS)})
    base = PAIRED.get(case)
    loop_only = not seeds and base is not None
    arms = ARMS[:1] if loop_only else ARMS
    if loop_only:
        seeds = sorted(s for s, a in f if a == "loop")
    if not seeds:
        return [f"### {case}", "", "no seed with every arm run", ""]
    drop = [f[(s, "loop")]["drop"] for s in seeds]
    before = [f[(s, "loop")]["before_hw"] for s in seeds]
    out = [f"### {case} ({len(seeds)} seeds: {', '.join(map(str, seeds))})", "",
           f"No retrain: held-out hardware {_ms(before)} %, drop {_ms(drop)} points.", "",
           "| arm | held-out hardware % | recovered % of the drop | per seed recovered % |",
           "|---|---|---|---|"]
    for arm, label in arms:
        after = [f[(s, arm)]["after_hw"] for s in seeds]
        rec = [_recovered(f[(s, arm)]) for s in seeds]
        out.append(f"| {label} | {_ms(after)} | {_ms(rec)} | "
                   f"{', '.join(f'{x:.0f}' for x in rec)} |")
    rec_loop = [_recovered(f[(s, "loop")]) for s in seeds]
    n_half = sum(x >= 50 for x in rec_loop)
    goal = "holds" if statistics.mean(rec_loop) >= 50 and n_half == len(seeds) else (
        "holds on the mean only" if statistics.mean(rec_loop) >= 50 else "does NOT hold")
    if not loop_only:
        line = _paired([f[(s, "loop")]["after_hw"] - f[(s, "ce_hw")]["after_hw"] for s in seeds],
                       "Loop - CE")
    else:
        assert base is not None
        g = _summary(base)
        common = [s for s in seeds if (s, "loop") in g]
        same = all(abs(g[(s, "loop")]["before_hw"] - f[(s, "loop")]["before_hw"]) < 1e-9
                   for s in common)
        line = (f"Paired with {base}'s loop on seeds {', '.join(map(str, common))} (held-out "
                f"accuracy before retraining {'the same' if same else 'NOT the same'} on every "
                "seed). " + _paired([f[(s, "loop")]["after_hw"] - g[(s, "loop")]["after_hw"]
                                     for s in common], f"Loop - {base}'s loop"))
    out += ["", f"Goal (loop recovers >= 50 % of the drop): **{goal}** (mean "
            f"{statistics.mean(rec_loop):.1f} %, {n_half} of {len(seeds)} seeds >= 50 %).",
            "", line, ""]
    return out


if __name__ == "__main__":
    cases = sys.argv[1:] or sorted(p.stem[len("summary_"):] for p in HERE.glob("summary_*.csv"))
    text = "\n".join(line for c in cases for line in verdict(c))
    atomic_write_text(HERE / "verdicts.md", "# Per-case verdicts (compare.py)\n\n" + text)
    print(text)
