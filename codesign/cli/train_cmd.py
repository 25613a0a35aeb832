"""``codesign train``: train or quantization-aware fine-tune a spiking network.

With ``--teacher`` the network is distilled from a trained checkpoint (``--distill`` methods
logit, md, temporal; see :mod:`codesign.train.distill`); ``--assistant-model`` first distils an
intermediate network from the teacher (saved beside ``--out`` as ``<stem>.assistant.pt``) and
then the student from it, ``--assistant PATH`` uses an already trained assistant.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Optional

import click

from codesign.cli.options import common_train_options, positive, quant_overrides
from codesign.data import DataSplit, load_dataset
from codesign.errors import CodesignError
from codesign.snn.checkpoint import load_checkpoint, save_checkpoint
from codesign.snn.model import SpikingNet
from codesign.train.distill import check_compatible, distill, multi_stage_distill, parse_methods
from codesign.train.loop import TrainConfig, TrainResult, fit
from codesign.train.recipe import prepare_model

DISTILL_DEFAULTS = {"alpha": 0.5, "beta": 1.0, "gamma": 0.5, "tau": 4.0}


@click.command()
@click.option("--model", default=None, help="Preset (vgg-small, vgg-mid, vgg-tiny, vgg9, "
              "resnet-small) or a spec .yaml.")
@click.option("--data", "data_name", default="mnist5k", show_default=True,
              help="mnist5k, digits, nmnist5k or npz:PATH.")
@common_train_options
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--optimizer", default="adam", show_default=True, help="adam or sgd.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--loss", default="mean", show_default=True,
              help="mean (CE on mean logits) or per_step (mean of per-step CE).")
@click.option("--encoding", default=None, help="direct or rate (static data).")
@click.option("--leak", type=float, default=None, help="Neuron leak beta in [0, 1] (1 = IF).")
@click.option("--threshold", type=float, default=None, help="Firing threshold theta > 0.")
@click.option("--reset", default=None, help="subtract or zero.")
@click.option("--surrogate", default=None, help="atan, sigmoid, triangle or rectangle.")
@click.option("--init", type=click.Path(path_type=Path), default=None,
              help="Start from this checkpoint (quantization-aware fine-tuning).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--split-seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Checkpoint to write (.pt).")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@click.option("--teacher", type=click.Path(path_type=Path), default=None,
              help="Distil from this trained checkpoint (same data, inputs and classes).")
@click.option("--distill", "methods", default=None,
              help="Comma-separated methods: logit, md, temporal (default logit).")
@click.option("--alpha", type=float, default=None, help="Logit KD weight (default 0.5).")
@click.option("--beta", type=float, default=None,
              help="Membrane distillation weight (default 1.0); the neuron leak is --leak.")
@click.option("--gamma", type=float, default=None,
              help="Temporal self-distillation weight (default 0.5).")
@click.option("--tau", type=float, default=None, help="KD temperature > 0 (default 4).")
@click.option("--md-layers", default=None,
              help="Comma-separated LIF layers for md (default: all shared ones).")
@click.option("--md-distance", default=None, help="mse (default) or smooth_l1.")
@click.option("--assistant", type=click.Path(path_type=Path), default=None,
              help="Multi-stage: an already trained assistant checkpoint to distil from.")
@click.option("--assistant-model", default=None,
              help="Multi-stage: train this assistant (preset/spec) from --teacher first.")
def train(model: Optional[str], data_name: str, T: Optional[int], wbits, ubits, first_bits,
          last_bits, per_channel, epochs: int, batch_size: int, lr: float, optimizer: str,
          weight_decay: float, loss: str, encoding: Optional[str], leak, threshold, reset,
          surrogate, init: Optional[Path], seed: int, split_seed: int, device: str, out: Path,
          quiet: bool, teacher: Optional[Path], methods: Optional[str], alpha, beta, gamma, tau,
          md_layers: Optional[str], md_distance: Optional[str], assistant: Optional[Path],
          assistant_model: Optional[str]) -> None:
    """Train MODEL on DATA and save the best-validation checkpoint to OUT."""
    positive(T, "T")
    distill_kw = distill_options(teacher, methods, loss, alpha=alpha, beta=beta, gamma=gamma,
                                 tau=tau, md_layers=md_layers, md_distance=md_distance,
                                 assistant=assistant, assistant_model=assistant_model)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                      weight_decay=weight_decay, seed=seed, device=device, loss=loss)
    cfg.validate()
    data = load_dataset(data_name, split_seed=split_seed, T=T or 4)
    neuron = {k: v for k, v in {"beta": leak, "theta": threshold, "reset": reset,
                                "surrogate": surrogate}.items() if v is not None}
    net = prepare_model(model, data, init=init, T=T, encoding=encoding,
                        neuron=neuron or None,
                        **quant_overrides(wbits, ubits, first_bits, last_bits, per_channel))
    distill_meta = None
    if teacher is None:
        result = fit(net, data.x_train, data.y_train, data.x_test, data.y_test, cfg,
                     progress=not quiet, label=f"train {net.spec.get('name', 'model')}")
    else:
        assert distill_kw is not None
        result, distill_meta = run_distillation(
            net, data, cfg, teacher, distill_kw, split_seed=split_seed, quiet=quiet, out=out,
            assistant=assistant, assistant_model=assistant_model,
            assistant_overrides={"T": T, "encoding": encoding, "neuron": neuron or None})
    meta = {
        "dataset": data.name, "data_meta": data.meta, "split_seed": split_seed,
        "test_accuracy": result.test_accuracy, "val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch, "train_config": result.config,
        "history": result.history, "train_seconds": round(result.seconds, 1),
        "init": str(init) if init else None, "distillation": distill_meta,
        "command": "codesign " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    }
    save_checkpoint(out, net, meta)
    click.echo(f"{out}: test accuracy {100 * result.test_accuracy:.2f} % "
               f"(best validation epoch {result.best_epoch}, {result.seconds:.0f} s)")


def distill_options(teacher: Optional[Path], methods: Optional[str], loss: str, *,
                    assistant: Optional[Path], assistant_model: Optional[str],
                    **given: Any) -> Optional[dict[str, Any]]:
    """Validated keyword arguments of ``make_distill_loss``, or None without ``--teacher``."""
    if teacher is None:
        used = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        used += ["--distill"] if methods is not None else []
        used += ["--assistant"] if assistant is not None else []
        used += ["--assistant-model"] if assistant_model is not None else []
        if used:
            raise CodesignError(f"{', '.join(used)} need --teacher PATH")
        return None
    if assistant is not None and assistant_model is not None:
        raise CodesignError("give --assistant PATH or --assistant-model NAME, not both")
    kw: dict[str, Any] = {"methods": parse_methods(methods or "logit")}
    for key, default in DISTILL_DEFAULTS.items():
        kw[key] = default if given[key] is None else given[key]
    if given["md_layers"] is not None:
        kw["md_layers"] = [n.strip() for n in given["md_layers"].split(",") if n.strip()]
    if given["md_distance"] is not None:
        kw["md_distance"] = given["md_distance"]
    if "temporal" not in kw["methods"]:
        kw["ce_mode"] = loss  # temporal always uses per-step CE (TWCE)
    return kw


def _load_teacher(path: Path, data: DataSplit, split_seed: int, what: str
                  ) -> tuple[SpikingNet, dict]:
    """Load a teacher/assistant checkpoint; refuse one trained on other data or another split
    (its soft labels would leak this split's test images)."""
    net, meta = load_checkpoint(path)
    ds, ss = meta.get("dataset"), meta.get("split_seed")
    if ds is not None and ds != data.name:
        raise CodesignError(f"--{what} {path}: trained on {ds}, not on {data.name}")
    if ss is not None and ss != split_seed:
        raise CodesignError(
            f"--{what} {path}: trained with --split-seed {ss}, not {split_seed}; its soft labels "
            "would leak this split's test images"
        )
    return net, meta


def run_distillation(net: SpikingNet, data: DataSplit, cfg: TrainConfig, teacher: Path,
                     kw: dict[str, Any], *, split_seed: int, quiet: bool, out: Path,
                     assistant: Optional[Path], assistant_model: Optional[str],
                     assistant_overrides: dict[str, Any]) -> tuple[TrainResult, dict]:
    """Distil ``net`` from ``teacher`` (directly or through an assistant); returns the result
    and the metadata block recorded in the checkpoint."""
    t_net, t_meta = _load_teacher(teacher, data, split_seed, "teacher")
    check_compatible(t_net, net)
    meta: dict[str, Any] = {"teacher": str(teacher), "teacher_model": t_net.spec.get("name"),
                            "teacher_test_accuracy": t_meta.get("test_accuracy")}
    xs = (data.x_train, data.y_train, data.x_test, data.y_test)
    if assistant_model is not None:
        a_net = prepare_model(assistant_model, data, **assistant_overrides)
        check_compatible(t_net, a_net)
        res = multi_stage_distill(t_net, a_net, net, *xs, cfg, progress=not quiet, **kw)
        a_path = out.with_name(out.stem + ".assistant.pt")
        save_checkpoint(a_path, a_net, {
            "dataset": data.name, "split_seed": split_seed,
            "test_accuracy": res.assistant.test_accuracy,
            "val_accuracy": res.assistant.best_val_accuracy, "train_config": res.assistant.config,
            "distillation": {**meta, **res.assistant_settings}})
        meta.update(res.student_settings)
        meta["assistant"] = {"path": str(a_path), "model": a_net.spec.get("name"),
                             "test_accuracy": res.assistant.test_accuracy, "trained": True}
        return res.student, meta
    source = t_net
    if assistant is not None:
        source, a_meta = _load_teacher(assistant, data, split_seed, "assistant")
        check_compatible(t_net, source, "assistant")
        meta["assistant"] = {"path": str(assistant), "model": source.spec.get("name"),
                             "test_accuracy": a_meta.get("test_accuracy"), "trained": False}
    result, loss_fn = distill(source, net, *xs, cfg, progress=not quiet,
                              label=f"distill {net.spec.get('name', 'model')}", **kw)
    meta.update(loss_fn.settings.to_dict())
    return result, meta
