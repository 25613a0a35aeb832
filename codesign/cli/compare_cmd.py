"""``codesign compare FP_MODEL Q_MODEL``: two checkpoints side by side, MD-SNN iso-accuracy form.

Each checkpoint is scored on the same test samples of ``--data`` (``--samples`` drawn with
``--seed``; each network at its own bits, the FP one in float, the quantized one fake-quantized
on its integer grids; 95 % Wilson interval) and mapped and costed by
:func:`codesign.mapflow.map_model` on its own measured activity (``--activity-samples``), each
at its own bits (a layer without a quantizer mapped as FP). Writes ``OUT/fp/summary.json``,
``OUT/quantized/summary.json`` (with the accuracy added) and ``OUT/iso_accuracy.{md,csv,png}``
(:mod:`codesign.sweep.isoacc`); the quantized network is "at iso-accuracy" when its accuracy mean
is at least the FP mean minus ``--iso-tolerance`` points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click

from codesign.errors import CodesignError

INPUT_KEYS = ("in_channels", "image_size", "num_classes", "T", "encoding")


def _load(path: Path, what: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    from codesign.snn.checkpoint import load_checkpoint, read_checkpoint

    if path.suffix.lower() not in (".pt", ".pth"):
        raise CodesignError(f"{what} {path}: expected a codesign checkpoint (.pt)")
    spec = read_checkpoint(path)["spec"]
    net, meta = load_checkpoint(path)
    return net.eval(), meta, spec


def _is_float(spec: dict[str, Any]) -> bool:
    q = spec.get("quant") or {}
    return all(q.get(k) is None for k in ("wbits", "ubits", "first_bits", "last_bits"))


def _score(net: Any, x: Any, y: Any) -> dict[str, Any]:
    from codesign.sweep.evaluate import wilson_interval
    from codesign.train.loop import predict_logits

    correct = int((predict_logits(net, x, batch_size=250).mean(0).argmax(-1) == y).sum())
    n = int(len(y))
    lo, hi = wilson_interval(correct, n)
    return {"accuracy": correct / n, "accuracy_ci_lo": lo, "accuracy_ci_hi": hi,
            "accuracy_interval": "wilson95_over_test_samples", "accuracy_samples": n,
            "correct": correct}


@click.command()
@click.argument("fp_model", type=click.Path(path_type=Path))
@click.argument("q_model", type=click.Path(path_type=Path))
@click.option("--hw", "hw", required=True, help="Hardware spec YAML (hw_configs/*.yaml).")
@click.option("--data", "data_name", required=True,
              help="Data set both were trained on (mnist5k, digits, nmnist5k, npz:PATH).")
@click.option("--samples", type=int, default=None,
              help="Test samples scored for accuracy (default: the whole test split).")
@click.option("--activity-samples", type=int, default=64, show_default=True,
              help="Test samples run to measure spike activity for the cost.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample draws.")
@click.option("--iso-tolerance", "iso_tolerance", type=float, default=1.0, show_default=True,
              help="Accuracy points the quantized network may lose and still be iso-accuracy.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
def compare_cmd(fp_model: Path, q_model: Path, hw: str, data_name: str, samples: Optional[int],
                activity_samples: int, seed: int, iso_tolerance: float, out: Path) -> None:
    """Compare FP_MODEL (float checkpoint) against Q_MODEL (quantized checkpoint) on --hw."""
    import math

    import pandas as pd

    from codesign.data import load_dataset
    from codesign.io import atomic_write_json
    from codesign.mapflow import load_hw, map_model
    from codesign.sim.activity import select_samples
    from codesign.sweep.isoacc import METRICS, headline, iso_ratios, select_iso, write_iso

    for name, v in (("samples", samples), ("activity-samples", activity_samples)):
        if v is not None and v < 1:
            raise CodesignError(f"--{name} {v}: expected a positive integer")
    if seed < 0:
        raise CodesignError(f"--seed {seed}: expected a non-negative integer")
    if not (math.isfinite(iso_tolerance) and iso_tolerance >= 0):
        raise CodesignError(f"--iso-tolerance {iso_tolerance}: expected a non-negative number "
                            "of accuracy points")
    load_hw(hw)  # a bad spec is refused before any work
    fp_net, fp_meta, fp_spec = _load(fp_model, "FP_MODEL")
    q_net, q_meta, q_spec = _load(q_model, "Q_MODEL")
    if not _is_float(fp_spec):
        raise CodesignError(f"FP_MODEL {fp_model}: is quantized (quant {fp_spec.get('quant')}); "
                            "expected a float checkpoint")
    if _is_float(q_spec):
        raise CodesignError(f"Q_MODEL {q_model}: has no quantizer (quant: all null); expected a "
                            "quantized checkpoint")
    for path, meta in ((fp_model, fp_meta), (q_model, q_meta)):
        if meta.get("dataset") not in (None, data_name):
            raise CodesignError(f"{path}: trained on {meta.get('dataset')!r}, not --data "
                                f"{data_name!r}")
    for key in INPUT_KEYS:
        if fp_spec.get(key) != q_spec.get(key):
            raise CodesignError(f"{q_model}: spec key {key!r} is {q_spec.get(key)!r}, FP_MODEL "
                                f"{fp_model} has {fp_spec.get(key)!r}; expected two networks "
                                "for the same inputs")
    split_seed = int(fp_meta.get("split_seed", 0))
    if int(q_meta.get("split_seed", 0)) != split_seed:
        raise CodesignError(f"{q_model}: split_seed {q_meta.get('split_seed')} differs from "
                            f"FP_MODEL's {split_seed}; the test splits would differ")
    size = int(fp_spec.get("image_size", 0))
    extra = {"upsample": size} if data_name == "digits" and size not in (0, 8) else {}
    data = load_dataset(data_name, split_seed=split_seed, T=int(fp_spec["T"]), **extra)
    idx = select_samples(len(data.y_test), samples, seed)
    x, y = data.x_test[idx], data.y_test[idx]
    rows: dict[str, dict[str, Any]] = {}
    for tag, path, net in (("fp", fp_model, fp_net), ("quantized", q_model, q_net)):
        acc = _score(net, x, y)
        s = map_model(path, hw, data=data_name, samples=activity_samples, seed=seed,
                      split_seed=split_seed).summary
        s["accuracy_scored"] = {**acc, "samples_seed": seed,
                                "sample_indices": [int(i) for i in idx]}
        atomic_write_json(out / tag / "summary.json", s)
        rows[tag] = {**acc, **{c: float(s[c]) for c, *_ in METRICS}}
    fp, q = rows["fp"], rows["quantized"]
    iso = select_iso(pd.DataFrame([{**q, "label": "q"}]), fp["accuracy"], iso_tolerance) == 0
    qb = q_spec.get("quant") or {}
    label = f"{q_model.name} (W{qb.get('wbits')}U{qb.get('ubits')})"
    write_iso(out, fp, q, tolerance_pts=iso_tolerance, q_label=label, fp_label=fp_model.name,
              iso=iso, context=f"`{fp_model.name}` against `{q_model.name}` on `{Path(hw).stem}`"
                               f", {data_name} test split ({len(idx)} samples, seed {seed}).")
    click.echo(f"FP {100 * fp['accuracy']:.2f} %, quantized {100 * q['accuracy']:.2f} %: "
               f"{headline(iso_ratios(fp, q), iso)}")
    click.echo(f"codesign compare: wrote iso_accuracy.md, iso_accuracy.csv, iso_accuracy.png, "
               f"fp/summary.json, quantized/summary.json to {out}", err=True)
