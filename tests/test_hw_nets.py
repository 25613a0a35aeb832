"""Small graph builders for the hardware tests (schema dataclasses + networkx, no GraphBuilder).

Other ``test_hw_*`` modules import :func:`seq_graph`, :func:`vgg9_spikesim`, :func:`tiny_spec`.
"""

from __future__ import annotations

import copy

import networkx as nx

from codesign.graph.schema import (
    ConvLayer,
    FlattenLayer,
    InputLayer,
    LIFLayer,
    LinearLayer,
    OutputLayer,
    PoolLayer,
)
from codesign.hw.spec import spec_from_dict


def seq_graph(input_shape, layers, *, T=2, encoding="rate", name="net") -> nx.DiGraph:
    """A chain graph. ``layers``: tuples ``("conv", name, cout, k, stride, pad[, wbits])``,
    ``("lif", name[, ubits])``, ``("pool", name, k)``, ``("flatten", name)``,
    ``("linear", name, out[, wbits])``."""
    g = nx.DiGraph(T=T, dt_s=1e-3, name=name, input_shape=tuple(input_shape), encoding=encoding,
                   source="test")
    g.add_node("input", layer=InputLayer(shape=tuple(input_shape)))
    prev, shape = "input", tuple(input_shape)
    for spec in layers:
        kind, n = spec[0], spec[1]
        if kind == "conv":
            cout, k, s, p = spec[2:6]
            wb = spec[6] if len(spec) > 6 else None
            c, h, w = shape
            ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            lay = ConvLayer(in_shape=shape, out_shape=(cout, ho, wo), in_channels=c,
                            out_channels=cout, kernel_size=(k, k), stride=(s, s),
                            padding=(p, p), wbits=wb)
        elif kind == "lif":
            lay = LIFLayer(shape=shape, beta=0.9, ubits=spec[2] if len(spec) > 2 else None)
        elif kind == "pool":
            k = spec[2]
            c, h, w = shape
            lay = PoolLayer(in_shape=shape, out_shape=(c, h // k, w // k), kind="max",
                            kernel_size=(k, k), stride=(k, k))
        elif kind == "flatten":
            lay = FlattenLayer(in_shape=shape)
        elif kind == "linear":
            lay = LinearLayer(in_features=shape[0], out_features=spec[2],
                              wbits=spec[3] if len(spec) > 3 else None)
        else:
            raise ValueError(kind)
        g.add_node(n, layer=lay)
        g.add_edge(prev, n)
        prev, shape = n, tuple(lay.out_shape)
    g.add_node("output", layer=OutputLayer(shape=shape))
    g.add_edge(prev, "output")
    return g


def vgg9_spikesim(T: int = 5) -> nx.DiGraph:
    """SpikeSim's VGG9/CIFAR-10 conv stack (pooling after conv2, conv4, conv7) + 2 FC layers."""
    chans = [64, 64, "P", 128, 128, "P", 256, 256, 256, "P"]
    layers, i = [], 0
    for c in chans:
        if c == "P":
            layers.append(("pool", f"pool{i}", 2))
        else:
            i += 1
            layers += [("conv", f"conv{i}", c, 3, 1, 1), ("lif", f"lif{i}")]
    layers += [("flatten", "flat"), ("linear", "fc1", 1024), ("lif", "lif_fc1"),
               ("linear", "fc2", 10)]
    return seq_graph((3, 32, 32), layers, T=T, encoding="direct", name="vgg9")


def q(v, unit, src="test"):
    return {"value": v, "unit": unit, "source": src}


TINY = {
    "name": "tiny",
    "technology": {"node": q(45, "nm")},
    "device": {"type": "rram", "g_on": q(100, "uS"), "g_off": q(10, "uS"), "levels": 2,
               "v_read": q(0.1, "V"), "t_read": q(10, "ns"), "cell_area": q(0.01, "um2")},
    "crossbar": {"rows": 4, "cols": 4, "signed": "offset", "energy_model": "lumped",
                 "read_energy": q(4.0, "pJ"), "area": q(100, "um2"), "gate_zero_reads": True},
    "adc": {"type": "sar", "bits": 4, "mux": 2, "energy": q(1.0, "pJ"), "area": q(10, "um2"),
            "latency": q(1, "ns")},
    "mux": {"energy": q(0.0, "pJ"), "area": q(0.0, "um2")},
    "input": {"first_layer": "bit_serial", "bits": 4},
    "digital": {
        "shift_add": {"width": 8, "energy": q(0.5, "pJ"), "area": q(1, "um2")},
        "accumulator": {"width": 8, "energy": q(0.25, "pJ"), "area": q(1, "um2")},
    },
    "membrane": {"memory": "sram", "read_energy": q(0.1, "pJ/bit"),
                 "write_energy": q(0.1, "pJ/bit"), "area": q(1, "um2/bit")},
    "neuron": {"energy": q(2.0, "pJ"), "area": q(5, "um2"), "ref_bits": 8, "units_per_tile": 1},
    "buffers": {
        "tile": {"size": q(1, "KB"), "access_bits": 8, "energy": q(0.0, "pJ"),
                 "area": q(0, "um2")},
        "pe": {"size": q(1, "KB"), "access_bits": 8, "energy": q(0.0, "pJ"), "area": q(0, "um2")},
    },
    "interconnect": {"type": "htree", "flit_bits": 8, "energy": q(0.0, "pJ"),
                     "area": q(0, "um2")},
    "clock": {"frequency": q(1, "GHz")},
    "hierarchy": {"pes_per_tile": 2, "crossbars_per_pe": 2},
    "precision": {"float_wbits": 1, "float_ubits": 8},
}


def tiny_dict() -> dict:
    """A deep copy of the hand-computable test spec."""
    return copy.deepcopy(TINY)


def tiny_spec(**over):
    """The hand-computable spec, optionally with overrides (``with_overrides`` aliases)."""
    s = spec_from_dict(tiny_dict(), file="tiny.yaml")
    return s.with_overrides(**over) if over else s


def test_vgg9_helper_shapes():
    g = vgg9_spikesim()
    conv = [g.nodes[n]["layer"] for n in nx.topological_sort(g)
            if g.nodes[n]["layer"].op == "conv"]
    assert [c.in_channels for c in conv] == [3, 64, 64, 128, 128, 256, 256]
    assert [c.in_shape[1] for c in conv] == [32, 32, 16, 16, 8, 8, 8]
    assert g.nodes["fc1"]["layer"].in_features == 256 * 4 * 4


def test_tiny_spec_loads():
    s = tiny_spec()
    assert s.crossbar.rows == 4 and s.bits_per_cell == 1 and s.clock.period_ns == 1.0
