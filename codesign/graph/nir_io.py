"""Read and write NIR files (``nir`` package, HDF5), lowering them to the codesign graph.

NIR is the interchange format at the edge, not our internal graph: its neurons are
continuous-time ODEs with no time step, no bit-widths and only a hard reset.

Neurons. NIR's LIF is ``tau dv/dt = (v_leak - v) + r I``; its IF is ``dv/dt = r I``. Over one
step ``dt`` forward Euler gives

    LIF:  v[t] = (1 - dt/tau) v[t-1] + (r dt/tau) I[t] + (dt/tau) v_leak
    IF:   v[t] = v[t-1] + (r dt) I[t]

which is the inverse of what the exporters write (snnTorch: ``tau = dt/(1-beta)``,
``r = tau/dt``; SpikingJelly: ``tau = tau_sj dt``, ``r = 1`` or ``tau_sj`` without
``decay_input``; SpikingJelly's IF: ``r = 1/dt``). With the input gain ``gain = r dt/tau``
(LIF) or ``r dt`` (IF) and ``v_leak = v_reset``, the change of variable
``U = (v - v_reset) / gain`` turns it into our LIF ``H[t] = beta U[t-1] + I[t]`` with

    beta  = 1 - dt/tau          (1 for IF)
    theta = (v_threshold - v_reset) / gain

on the *same* weights. For snnTorch exports ``gain = 1`` and ``theta = v_threshold``; for
SpikingJelly's ``decay_input=True`` (``r = 1``) the gain is ``1/tau_sj`` and
``theta = tau_sj * v_threshold`` (the threshold absorbs the input scaling so the crossbar
weights stay those in the file). ``v_leak != v_reset`` cannot be expressed and is refused.
NIR fires on ``v > v_threshold``, ours on ``H >= theta``: they differ only on exact ties.

Per-neuron arrays: codesign keeps one ``beta`` and one ``theta`` per layer, so the per-neuron
values derived above must agree to a relative 1e-6; otherwise the file is refused (average
them in your framework first if that is what you want). Scalars broadcast.

Reset: NIR only knows a jump to ``v_reset``, so the reset is ``"zero"`` unless ``reset=`` says
otherwise (snnTorch's default and Sinabs' ``MembraneSubtract`` are subtractive, and their
exporters still write ``v_reset = 0``: pass ``--reset subtract`` for those models).

Time step: ``dt_s`` is needed to turn ``tau`` into ``beta`` unless the file carries codesign
metadata; without either, :func:`read_nir` raises asking for ``--dt``. ``T`` must come from
the file's codesign metadata or the ``T=`` argument.

Node mapping (read): ``Input``, ``Output``, ``Conv2d`` (``padding`` ints, ``"valid"``, or
``"same"`` at stride 1), ``Affine`` (with bias), ``Linear``, ``Flatten`` (NIR's no-batch
convention: ``start_dim = 0``, ``end_dim = -1``), ``SumPool2d``, ``AvgPool2d``, ``LIF``, ``IF``,
and ``Scale`` with all factors 1 (an identity, or with several inputs a sum). A node with
several inputs sums them (NIR semantics): codesign inserts an ``add`` node ``<name>.sum``
before it. A conv or affine bias counts (``has_bias``) only if it has a non-zero entry, since
exporters write zeros for layers without bias (our metadata, when present, says exactly).
Refused with a message naming the node: nested sub-graphs, recurrent (cyclic) graphs,
``CubaLIF``, ``CubaLI``, ``LI``, ``I``, ``Delay``, ``Threshold``, ``Conv1d`` and ``Scale``
with other factors.

Export (:func:`write_nir`): ``Conv2d`` with ``input_shape``, ``Affine``/``Linear``, ``Flatten``
(``start_dim = 0``), ``AvgPool2d``/``SumPool2d``, ``Scale`` of ones for an ``add`` node (its
inputs are summed), ``LIF`` with ``tau = dt/(1 - beta)``, ``r = tau/dt`` (gain 1, as snnTorch)
and ``v_threshold = theta``, or ``IF`` with ``r = 1/dt`` for ``beta = 1``. Max pooling has no
NIR node: refused unless ``max_pool="sum"``, which writes a ``SumPool2d`` tagged as max for
codesign (other tools will read a sum pool, as snnTorch's own exporter writes for
``MaxPool2d``). Every node carries ``metadata["codesign"]`` (op, bit-widths, beta, theta,
reset, bias flag, pool kind) and the graph ``metadata["codesign"]`` (format, name, T, dt_s,
encoding, input_shape), so ``read_nir(write_nir(g))`` restores the graph exactly. Graphs
without weights (workloads) are refused: NIR needs weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

import networkx as nx
import nir
import numpy as np

from codesign import params
from codesign.errors import CodesignError
from codesign.graph.build import (
    RESET_TIMINGS,
    RESETS,
    GraphBuilder,
    topo_layers,
    validate_graph,
)
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

META_KEY = "codesign"
FORMAT_VERSION = 1
DEFAULT_DT_S = 1e-4
"""Time step written when a graph has none: the NIR ecosystem's default (snnTorch,
SpikingJelly). Any value round-trips, since it is stored in the metadata."""
RTOL = 1e-6
SUPPORTED = ("Input", "Output", "Conv2d", "Affine", "Linear", "Flatten", "SumPool2d",
             "AvgPool2d", "LIF", "IF", "Scale (all factors 1)")
_HANDLED = (nir.Input, nir.Output, nir.Conv2d, nir.Affine, nir.Linear, nir.Flatten,
            nir.SumPool2d, nir.AvgPool2d, nir.LIF, nir.IF, nir.Scale)


# ----------------------------------------------------------------------------- small helpers


def _plain(v: Any) -> Any:
    """numpy scalars/arrays and bytes from HDF5 -> Python values (arrays -> tuples)."""
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.item() if v.ndim == 0 else tuple(_plain(x) for x in v.tolist())
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _meta(obj: Any) -> dict:
    md = getattr(obj, "metadata", None) or {}
    cd = md.get(META_KEY) if isinstance(md, dict) else None
    return _plain(cd) if isinstance(cd, dict) else {}


def _check_node_meta(md: dict, where: str) -> None:
    """Check a node's ``metadata["codesign"]`` values with the one validation path
    (:mod:`codesign.params`): bit-widths 1..16 or null, beta in [0, 1], theta finite > 0, reset
    one of :data:`RESETS`, ``has_bias`` a real boolean."""
    key = f"metadata.{META_KEY}"
    for k in ("wbits", "ubits"):
        if k in md:
            params.check_bits(md[k], where, f"{key}.{k}")
    if "beta" in md:
        params.check_real(md["beta"], where, f"{key}.beta", ge=0.0, le=1.0)
    if "theta" in md:
        params.check_real(md["theta"], where, f"{key}.theta", gt=0.0, le=params.MAX_QUANTITY)
    if "reset" in md:
        params.check_choice(md["reset"], where, f"{key}.reset", RESETS)
    if "reset_timing" in md:
        params.check_choice(md["reset_timing"], where, f"{key}.reset_timing", RESET_TIMINGS)
    if "has_bias" in md:
        params.check_bool(md["has_bias"], where, f"{key}.has_bias")


def _check_graph_meta(gmeta: dict, where: str) -> None:
    """Check the graph's ``metadata["codesign"]``: T (1..MAX_T), dt_s (> 0), name (text)."""
    key = f"metadata.{META_KEY}"
    if gmeta.get("T") is not None:
        params.check_int(gmeta["T"], where, f"{key}.T", ge=1, le=params.MAX_T)
    if gmeta.get("dt_s") is not None:
        params.check_real(gmeta["dt_s"], where, f"{key}.dt_s", gt=0.0)
    if "name" in gmeta:
        params.check_text(gmeta["name"], where, f"{key}.name", nonempty=True)
    if "encoding" in gmeta:
        params.check_text(gmeta["encoding"], where, f"{key}.encoding", nonempty=True)


