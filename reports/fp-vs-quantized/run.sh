#!/usr/bin/env bash
# FP teacher against the W4/U4 student on every preset, through the CLI. Run from the repository
# root: bash reports/fp-vs-quantized/run.sh   (about 1 minute on 2 cores)
set -euo pipefail
OUT=reports/fp-vs-quantized
for hw in rram_physical_32nm sram_neurosim_22nm spikesim_rram_65nm; do
  for model in teacher_fp student_w4u4; do
    rm -rf "$OUT/$hw/$model"
    .venv/bin/codesign map "models/$model.pt" --hw "hw_configs/$hw.yaml" --data mnist5k --samples 64 --seed 0 \
      --out "$OUT/$hw/$model" --quiet > /dev/null
  done
done
.venv/bin/python "$OUT/make_table.py" "$OUT"
