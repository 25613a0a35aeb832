"""``codesign train``: train or quantization-aware fine-tune a spiking network."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import click

from codesign.cli.options import common_train_options, positive, quant_overrides
from codesign.data import load_dataset
from codesign.snn.checkpoint import save_checkpoint
from codesign.train.loop import TrainConfig, fit
from codesign.train.recipe import prepare_model


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
def train(model: Optional[str], data_name: str, T: Optional[int], wbits, ubits, first_bits,
          last_bits, per_channel, epochs: int, batch_size: int, lr: float, optimizer: str,
          weight_decay: float, loss: str, encoding: Optional[str], leak, threshold, reset,
          surrogate, init: Optional[Path], seed: int, split_seed: int, device: str, out: Path,
          quiet: bool) -> None:
    """Train MODEL on DATA and save the best-validation checkpoint to OUT."""
    positive(T, "T")
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                      weight_decay=weight_decay, seed=seed, device=device, loss=loss)
    cfg.validate()
    data = load_dataset(data_name, split_seed=split_seed, T=T or 4)
    neuron = {k: v for k, v in {"beta": leak, "theta": threshold, "reset": reset,
                                "surrogate": surrogate}.items() if v is not None}
    net = prepare_model(model, data, init=init, T=T, encoding=encoding,
                        neuron=neuron or None,
                        **quant_overrides(wbits, ubits, first_bits, last_bits, per_channel))
    result = fit(net, data.x_train, data.y_train, data.x_test, data.y_test, cfg,
                 progress=not quiet, label=f"train {net.spec.get('name', 'model')}")
    meta = {
        "dataset": data.name, "data_meta": data.meta, "split_seed": split_seed,
        "test_accuracy": result.test_accuracy, "val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch, "train_config": result.config,
        "history": result.history, "train_seconds": round(result.seconds, 1),
        "init": str(init) if init else None,
        "command": "codesign " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    }
    save_checkpoint(out, net, meta)
    click.echo(f"{out}: test accuracy {100 * result.test_accuracy:.2f} % "
               f"(best validation epoch {result.best_epoch}, {result.seconds:.0f} s)")
