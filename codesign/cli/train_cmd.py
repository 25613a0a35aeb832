"""``codesign train``: train or quantization-aware fine-tune a spiking network.

Thin: flags are parsed and checked here (``--out`` before any work), the orchestration is
:func:`codesign.train.recipe.run_recipe`. With ``--teacher`` the network is distilled from a
trained checkpoint (``--distill`` methods logit, md, temporal; see :mod:`codesign.train.distill`);
``--assistant-model`` first distils an intermediate network from the teacher (saved beside
``--out`` as ``<stem>.assistant.pt``) and then the student from it, ``--assistant PATH`` uses
an already trained assistant.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import click

from codesign.cli.options import common_train_options, positive, quant_overrides
from codesign.data import load_dataset
from codesign.errors import CodesignError
from codesign.io import check_out_file, to_json_safe
from codesign.snn.checkpoint import save_checkpoint
from codesign.train.loop import MAX_SEED, TrainConfig
from codesign.train.recipe import distill_plan, run_recipe


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
@click.option("--freeze-bn-after", "freeze_bn_after", type=int, default=None,
              help="QAT: fold BN with batch statistics for this many epochs, then with the "
                   "frozen running ones (one conv per layer; 0: from the start; default: never).")
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
              help="Checkpoint to write (.pt); an existing file is refused unless --force.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out checkpoint.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result record (JSON) on stdout instead of a summary line.")
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
          weight_decay: float, freeze_bn_after: Optional[int], loss: str,
          encoding: Optional[str], leak, threshold, reset,
          surrogate, init: Optional[Path], seed: int, split_seed: int, device: str, out: Path,
          force: bool, as_json: bool, quiet: bool, teacher: Optional[Path],
          methods: Optional[str], alpha, beta, gamma, tau, md_layers: Optional[str],
          md_distance: Optional[str], assistant: Optional[Path],
          assistant_model: Optional[str]) -> None:
    """Train MODEL on DATA and save the best-validation checkpoint to OUT."""
    positive(T, "T")
    if not 0 <= split_seed <= MAX_SEED:
        raise CodesignError(f"--split-seed {split_seed}: expected an integer 0..{MAX_SEED}")
    plan = distill_plan(teacher, methods, loss, alpha=alpha, beta=beta, gamma=gamma, tau=tau,
                        md_layers=md_layers, md_distance=md_distance, assistant=assistant,
                        assistant_model=assistant_model)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                      weight_decay=weight_decay, seed=seed, device=device, loss=loss,
                      freeze_bn_after=freeze_bn_after)
    cfg.validate()
    check_out_file(out, force=force)
    assistant_path = None
    if plan is not None and plan.assistant_model is not None:
        assistant_path = out.with_name(out.stem + ".assistant.pt")
        check_out_file(assistant_path, force=force)
    data = load_dataset(data_name, split_seed=split_seed, T=T or 4)
    neuron = {k: v for k, v in {"beta": leak, "theta": threshold, "reset": reset,
                                "surrogate": surrogate}.items() if v is not None}
    overrides = {"T": T, "encoding": encoding, "neuron": neuron or None,
                 **quant_overrides(wbits, ubits, first_bits, last_bits, per_channel)}
    outcome = run_recipe(model, data, cfg, init=init, overrides=overrides, distill_with=plan,
                         split_seed=split_seed, assistant_path=assistant_path,
                         progress=not quiet)
    meta = {**outcome.meta,
            "command": "codesign " + " ".join(shlex.quote(a) for a in sys.argv[1:])}
    if outcome.assistant is not None and assistant_path is not None:
        save_checkpoint(assistant_path, *outcome.assistant)
    save_checkpoint(out, outcome.net, meta)
    result = outcome.result
    if as_json:
        record = {"checkpoint": str(out), **meta}
        click.echo(json.dumps(to_json_safe(record), indent=2, allow_nan=False))
    else:
        click.echo(f"{out}: test accuracy {100 * result.test_accuracy:.2f} % "
                   f"(best validation epoch {result.best_epoch}, {result.seconds:.0f} s)")