def _pair(v: Any, what: str, fail) -> tuple[int, int]:
    a = np.asarray(v).ravel()
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2 or not np.all(np.equal(np.mod(a, 1), 0)):
        fail(f"{what} must be one or two integers, got {v!r}")
    return int(a[0]), int(a[1])


def _uniform(values: np.ndarray, what: str, fail) -> float:
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0 or not np.all(np.isfinite(a)):
        fail(f"{what} must be finite, got {values!r}")
    if not np.allclose(a, a[0], rtol=RTOL, atol=1e-12):
        fail(f"{what} differs between neurons ({a.min():.6g} .. {a.max():.6g}); codesign keeps "
             "one value per layer, so make it uniform (e.g. average it) before exporting")
    return float(a[0])


# ----------------------------------------------------------------------------- reading


def read_nir(
    path: Union[str, Path],
    *,
    dt_s: Optional[float] = None,
    reset: Optional[str] = None,
    T: Optional[int] = None,
    wbits: Optional[int] = None,
    ubits: Optional[int] = None,
    encoding: Optional[str] = None,
) -> nx.DiGraph:
    """Read a ``.nir`` file into a validated codesign graph (see the module docstring).

    Arguments override the file: ``dt_s`` (seconds; required when the file has LIF/IF nodes
    and no codesign metadata), ``reset`` (``"zero"``/``"subtract"``; default: metadata, else
    ``"zero"``), ``T`` (required unless in the metadata), ``wbits``/``ubits`` (applied to every
    synaptic / LIF node; default: metadata, else floating point), ``encoding``.
    """
    path = Path(path)
    if not path.is_file():
        raise CodesignError(f"{path}: no such NIR file")
    try:
        ng = nir.read(str(path), type_check=False)
    except Exception as e:  # nir raises assorted errors (OSError, KeyError, AssertionError)
        raise CodesignError(f"{path}: not a readable NIR file ({type(e).__name__}: {e})") from None
    return nir_to_graph(ng, where=str(path), name=path.stem, dt_s=dt_s, reset=reset, T=T,
                        wbits=wbits, ubits=ubits, encoding=encoding)


