"""``codesign map``: map a network onto a hardware spec; per-layer energy, latency and area.

Thin: parsing and printing only; the flow is :func:`codesign.mapflow.map_model`, the files are
written by :func:`codesign.report.write_report` (``layers.csv``, ``per_step.csv``,
``summary.json``, ``energy_breakdown.png``, ``area_breakdown.png``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import click

from codesign.cli.options import bits_option
from codesign.errors import CodesignError
from codesign.io import check_out_dir
from codesign.train.progress import Reporter

#: The files :func:`codesign.report.write_report` writes: a folder holding only these is a
#: previous report that may be replaced.
REPORT_FILES = ("layers.csv", "per_step.csv", "summary.json", "energy_breakdown.png",
                "area_breakdown.png", "firing_rate_drift.csv", "ablation.csv", "ablation.png",
                "adc_bits.csv", "accuracy_vs_adc_bits.png",
                # --retrain (codesign.loop.LOOP_FILES)
                "rounds.jsonl", "retrained.pt", "loop.json", "before_after.csv",
                "retrain_rounds.png")


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--hw", "hw", required=True,
              help="Hardware spec YAML (hw_configs/*.yaml) or a preset name.")
@click.option("--data", "data_name", default=None,
              help="Measure activity on this data set's test split (mnist5k, digits, nmnist5k, "
                   "npz:PATH); checkpoints only. Without it: dense.")
@click.option("--samples", type=int, default=None,
              help="Test samples run: activity on 64 when not given; hardware accuracy "
                   "(--chips) on the whole test split when not given.")
@click.option("--chips", type=int, default=None,
              help="Simulate the accuracy on N Monte-Carlo chips of the spec's crossbars "
                   "(seeded by --seed); summary.json gains 'accuracy'.")
@click.option("--nonideal", default="all", show_default=True,
              help="Non-idealities simulated with --chips: none, all (every one in the spec's "
                   "nonideal: section) or a comma list of programming, stuck_at, drift, "
                   "read_noise, ir_drop, adc.")
@click.option("--ablate", is_flag=True,
              help="With --chips: each non-ideality alone (ablation.csv, ablation.png) and "
                   "accuracy against ADC bits (adc_bits.csv, accuracy_vs_adc_bits.png).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the sample draw (and of rate-encoding spikes).")
@click.option("--split-seed", type=int, default=None,
              help="Data split seed (default: the checkpoint's).")
@click.option("--dense", is_flag=True, help="Assume every row active (ignore --data).")
@click.option("--mapping", default="im2col", show_default=True,
              help="im2col or kernel_position.")
@click.option("--wbits", type=int, default=None, help="Force weight bits of every layer.")
@click.option("--ubits", type=int, default=None, help="Force membrane bits of every neuron.")
@click.option("--adc-bits", type=int, default=None, help="Override the spec's ADC bits.")
@click.option("--dt", "dt_s", type=float, default=None,
              help="NIR only: time step in seconds (beta = 1 - dt/tau).")
@click.option("--reset", default=None, help="NIR only: subtract or zero (default zero).")
@click.option("--T", "T", type=int, default=None, help="NIR only: time steps per inference.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Report directory (created).")
@click.option("--recompute-static-input", is_flag=True,
              help="Read a static input (the image under direct encoding) on the crossbars at "
                   "every step; default: once per inference.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of a table.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
# --- closed loop (codesign.loop) ---
@click.option("--retrain", is_flag=True,
              help="If the hardware accuracy (mean over chips) is more than --tolerance points "
                   "below the teacher's (or --target), retrain the student through the hardware "
                   "with distillation; writes retrained.pt, rounds.jsonl, before_after.csv, "
                   "retrain_rounds.png and loop.json into --out.")
@click.option("--tolerance", type=float, default=1.0, show_default=True,
              help="--retrain: points below the reference still counted as recovered (>= 0).")
@click.option("--teacher", type=click.Path(path_type=Path), default=None,
              help="--retrain: teacher checkpoint (default: the one recorded in MODEL's meta).")
@click.option("--budget-epochs", type=int, default=None,
              help="--retrain: at most N epochs (one per round; default 2).")
@click.option("--budget-min", type=float, default=None,
              help="--retrain: at most M minutes of wall time (instead of --budget-epochs).")
@click.option("--target", type=float, default=None,
              help="--retrain: reference accuracy in percent instead of the teacher's.")
@click.option("--retrain-distill", default="logit,md", show_default=True,
              help="--retrain: distillation methods (logit, md, temporal) or ce (no teacher "
                   "term).")
@click.option("--ir-refresh", "ir_refresh", type=int, default=None,
              help="--retrain: the exact IR-drop transfer on every K-th training chip, its "
                   "per-cell attenuation on the chips between (default 1: every chip exact; "
                   "selection and held-out chips are always exact).")
def map_cmd(model: Path, hw: str, data_name: Optional[str], samples: Optional[int],
            chips: Optional[int], nonideal: str, ablate: bool, seed: int,
            split_seed: Optional[int], dense: bool, mapping: str, wbits: Optional[int],
            ubits: Optional[int], adc_bits: Optional[int], dt_s: Optional[float],
            reset: Optional[str], T: Optional[int], out: Path, recompute_static_input: bool,
            as_json: bool, quiet: bool, retrain: bool = False, tolerance: float = 1.0,
            teacher: Optional[Path] = None, budget_epochs: Optional[int] = None,
            budget_min: Optional[float] = None, target: Optional[float] = None,
            retrain_distill: str = "logit,md", ir_refresh: Optional[int] = None) -> None:
    """Map MODEL (checkpoint .pt, workload .yaml or .nir) onto --hw and cost it."""
    from codesign.mapflow import map_model
    from codesign.report import write_report

    bits_option(wbits, "wbits")
    bits_option(ubits, "ubits")
    bits_option(adc_bits, "adc-bits")
    if samples is not None and samples < 1:
        raise CodesignError(f"--samples {samples}: expected a positive integer")
    hardware = _hardware_options(chips, nonideal, ablate, samples, data_name, quiet)
    loop = _retrain_setup(retrain, model, hw, data_name, split_seed, teacher, tolerance,
                          budget_epochs, budget_min, target, retrain_distill, chips, nonideal,
                          adc_bits, seed, samples, ir_refresh)
    act_samples = 64 if samples is None else samples
    if seed < 0:
        raise CodesignError(f"--seed {seed}: expected a non-negative integer")
    check_out_dir(out, REPORT_FILES)
    measured = not dense and data_name is not None
    # nothing on stderr before the inputs are validated: bad input gets exactly one line
    with Reporter(f"{model.name}: activity on {data_name} test samples", act_samples,
                  enabled=not quiet and measured) as bar:
        result = map_model(model, hw, data=data_name, samples=act_samples, seed=seed,
                           split_seed=split_seed, dense=dense, mapping=mapping, wbits=wbits,
                           ubits=ubits, adc_bits=adc_bits, dt_s=dt_s, reset=reset, T=T,
                           progress=bar.update,
                           static_input_once=not recompute_static_input,
                           hardware=hardware)
        secs = (result.summary.get("inputs") or {}).get("activity_seconds")
        if secs is not None:
            how = ("recorded from" if result.summary["inputs"].get("activity") == "simulated"
                   else "measured on")
            bar.log(f"codesign map: activity {how} {activity_text(result.summary)} "
                    f"in {secs:.1f} s")
    extra = None
    if "accuracy" in result.summary:
        from codesign.sim.report import SIM_FILES, sim_file_writers

        extra = sim_file_writers(result.summary["accuracy"])
    paths = write_report(result, out, extra=extra,
                         names=SIM_FILES if extra is not None else None)
    if as_json:
        click.echo(Path(paths["summary.json"]).read_text(encoding="utf-8"), nl=False)
    else:
        print_table(result)
    if loop is not None:
        from codesign.loop import run, table_text

        res = run(loop[0], out, loop[1],
                  log=None if quiet else (lambda m: click.echo(m, err=True)))
        paths.update({n: str(Path(out) / n) for n in ("rounds.jsonl", "retrained.pt",
                                                      "loop.json", "before_after.csv",
                                                      "retrain_rounds.png")})
        click.echo(table_text(res), err=as_json)
    if not quiet:
        click.echo(f"codesign map: {model} on {hw} ({activity_text(result.summary)}): wrote "
                   f"{', '.join(sorted(paths))} to {out}", err=True)


def _retrain_setup(retrain: bool, model: Path, hw: str, data_name: Optional[str],
                   split_seed: Optional[int], teacher: Optional[Path], tolerance: float,
                   budget_epochs: Optional[int], budget_min: Optional[float],
                   target: Optional[float], methods: str, chips: Optional[int], nonideal: str,
                   adc_bits: Optional[int], seed: int, samples: Optional[int],
                   ir_refresh: Optional[int] = None) -> Any:
    """``(LoopSetup, LoopConfig)`` of ``--retrain``, validated before any work; ``None``
    without ``--retrain`` (whose options are then refused)."""
    if not retrain:
        opts = (("--teacher", teacher), ("--budget-epochs", budget_epochs),
                ("--budget-min", budget_min), ("--target", target),
                ("--ir-refresh", ir_refresh))
        given = [f for f, v in opts if v is not None]
        if given:
            raise CodesignError(f"{', '.join(given)}: only used with --retrain")
        return None
    from codesign.loop import LoopConfig, prepare

    cfg = LoopConfig(tolerance=tolerance, target=target, budget_epochs=budget_epochs,
                     budget_min=budget_min, methods=methods, chips=chips or 3,
                     eval_chips=chips or 3, nonideal=nonideal, adc_bits=adc_bits, seed=seed,
                     test_samples=samples, ir_refresh=1 if ir_refresh is None else ir_refresh)
    return prepare(model, hw, data_name, cfg, teacher=teacher, split_seed=split_seed), cfg


def _hardware_options(chips: Optional[int], nonideal: str, ablate: bool,
                      samples: Optional[int], data_name: Optional[str], quiet: bool
                      ) -> Optional[dict[str, Any]]:
    """Validated options of the hardware-accuracy simulation (``None``: not asked for)."""
    from codesign.hw.nonideal import NAMES
    from codesign.sim.accuracy import check_chips

    if chips is None:
        if ablate:
            raise CodesignError("--ablate: needs --chips N (the chips each ablation runs on)")
        return None
    check_chips(chips)
    if nonideal not in ("none", "all"):
        for name in (n.strip() for n in nonideal.split(",")):
            if name not in NAMES:
                raise CodesignError(f"--nonideal: unknown non-ideality {name!r}; expected none, "
                                    f"all or a comma-separated list of {', '.join(NAMES)}")
    if data_name is None:
        raise CodesignError("--chips: needs --data (the accuracy is measured on its test split)")

    def progress(what: str) -> None:
        if not quiet:
            click.echo(f"codesign map: hardware simulation: {what} done", err=True)

    return {"chips": chips, "nonideal": nonideal, "ablate": ablate, "samples": samples,
            "progress": progress}


def accuracy_text(summary: dict) -> Optional[str]:
    """One line on the simulated accuracy, or ``None``."""
    acc = summary.get("accuracy")
    if not acc:
        return None
    hw = acc["hardware"]
    lo, hi = hw["ci95"]
    return (f"accuracy: ideal quantized {acc['ideal_quantized']:.2f} %, hardware "
            f"{hw['mean']:.2f} % (95 % interval {lo:.2f}-{hi:.2f}, {hw['chips']} chips, "
            f"{acc['samples']} test samples, non-idealities: {', '.join(acc['nonideal']) or 'none'}"
            f", {acc['adc_bits']}-bit ADC, lossless from {acc['lossless_adc_bits']})")


def energy_drift_text(summary: dict) -> Optional[str]:
    """Simulated against ideal activity: energy and per-layer firing-rate drift, or ``None``."""
    e_ideal = summary.get("energy_ideal_activity_pj")
    if e_ideal is None:
        return None
    change = summary.get("energy_change")
    pct = f" ({100 * change:+.2f} %)" if change is not None else ""
    rows = (summary.get("accuracy") or {}).get("firing_rate") or []
    drift = ", ".join(f"{r['layer']} {r['drift']:+.4f} (x{r['ratio']:.3f})" for r in rows
                      if r.get("drift") is not None and r.get("ratio") is not None)
    return (f"energy from the simulated chips' activity {_fmt(summary['energy_pj'], 1e-6)} uJ, "
            f"from the ideal quantized network's on the same samples "
            f"{_fmt(e_ideal, 1e-6)} uJ{pct}; firing-rate drift (hardware - ideal, same samples; "
            f"firing_rate_drift.csv): {drift or '-'}")


def activity_text(summary: dict) -> str:
    """``64 mnist5k test samples (seed 0)`` or ``no data: dense, every row active``."""
    inp = summary.get("inputs") or {}
    if inp.get("activity") == "simulated":
        return (f"the simulated chips' spikes on {inp.get('samples')} of "
                f"{inp.get('activity_rows_seen')} (sample, chip) runs of {inp.get('data')} "
                f"test samples (reservoir seed {inp.get('seed')})")
    if inp.get("activity") != "measured":
        return "no data: dense, every row active at every step"
    return (f"{inp.get('samples')} {inp.get('data')} {inp.get('split') or ''} samples "
            f"(seed {inp.get('seed')})").replace("  ", " ")


def _fmt(v: Any, scale: float = 1.0, digits: int = 4) -> str:
    try:
        x = float(v) * scale
    except (TypeError, ValueError):
        return "-"
    if x != x:  # NaN
        return "-"
    return f"{x:.{digits}g}"


def print_table(result: Any) -> None:
    """Per-layer energy (uJ), latency (us), area (mm2) and totals, as a rich table on stdout
    (the units of the report's figures)."""
    from rich.console import Console
    from rich.table import Table

    s = result.summary
    df = result.layers
    table = Table(title=f"{s.get('graph')} on {s.get('spec_name')} ({s.get('mode')}, "
                        f"{s.get('mapping')}, T={s.get('T')})")
    for col, just in (("layer", "left"), ("op", "left"), ("crossbars", "right"),
                      ("util", "right"), ("energy uJ", "right"), ("latency us", "right"),
                      ("area mm2", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for _, r in df.iterrows():
        table.add_row(str(r["layer"]), str(r["op"]), _fmt(r.get("crossbars"), digits=6),
                      _fmt(r.get("utilisation"), digits=3), _fmt(r["energy_pj"], 1e-6),
                      _fmt(r["latency_ns"], 1e-3), _fmt(r["area_um2"], 1e-6))
    table.add_section()
    table.add_row("total", "", _fmt(s.get("crossbars"), digits=6), _fmt(s.get("utilisation"),
                  digits=3), _fmt(s["energy_pj"], 1e-6), _fmt(s["latency_ns"], 1e-3),
                  _fmt(s["area_mm2"]))
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120)
    console.print(table)
    console.print(f"activity: {activity_text(s)}", highlight=False, markup=False)
    if accuracy_text(s):
        console.print(accuracy_text(s), highlight=False, markup=False)
    if energy_drift_text(s):
        console.print(energy_drift_text(s), highlight=False, markup=False)
    console.print(f"EDAP {_fmt(s.get('edap_pj_ns_mm2'))} {s.get('edap_unit', '')}, "
                  f"{_fmt(s.get('tops_per_w'))} TOPS/W, {_fmt(s.get('tops_per_mm2'))} TOPS/mm2; "
                  "total latency is pipelined, not the sum of the rows", highlight=False)
    console.print(f"op convention: {s.get('op_convention')}", highlight=False, markup=False)
    for note in s.get("notes") or []:
        console.print(f"note: {note}", highlight=False, markup=False)
