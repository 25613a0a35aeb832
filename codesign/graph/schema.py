"""Typed layer nodes of the codesign SNN graph.

The SNN graph is a ``networkx.DiGraph`` whose nodes are layer names and whose node attribute
``"layer"`` holds one of the dataclasses below. Graph-level attributes (``graph.graph``):

* ``T``             -- number of time steps per inference (int, > 0);
* ``dt_s``          -- simulation time step in seconds (float or ``None``; needed to turn NIR time
                        constants into a per-step leak by forward Euler, ``beta = 1 - dt/tau``,
                        which is what the snnTorch and SpikingJelly exporters invert);
* ``name``          -- model or workload name;
* ``input_shape``   -- input shape without batch and time, e.g. ``(1, 28, 28)``;
* ``encoding``      -- ``"direct"`` (analog image drives the first layer at every step),
                        ``"rate"`` (Poisson spikes) or ``"events"`` (binary event frames);
* ``source``        -- where the graph came from (``"checkpoint"``, ``"nir"``, ``"workload"``, ...).

Shapes never include batch or time: a conv feature map is ``(C, H, W)``, a vector ``(N,)``.
Edges run from producer to consumer; a residual ``add`` node has two predecessors. Every edge
carries the kind of signal on it (``signal``: spikes, multilevel or analog, with ``levels`` and
``static``; see :mod:`codesign.graph.signals`).

Bit-widths: ``wbits`` on synaptic layers (conv, linear) is the weight precision (``None`` means
floating point); ``ubits`` on LIF nodes is the stored membrane-potential precision (``None``
means floating point).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

import numpy as np

Shape = tuple[int, ...]
ResetMode = Literal["subtract", "zero"]


@dataclass
class InputLayer:
    """Network input; ``shape`` is ``(C, H, W)`` or ``(N,)``."""

    shape: Shape
    op: str = field(default="input", init=False)

    @property
    def out_shape(self) -> Shape:
        return self.shape


@dataclass
class ConvLayer:
    """2-D convolution (cross-correlation) ``y = W * x + b``.

    ``weight`` (optional, ``(out_channels, in_channels // groups, kh, kw)``) is absent for
    workload-only graphs. ``in_shape``/``out_shape`` are ``(C, H, W)``; per spatial axis
    ``out = floor((in + 2*padding - dilation*(k - 1) - 1) / stride) + 1`` (as in PyTorch).
    """

    in_shape: Shape
    out_shape: Shape
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    has_bias: bool = False
    wbits: Optional[int] = None
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    op: str = field(default="conv", init=False)
    dilation: tuple[int, int] = (1, 1)

    @property
    def macs_per_step(self) -> int:
        """Multiply-accumulates per time step for one sample (dense)."""
        kh, kw = self.kernel_size
        c, h, w = self.out_shape
        return c * h * w * (self.in_channels // self.groups) * kh * kw

    @property
    def params(self) -> int:
        """Number of weights (plus biases when ``has_bias``)."""
        kh, kw = self.kernel_size
        n = self.out_channels * (self.in_channels // self.groups) * kh * kw
        return n + (self.out_channels if self.has_bias else 0)


@dataclass
class LinearLayer:
    """Fully connected layer ``y = W x + b``; ``weight`` is ``(out_features, in_features)``."""

    in_features: int
    out_features: int
    has_bias: bool = False
    wbits: Optional[int] = None
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    op: str = field(default="linear", init=False)

    @property
    def in_shape(self) -> Shape:
        return (self.in_features,)

    @property
    def out_shape(self) -> Shape:
        return (self.out_features,)

    @property
    def macs_per_step(self) -> int:
        return self.in_features * self.out_features

    @property
    def params(self) -> int:
        """Number of weights (plus biases when ``has_bias``)."""
        return self.in_features * self.out_features + (self.out_features if self.has_bias else 0)


@dataclass
class PoolLayer:
    """Spatial pooling; ``kind`` is ``"max"`` (an OR on binary spikes), ``"avg"`` or ``"sum"``."""

    in_shape: Shape
    out_shape: Shape
    kind: Literal["max", "avg", "sum"]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    op: str = field(default="pool", init=False)


@dataclass
class FlattenLayer:
    """Flatten ``(C, H, W)`` into ``(C*H*W,)`` in C-order."""

    in_shape: Shape
    op: str = field(default="flatten", init=False)

    @property
    def out_shape(self) -> Shape:
        return (int(np.prod(self.in_shape)),)


@dataclass
class AddLayer:
    """Element-wise sum of its predecessors' outputs (membrane/current shortcut)."""

    shape: Shape
    op: str = field(default="add", init=False)

    @property
    def out_shape(self) -> Shape:
        return self.shape


@dataclass
class LIFLayer:
    """Leaky integrate-and-fire population.

    Per step: ``H[t] = beta*U[t-1] + I[t]``, ``S[t] = 1[H[t] >= theta]``, and
    ``U[t] = H[t] - theta*S[t]`` (subtract) or ``H[t]*(1 - S[t])`` (zero). ``beta = 1`` is IF.
    ``ubits`` is the stored membrane precision (``None`` = float). ``reset_timing = "delayed"``
    subtracts the threshold one step late, undecayed (snnTorch's default; see
    :mod:`codesign.snn.neuron`); it changes the spikes, not the hardware.
    """

    shape: Shape
    beta: float = 1.0
    theta: float = 1.0
    reset: ResetMode = "subtract"
    ubits: Optional[int] = None
    reset_timing: str = "immediate"
    op: str = field(default="lif", init=False)

    @property
    def out_shape(self) -> Shape:
        return self.shape

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class OutputLayer:
    """Network output (class logits per step)."""

    shape: Shape
    op: str = field(default="output", init=False)

    @property
    def out_shape(self) -> Shape:
        return self.shape


Layer = Union[
    InputLayer, ConvLayer, LinearLayer, PoolLayer, FlattenLayer, AddLayer, LIFLayer, OutputLayer
]
SYNAPTIC_OPS = ("conv", "linear")
