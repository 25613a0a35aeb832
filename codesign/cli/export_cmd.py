"""``codesign export-nir``: write a checkpoint's network as a NIR file (weights included).

Thin: the lowering is :func:`codesign.graph.from_model.graph_from_checkpoint`, the writer
:func:`codesign.graph.nir_io.write_nir` (the node mapping, and why max pooling becomes a
``SumPool2d`` tagged as max, are in that module's docstring). The file is written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import click

from codesign.errors import CodesignError
from codesign.io import atomic_write_via, check_out_file


@click.command("export-nir")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--dt", "dt_s", type=float, default=None,
              help="Time step in seconds written into the LIF taus (tau = dt / (1 - beta)); "
                   "default: the graph's, else codesign's default 1e-4 s.")
@click.option("--max-pool", default="sum", show_default=True,
              help="sum: write max pooling as a SumPool2d tagged as max (codesign reads it back "
                   "as max, other tools as a sum pool); refuse: fail on max pooling.")
@click.option("--force", is_flag=True, help="Overwrite an existing OUT.")
def export_nir(model: Path, out: Path, dt_s: Optional[float], max_pool: str,
               force: bool) -> None:
    """Export the checkpoint MODEL (.pt) to OUT (.nir, NIR/HDF5)."""
    from codesign.graph.from_model import graph_from_checkpoint
    from codesign.graph.nir_io import write_nir

    if max_pool not in ("sum", "refuse"):
        raise CodesignError(f"--max-pool {max_pool!r}: expected sum or refuse")
    if dt_s is not None and not (dt_s > 0 and math.isfinite(dt_s)):
        raise CodesignError(f"--dt {dt_s}: expected a finite time step > 0 s")
    check_out_file(out, force=force)
    g = graph_from_checkpoint(model)
    atomic_write_via(out, lambda tmp: write_nir(g, tmp, dt_s=dt_s, max_pool=max_pool))
    n_layers = sum(1 for _, d in g.nodes(data=True) if d.get("layer") is not None)
    click.echo(f"{out}: NIR graph {g.graph.get('name', '')!r} with {n_layers} nodes, "
               f"T={g.graph.get('T')} (map it with: codesign map {out} --hw PRESET)")