def nir_to_graph(
    ng: nir.NIRGraph,
    *,
    where: str = "<nir graph>",
    name: str = "nir",
    dt_s: Optional[float] = None,
    reset: Optional[str] = None,
    T: Optional[int] = None,
    wbits: Optional[int] = None,
    ubits: Optional[int] = None,
    encoding: Optional[str] = None,
) -> nx.DiGraph:
    """Lower an in-memory ``nir.NIRGraph``; arguments as in :func:`read_nir`."""

    def fail(msg: str):
        raise CodesignError(f"{where}: {msg}")

    gmeta = _meta(ng)
    nodes: dict[str, Any] = dict(ng.nodes)
    for n, node in nodes.items():
        if isinstance(node, nir.NIRGraph):
            fail(f"node {n!r} is a nested NIR sub-graph (NIRGraph); codesign reads flat graphs "
                 "only (flatten it, or export a model without recurrent/composite blocks)")
        if not isinstance(node, _HANDLED):
            fail(f"node {n!r} has unsupported NIR type {type(node).__name__}; supported: "
                 f"{', '.join(SUPPORTED)}")
    for src, dst in ng.edges:
        if src not in nodes or dst not in nodes:
            fail(f"edge ({src!r}, {dst!r}) names a node that does not exist")
    dg = nx.DiGraph()
    dg.add_nodes_from(nodes)
    dg.add_edges_from((str(a), str(b)) for a, b in ng.edges)
    if not nx.is_directed_acyclic_graph(dg):
        fail(f"the graph is recurrent (cycle {nx.find_cycle(dg)}); codesign maps feed-forward "
             "graphs only")
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        fail(f"expected exactly one Input node, found {len(inputs)}: {inputs}")

    if reset is not None and reset not in RESETS:
        fail(f"reset: expected one of {RESETS}, got {reset!r}")
    _check_graph_meta(gmeta, where)
    for flag_name, v in (("wbits", wbits), ("ubits", ubits)):
        params.check_bits(v, where, flag_name)
    if T is not None:
        params.check_int(T, where, "T", ge=1, le=params.MAX_T)
    if dt_s is not None:
        params.check_real(dt_s, where, "dt", gt=0.0)
    T = T if T is not None else gmeta.get("T")
    if T is None:
        fail("T: the file does not say how many time steps an inference runs; pass --T")
    dt = dt_s if dt_s is not None else gmeta.get("dt_s")
    needs_dt = [n for n, node in nodes.items()
                if isinstance(node, (nir.LIF, nir.IF))
                and not {"beta", "theta"} <= _meta(node).keys()]
    if needs_dt and dt is None:
        fail(f"dt: NIR stores time constants (tau) but no time step, and node {needs_dt[0]!r} "
             "needs one to compute its per-step leak beta = 1 - dt/tau; pass --dt <seconds> "
             "(the exporter's dt: snnTorch writes 1e-4, SpikingJelly's export_to_nir its dt "
             "argument, default 1e-4)")
    if dt is not None and not (isinstance(dt, (int, float)) and dt > 0):
        fail(f"dt: expected a positive number of seconds, got {dt!r}")

    in_name = inputs[0]
    declared = (nodes[in_name].input_type or {}).get("input")
    if declared is None:
        fail(f"node {in_name!r} (Input): no input shape in the file")
    dims = np.asarray(declared).ravel()
    if (dims.size == 0 or dims.dtype.kind not in "iuf" or not np.all(np.isfinite(dims))
            or np.any(dims < 1) or np.any(dims > params.MAX_LAYER_NEURONS)
            or float(np.prod(dims.astype(np.float64))) > params.MAX_LAYER_NEURONS):
        fail(f"node {in_name!r} (Input): input shape {dims.tolist()}; expected positive sizes "
             f"with at most {params.MAX_LAYER_NEURONS:,} elements")
    try:
        b = GraphBuilder(
            tuple(int(v) for v in np.asarray(declared).ravel()),
            name=str(gmeta.get("name", name)),
            T=T,
            dt_s=None if dt is None else float(dt),
            encoding=encoding or gmeta.get("encoding", "direct"),
            source="nir",
            input_name=in_name,
        )
    except CodesignError as e:
        fail(f"node {in_name!r} (Input): {e}")
    alias: dict[str, str] = {in_name: in_name}  # NIR node -> codesign node carrying its output
    opts = {"reset": reset, "wbits": wbits, "ubits": ubits, "dt": dt}
    order = {n: i for i, n in enumerate(nodes)}
    for n in nx.lexicographical_topological_sort(dg, key=order.__getitem__):
        if n == in_name:
            continue
        node = nodes[n]
        preds = [alias[p] for p in dg.predecessors(n)]

        def nfail(msg: str, _n=n, _node=node):
            fail(f"node {_n!r} ({type(_node).__name__}): {msg}")

        if isinstance(node, nir.Input):
            continue
        if not preds:
            nfail("has no inputs")
        _check_node_meta(_meta(node), f"{where}: node {n!r} ({type(node).__name__})")
        try:
            alias[n] = _lower(b, n, node, preds, opts, nfail)
        except CodesignError as e:
            if str(e).startswith(where):
                raise
            nfail(str(e))
        out = b.g.nodes[alias[n]]["layer"].out_shape
        params.check_size(int(np.prod(out)), params.MAX_LAYER_NEURONS, where, f"node {n!r}",
                          "output size")
    neurons = sum(int(np.prod(d["layer"].out_shape)) for _, d in b.g.nodes(data=True)
                  if type(d["layer"]).__name__ == "LIFLayer")
    params.check_size(neurons * int(T), params.MAX_ACTIVATIONS, where, "T",
                      "neurons x time steps")
    validate_graph(b.g, where=where)
    return b.g


