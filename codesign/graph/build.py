"""Build, check and inspect the SNN graph (node types in :mod:`codesign.graph.schema`).

Shape inference follows PyTorch (no ``ceil_mode``). Per spatial axis, for a convolution

    out = floor((in + 2*p - d*(k - 1) - 1) / s) + 1

and for pooling the same with ``d = 1`` (stride defaults to the kernel size). A convolution
``(C_in, H, W) -> (C_out, H', W')`` costs, per time step and sample,

    MACs = C_out * H' * W' * (C_in / groups) * kh * kw,

a fully connected layer ``N_in * N_out``. Pooling, flatten, add and LIF nodes cost no MACs here
(their energy is the hardware model's business).

:class:`GraphBuilder` adds nodes one after another, taking each node's input shape from its
producer (by default the node added last), so shapes are inferred rather than typed:

>>> b = GraphBuilder((1, 8, 8), name="tiny", T=4)
>>> b.add_conv("conv1", 4, 3, padding=1); b.add_lif("lif1", beta=0.5)
>>> b.add_flatten("flat"); b.add_linear("fc", 10); b.add_output()
>>> g = b.build()                      # validated networkx.DiGraph

:func:`validate_graph` checks any graph (from a workload, NIR, a checkpoint) against the schema.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Optional, Union

import networkx as nx
import numpy as np
import pandas as pd

from codesign.errors import CodesignError
from codesign.graph.schema import (
    SYNAPTIC_OPS,
    AddLayer,
    ConvLayer,
    FlattenLayer,
    InputLayer,
    Layer,
    LIFLayer,
    LinearLayer,
    OutputLayer,
    PoolLayer,
    Shape,
)
from codesign.graph.signals import edge_signal, node_out_signal

LAYER_TYPES = (
    InputLayer, ConvLayer, LinearLayer, PoolLayer, FlattenLayer, AddLayer, LIFLayer, OutputLayer
)
ENCODINGS = ("direct", "rate", "events")
RESETS = ("subtract", "zero")
RESET_TIMINGS = ("immediate", "delayed")
POOL_KINDS = ("max", "avg", "sum")
IntPair = Union[int, Sequence[int]]


# ----------------------------------------------------------------------------- shape arithmetic


def pair(value: IntPair, what: str = "value") -> tuple[int, int]:
    """``3 -> (3, 3)``, ``[3, 5] -> (3, 5)``; anything else raises :class:`CodesignError`."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2:
        a, b = value
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (a, b)):
            return int(a), int(b)
    raise CodesignError(f"{what}: expected an integer or a pair of integers, got {value!r}")


