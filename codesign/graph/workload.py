"""Workload files: SNN architectures without weights, for hardware-cost studies.

A workload is a YAML file. Example (``models/workloads/vgg9_cifar10.yaml`` ships the full one)::

    name: vgg9-cifar10            # optional, defaults to the file name
    description: free text        # optional
    input_shape: [3, 32, 32]      # required: (C, H, W) or (N,), no batch, no time
    T: 5                          # required: time steps per inference
    dt_s: 1.0e-3                  # optional: time step in seconds (only NIR export needs it)
    encoding: direct              # optional: direct (default) | rate | events
    neuron: {beta: 0.5, theta: 1.0, reset: subtract}   # optional defaults for every LIF
    bits: {wbits: 4, ubits: 8}    # optional defaults; null (or absent) = floating point
    spikesim: {out_dim: post_pool, neuron_memory_layers: 5, membrane_bits: 22}
                                  # optional: facts of this network's SpikeSim evaluation,
                                  # used only on a compat: spikesim spec (hw/spikesim.py)
    layers:
      - {conv: 64, k: 3, p: 1}            # conv + LIF
      - {conv: 64, k: 3, p: 1}
      - {pool: avg, k: 2}
      - {flatten: true}
      - {linear: 1024}                    # linear + LIF
      - {linear: 10, lif: false}          # readout: no LIF, the output reads the currents

Layer entries (one *kind* key per entry; every other key is an option):

``{conv: C_out, k, s: 1, p: 0, d: 1, groups: 1, bias: false, lif, wbits, name, repeat: 1}``
    2-D convolution. ``k``, ``s``, ``p``, ``d`` are an integer or ``[h, w]``; ``p: same`` means
    ``d*(k-1)/2`` (odd kernels), which keeps H and W at stride 1. ``repeat: n`` stacks n copies.
``{linear: N_out, bias: false, lif, wbits, name, repeat: 1}``
    Fully connected layer; needs a vector input (put ``{flatten: true}`` before it).
``{pool: max|avg|sum, k, s: k, p: 0, name}`` or ``{pool: avg, global: true}``
    Spatial pooling; ``global: true`` pools the whole map to 1x1 (no ``k``/``s``/``p`` then).
``{flatten: true, name}``
    Flatten ``(C, H, W)`` to ``(C*H*W,)``.
``{lif: true | {...}, name}``
    A standalone LIF population (for example after a membrane-shortcut residual stage).
``{block: basic, channels: C, stride: 1, style: tdbn|sew|ms, bias: false, lif, wbits, name,
repeat: 1}``
    A residual basic block (two 3x3 convolutions, BN folded away). With ``repeat: n`` the first
    block uses ``stride`` and the others stride 1 (a ResNet stage). The shortcut is the identity
    when stride is 1 and the channels agree, else a 1x1 convolution with the stride
    (option B, as in the papers below). Styles, with ``x`` the block input:

    * ``tdbn`` (default; Zheng et al., AAAI 2021, "Going Deeper With Directly-Trained Larger
      SNNs", the ResNet-19 of the SNN literature): ``LIF(conv2(LIF(conv1(x))) + sc(x))``.
      The sum enters the second LIF as a current; the block emits spikes.
    * ``sew`` (Fang et al., NeurIPS 2021, SEW-ResNet with ADD): ``LIF(conv2(LIF(conv1(x)))) +
      sc(x)`` with ``sc`` = identity or 1x1 conv + LIF; the block emits integer spike sums.
    * ``ms`` (Hu et al., MS-ResNet, membrane shortcut, the MD-SNN backbone):
      ``conv2(LIF(conv1(LIF(x)))) + sc(x)``; the 1x1 shortcut convolves the real-valued ``x``
      (as in the MS-ResNet-18 code). The block emits membrane-like values, so end the stack
      with ``{lif: true}`` before pooling.

    Nodes are named ``b<i>.conv1``, ``b<i>.lif1``, ``b<i>.conv2``, ``b<i>.shortcut``,
    ``b<i>.add``, ``b<i>.lif2`` (``<i>`` counts blocks from 1, or the block's ``name``).

**LIF rule (explicit, no exceptions):** every ``conv`` and ``linear`` is followed by a LIF unless
it says ``lif: false``, *including the last layer*: a non-spiking readout must say
``lif: false``. ``lif`` may also be a mapping overriding the defaults for that layer:
``lif: {beta: 0.9, theta: 0.5, reset: zero, ubits: 4}``. ``wbits`` (integer or null) overrides
the weight bits of one layer. An ``output`` node is appended after the last layer.

Node names: ``conv<n>``, ``fc<n>``, ``pool<n>``, ``flatten<n>``, ``lif<n>`` (standalone) count
per kind from 1; a layer's LIF is ``<layer>.lif``; ``name`` overrides (``<name>.<j>`` with
``repeat``).

Validation is strict: an unknown or misspelt key, a missing or wrongly typed value, a
non-positive size, or a shape that collapses to zero raises
:class:`~codesign.errors.CodesignError` with one message naming the file, the key (such as
``layers[3].k``) and what was expected. The file is read by the one strict loader,
:func:`codesign.params.load_yaml` (duplicate keys, non-UTF-8 bytes, deep nesting, huge integers
and non-finite numbers refused), and values are checked by :class:`codesign.params.Checker`:
bit-widths 1..16 (or null), ``T <= 10000``, channels/features <= 65536, image sides <= 4096,
``repeat <= 1000``; the expanded graph is bounded before anything allocates per-neuron arrays:
<= 2**26 outputs per node, <= 2**28 weights, <= 2**31 neurons x T, <= 10000 nodes (the limits
are the ``MAX_*`` constants of :mod:`codesign.params`). Floats may be written ``1e-3`` (YAML 1.2
style) as well as ``1.0e-3``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import networkx as nx

from codesign import params
from codesign.errors import CodesignError
from codesign.graph.build import ENCODINGS, POOL_KINDS, RESETS, GraphBuilder, validate_graph
from codesign.params import Checker

TOP_KEYS = ("name", "description", "input_shape", "T", "dt_s", "encoding", "neuron", "bits",
            "layers", "spikesim")
SPIKESIM_KEYS = ("out_dim", "neuron_memory_layers", "membrane_bits")
NEURON_KEYS = ("beta", "theta", "reset")
BITS_KEYS = ("wbits", "ubits")
LIF_KEYS = ("beta", "theta", "reset", "ubits")
KINDS = ("conv", "linear", "pool", "flatten", "block", "lif")
LAYER_KEYS = {
    "conv": ("conv", "k", "s", "p", "d", "groups", "bias", "lif", "wbits", "name", "repeat"),
    "linear": ("linear", "bias", "lif", "wbits", "name", "repeat"),
    "pool": ("pool", "k", "s", "p", "global", "name"),
    "flatten": ("flatten", "name"),
    "block": ("block", "channels", "stride", "style", "bias", "lif", "wbits", "name", "repeat"),
    "lif": ("lif", "name"),
}
BLOCK_STYLES = ("tdbn", "sew", "ms")
MAX_REPEAT = 1_000
"""Most copies one ``repeat:`` may stack."""
MAX_NODES = 10_000
"""Most graph nodes a workload may expand to."""


# ----------------------------------------------------------------------------- value checks


class _Ctx(Checker):
    """The :class:`codesign.params.Checker` checks for one workload file (one validation path
    for every input)."""


# ----------------------------------------------------------------------------- parsing


def _neuron(ctx: _Ctx, d: Mapping, key: str, base: dict, allowed: tuple[str, ...]) -> dict:
    """Merge LIF parameter overrides ``d`` into ``base`` after checking them."""
    ctx.keys(d, allowed, key)
    out = dict(base)
    if "beta" in d:
        out["beta"] = ctx.number(d["beta"], f"{key}.beta", 0.0, 1.0, "a number in [0, 1]")
    if "theta" in d:
        theta = ctx.number(d["theta"], f"{key}.theta", 0.0, float("inf"), "a number > 0")
        if theta <= 0:
            ctx.fail(f"{key}.theta", "a number > 0", d["theta"])
        out["theta"] = theta
    if "reset" in d:
        out["reset"] = ctx.choice(d["reset"], f"{key}.reset", RESETS)
    if "ubits" in d:
        out["ubits"] = ctx.bits(d["ubits"], f"{key}.ubits")
    return out


class _WorkloadBuilder:
    """Expands the checked layer list into a :class:`GraphBuilder`."""

    def __init__(self, ctx: _Ctx, b: GraphBuilder, lif: dict, wbits: Optional[int]) -> None:
        self.ctx, self.b, self.lif, self.wbits = ctx, b, lif, wbits
        self.counts: dict[str, int] = {}
        self.n_params = 0
        self.n_neurons = 0

    def auto(self, prefix: str) -> str:
        while True:  # skip numbers a user-given name already took
            self.counts[prefix] = self.counts.get(prefix, 0) + 1
            name = f"{prefix}{self.counts[prefix]}"
            if name not in self.b.g and f"{name}.conv1" not in self.b.g:
                return name

    def names(self, entry: Mapping, key: str, prefix: str, n: int) -> list[str]:
        if "name" not in entry:
            return [self.auto(prefix) for _ in range(n)]
        name = entry["name"]
        if not isinstance(name, str) or not name or "/" in name:
            self.ctx.fail(f"{key}.name", "a non-empty string without '/'", name)
        names = [name] if n == 1 else [f"{name}.{j}" for j in range(1, n + 1)]
        for nm in names:
            if nm in self.b.g or f"{nm}.conv1" in self.b.g:
                self.ctx.fail(f"{key}.name", "a name not used by an earlier layer", name)
        return names

    def layer_lif(self, entry: Mapping, key: str) -> Optional[dict]:
        """LIF parameters for a conv/linear/block entry, or None for ``lif: false``."""
        v = entry.get("lif", True)
        if v is True:
            return dict(self.lif)
        if v is False:
            return None
        d = self.ctx.mapping(v, f"{key}.lif", "true, false or a mapping of LIF parameters")
        return _neuron(self.ctx, d, f"{key}.lif", self.lif, LIF_KEYS)

    def layer_wbits(self, entry: Mapping, key: str) -> Optional[int]:
        return self.ctx.bits(entry["wbits"], f"{key}.wbits") if "wbits" in entry else self.wbits

    def add(self, key: str, fn, *args, **kwargs) -> str:
        """Call a builder method, prefixing shape errors with the entry's key; then bound the
        node's output size, the node count and the total weights (limits in
        :mod:`codesign.params`) before anything downstream allocates per-neuron arrays."""
        try:
            name = fn(*args, **kwargs)
        except CodesignError as e:
            raise CodesignError(f"{self.ctx.where}: {key}: {e}") from None
        layer = self.b.g.nodes[name]["layer"]
        n = math.prod(layer.out_shape)
        self.ctx.size(n, params.MAX_LAYER_NEURONS, key, f"output size of {name} {layer.out_shape}")
        self.ctx.size(self.b.g.number_of_nodes(), MAX_NODES, key, "number of graph nodes")
        if hasattr(layer, "params"):
            self.n_params += int(layer.params)
            self.ctx.size(self.n_params, params.MAX_PARAMS, key, "total weights")
        if type(layer).__name__ == "LIFLayer":
            self.n_neurons += n
            self.ctx.size(self.n_neurons * self.b.g.graph["T"], params.MAX_ACTIVATIONS, key,
                          "neurons x time steps")
        return name

    # -- entries

    def entry(self, i: int, entry: Any) -> None:
        key = f"layers[{i}]"
        ctx = self.ctx
        entry = ctx.mapping(entry, key, "a mapping such as {conv: 64, k: 3}")
        kinds = [k for k in KINDS if k in entry]
        if len(kinds) > 1 and "lif" in kinds:
            kinds.remove("lif")  # lif is an option of conv/linear/block
        if not kinds:
            for k in entry:  # name the misspelt kind if there is one
                near = difflib.get_close_matches(str(k), KINDS, n=1)
                if near:
                    ctx.fail(f"{key}.{k}", f"a layer kind, one of {', '.join(KINDS)} "
                             f"(did you mean {near[0]!r}?)")
            ctx.fail(key, f"one layer kind key among {', '.join(KINDS)}", dict(entry))
        if len(kinds) > 1:
            ctx.fail(key, f"exactly one layer kind per entry, got {' and '.join(kinds)}")
        kind = kinds[0]
        ctx.keys(entry, LAYER_KEYS[kind], key)
        getattr(self, f"_{kind}")(entry, key)

    def _repeat(self, entry: Mapping, key: str) -> int:
        return self.ctx.pos_int(entry.get("repeat", 1), f"{key}.repeat", le=MAX_REPEAT)

    def _conv(self, entry: Mapping, key: str) -> None:
        ctx = self.ctx
        cout = ctx.pos_int(entry["conv"], f"{key}.conv", "a positive number of output channels",
                           le=params.MAX_CHANNELS)
        if "k" not in entry:
            ctx.missing(f"{key}.k", "the kernel size, an integer or [kh, kw]")
        k = ctx.pair(entry["k"], f"{key}.k", 1)
        s = ctx.pair(entry.get("s", 1), f"{key}.s", 1)
        d = ctx.pair(entry.get("d", 1), f"{key}.d", 1)
        p_raw = entry.get("p", 0)
        if p_raw == "same":
            if any((di * (ki - 1)) % 2 for ki, di in zip(k, d, strict=True)):
                ctx.fail(f"{key}.p", "'same' only with odd (dilated) kernels", p_raw)
            p = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d, strict=True))
        else:
            p = ctx.pair(p_raw, f"{key}.p", 0)
        groups = ctx.pos_int(entry.get("groups", 1), f"{key}.groups", le=params.MAX_CHANNELS)
        bias = ctx.boolean(entry.get("bias", False), f"{key}.bias")
        lif, wbits = self.layer_lif(entry, key), self.layer_wbits(entry, key)
        n = self._repeat(entry, key)
        for name in self.names(entry, key, "conv", n):
            self.add(key, self.b.add_conv, name, cout, k, s, p, dilation=d, groups=groups,
                     has_bias=bias, wbits=wbits)
            self._lif_after(name, lif, key)

    def _linear(self, entry: Mapping, key: str) -> None:
        ctx = self.ctx
        nout = ctx.pos_int(entry["linear"], f"{key}.linear", "a positive number of features",
                           le=params.MAX_CHANNELS)
        bias = ctx.boolean(entry.get("bias", False), f"{key}.bias")
        lif, wbits = self.layer_lif(entry, key), self.layer_wbits(entry, key)
        n = self._repeat(entry, key)
        for name in self.names(entry, key, "fc", n):
            if len(self.b.shape_of(self.b.last)) != 1:
                ctx.fail(key, "a vector input for a linear layer; put {flatten: true} before it "
                         f"(the input here has shape {self.b.shape_of(self.b.last)})")
            self.add(key, self.b.add_linear, name, nout, has_bias=bias, wbits=wbits)
            self._lif_after(name, lif, key)

    def _pool(self, entry: Mapping, key: str) -> None:
        ctx = self.ctx
        kind = ctx.choice(entry["pool"], f"{key}.pool", POOL_KINDS)
        is_global = ctx.boolean(entry.get("global", False), f"{key}.global")
        (name,) = self.names(entry, key, "pool", 1)
        in_shape = self.b.shape_of(self.b.last)
        if len(in_shape) != 3:
            ctx.fail(key, f"a (C, H, W) input for pooling, got shape {in_shape}")
        if is_global:
            for opt in ("k", "s", "p"):
                if opt in entry:
                    ctx.fail(f"{key}.{opt}", "no k, s or p together with global: true",
                             entry[opt])
            k, s, p = in_shape[1:], in_shape[1:], (0, 0)
        else:
            if "k" not in entry:
                ctx.missing(f"{key}.k", "the pooling window, an integer or [kh, kw] "
                            "(or global: true)")
            k = ctx.pair(entry["k"], f"{key}.k", 1)
            s = ctx.pair(entry["s"], f"{key}.s", 1) if "s" in entry else k
            p = ctx.pair(entry.get("p", 0), f"{key}.p", 0)
        self.add(key, self.b.add_pool, name, kind, k, s, p)

    def _flatten(self, entry: Mapping, key: str) -> None:
        if entry["flatten"] is not True:
            self.ctx.fail(f"{key}.flatten", "true", entry["flatten"])
        (name,) = self.names(entry, key, "flatten", 1)
        self.add(key, self.b.add_flatten, name)

    def _lif(self, entry: Mapping, key: str) -> None:
        v = entry["lif"]
        if v is True:
            params = dict(self.lif)
        else:
            d = self.ctx.mapping(v, f"{key}.lif", "true or a mapping of LIF parameters")
            params = _neuron(self.ctx, d, f"{key}.lif", self.lif, LIF_KEYS)
        (name,) = self.names(entry, key, "lif", 1)
        self.add(key, self.b.add_lif, name, **params)

    def _lif_after(self, src: str, lif: Optional[dict], key: str) -> Optional[str]:
        if lif is None:
            return None
        return self.add(key, self.b.add_lif, f"{src}.lif", src=src, **lif)

    def _block(self, entry: Mapping, key: str) -> None:
        ctx = self.ctx
        if entry["block"] != "basic":
            ctx.fail(f"{key}.block", "basic (the only block type supported)", entry["block"])
        if "channels" not in entry:
            ctx.missing(f"{key}.channels", "a positive number of output channels")
        ch = ctx.pos_int(entry["channels"], f"{key}.channels", le=params.MAX_CHANNELS)
        stride = ctx.pos_int(entry.get("stride", 1), f"{key}.stride", le=params.MAX_IMAGE_SIZE)
        style = ctx.choice(entry.get("style", "tdbn"), f"{key}.style", BLOCK_STYLES)
        bias = ctx.boolean(entry.get("bias", False), f"{key}.bias")
        lif = self.layer_lif(entry, key)
        if lif is None:
            ctx.fail(f"{key}.lif", "true or a mapping (a residual block needs its LIFs)", False)
        wbits = self.layer_wbits(entry, key)
        n = self._repeat(entry, key)
        prefixes = self.names(entry, key, "b", n)
        for j, prefix in enumerate(prefixes):
            self._one_block(key, prefix, ch, stride if j == 0 else 1, style, bias, lif, wbits)

    def _one_block(self, key: str, pre: str, ch: int, stride: int, style: str, bias: bool,
                   lif: dict, wbits: Optional[int]) -> None:
        b, add = self.b, self.add
        x = b.last
        in_shape = b.shape_of(x)
        if len(in_shape) != 3:
            self.ctx.fail(key, f"a (C, H, W) input for a residual block, got shape {in_shape}")
        conv = dict(has_bias=bias, wbits=wbits)
        h = x
        if style == "ms":
            h = add(key, b.add_lif, f"{pre}.lif0", src=x, **lif)
        h = add(key, b.add_conv, f"{pre}.conv1", ch, 3, stride, 1, src=h, **conv)
        h = add(key, b.add_lif, f"{pre}.lif1", src=h, **lif)
        h = add(key, b.add_conv, f"{pre}.conv2", ch, 3, 1, 1, src=h, **conv)
        if style == "sew":
            h = add(key, b.add_lif, f"{pre}.lif2", src=h, **lif)
        sc = x
        if stride != 1 or in_shape[0] != ch:
            sc = add(key, b.add_conv, f"{pre}.shortcut", ch, 1, stride, 0, src=x, **conv)
            if style == "sew":
                sc = add(key, b.add_lif, f"{pre}.shortcut.lif", src=sc, **lif)
        if b.shape_of(sc) != b.shape_of(h):
            self.ctx.fail(key, f"the shortcut shape {b.shape_of(sc)} to match the residual "
                          f"branch {b.shape_of(h)} (check the stride against the map size)")
        out = add(key, b.add_add, f"{pre}.add", [h, sc])
        if style == "tdbn":
            out = add(key, b.add_lif, f"{pre}.lif2", src=out, **lif)
        b.last = out


def _spikesim_facts(ctx: _Ctx, v: Any) -> dict[str, Any]:
    """The ``spikesim:`` section: facts of this network's SpikeSim evaluation, used only under
    ``compat: spikesim`` (:class:`codesign.hw.spikesim.GraphFacts`)."""
    d = ctx.mapping(v, "spikesim", "a mapping {out_dim, neuron_memory_layers, membrane_bits}")
    ctx.keys(d, SPIKESIM_KEYS, "spikesim")
    out: dict[str, Any] = {}
    if "out_dim" in d:
        out["out_dim"] = ctx.choice(d["out_dim"], "spikesim.out_dim", ("conv", "post_pool"))
    if "neuron_memory_layers" in d:
        v = d["neuron_memory_layers"]
        out["neuron_memory_layers"] = (None if v is None else ctx.nonneg_int(
            v, "spikesim.neuron_memory_layers"))
    if "membrane_bits" in d:
        out["membrane_bits"] = ctx.pos_int(  # a storage width, not a quantizer's bits
            d["membrane_bits"], "spikesim.membrane_bits", "a positive number of bits", le=64)
    return out


def parse_workload(data: Any, *, where: str = "<workload>", default_name: str = "workload"
                   ) -> nx.DiGraph:
    """Build the graph from an already-parsed workload mapping (see the module docstring).

    ``where`` names the source in error messages (the file path for :func:`load_workload`).
    """
    ctx = _Ctx(where)
    d = ctx.mapping(data, "top level", "a mapping with input_shape, T and layers")
    ctx.keys(d, TOP_KEYS, "")
    name = d.get("name", default_name)
    if not isinstance(name, str) or not name:
        ctx.fail("name", "a non-empty string", name)
    for k in ("neuron", "bits"):
        if k in d and d[k] is None:
            ctx.fail(k, "a mapping (or leave the key out)", None)
    if "description" in d and not isinstance(d["description"], str):
        ctx.fail("description", "a string", d["description"])
    if "input_shape" not in d:
        ctx.missing("input_shape", "[C, H, W] or [N] of positive integers")
    shape = d["input_shape"]
    if (not isinstance(shape, list) or len(shape) not in (1, 3)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        ctx.fail("input_shape", "[C, H, W] or [N] of positive integers", shape)
    if len(shape) == 3:
        ctx.pos_int(shape[0], "input_shape[0]", "a positive number of channels",
                    le=params.MAX_CHANNELS)
        for i in (1, 2):
            ctx.pos_int(shape[i], f"input_shape[{i}]", "a positive image side",
                        le=params.MAX_IMAGE_SIZE)
    ctx.size(math.prod(shape), params.MAX_LAYER_NEURONS, "input_shape", "input size")
    if "T" not in d:
        ctx.missing("T", "a positive integer number of time steps")
    T = ctx.pos_int(d["T"], "T", "a positive integer number of time steps", le=params.MAX_T)
    dt_s = d.get("dt_s")
    if dt_s is not None:
        dt_s = ctx.number(dt_s, "dt_s", 0.0, float("inf"), "a time step > 0 in seconds")
        if dt_s <= 0:
            ctx.fail("dt_s", "a time step > 0 in seconds", d["dt_s"])
    encoding = ctx.choice(d.get("encoding", "direct"), "encoding", ENCODINGS)
    base_lif: dict[str, Any] = {"beta": 1.0, "theta": 1.0, "reset": "subtract", "ubits": None}
    if "neuron" in d:
        nd = ctx.mapping(d["neuron"], "neuron", "a mapping {beta, theta, reset}")
        base_lif = _neuron(ctx, nd, "neuron", base_lif, NEURON_KEYS)
    wbits = None
    if "bits" in d:
        bd = ctx.mapping(d["bits"], "bits", "a mapping {wbits, ubits}")
        ctx.keys(bd, BITS_KEYS, "bits")
        wbits = ctx.bits(bd.get("wbits"), "bits.wbits")
        base_lif["ubits"] = ctx.bits(bd.get("ubits"), "bits.ubits")
    if "layers" not in d:
        ctx.missing("layers", "a non-empty list of layer entries")
    layers = d["layers"]
    if not isinstance(layers, list) or not layers:
        ctx.fail("layers", "a non-empty list of layer entries", layers)

    b = GraphBuilder(shape, name=name, T=T, dt_s=dt_s, encoding=encoding, source="workload")
    wb = _WorkloadBuilder(ctx, b, base_lif, wbits)
    for i, entry in enumerate(layers):
        wb.entry(i, entry)
    try:
        b.add_output("output")
    except CodesignError as e:
        raise CodesignError(f"{where}: layers: {e}") from None
    if d.get("description"):
        b.g.graph["description"] = d["description"]
    if "spikesim" in d:
        b.g.graph["spikesim"] = _spikesim_facts(ctx, d["spikesim"])
    validate_graph(b.g, where=where)
    return b.g


def load_workload(path: Union[str, Path]) -> nx.DiGraph:
    """Read a workload YAML file into a validated SNN graph (no weights)."""
    path = Path(path)
    data = params.load_yaml(path, "workload file")
    return parse_workload(data, where=str(path), default_name=path.stem)