def _lower(b: GraphBuilder, n: str, node: Any, preds: list[str], opts: dict, nfail) -> str:
    """Add the codesign node(s) for NIR node ``n``; return the node carrying its output."""
    md = _meta(node)
    if isinstance(node, nir.Scale):
        if not np.allclose(np.asarray(node.scale, dtype=np.float64), 1.0, rtol=RTOL, atol=0):
            nfail("Scale with factors other than 1 is not supported (fold it into the weights "
                  "of the layer before it)")
        if len(preds) == 1 and md.get("op") != "add":
            return preds[0]  # identity
        return b.add_add(n, preds)
    if len(preds) > 1:  # NIR sums the inputs of a node
        sum_name = f"{n}.sum"
        while sum_name in b.g:
            sum_name += "_"
        src = b.add_add(sum_name, preds)
    else:
        src = preds[0]
    shape = b.shape_of(src)
    wbits = opts["wbits"] if opts["wbits"] is not None else md.get("wbits")

    if isinstance(node, nir.Output):
        return b.add_output(n, src=src)
    if isinstance(node, nir.Conv2d):
        w = np.asarray(node.weight)
        if w.ndim != 4:
            nfail(f"weight must be 4-D (C_out, C_in/groups, kh, kw), got shape {w.shape}")
        groups = int(np.asarray(node.groups).ravel()[0])
        if len(shape) != 3 or shape[0] != w.shape[1] * groups:
            nfail(f"expects {w.shape[1] * groups} input channels (weight {w.shape}, groups "
                  f"{groups}) but its input has shape {shape}")
        if node.input_shape is not None:
            hw = tuple(int(v) for v in np.asarray(node.input_shape).ravel())
            if hw != shape[1:]:
                nfail(f"input_shape {hw} disagrees with the incoming map {shape[1:]}")
        stride = _pair(node.stride, "stride", nfail)
        dilation = _pair(node.dilation, "dilation", nfail)
        pad = _plain(node.padding)
        if pad == "valid":
            padding = (0, 0)
        elif pad == "same":
            span = [d * (k - 1) for d, k in zip(dilation, w.shape[2:], strict=True)]
            if stride != (1, 1) or any(s % 2 for s in span):
                nfail("padding 'same' is supported only at stride 1 with odd kernels")
            padding = (span[0] // 2, span[1] // 2)
        else:
            padding = _pair(pad, "padding", nfail)
        bias = np.asarray(node.bias)
        has_bias = bool(md["has_bias"]) if "has_bias" in md else bool(np.any(bias != 0))
        return b.add_conv(n, w.shape[0], w.shape[2:], stride, padding, dilation=dilation,
                          groups=groups, has_bias=has_bias, wbits=wbits, weight=w,
                          bias=bias if has_bias else None, src=src)
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight)
        if w.ndim != 2:
            nfail(f"weight must be 2-D (out, in), got shape {w.shape}")
        if shape != (w.shape[1],):
            nfail(f"expects a vector of {w.shape[1]} inputs but gets shape {shape} "
                  "(a Flatten node is missing?)")
        bias = np.asarray(node.bias) if isinstance(node, nir.Affine) else None
        has_bias = bias is not None and (
            bool(md["has_bias"]) if "has_bias" in md else bool(np.any(bias != 0)))
        return b.add_linear(n, w.shape[0], has_bias=has_bias, wbits=wbits, weight=w,
                            bias=bias if has_bias else None, src=src)
    if isinstance(node, nir.Flatten):
        nd = len(shape)
        start, end = int(_plain(node.start_dim)), int(_plain(node.end_dim))
        if start not in (0, -nd) or end not in (-1, nd - 1):
            nfail(f"start_dim={start}, end_dim={end} on a {nd}-D input: codesign flattens "
                  "the whole sample (NIR shapes have no batch axis, so start_dim=0, end_dim=-1)")
        declared = node.input_type.get("input") if node.input_type else None
        if declared is not None and tuple(int(v) for v in np.ravel(declared)) != shape:
            nfail(f"input_type {tuple(np.ravel(declared))} disagrees with the incoming {shape}")
        return b.add_flatten(n, src=src)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        kind = "avg" if isinstance(node, nir.AvgPool2d) else "sum"
        if kind == "sum" and md.get("kind") == "max":
            kind = "max"
        return b.add_pool(n, kind, _pair(node.kernel_size, "kernel_size", nfail),
                          _pair(node.stride, "stride", nfail),
                          _pair(node.padding, "padding", nfail), src=src)
    if isinstance(node, (nir.LIF, nir.IF)):
        return _lower_neuron(b, n, node, src, shape, md, opts, nfail)
    nfail("unsupported")  # unreachable: filtered earlier
    raise AssertionError


