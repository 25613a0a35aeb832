"""``codesign sweep-bits``: quantize a model at every bit-width combination, score and cost it.

Thin: parsing and printing only; the sweep is :func:`codesign.sweep.sweep_bits`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from codesign.cli.options import bits_option
from codesign.errors import CodesignError


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--hw", "hw", required=True, help="Hardware spec YAML (hw_configs/*.yaml).")
@click.option("--data", "data_name", required=True,
              help="Data set whose test split scores accuracy and drives activity "
                   "(mnist5k, digits, nmnist5k, npz:PATH).")
@click.option("--wbits", required=True, help="Weight bit-widths, comma-separated (1..16).")
@click.option("--ubits", required=True, help="Membrane bit-widths, comma-separated (2..16).")
@click.option("--adc-bits", "adc_bits", default=None,
              help="ADC bit-widths, comma-separated (1..16); default: the spec's.")
@click.option("--first-bits", type=int, default=None,
              help="First conv weight bits (default 8).")
@click.option("--last-bits", type=int, default=None, help="Readout weight bits (default 8).")
@click.option("--samples", type=int, default=None,
              help="Test samples scored for accuracy (default: the whole test split).")
@click.option("--activity-samples", type=int, default=64, show_default=True,
              help="Test samples run to measure spike activity for the cost.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the sample draws.")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Data split seed.")
@click.option("--nonideal", default=None,
              help="Score accuracy on simulated chips with these non-idealities (all, or "
                   "names from the spec's nonideal: section); default: ideal quantized.")
@click.option("--chips", type=int, default=1, show_default=True,
              help="Simulated chips per point (with --nonideal); mean and 95 % interval.")
@click.option("--workers", type=int, default=None,
              help="Local worker processes (1: serial; default: every core).")
@click.option("--scheduler", default=None, help="Dask scheduler address tcp://HOST:PORT.")
@click.option("--scheduler-file", "scheduler_file", default=None,
              help="Dask scheduler file (dask scheduler --scheduler-file F).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Sweep folder (created; an existing one must hold this same sweep).")
@click.option("--iso-tolerance", "iso_tolerance", type=float, default=1.0, show_default=True,
              help="Iso-accuracy tolerance (accuracy points) against the FP reference; "
                   "negative: no FP reference / iso-accuracy table.")
@click.option("--retrain", is_flag=True,
              help="Fine-tune each point with distillation through the closed loop (through "
                   "the simulated chips with --nonideal) before scoring and costing it; the "
                   "loops' files go to OUT/retrain/<key>/.")
@click.option("--teacher", type=click.Path(path_type=Path), default=None,
              help="--retrain: teacher checkpoint (default: a float MODEL itself, else the "
                   "teacher recorded in MODEL's meta).")
@click.option("--tolerance", "retrain_tolerance", type=float, default=1.0, show_default=True,
              help="--retrain: points below the teacher's selection accuracy that count as "
                   "recovered (the loop stops).")
@click.option("--budget-epochs", type=int, default=2, show_default=True,
              help="--retrain: at most N epochs per point (one per round).")
@click.option("--retrain-distill", default="logit,md", show_default=True,
              help="--retrain: distillation methods (logit, md, temporal) or ce.")
@click.option("--retrain-samples", type=int, default=None,
              help="--retrain: training samples per epoch (default: the whole training part).")
@click.option("--retrain-val-samples", type=int, default=None,
              help="--retrain: selection samples (default: the whole selection split).")
@click.option("--ir-refresh", "ir_refresh", type=int, default=None,
              help="--retrain: the exact IR-drop transfer on every K-th training chip, its "
                   "per-cell attenuation on the chips between (default 1: every chip exact; "
                   "selection and test chips are always exact).")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def sweep_bits_cmd(model: Path, hw: str, data_name: str, wbits: str, ubits: str,
                   adc_bits: Optional[str], first_bits: Optional[int], last_bits: Optional[int],
                   samples: Optional[int], activity_samples: int, seed: int, split_seed: int,
                   nonideal: Optional[str], chips: int, workers: Optional[int],
                   scheduler: Optional[str],
                   scheduler_file: Optional[str], out: Path, iso_tolerance: float,
                   retrain: bool, teacher: Optional[Path], retrain_tolerance: float,
                   budget_epochs: int, retrain_distill: str, retrain_samples: Optional[int],
                   retrain_val_samples: Optional[int], ir_refresh: Optional[int],
                   quiet: bool) -> None:
    """Sweep MODEL (a codesign checkpoint) over --wbits x --ubits x --adc-bits on --hw.

    Each point is post-training quantized (LSQ steps re-initialised), with --retrain fine-tuned
    by distillation from --teacher (default MODEL) through the closed loop (OUT/retrain/<key>/),
    scored on the test split
    (ideal quantized accuracy, or with --nonideal on --chips simulated chips, with a 95 %
    interval) and costed from measured spike activity.
    Writes OUT/results.csv, OUT/pareto_{edap,energy,area}.png and one JSON per point; the same
    command again computes only the missing points. With a float MODEL it also evaluates the
    FP reference (OUT/reference/) and writes OUT/iso_accuracy.{md,csv,png}: the cheapest point
    within --iso-tolerance points of the FP accuracy against FP.
    """
    from codesign.sweep import parse_bits, sweep_bits
    from codesign.sweep.executors import prestart

    w = parse_bits(wbits, "wbits")
    u = parse_bits(ubits, "ubits", minimum=2)
    a: list[Optional[int]] = [None] if adc_bits is None else parse_bits(adc_bits, "adc-bits")
    bits_option(first_bits, "first-bits")
    bits_option(last_bits, "last-bits")
    refresh = 1 if ir_refresh is None else ir_refresh
    if not retrain:
        given = [f for f, v, d in (("--teacher", teacher, None), ("--tolerance",
                                                                  retrain_tolerance, 1.0),
                                   ("--budget-epochs", budget_epochs, 2),
                                   ("--retrain-distill", retrain_distill, "logit,md"),
                                   ("--retrain-samples", retrain_samples, None),
                                   ("--retrain-val-samples", retrain_val_samples, None),
                                   ("--ir-refresh", ir_refresh, None))
                 if v != d]
        if given:
            raise CodesignError(f"{', '.join(given)}: only used with --retrain")
    else:
        from codesign.loop import LoopConfig

        LoopConfig(tolerance=retrain_tolerance, budget_epochs=budget_epochs,
                   methods=retrain_distill, train_samples=retrain_samples,
                   val_samples=retrain_val_samples,
                   ir_refresh=refresh).validate()
    for name, v, allow_none in (("samples", samples, True),
                                ("activity-samples", activity_samples, False)):
        if (v is None and not allow_none) or (v is not None and v < 1):
            raise CodesignError(f"--{name} {v}: expected a positive integer")
    for name, v in (("seed", seed), ("split-seed", split_seed)):
        if v < 0:
            raise CodesignError(f"--{name} {v}: expected a non-negative integer")
    if model.suffix.lower() not in (".pt", ".pth"):
        raise CodesignError(f"{model}: sweep-bits quantizes a trained network; expected a "
                            "codesign checkpoint (.pt)")
    if workers is None or workers > 1:  # the pool's imports overlap the checks below
        prestart(workers, scheduler=scheduler, scheduler_file=scheduler_file)
    import math

    from codesign.mapflow import load_hw
    from codesign.snn.checkpoint import read_checkpoint

    if not math.isfinite(iso_tolerance):
        raise CodesignError(f"--iso-tolerance {iso_tolerance}: expected a finite number of "
                            "accuracy points")
    blob = read_checkpoint(model)
    quant = blob["spec"].get("quant") or {}
    is_float = all(quant.get(k) is None for k in ("wbits", "ubits", "first_bits", "last_bits"))
    if retrain and teacher is None and not is_float:  # a quantized MODEL: its recorded teacher
        from codesign.loop import default_teacher

        teacher = Path(default_teacher(blob["meta"], str(model)))
    iso = iso_tolerance if iso_tolerance >= 0 and is_float else None

    spec = load_hw(hw)  # refuse a bad spec (or non-ideality) before any work
    if nonideal is not None:
        from codesign.hw.nonideal import select

        select(spec.nonideal, nonideal, str(hw))
    run = sweep_bits(model, hw, data_name, wbits=w, ubits=u, adc_bits=a, out=out,
                     samples=samples, activity_samples=activity_samples, seed=seed,
                     split_seed=split_seed, first_bits=first_bits, last_bits=last_bits,
                     chips=chips, nonideal=nonideal, workers=workers, scheduler=scheduler,
                     scheduler_file=scheduler_file, progress=not quiet, iso_tolerance=iso,
                     retrain=retrain, teacher=teacher, retrain_tolerance=retrain_tolerance,
                     retrain_budget_epochs=budget_epochs, retrain_methods=retrain_distill,
                     retrain_train_samples=retrain_samples,
                     retrain_val_samples=retrain_val_samples,
                     retrain_ir_refresh=refresh)
    df = run.results
    front = df[df["pareto_edap"]]
    if not quiet:
        r = run.report
        click.echo(f"codesign sweep-bits: {r.total} point(s): {len(r.computed)} computed, "
                   f"{r.skipped} already done, in {r.seconds:.1f} s on {run.backend}", err=True)
    for _, row in front.iterrows():
        click.echo(f"{row['label']:>10}  accuracy {100 * row['accuracy']:5.1f} %  "
                   f"EDAP {row['edap_pj_ns_mm2']:.4g} pJ ns mm2  energy "
                   f"{row['energy_pj']:.4g} pJ  area {row['area_mm2']:.3f} mm2  (Pareto)")
    iso_md = out / "iso_accuracy.md"
    if iso is not None and iso_md.is_file():
        bold = [ln for ln in iso_md.read_text().splitlines() if ln.startswith("**")]
        click.echo(f"iso-accuracy (tolerance {iso:g} points): "
                   f"{bold[0].strip('*') if bold else '?'}")
    elif iso_tolerance >= 0 and not is_float and not quiet:
        click.echo("codesign sweep-bits: MODEL is quantized, so no FP reference or "
                   "iso-accuracy table (sweep the float checkpoint for that)", err=True)
    if not quiet:
        click.echo(f"codesign sweep-bits: wrote {', '.join(p.name for p in run.files)} to {out}",
                   err=True)
