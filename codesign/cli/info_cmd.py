"""``codesign info``: what a checkpoint holds."""

from __future__ import annotations

import json
from pathlib import Path

import click

from codesign.snn.checkpoint import load_checkpoint


def describe(path: Path) -> dict:
    """Spec summary, parameter count, bit-widths and recorded accuracy of a checkpoint."""
    model, meta = load_checkpoint(path)  # meta types checked by snn.checkpoint.validate_blob
    spec = model.spec
    layers = [{"name": n, "kind": s.kind, "wbits": s.wbits,
               "shape": list(s.op.weight.shape)} for n, s in model.synapses()]
    return {
        "file": str(path), "name": spec.get("name"), "arch": spec["arch"], "T": spec["T"],
        "encoding": spec["encoding"], "neuron": spec["neuron"], "quant": spec["quant"],
        "parameters": model.n_params(), "layers": layers,
        "dataset": meta.get("dataset"), "split_seed": meta.get("split_seed"),
        "test_accuracy": meta.get("test_accuracy"), "command": meta.get("command"),
        "codesign_version": meta.get("codesign_version"),
    }


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(model: Path, as_json: bool) -> None:
    """Print spec, parameter count, bit-widths and recorded accuracy of MODEL."""
    d = describe(model)
    if as_json:
        click.echo(json.dumps(d, indent=2, default=str))
        return
    acc = d["test_accuracy"]
    click.echo(f"{d['file']}: {d['name']} ({d['arch']}), T={d['T']}, encoding {d['encoding']}")
    click.echo(f"  parameters   {d['parameters']:,}")
    q = d["quant"]
    click.echo(f"  bits         weights {q['wbits'] or 'float'}, membrane {q['ubits'] or 'float'}, "
               f"first {q['first_bits'] or ('8' if q['wbits'] else 'float')}, "
               f"last {q['last_bits'] or ('8' if q['wbits'] else 'float')}")
    n = d["neuron"]
    click.echo(f"  neuron       beta {n['beta']}, theta {n['theta']}, reset {n['reset']}, "
               f"surrogate {n['surrogate']}({n['alpha']})")
    for layer in d["layers"]:
        click.echo(f"  {layer['name']:<14}{layer['kind']:<8}{str(layer['shape']):<20}"
                   f"w{layer['wbits'] or 'f'}")
    if acc is not None:
        click.echo(f"  test accuracy {100 * acc:.2f} % on {d['dataset']} "
                   f"(split seed {d['split_seed']})")
    if d["command"]:
        click.echo(f"  trained with  {d['command']}")