def _lower_neuron(b: GraphBuilder, n: str, node: Any, src: str, shape: tuple, md: dict,
                  opts: dict, nfail) -> str:
    """LIF/IF -> LIFLayer with beta = 1 - dt/tau and theta = (v_th - v_reset)/gain."""
    n_shape = tuple(np.shape(node.r))
    if n_shape != shape and int(np.prod(n_shape)) != 1:
        nfail(f"has {n_shape} neurons but its input has shape {shape}")
    reset = opts["reset"] or md.get("reset", "zero")
    ubits = opts["ubits"] if opts["ubits"] is not None else md.get("ubits")
    if "beta" in md and "theta" in md:
        beta, theta = float(md["beta"]), float(md["theta"])
    else:
        dt = float(opts["dt"])
        r = np.asarray(node.r, dtype=np.float64)
        v_reset = np.asarray(node.v_reset, dtype=np.float64)
        v_th = np.asarray(node.v_threshold, dtype=np.float64)
        if isinstance(node, nir.LIF):
            tau = np.asarray(node.tau, dtype=np.float64)
            if np.any(tau <= 0):
                nfail(f"tau must be > 0 s, got {tau.min():.6g}")
            if np.any(tau < dt * (1 - 1e-9)):
                nfail(f"tau = {tau.min():.6g} s is shorter than dt = {dt:.6g} s, so forward "
                      "Euler gives beta = 1 - dt/tau < 0: check --dt")
            if not np.allclose(node.v_leak, v_reset, rtol=RTOL, atol=1e-12):
                nfail("v_leak differs from v_reset; codesign's LIF leaks towards the reset "
                      "potential")
            beta_arr = np.clip(1.0 - dt / tau, 0.0, 1.0)
            gain = r * dt / tau
        else:
            beta_arr = np.ones_like(r)
            gain = r * dt
        if np.any(gain <= 0):
            nfail(f"the input gain r*dt/tau (r*dt for IF) must be > 0, got {gain.min():.6g}")
        beta = _uniform(beta_arr, "beta = 1 - dt/tau", nfail)
        theta = _uniform((v_th - v_reset) / gain, "theta = (v_threshold - v_reset) / gain", nfail)
        if theta <= 0:
            nfail(f"theta = (v_threshold - v_reset) / gain must be > 0, got {theta:.6g}")
    return b.add_lif(n, beta=beta, theta=theta, reset=reset, ubits=ubits, src=src,
                     reset_timing=md.get("reset_timing", "immediate"))


