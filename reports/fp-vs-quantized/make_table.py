"""Collect the FP-vs-W4/U4 summaries into comparison.csv and comparison.md (ratios FP / W4U4).

Usage: .venv/bin/python reports/fp-vs-quantized/make_table.py reports/fp-vs-quantized
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

PRESETS = ("rram_physical_32nm", "sram_neurosim_22nm", "spikesim_rram_65nm")
METRICS = (("energy_pj", "energy (uJ)", 1e-6),
           ("energy_dynamic_pj", "energy without leakage (uJ)", 1e-6),
           ("latency_ns", "latency (us)", 1e-3),
           ("area_mm2", "area (mm2)", 1.0), ("edap_pj_ns_mm2", "EDAP (pJ ns mm2)", 1.0),
           ("edap_dynamic", "EDAP without leakage (pJ ns mm2)", 1.0),
           ("tops_per_w", "TOPS/W", 1.0), ("tops_per_mm2", "TOPS/mm2", 1.0),
           ("crossbars", "crossbars", 1.0), ("utilisation", "utilisation", 1.0))


def main(root: Path) -> None:
    rows, comp_rows, lines = [], [], []
    mapping: dict[str, dict[str, dict[str, str]]] = {}
    for hw in PRESETS:
        s = {m: json.loads((root / hw / m / "summary.json").read_text())
             for m in ("teacher_fp", "student_w4u4")}
        fp, q = s["teacher_fp"], s["student_w4u4"]
        for d in (fp, q):   # dynamic only: total minus leakage (static power x latency)
            leak = d["energy_by_component_pj"].get("leakage", 0.0)
            d["energy_dynamic_pj"] = d["energy_pj"] - leak
            d["edap_dynamic"] = d["energy_dynamic_pj"] * d["latency_ns"] * d["area_mm2"]
        mapping[hw] = {m: s[m].get("layer_mapping", {}) for m in s}
        for key, label, scale in METRICS:
            rows.append({"preset": hw, "metric": label, "fp_teacher": fp[key] * scale,
                         "w4u4_student": q[key] * scale, "ratio_fp_over_w4u4": fp[key] / q[key]})
        for kind, unit, scale in (("energy_by_component_pj", "uJ", 1e-6),
                                  ("area_by_component_um2", "mm2", 1e-6)):
            for c in fp[kind]:
                if fp[kind][c] == 0 and q[kind][c] == 0:
                    continue
                comp_rows.append({"preset": hw, "quantity": f"{kind.split('_')[0]} ({unit})",
                                  "component": c, "fp_teacher": fp[kind][c] * scale,
                                  "w4u4_student": q[kind][c] * scale,
                                  "fp_share": fp[kind][c] / sum(fp[kind].values()),
                                  "w4u4_share": q[kind][c] / sum(q[kind].values())})
    df, comp = pd.DataFrame(rows), pd.DataFrame(comp_rows)
    df.to_csv(root / "comparison.csv", index=False)
    comp.to_csv(root / "components.csv", index=False)
    lines.append("# FP teacher vs W4/U4 student: metrics (ratio = FP / W4U4)\n")
    for hw in PRESETS:
        lines.append(f"\n## {hw}\n")
        lines.append("| metric | FP teacher | W4/U4 student | FP / W4U4 |")
        lines.append("|---|---|---|---|")
        for r in df[df.preset == hw].itertuples():
            lines.append(f"| {r.metric} | {r.fp_teacher:.4g} | {r.w4u4_student:.4g} | "
                         f"{r.ratio_fp_over_w4u4:.3g} |")
        lines.append("\nHow each layer was mapped (summary.json `layer_mapping`):\n")
        for m, lm in mapping[hw].items():
            for layer, how in lm.items():
                lines.append(f"- {m} `{layer}`: {how}")
        lines.append("\n| component | FP | W4/U4 | FP share | W4/U4 share |")
        lines.append("|---|---|---|---|---|")
        for r in comp[comp.preset == hw].itertuples():
            lines.append(f"| {r.quantity} {r.component} | {r.fp_teacher:.4g} | "
                         f"{r.w4u4_student:.4g} | {r.fp_share:.1%} | {r.w4u4_share:.1%} |")
    (root / "comparison.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "reports/fp-vs-quantized"))
