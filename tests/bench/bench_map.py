"""Benchmark: map + cost VGG16 (CIFAR-10) on every hardware preset; writes a markdown table.

Not a test. Run from the repository root::

    .venv/bin/python tests/bench/bench_map.py [--repeats 7] [--batch 16] [--out FILE.md]

Times :func:`codesign.hw.map_network` in dense mode (median over ``--repeats``) for each preset
and mapping, and once per preset in activity mode on random spikes (15 % rate, ``--batch``
samples, the workload's T; analog first-layer input). The graph comes from
``models/workloads/vgg16_cifar10.yaml`` when the workload loader is there, else it is built
here from the schema (13 conv + FC 512->10, W4/U4, T=4).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import networkx as nx
import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, ROOT)

from timing import median_seconds  # noqa: E402

from codesign.graph.schema import (  # noqa: E402
    ConvLayer,
    FlattenLayer,
    InputLayer,
    LIFLayer,
    LinearLayer,
    OutputLayer,
    PoolLayer,
)
from codesign.hw import load_spec, map_network, preset_path  # noqa: E402

PRESETS = ("spikesim_rram_65nm", "rram_physical_32nm", "sram_neurosim_22nm")
CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16_schema(T: int = 4) -> nx.DiGraph:
    """VGG16 for 32x32 inputs built directly from the schema dataclasses."""
    g = nx.DiGraph(T=T, dt_s=None, name="vgg16-cifar10", input_shape=(3, 32, 32),
                   encoding="direct", source="bench")
    g.add_node("input", layer=InputLayer(shape=(3, 32, 32)))
    prev, (c, h, w) = "input", (3, 32, 32)
    i = 0
    for v in CFG:
        if v == "M":
            name = f"pool{i}"
            g.add_node(name, layer=PoolLayer(in_shape=(c, h, w), out_shape=(c, h // 2, w // 2),
                                             kind="max", kernel_size=(2, 2), stride=(2, 2)))
            h, w = h // 2, w // 2
        else:
            i += 1
            name = f"conv{i}"
            g.add_node(name, layer=ConvLayer(in_shape=(c, h, w), out_shape=(v, h, w),
                                             in_channels=c, out_channels=v, kernel_size=(3, 3),
                                             padding=(1, 1), wbits=4))
            g.add_edge(prev, name)
            prev, c = name, v
            name = f"{prev}.lif"
            g.add_node(name, layer=LIFLayer(shape=(c, h, w), beta=0.5, ubits=4))
        g.add_edge(prev, name)
        prev = name
    g.add_node("flat", layer=FlattenLayer(in_shape=(c, h, w)))
    g.add_edge(prev, "flat")
    g.add_node("fc1", layer=LinearLayer(in_features=c * h * w, out_features=10, wbits=4))
    g.add_edge("flat", "fc1")
    g.add_node("output", layer=OutputLayer(shape=(10,)))
    g.add_edge("fc1", "output")
    return g


def load_vgg16() -> tuple[nx.DiGraph, str]:
    path = os.path.join(ROOT, "models", "workloads", "vgg16_cifar10.yaml")
    try:
        from codesign.graph.workload import load_workload
    except ImportError:
        return vgg16_schema(), "built from the schema in bench_map.py"
    if not os.path.isfile(path):
        return vgg16_schema(), "built from the schema in bench_map.py"
    return load_workload(path), os.path.relpath(path, ROOT)


def random_activity(g: nx.DiGraph, batch: int, rate: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    T = int(g.graph["T"])
    act = {}
    for n in g.nodes:
        lay = g.nodes[n]["layer"]
        if lay.op in ("conv", "linear"):
            shape = (T, batch, *lay.in_shape)
            preds = list(g.predecessors(n))
            if preds and g.nodes[preds[0]]["layer"].op == "input":
                act[n] = rng.random(shape).astype(np.float32)          # analog image
            else:
                act[n] = (rng.random(shape) < rate).astype(np.float32)
        elif lay.op == "lif":
            act[n] = (rng.random((T, batch, *lay.shape)) < rate).astype(np.float32)
    return act


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rate", type=float, default=0.15)
    ap.add_argument("--out", default=os.path.join(ROOT, "reports", "bench", "map.md"))
    args = ap.parse_args(argv)

    g, origin = load_vgg16()
    act = random_activity(g, args.batch, args.rate)
    rows = []
    for name in PRESETS:
        spec = load_spec(preset_path(name))
        runs = [("dense", m, None, args.repeats) for m in ("im2col", "kernel_position")]
        if spec.compat == "spikesim":
            runs = [("dense", "kernel_position", None, args.repeats)]
        runs.append(("activity", runs[0][1], act, max(1, args.repeats // 2)))
        for mode, mapping, a, reps in runs:
            sec, res = median_seconds(lambda s=spec, m=mapping, a=a: map_network(
                g, s, activity=a, mapping=m), reps)
            ms = 1e3 * sec
            su = res.summary  # type: ignore[attr-defined]
            rows.append((name, su["compat"], mode, su["mapping"], reps, ms, su["energy_pj"],
                         su["latency_ns"], su["area_mm2"], su["tops_per_w"], su["crossbars"]))
            print(f"{name:22s} {mode:8s} {su['mapping']:15s} {ms:8.1f} ms", file=sys.stderr)

    lines = [
        "# Benchmark: map + cost VGG16 (CIFAR-10)",
        "",
        f"Graph: {origin} (T = {g.graph['T']}). Command: "
        "`.venv/bin/python tests/bench/bench_map.py`.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}; load average at the "
        f"end {os.getloadavg()[0]:.1f} (shared machine: timings are noisy).",
        f"Activity mode: random spikes at {args.rate:.0%}, batch {args.batch}, analog first "
        "layer. Energies per inference.",
        "",
        "| preset | compat | mode | mapping | repeats | median ms | energy uJ | latency us "
        "| area mm2 | TOPS/W | crossbars |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.1f} | "
                     f"{r[6] * 1e-6:.3f} | {r[7] * 1e-3:.1f} | {r[8]:.2f} | {r[9]:.1f} | "
                     f"{r[10]} |")
    lines.append("")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