# ----------------------------------------------------------------------------- writing


def _clean(d: dict) -> dict:
    """Drop ``None`` values (HDF5 cannot store them: absent means None)."""
    return {k: v for k, v in d.items() if v is not None}


def graph_to_nir(
    g: nx.DiGraph,
    *,
    dt_s: Optional[float] = None,
    max_pool: Literal["refuse", "sum"] = "refuse",
) -> nir.NIRGraph:
    """Convert a codesign graph with weights to a ``nir.NIRGraph`` (see the module docstring).

    ``dt_s`` defaults to the graph's ``dt_s``, else :data:`DEFAULT_DT_S`.
    """
    validate_graph(g)
    gname = g.graph.get("name", "graph")
    dt = dt_s if dt_s is not None else g.graph.get("dt_s") or DEFAULT_DT_S
    if not dt > 0:
        raise CodesignError(f"graph {gname!r}: dt_s must be > 0 s, got {dt!r}")
    if max_pool not in ("refuse", "sum"):
        raise CodesignError(f"max_pool: expected 'refuse' or 'sum', got {max_pool!r}")

    def fail(n: str, msg: str):
        raise CodesignError(f"graph {gname!r}: node {n!r}: {msg}")

    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    for n, layer in topo_layers(g):
        md: dict[str, Any] = {"op": layer.op}
        if isinstance(layer, (ConvLayer, LinearLayer)):
            if layer.weight is None:
                fail(n, "has no weights: an architecture-only (workload) graph cannot be "
                     "exported to NIR, which stores weights")
            md.update(wbits=layer.wbits, has_bias=bool(layer.has_bias))
        meta = {META_KEY: _clean(md)}
        if isinstance(layer, InputLayer):
            node = nir.Input(input_type={"input": np.array(layer.shape)}, metadata=meta)
        elif isinstance(layer, OutputLayer):
            node = nir.Output(output_type={"output": np.array(layer.shape)}, metadata=meta)
        elif isinstance(layer, ConvLayer):
            if layer.groups != 1:
                fail(n, f"groups={layer.groups}: NIR's Conv2d type inference assumes groups=1")
            w = np.asarray(layer.weight)
            bias = (np.asarray(layer.bias) if layer.bias is not None
                    else np.zeros(layer.out_channels, dtype=w.dtype))
            node = nir.Conv2d(input_shape=tuple(layer.in_shape[1:]), weight=w,
                              stride=tuple(layer.stride), padding=tuple(layer.padding),
                              dilation=tuple(layer.dilation), groups=1, bias=bias, metadata=meta)
        elif isinstance(layer, LinearLayer):
            w = np.asarray(layer.weight)
            if layer.has_bias:
                bias = (np.asarray(layer.bias) if layer.bias is not None
                        else np.zeros(layer.out_features, dtype=w.dtype))
                node = nir.Affine(weight=w, bias=bias, metadata=meta)
            else:
                node = nir.Linear(weight=w, metadata=meta)
        elif isinstance(layer, FlattenLayer):
            node = nir.Flatten(input_type={"input": np.array(layer.in_shape)}, start_dim=0,
                               end_dim=-1, metadata=meta)
        elif isinstance(layer, PoolLayer):
            if layer.kind == "max" and max_pool == "refuse":
                fail(n, "max pooling has no NIR node; use avg/sum pooling, or pass "
                     "max_pool='sum' to write a SumPool2d tagged as max (read back as max by "
                     "codesign, as a sum pool by other tools)")
            meta[META_KEY]["kind"] = layer.kind
            cls = nir.AvgPool2d if layer.kind == "avg" else nir.SumPool2d
            node = cls(kernel_size=np.array(layer.kernel_size), stride=np.array(layer.stride),
                       padding=np.array(layer.padding), metadata=meta)
        elif isinstance(layer, AddLayer):
            node = nir.Scale(scale=np.ones(layer.shape, dtype=np.float32), metadata=meta)
        elif isinstance(layer, LIFLayer):
            meta[META_KEY].update(_clean({"beta": float(layer.beta), "theta": float(layer.theta),
                                          "reset": layer.reset, "ubits": layer.ubits,
                                          "reset_timing": layer.reset_timing}))
            full = lambda v, s=layer.shape: np.full(s, v, dtype=np.float64)  # noqa: E731
            if layer.beta >= 1.0:
                node = nir.IF(r=full(1.0 / dt), v_threshold=full(layer.theta),
                              v_reset=full(0.0), metadata=meta)
            else:
                tau = dt / (1.0 - layer.beta)
                node = nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(0.0),
                               v_threshold=full(layer.theta), v_reset=full(0.0), metadata=meta)
        else:  # pragma: no cover - validate_graph admits only the types above
            fail(n, f"cannot export {type(layer).__name__}")
        nodes[n] = node
        edges.extend((p, n) for p in g.predecessors(n))
    gmeta = _clean({
        "format": FORMAT_VERSION,
        "name": gname,
        "T": int(g.graph["T"]),
        "dt_s": float(dt),
        "encoding": g.graph.get("encoding", "direct"),
        "input_shape": np.array(g.graph.get("input_shape", ())),
        "origin": g.graph.get("source"),
    })
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata={META_KEY: gmeta},
                            type_check=True)
    except (ValueError, AssertionError, TypeError) as e:
        raise CodesignError(f"graph {gname!r}: NIR rejected the graph: {e}") from None


def write_nir(
    g: nx.DiGraph,
    path: Union[str, Path],
    *,
    dt_s: Optional[float] = None,
    max_pool: Literal["refuse", "sum"] = "refuse",
) -> Path:
    """Write ``g`` (with weights) to ``path`` as NIR/HDF5; return the path."""
    ng = graph_to_nir(g, dt_s=dt_s, max_pool=max_pool)
    path = Path(path)
    try:
        nir.write(str(path), ng)
    except OSError as e:
        raise CodesignError(f"{path}: cannot write the NIR file ({e})") from None
    return path
