"""The signal kind carried by every edge of the SNN graph.

Each edge ``(producer, consumer)`` holds three attributes, set when the edge is made (by
:class:`~codesign.graph.build.GraphBuilder`, which checkpoint lowering, workload files and NIR
import all go through) and read by the cost model, which no longer guesses them:

* ``signal`` -- what travels on the wire:

  - ``"spikes"``: binary events ``{0, 1}`` (a LIF output, a rate or event input);
  - ``"multilevel"``: a small non-negative integer count of spikes, scaled: ``levels`` non-zero
    values ``1/levels, ..., 1`` (an average pooling of spikes) or a sum of spike trains
    (a SEW-style residual add); a crossbar applies it as ``ceil(log2(levels + 1))`` bit planes;
  - ``"analog"``: real values: the image under direct encoding, crossbar output currents
    (accumulated sums), and anything summed with them (the membrane-like output of an
    MS-ResNet ``add``);

* ``levels`` -- non-zero levels of a ``multilevel`` signal (1 for ``spikes``; 0 for ``analog``,
  which has no fixed grid);
* ``static`` -- ``True`` when the value is identical at every time step: the input under direct
  encoding, and whatever is computed from it without a neuron in between (the first layer's
  currents). A LIF output is never static.

Propagation rules (:func:`out_signal`), producer node -> its outgoing edges:

==================  ==========================================================================
producer            outgoing signal
==================  ==========================================================================
input               ``direct``: analog, static; ``rate`` / ``events``: spikes
conv, linear        analog (currents), static if the input is
LIF                 spikes
max pool, flatten   the input's signal (a max of spikes is an OR: still spikes)
avg / sum pool      spikes or multilevel in -> multilevel, ``levels * kh * kw``; analog stays
add                 all inputs spikes / multilevel -> multilevel, levels summed; else analog
==================  ==========================================================================

Graphs assembled by hand (``networkx`` directly) get the same rules through :func:`annotate`,
which fills in only the edges that lack a ``signal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from codesign.errors import CodesignError
from codesign.graph.schema import (
    AddLayer,
    ConvLayer,
    FlattenLayer,
    InputLayer,
    LIFLayer,
    LinearLayer,
    OutputLayer,
    PoolLayer,
)

SIGNALS = ("spikes", "multilevel", "analog")


@dataclass(frozen=True)
class Signal:
    """One edge's signal: ``kind`` in :data:`SIGNALS`, ``levels``, ``static`` (see module)."""

    kind: str
    levels: int = 1
    static: bool = False

    def attrs(self) -> dict[str, Any]:
        """The edge attributes ``{signal, levels, static}``."""
        return {"signal": self.kind, "levels": self.levels, "static": self.static}


SPIKES = Signal("spikes", 1, False)


def out_signal(layer: Any, inputs: list[Signal], encoding: str = "direct") -> Signal:
    """The signal a node emits, from its layer type and its input signals (module table)."""
    if isinstance(layer, InputLayer):
        return Signal("analog", 0, True) if encoding == "direct" else SPIKES
    if not inputs:
        raise CodesignError(f"{layer.op} node without an input signal")
    first = inputs[0]
    if isinstance(layer, (ConvLayer, LinearLayer)):
        return Signal("analog", 0, first.static)
    if isinstance(layer, LIFLayer):
        return SPIKES
    if isinstance(layer, PoolLayer):
        if layer.kind == "max" or first.kind == "analog":
            return first
        k = int(layer.kernel_size[0]) * int(layer.kernel_size[1])
        return Signal("multilevel", first.levels * k, first.static)
    if isinstance(layer, AddLayer):
        if any(s.kind == "analog" for s in inputs):
            return Signal("analog", 0, all(s.static for s in inputs))
        return Signal("multilevel", sum(s.levels for s in inputs),
                      all(s.static for s in inputs))
    if isinstance(layer, (FlattenLayer, OutputLayer)):
        return first
    raise CodesignError(f"no signal rule for node type {type(layer).__name__}")


def edge_signal(g: nx.DiGraph, u: str, v: str) -> Signal:
    """The :class:`Signal` stored on edge ``(u, v)`` (checked)."""
    d = g.edges[u, v]
    kind = d.get("signal")
    if kind not in SIGNALS:
        raise CodesignError(f"graph {g.graph.get('name', '?')!r}: edge {u!r} -> {v!r}: signal "
                            f"{kind!r}; expected one of {', '.join(SIGNALS)}")
    levels = d.get("levels", 1 if kind == "spikes" else 0)
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 0 or (
            kind == "multilevel" and levels < 1) or (kind == "spikes" and levels != 1):
        raise CodesignError(f"graph {g.graph.get('name', '?')!r}: edge {u!r} -> {v!r}: levels "
                            f"{levels!r}; expected 1 for spikes, an integer >= 1 for multilevel")
    return Signal(kind, int(levels), bool(d.get("static", False)))


def node_out_signal(g: nx.DiGraph, node: str) -> Signal:
    """What ``node`` emits, from the signals on its incoming edges."""
    ins = [edge_signal(g, p, node) for p in g.predecessors(node)]
    return out_signal(g.nodes[node]["layer"], ins, g.graph.get("encoding", "direct"))


def input_signal(g: nx.DiGraph, node: str) -> Signal:
    """The signal ``node`` reads (its one producer's edge; a synaptic layer has one)."""
    preds = list(g.predecessors(node))
    if len(preds) != 1:
        raise CodesignError(f"graph {g.graph.get('name', '?')!r}: node {node!r} has "
                            f"{len(preds)} producers; expected one")
    return edge_signal(g, preds[0], node)


def annotate(g: nx.DiGraph) -> nx.DiGraph:
    """Set ``signal``/``levels``/``static`` on every edge of ``g`` that has no ``signal`` yet,
    by the module's rules, in topological order; returns ``g`` (modified in place)."""
    try:
        order = list(nx.topological_sort(g))
    except nx.NetworkXUnfeasible:
        raise CodesignError(f"graph {g.graph.get('name', '?')!r} has a cycle") from None
    for n in order:
        outs = [v for v in g.successors(n) if "signal" not in g.edges[n, v]]
        if outs:
            attrs = node_out_signal(g, n).attrs()
            for v in outs:
                g.edges[n, v].update(attrs)
    return g


def missing(g: nx.DiGraph) -> bool:
    """True when some edge has no ``signal`` attribute."""
    return any("signal" not in d for _, _, d in g.edges(data=True))
