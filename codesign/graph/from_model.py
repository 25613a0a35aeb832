"""Lower a codesign :class:`~codesign.snn.model.SpikingNet` into the typed SNN graph.

Only networks made of the known layer types are accepted:
:class:`~codesign.snn.layers.Synapse` (conv or linear, batch norm optional, weights optionally
quantized), :class:`~codesign.snn.neuron.LIF`,
:class:`~codesign.snn.layers.Pool`, :class:`~codesign.snn.layers.Flatten`,
:class:`~codesign.snn.layers.GlobalAvgPool` and the membrane-shortcut block
:class:`~codesign.snn.model.MSBlock`. Any other module is refused by name with a
:class:`~codesign.errors.CodesignError`.

Node names are the model's module names, so activity recorded by module name (see
:func:`codesign.sim.activity.measure_activity`) maps onto nodes:

* VGG: ``input, conv1, lif1, pool1, ..., flatten, fc1, lif_fc1, fc_out, output``;
* ResNet: ``input, stem, block1.lif_a, block1.conv_a, block1.lif_b, block1.conv_b,
  [block1.shortcut,] block1.add, ..., lif_out, gap, gap.flatten, fc_out, output``.

An :class:`~codesign.snn.model.MSBlock` ``out = x + conv_b(LIF_b(conv_a(LIF_a(x))))`` becomes
``<block>.add`` with two producers: ``<block>.conv_b`` and either ``<block>.shortcut`` (a 1x1
conv reading ``LIF_a``'s spikes) or the block input ``x`` itself (identity). A
:class:`~codesign.snn.layers.GlobalAvgPool` ``(C, H, W) -> (C,)`` becomes an average
:class:`~codesign.graph.schema.PoolLayer` with kernel ``(H, W)`` (``gap``, giving ``(C, 1, 1)``)
followed by a flatten (``gap.flatten``). The readout (``fc_out``, no LIF) feeds the
:class:`~codesign.graph.schema.OutputLayer` ``output``.

Weights are the *deployed* ones, as numpy ``float32``: batch norm folded into ``W`` and ``b``
(running statistics), then fake-quantized when the layer has ``wbits``
(:meth:`~codesign.snn.layers.Synapse.quantized_params`). A folded batch norm always yields a bias.

LIF nodes carry the model's ``beta``, ``theta``, ``reset`` and ``ubits``. ``theta`` is the
nominal threshold; a quantized neuron fires at ``threshold_int * step`` (the nearest membrane
level), which the graph does not store.

Time: our models are discrete-time (one step is one update, no physical duration), so the graph
gets ``dt_s = None``; NIR export then writes :data:`codesign.graph.nir_io.DEFAULT_DT_S` (and
stores ``beta``/``theta`` in its metadata, so the round trip is exact).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import networkx as nx
import numpy as np
import torch
from torch import nn

from codesign.errors import CodesignError
from codesign.graph.build import GraphBuilder
from codesign.snn.layers import Flatten, GlobalAvgPool, Pool, Synapse
from codesign.snn.model import MSBlock, SpikingNet
from codesign.snn.neuron import LIF

KNOWN_TYPES = ("Synapse", "LIF", "Pool", "Flatten", "GlobalAvgPool", "MSBlock")


def deployed_params(syn: Synapse) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """BN-folded (and fake-quantized when ``syn.wbits``) weight and bias as ``float32`` numpy."""
    with torch.no_grad():
        w, b = syn.quantized_params() if syn.wq.enabled else syn.folded()
    w_np = w.detach().cpu().numpy().astype(np.float32, copy=True)
    b_np = None if b is None else b.detach().cpu().numpy().astype(np.float32, copy=True)
    return w_np, b_np


class _Lowering:
    """Walks a :class:`SpikingNet` in forward order and adds graph nodes."""

    def __init__(self, model: SpikingNet, b: GraphBuilder, where: str) -> None:
        self.model, self.b, self.where = model, b, where

    def fail(self, name: str, msg: str):
        raise CodesignError(f"{self.where}: layer {name!r}: {msg}")

    def unknown(self, name: str, mod: nn.Module):
        self.fail(name, f"module type {type(mod).__name__} is not a known layer type; expected "
                        f"one of {', '.join(KNOWN_TYPES)}")

    def add(self, name: str, mod: nn.Module, src: str) -> str:
        """Lower module ``mod`` named ``name`` reading node ``src``; return its output node."""
        if isinstance(mod, Synapse):
            return self.synapse(name, mod, src)
        if isinstance(mod, LIF):
            return self.b.add_lif(name, beta=mod.beta, theta=mod.theta, reset=mod.reset,
                                  ubits=mod.ubits, src=src, reset_timing=mod.reset_timing)
        if isinstance(mod, Pool):
            if mod.kind not in ("max", "avg"):
                self.fail(name, f"pool kind {mod.kind!r}; expected max or avg")
            return self.b.add_pool(name, mod.kind, mod.kernel_size, mod.stride, src=src)
        if isinstance(mod, Flatten):
            return self.b.add_flatten(name, src=src)
        if isinstance(mod, GlobalAvgPool):
            shape = self.b.shape_of(src)
            if len(shape) != 3:
                self.fail(name, f"global average pooling needs a (C, H, W) input, got {shape}")
            pooled = self.b.add_pool(name, "avg", shape[1:], src=src)
            return self.b.add_flatten(f"{name}.flatten", src=pooled)
        if isinstance(mod, MSBlock):
            return self.block(name, mod, src)
        self.unknown(name, mod)
        raise AssertionError  # unreachable

    def synapse(self, name: str, syn: Synapse, src: str) -> str:
        w, bias = deployed_params(syn)
        op = syn.op
        if syn.kind == "conv" and isinstance(op, nn.Conv2d):
            if isinstance(op.padding, str):
                self.fail(name, f"padding {op.padding!r}; expected integer padding")
            if op.padding_mode != "zeros":
                self.fail(name, f"padding_mode {op.padding_mode!r}; expected 'zeros'")
            return self.b.add_conv(name, op.out_channels, tuple(op.kernel_size),
                                   tuple(op.stride), tuple(op.padding),
                                   dilation=tuple(op.dilation), groups=op.groups,
                                   has_bias=bias is not None, wbits=syn.wbits, weight=w,
                                   bias=bias, src=src)
        if syn.kind == "linear" and isinstance(op, nn.Linear):
            return self.b.add_linear(name, op.out_features, has_bias=bias is not None,
                                     wbits=syn.wbits, weight=w, bias=bias, src=src)
        self.fail(name, f"Synapse kind {syn.kind!r} with operator {type(op).__name__}; expected "
                        "conv (Conv2d) or linear (Linear)")
        raise AssertionError  # unreachable

    def block(self, name: str, blk: MSBlock, src: str) -> str:
        for part in ("lif_a", "conv_a", "lif_b", "conv_b", "shortcut"):
            mod = getattr(blk, part)
            want = LIF if part.startswith("lif") else Synapse
            if part == "shortcut" and mod is None:
                continue
            if not isinstance(mod, want):
                self.unknown(f"{name}.{part}", mod)
        extra = [n for n, _ in blk.named_children()
                 if n not in ("lif_a", "conv_a", "lif_b", "conv_b", "shortcut")]
        if extra:
            self.fail(name, f"MSBlock has unexpected sub-module(s) {extra}")
        s_a = self.add(f"{name}.lif_a", blk.lif_a, src)
        y = self.add(f"{name}.conv_a", blk.conv_a, s_a)
        y = self.add(f"{name}.lif_b", blk.lif_b, y)
        y = self.add(f"{name}.conv_b", blk.conv_b, y)
        short = src if blk.shortcut is None else self.add(f"{name}.shortcut", blk.shortcut, s_a)
        try:
            return self.b.add_add(f"{name}.add", [y, short])
        except CodesignError as e:
            self.fail(name, str(e))
            raise AssertionError from None  # unreachable


def model_input_shape(model: SpikingNet) -> tuple[int, int, int]:
    """Per-step input shape ``(C, H, W)`` of a zoo model (from its spec)."""
    spec = model.spec
    try:
        c, s = int(spec["in_channels"]), int(spec["image_size"])
    except (KeyError, TypeError, ValueError):
        raise CodesignError("model spec: in_channels and image_size are needed to know the "
                            "input shape") from None
    return (c, s, s)


def graph_from_model(model: SpikingNet, *, name: Optional[str] = None) -> nx.DiGraph:
    """The validated SNN graph of ``model`` (see the module docstring for names and weights).

    Graph attributes: ``T`` (the model's), ``dt_s = None`` (discrete time), ``input_shape``,
    ``encoding``, ``name`` (``name`` or the spec's name) and ``source = "checkpoint"``.
    """
    if not isinstance(model, SpikingNet):
        raise CodesignError(f"graph_from_model: expected a codesign SpikingNet, got "
                            f"{type(model).__name__}")
    gname = name or str(model.spec.get("name") or model.spec.get("arch") or "model")
    where = f"model {gname!r}"
    b = GraphBuilder(model_input_shape(model), name=gname, T=int(model.T), dt_s=None,
                     encoding=model.encoding, source="checkpoint")
    low = _Lowering(model, b, where)
    src = "input"
    for key, mod in model.layers.items():
        try:
            src = low.add(key, mod, src)
        except CodesignError as e:
            if str(e).startswith(where):
                raise
            raise CodesignError(f"{where}: layer {key!r}: {e}") from None
    b.add_output("output", src=src)
    return b.build()


def graph_from_checkpoint(path: Union[str, Path], *, name: Optional[str] = None) -> nx.DiGraph:
    """Load a codesign checkpoint (``.pt``) and lower it with :func:`graph_from_model`."""
    from codesign.snn.checkpoint import load_checkpoint

    model, _ = load_checkpoint(path)
    return graph_from_model(model, name=name)
