"""Benchmark of binary crossbar reads by partial-sum tables (:mod:`codesign.sim.table_read`)
against the matrix product they replace, in the same run.

Run::

    python tests/bench/bench_table_read.py [--rounds 15] [--threads 1]

Writes ``reports/bench/sim_table_read.md``. One row-chunk of reads as
:meth:`codesign.sim.crossbar.CrossbarLayer.read` processes it: ``2048`` reads of a 128-row
block (binary uint8 drives, each row active with probability ``--density``, the measured
20-37 % of the student's spike reads), read matrices of 80-1024 columns (the student's fc_out,
conv layers, 2x conv and fc1) on the dyadic grid of :func:`codesign.sim.table_read.on_sum_grid`.
Baseline: the uint8 drive copied to float32 and ``torch.mm`` into a reused output, exactly the
simulator's fallback. Tables: :func:`table_index` + ``F.embedding_bag``
(:func:`table_product`). Each pair of timings is interleaved round by round; medians and the
median of per-round ratios. The two outputs are checked equal, bit for bit, before timing.
Every draw comes from ``torch.Generator().manual_seed(0)``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from timing import median_seconds  # noqa: E402

from codesign.io import atomic_write_text  # noqa: E402
from codesign.sim.table_read import (  # noqa: E402
    build_table,
    on_sum_grid,
    table_bytes,
    table_product,
)

ROWS, READS = 128, 2048
COLS = (80, 256, 512, 1024)


def _ms(f, reps: int = 5) -> float:
    """Median milliseconds of ``reps`` calls of ``f``."""
    return 1e3 * median_seconds(f, reps)[0]


def measure(cols: int, density: float, rounds: int, gen: torch.Generator) -> dict[str, float]:
    # conductances like a programmed block: 4 levels above g_off (units of dG), 5 % variation
    g = (0.1875 + torch.randint(0, 4, (ROWS, cols), generator=gen).float()) \
        * torch.exp(0.05 * torch.randn(ROWS, cols, generator=gen))
    g = on_sum_grid(g)
    drive = (torch.rand(READS, ROWS, generator=gen) < density).to(torch.uint8)
    fbuf = torch.empty(READS, ROWS)
    out = torch.empty(READS, cols)

    def by_mm() -> torch.Tensor:
        return torch.mm(fbuf.copy_(drive), g, out=out)

    table = build_table(g)
    if not torch.equal(by_mm(), table_product(drive, table)):
        raise SystemExit(f"{cols} columns: tables and matrix product differ")
    mm_t, tab_t = [], []
    for r in range(rounds):  # interleaved, order alternated
        pair = [("mm", by_mm), ("tab", lambda: table_product(drive, table))]
        for name, f in pair if r % 2 == 0 else pair[::-1]:
            (mm_t if name == "mm" else tab_t).append(_ms(f))
    build = _ms(lambda: build_table(g), reps=max(3, rounds // 3))
    return {"mm": statistics.median(mm_t), "tab": statistics.median(tab_t),
            "ratio": statistics.median(m / t for m, t in zip(mm_t, tab_t, strict=True)),
            "build": build, "mb": table_bytes(ROWS, cols) / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--density", type=float, default=0.3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    load0 = os.getloadavg()[0]
    res = {c: measure(c, args.density, args.rounds, gen) for c in COLS}
    load1 = os.getloadavg()[0]
    lines = [
        "# Binary crossbar reads: partial-sum tables against the matrix product",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), torch "
        f"{torch.__version__}, {args.threads} thread(s). Command: `python "
        f"tests/bench/bench_table_read.py --rounds {args.rounds} --threads {args.threads}`.",
        f"Load average (1 min) at the start and end: {load0:.1f}, {load1:.1f}.",
        "",
        f"{READS} reads of one {ROWS}-row block, binary drives with {args.density:.0%} of the rows "
        "active, read matrices on the dyadic grid; baseline = uint8 -> float32 copy + `torch.mm` "
        "(the simulator's fallback), tables = index + `F.embedding_bag`; both outputs equal, "
        f"bit for bit (checked); medians of {args.rounds} interleaved rounds (each the median "
        "of 5 calls).",
        "",
        "| columns | matrix product (ms) | tables (ms) | speed-up (median of per-round ratios) "
        "| table build (ms, once per chip and block) | table (MB) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for c, r in res.items():
        lines.append(f"| {c} | {r['mm']:.3f} | {r['tab']:.3f} | {r['ratio']:.2f}x | "
                     f"{r['build']:.2f} | {r['mb']:.0f} |")
    lines += ["", "Here one table is read again and again and stays in cache. In the simulator "
              "the tables of every chip and row block take turns, so the gain there is smaller "
              "(`reports/bench/sim.md`). The simulator uses tables up to `TABLE_MAX_COLS` = 512 "
              "columns and `TABLE_BYTES_MAX` per layer (`codesign/sim/crossbar.py`).", ""]
    text = "\n".join(lines)
    atomic_write_text(ROOT / "reports" / "bench" / "sim_table_read.md", text)
    print(text)


if __name__ == "__main__":
    main()