def conv_out_hw(
    in_hw: Sequence[int],
    kernel: IntPair,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> tuple[int, int]:
    """Spatial output size ``floor((in + 2p - d(k-1) - 1)/s) + 1`` per axis.

    Raises :class:`CodesignError` when a size is not positive or the map collapses to zero.
    """
    k, s = pair(kernel, "kernel"), pair(stride, "stride")
    p, d = pair(padding, "padding"), pair(dilation, "dilation")
    for what, v, low in (("kernel", k, 1), ("stride", s, 1), ("padding", p, 0), ("dilation", d, 1)):
        if min(v) < low:
            raise CodesignError(f"{what} must be >= {low}, got {v}")
    if len(in_hw) != 2:
        raise CodesignError(f"expected a 2-D spatial size, got {tuple(in_hw)}")
    out = tuple(
        (n + 2 * pi - di * (ki - 1) - 1) // si + 1
        for n, ki, si, pi, di in zip(in_hw, k, s, p, d, strict=True)
    )
    if min(out) < 1:
        raise CodesignError(
            f"output collapses to zero: input {tuple(in_hw)} with kernel {k}, stride {s}, "
            f"padding {p}, dilation {d} gives {out}"
        )
    return out[0], out[1]


def conv_out_shape(
    in_shape: Shape,
    out_channels: int,
    kernel: IntPair,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> Shape:
    """``(C_in, H, W) -> (out_channels, H', W')``."""
    if len(in_shape) != 3:
        raise CodesignError(f"a convolution needs a (C, H, W) input, got shape {tuple(in_shape)}")
    if out_channels < 1 or groups < 1:
        raise CodesignError(f"out_channels and groups must be >= 1, got {out_channels}, {groups}")
    if in_shape[0] % groups or out_channels % groups:
        raise CodesignError(
            f"groups={groups} must divide in_channels={in_shape[0]} and out_channels={out_channels}"
        )
    return (int(out_channels), *conv_out_hw(in_shape[1:], kernel, stride, padding, dilation))


def pool_out_shape(
    in_shape: Shape, kernel: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0
) -> Shape:
    """``(C, H, W) -> (C, H', W')``; ``stride`` defaults to ``kernel`` as in PyTorch."""
    if len(in_shape) != 3:
        raise CodesignError(f"pooling needs a (C, H, W) input, got shape {tuple(in_shape)}")
    k = pair(kernel, "kernel")
    return (int(in_shape[0]), *conv_out_hw(in_shape[1:], k, k if stride is None else stride,
                                           padding))


def in_shape_of(layer: Layer) -> Optional[Shape]:
    """The shape a layer expects from each of its producers (``None`` for the input)."""
    if isinstance(layer, InputLayer):
        return None
    if isinstance(layer, (AddLayer, LIFLayer, OutputLayer)):
        return tuple(layer.shape)
    return tuple(layer.in_shape)


# ----------------------------------------------------------------------------- builder


class GraphBuilder:
    """Incrementally build a validated SNN graph with inferred shapes.

    Every ``add_*`` method takes the new node's ``name`` and, through ``src``, the name of the
    producing node (default: the node added last); it returns ``name``. The graph attributes
    (``T``, ``dt_s``, ``name``, ``input_shape``, ``encoding``, ``source``) are set here.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        *,
        name: str = "graph",
        T: int = 1,
        dt_s: Optional[float] = None,
        encoding: str = "direct",
        source: str = "builder",
        input_name: str = "input",
    ) -> None:
        shape = tuple(int(v) for v in input_shape)
        if not shape or min(shape) < 1:
            raise CodesignError(f"input_shape: expected positive sizes, got {tuple(input_shape)}")
        self.g = nx.DiGraph(
            T=T, dt_s=dt_s, name=name, input_shape=shape, encoding=encoding, source=source
        )
        self.last: Optional[str] = None
        self.add_layer(input_name, InputLayer(shape=shape), inputs=())

    # -- generic

    def shape_of(self, name: str) -> Shape:
        """Output shape of node ``name``."""
        if name not in self.g:
            raise CodesignError(f"graph {self.g.graph['name']!r}: no node named {name!r}")
        return tuple(self.g.nodes[name]["layer"].out_shape)

    def _src(self, src: Optional[str]) -> str:
        src = self.last if src is None else src
        if src is None or src not in self.g:
            raise CodesignError(f"graph {self.g.graph['name']!r}: no node named {src!r}")
        return src

    def add_layer(self, name: str, layer: Layer, inputs: Optional[Sequence[str]] = None) -> str:
        """Add ``layer`` as node ``name`` fed by ``inputs`` (default: the last node)."""
        if not isinstance(name, str) or not name:
            raise CodesignError(f"node names must be non-empty strings, got {name!r}")
        if name in self.g:
            raise CodesignError(f"graph {self.g.graph['name']!r}: duplicate node name {name!r}")
        inputs = [self._src(None)] if inputs is None else [self._src(s) for s in inputs]
        self.g.add_node(name, layer=layer)
        for src in inputs:  # the edge carries what the producer emits (graph.signals)
            self.g.add_edge(src, name, **node_out_signal(self.g, src).attrs())
        self.last = name
        return name

    # -- typed helpers

    def add_conv(
        self,
        name: str,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        *,
        dilation: IntPair = 1,
        groups: int = 1,
        has_bias: Optional[bool] = None,
        wbits: Optional[int] = None,
        weight: Optional[np.ndarray] = None,
        bias: Optional[np.ndarray] = None,
        src: Optional[str] = None,
    ) -> str:
        """2-D convolution; ``has_bias`` defaults to ``bias is not None``."""
        src = self._src(src)
        in_shape = self.shape_of(src)
        out_shape = conv_out_shape(in_shape, out_channels, kernel_size, stride, padding, dilation,
                                   groups)
        layer = ConvLayer(
            in_shape=in_shape,
            out_shape=out_shape,
            in_channels=in_shape[0],
            out_channels=int(out_channels),
            kernel_size=pair(kernel_size, "kernel_size"),
            stride=pair(stride, "stride"),
            padding=pair(padding, "padding"),
            groups=int(groups),
            has_bias=bool(bias is not None) if has_bias is None else bool(has_bias),
            wbits=wbits,
            weight=weight,
            bias=bias,
            dilation=pair(dilation, "dilation"),
        )
        return self.add_layer(name, layer, [src])

    def add_pool(
        self,
        name: str,
        kind: str,
        kernel_size: IntPair,
        stride: Optional[IntPair] = None,
        padding: IntPair = 0,
        *,
        src: Optional[str] = None,
    ) -> str:
        """Max / average / sum pooling (``stride`` defaults to ``kernel_size``)."""
        if kind not in POOL_KINDS:
            raise CodesignError(f"pool kind: expected one of {POOL_KINDS}, got {kind!r}")
        src = self._src(src)
        in_shape = self.shape_of(src)
        k = pair(kernel_size, "kernel_size")
        s = k if stride is None else pair(stride, "stride")
        layer = PoolLayer(
            in_shape=in_shape,
            out_shape=pool_out_shape(in_shape, k, s, padding),
            kind=kind,  # type: ignore[arg-type]
            kernel_size=k,
            stride=s,
            padding=pair(padding, "padding"),
        )
        return self.add_layer(name, layer, [src])

    def add_flatten(self, name: str, *, src: Optional[str] = None) -> str:
        """Flatten to a vector (C-order)."""
        src = self._src(src)
        return self.add_layer(name, FlattenLayer(in_shape=self.shape_of(src)), [src])

    def add_linear(
        self,
        name: str,
        out_features: int,
        *,
        has_bias: Optional[bool] = None,
        wbits: Optional[int] = None,
        weight: Optional[np.ndarray] = None,
        bias: Optional[np.ndarray] = None,
        src: Optional[str] = None,
    ) -> str:
        """Fully connected layer; its producer must give a vector ``(N,)``."""
        src = self._src(src)
        in_shape = self.shape_of(src)
        if len(in_shape) != 1:
            raise CodesignError(
                f"a linear layer needs a vector input, got shape {in_shape} (add a flatten first)"
            )
        if out_features < 1:
            raise CodesignError(f"out_features must be >= 1, got {out_features}")
        layer = LinearLayer(
            in_features=in_shape[0],
            out_features=int(out_features),
            has_bias=bool(bias is not None) if has_bias is None else bool(has_bias),
            wbits=wbits,
            weight=weight,
            bias=bias,
        )
        return self.add_layer(name, layer, [src])

    def add_lif(
        self,
        name: str,
        *,
        beta: float = 1.0,
        theta: float = 1.0,
        reset: str = "subtract",
        ubits: Optional[int] = None,
        src: Optional[str] = None,
        reset_timing: str = "immediate",
    ) -> str:
        """LIF population with the producer's shape."""
        src = self._src(src)
        layer = LIFLayer(shape=self.shape_of(src), beta=float(beta), theta=float(theta),
                         reset=reset, ubits=ubits,  # type: ignore[arg-type]
                         reset_timing=reset_timing)
        return self.add_layer(name, layer, [src])

    def add_add(self, name: str, srcs: Sequence[str]) -> str:
        """Element-wise sum of two or more producers of equal shape."""
        srcs = [self._src(s) for s in srcs]
        shapes = {self.shape_of(s) for s in srcs}
        if len(srcs) < 2 or len(shapes) != 1:
            raise CodesignError(
                f"add {name!r}: needs two or more inputs of one shape, got "
                f"{[(s, self.shape_of(s)) for s in srcs]}"
            )
        return self.add_layer(name, AddLayer(shape=shapes.pop()), srcs)

    def add_output(self, name: str = "output", *, src: Optional[str] = None) -> str:
        """Network output reading the producer."""
        src = self._src(src)
        return self.add_layer(name, OutputLayer(shape=self.shape_of(src)), [src])

    def build(self, validate: bool = True) -> nx.DiGraph:
        """Return the graph (checked by :func:`validate_graph` unless ``validate=False``)."""
        if validate:
            validate_graph(self.g)
        return self.g


# ----------------------------------------------------------------------------- validation


def _is_pos_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1


def _check_layer(layer: Layer, bad) -> None:
    """Internal consistency of one node (shapes, weights, neuron parameters)."""
    if isinstance(layer, ConvLayer):
        if len(layer.in_shape) != 3 or layer.in_shape[0] != layer.in_channels:
            bad(f"in_channels={layer.in_channels} disagrees with in_shape {layer.in_shape}")
        try:
            expect = conv_out_shape(layer.in_shape, layer.out_channels, layer.kernel_size,
                                    layer.stride, layer.padding, layer.dilation, layer.groups)
        except CodesignError as e:
            bad(str(e))
        if tuple(layer.out_shape) != expect:
            bad(f"out_shape {tuple(layer.out_shape)} but the arithmetic gives {expect}")
        w_shape = (layer.out_channels, layer.in_channels // layer.groups, *layer.kernel_size)
        if layer.weight is not None and tuple(layer.weight.shape) != w_shape:
            bad(f"weight shape {tuple(layer.weight.shape)}, expected {w_shape}")
    elif isinstance(layer, LinearLayer):
        if not (_is_pos_int(layer.in_features) and _is_pos_int(layer.out_features)):
            bad(f"features must be positive integers, got {layer.in_features}->"
                f"{layer.out_features}")
        w_shape = (layer.out_features, layer.in_features)
        if layer.weight is not None and tuple(layer.weight.shape) != w_shape:
            bad(f"weight shape {tuple(layer.weight.shape)}, expected {w_shape}")
    elif isinstance(layer, PoolLayer):
        if layer.kind not in POOL_KINDS:
            bad(f"pool kind {layer.kind!r} is not one of {POOL_KINDS}")
        try:
            expect = pool_out_shape(layer.in_shape, layer.kernel_size, layer.stride, layer.padding)
        except CodesignError as e:
            bad(str(e))
        if tuple(layer.out_shape) != expect:
            bad(f"out_shape {tuple(layer.out_shape)} but the arithmetic gives {expect}")
    elif isinstance(layer, LIFLayer):
        if not 0.0 <= layer.beta <= 1.0:
            bad(f"beta must lie in [0, 1], got {layer.beta}")
        if not layer.theta > 0:
            bad(f"theta must be > 0, got {layer.theta}")
        if layer.reset not in RESETS:
            bad(f"reset must be one of {RESETS}, got {layer.reset!r}")
        if layer.reset_timing not in RESET_TIMINGS:
            bad(f"reset_timing must be one of {RESET_TIMINGS}, got {layer.reset_timing!r}")
    if isinstance(layer, (ConvLayer, LinearLayer)):
        if layer.wbits is not None and not _is_pos_int(layer.wbits):
            bad(f"wbits must be a positive integer or None, got {layer.wbits!r}")
        out_n = layer.out_channels if isinstance(layer, ConvLayer) else layer.out_features
        if layer.bias is not None and tuple(np.shape(layer.bias)) != (out_n,):
            bad(f"bias shape {tuple(np.shape(layer.bias))}, expected {(out_n,)}")
    if isinstance(layer, LIFLayer) and layer.ubits is not None and not _is_pos_int(layer.ubits):
        bad(f"ubits must be a positive integer or None, got {layer.ubits!r}")
    for shape in (in_shape_of(layer), layer.out_shape):
        if shape is not None and (len(shape) == 0 or not all(_is_pos_int(v) for v in shape)):
            bad(f"shapes must be non-empty tuples of positive integers, got {shape}")


def validate_graph(g: nx.DiGraph, *, where: Optional[str] = None) -> None:
    """Check ``g`` against the schema; raise :class:`CodesignError` on the first problem.

    Checked: graph attributes (``T`` a positive integer, ``encoding``), acyclicity, exactly one
    :class:`InputLayer` (no predecessors) whose shape equals ``input_shape``, at least one
    :class:`OutputLayer` (no successors), every node reachable from the input, one producer per
    node except :class:`AddLayer` (two or more), ``producer.out_shape == consumer in_shape`` on
    every edge, a known ``signal`` kind (:mod:`codesign.graph.signals`) on every edge that has
    one, and each node's own arithmetic (conv/pool output sizes, weight shapes, beta in
    [0, 1], theta > 0, bit-widths positive).
    """
    prefix = where or f"graph {g.graph.get('name', '?')!r}"

    def fail(msg: str):
        raise CodesignError(f"{prefix}: {msg}")

    T = g.graph.get("T")
    if not _is_pos_int(T):
        fail(f"T must be a positive integer, got {T!r}")
    dt_s = g.graph.get("dt_s")
    if dt_s is not None and not (isinstance(dt_s, (int, float)) and dt_s > 0):
        fail(f"dt_s must be a positive number of seconds or None, got {dt_s!r}")
    if g.graph.get("encoding", "direct") not in ENCODINGS:
        fail(f"encoding must be one of {ENCODINGS}, got {g.graph.get('encoding')!r}")
    if not nx.is_directed_acyclic_graph(g):
        fail(f"the graph has a cycle {nx.find_cycle(g)}; recurrent graphs are not supported")
    inputs, outputs = [], []
    for name, data in g.nodes(data=True):
        layer = data.get("layer")
        if not isinstance(layer, LAYER_TYPES):
            fail(f"node {name!r} has no schema layer (got {type(layer).__name__})")

        def bad(msg: str, _name=name, _layer=layer):
            fail(f"node {_name!r} ({_layer.op}): {msg}")

        _check_layer(layer, bad)
        n_in = g.in_degree(name)
        if isinstance(layer, InputLayer):
            inputs.append(name)
            if n_in:
                bad("the input cannot have producers")
        elif isinstance(layer, AddLayer):
            if n_in < 2:
                bad(f"an add needs two or more producers, has {n_in}")
        elif n_in != 1:
            bad(f"expected exactly one producer, has {n_in} (sum several through an add node)")
        if isinstance(layer, OutputLayer):
            outputs.append(name)
            if g.out_degree(name):
                bad("an output cannot feed other nodes")
        want = in_shape_of(layer)
        for src in g.predecessors(name):
            if "signal" in g.edges[src, name]:
                edge_signal(g, src, name)  # a known kind with valid levels
            got = tuple(g.nodes[src]["layer"].out_shape)
            if want is not None and got != tuple(want):
                bad(f"input shape {tuple(want)} but producer {src!r} gives {got}")
    if len(inputs) != 1:
        fail(f"expected exactly one input node, found {len(inputs)}: {inputs}")
    if not outputs:
        fail("no output node")
    in_shape = tuple(g.nodes[inputs[0]]["layer"].shape)
    if "input_shape" in g.graph and tuple(g.graph["input_shape"]) != in_shape:
        fail(f"graph input_shape {tuple(g.graph['input_shape'])} differs from the input node "
             f"{in_shape}")
    dead = set(g.nodes) - nx.descendants(g, inputs[0]) - {inputs[0]}
    if dead:
        fail(f"nodes not reachable from the input: {sorted(dead)}")


# ----------------------------------------------------------------------------- iteration, summary


def topo_layers(g: nx.DiGraph) -> Iterator[tuple[str, Layer]]:
    """Yield ``(name, layer)`` in topological order, ties broken by insertion order."""
    order = {n: i for i, n in enumerate(g.nodes)}
    for name in nx.lexicographical_topological_sort(g, key=order.__getitem__):
        yield name, g.nodes[name]["layer"]


def synaptic_layers(g: nx.DiGraph) -> list[tuple[str, Union[ConvLayer, LinearLayer]]]:
    """The conv and linear nodes (the ones mapped onto crossbars), in topological order."""
    return [(n, layer) for n, layer in topo_layers(g) if layer.op in SYNAPTIC_OPS]


def lif_layers(g: nx.DiGraph) -> list[tuple[str, LIFLayer]]:
    """The LIF nodes in topological order."""
    return [(n, layer) for n, layer in topo_layers(g) if isinstance(layer, LIFLayer)]


def params_of(layer: Layer) -> int:
    """Stored parameters (weights + biases) of a node; 0 for non-synaptic nodes."""
    return int(layer.params) if isinstance(layer, (ConvLayer, LinearLayer)) else 0


def macs_of(layer: Layer) -> int:
    """Dense multiply-accumulates per time step of a node; 0 for non-synaptic nodes."""
    return int(layer.macs_per_step) if isinstance(layer, (ConvLayer, LinearLayer)) else 0


def total_macs_per_step(g: nx.DiGraph) -> int:
    """Sum of :func:`macs_of` over the graph."""
    return sum(macs_of(layer) for _, layer in topo_layers(g))


def summary(g: nx.DiGraph) -> pd.DataFrame:
    """One row per node in topological order.

    Columns: ``name, op, inputs, in_shape, out_shape, params, macs_per_step, neurons, wbits,
    ubits, beta, theta, reset`` (``inputs`` lists the producers; ``neurons`` is the LIF
    population size; bit-widths are ``<NA>`` for floating point or where they do not apply).
    """
    rows = []
    for name, layer in topo_layers(g):
        is_lif = isinstance(layer, LIFLayer)
        rows.append(
            {
                "name": name,
                "op": layer.op,
                "inputs": ",".join(g.predecessors(name)),
                "in_shape": in_shape_of(layer),
                "out_shape": tuple(layer.out_shape),
                "params": params_of(layer),
                "macs_per_step": macs_of(layer),
                "neurons": layer.neurons if is_lif else 0,
                "wbits": getattr(layer, "wbits", None),
                "ubits": layer.ubits if is_lif else None,
                "beta": layer.beta if is_lif else None,
                "theta": layer.theta if is_lif else None,
                "reset": layer.reset if is_lif else None,
            }
        )
    df = pd.DataFrame(rows)
    for col in ("wbits", "ubits"):
        df[col] = df[col].astype("Int64")
    for col in ("beta", "theta"):
        df[col] = df[col].astype("float64")
    return df
