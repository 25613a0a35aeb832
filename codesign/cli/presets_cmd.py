"""``codesign presets``: the hardware presets shipped in ``hw_configs/``, one line each."""

from __future__ import annotations

import json
import os

import click

from codesign.errors import CodesignError


def list_presets() -> list[dict]:
    """Name, technology node (nm), device, crossbar size, bits per cell, ADC bits and the
    description of every preset in :func:`codesign.hw.spec.preset_dir`, each validated by
    loading it."""
    from codesign.hw.spec import load_spec, preset_dir

    folder = preset_dir()
    if not os.path.isdir(folder):
        raise CodesignError(f"{folder}: hardware preset folder not found")
    rows = []
    for fname in sorted(f for f in os.listdir(folder) if f.endswith((".yaml", ".yml"))):
        spec = load_spec(os.path.join(folder, fname))
        rows.append({
            "preset": os.path.splitext(fname)[0], "name": spec.name,
            "node_nm": spec.technology.node_nm, "device": spec.device.kind,
            "crossbar": f"{spec.crossbar.rows}x{spec.crossbar.cols}",
            "bits_per_cell": spec.bits_per_cell, "adc_bits": spec.adc.bits,
            "compat": spec.compat, "description": " ".join(spec.description.split()),
            "file": os.path.join(folder, fname),
        })
    return rows


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def presets(as_json: bool) -> None:
    """List the hardware presets (usable by name: --hw NAME)."""
    rows = list_presets()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        node = f"{r['node_nm']:g} nm"
        click.echo(f"{r['preset']:<24} {node:>6}  {r['device']:<5} {r['crossbar']:>9}  "
                   f"{r['bits_per_cell']} b/cell  ADC {r['adc_bits']:>2} b  {r['description']}")
