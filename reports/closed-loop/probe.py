"""Hardware accuracy of a checkpoint under several ``ADC_BITS:NONIDEAL`` settings (README).

Usage: probe.py MODEL DATA "6:all;6:ir_drop;4:none" SAMPLES  (2 chips, seed 0, percent)
"""

from __future__ import annotations

import sys

from codesign.data import load_dataset
from codesign.hw.spec import load_spec, preset_path
from codesign.sim.accuracy import simulate
from codesign.snn.checkpoint import load_checkpoint

model, _ = load_checkpoint(sys.argv[1])
data = load_dataset(sys.argv[2], split_seed=0)
spec = load_spec(preset_path("rram_physical_32nm"))
for item in sys.argv[3].split(";"):
    bits, names = item.split(":")
    r = simulate(model, spec, data.x_test, data.y_test, chips=2, adc_bits=int(bits),
                 nonideal=names, samples=int(sys.argv[4]), seed=0)
    print(bits, names, r["ideal_quantized"], r["hardware"]["mean"], flush=True)
