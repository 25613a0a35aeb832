"""One closed-loop case on the shipped W4/U4 student (mnist5k, rram_physical_32nm): see README.md.

Usage: .venv/bin/python reports/closed-loop/run.py NAME METHODS HARDWARE(0|1)
writes reports/closed-loop/NAME/ (rounds.jsonl, retrained.pt, loop.json, before_after.csv,
retrain_rounds.png).
"""

from __future__ import annotations

import sys
import time

from codesign.data import load_dataset
from codesign.hw.spec import load_spec, preset_path
from codesign.loop import LoopConfig, close_loop, table_text

NONIDEAL = "ir_drop,programming,read_noise"

name, methods, hardware = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
data = load_dataset("mnist5k", split_seed=0)
spec = load_spec(preset_path("rram_physical_32nm"))
cfg = LoopConfig(tolerance=1.0, budget_epochs=2, methods=methods, hardware=hardware,
                 nonideal=NONIDEAL, chips=3, eval_chips=3, seed=0, train_samples=1024,
                 val_samples=200, test_samples=500, lr=5e-4)
t = time.perf_counter()
res = close_loop("models/student_w4u4.pt", spec, data, f"reports/closed-loop/{name}", cfg,
                 log=print)
print(table_text(res))
print(f"wall {time.perf_counter() - t:.0f} s")
