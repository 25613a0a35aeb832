"""Map synaptic layers onto crossbars, PEs and tiles.

Weights and columns
    A weight of ``wbits`` bits is stored in ``slices`` cells of ``bits_per_cell`` bits:
    ``offset``: ``slices = ceil(wbits / bits_per_cell)``, one column per slice;
    ``differential``: the sign is the pair, so ``slices = ceil((wbits - 1) / bits_per_cell)``
    magnitude slices on each of two columns. Columns per output channel:
    ``cols_per_weight = slices * (2 if differential else 1)``.

Rows (per group of a grouped convolution)
    ``im2col`` (NeuroSim conventional / aihwkit / CrossSim): the ``Cin * kh * kw`` unrolled
    weights (PyTorch ``unfold`` order: channel-major, then kernel row, then column) fill the rows
    and are split into ``ceil(Cin*kh*kw / R)`` row blocks.
    ``kernel_position`` (SpikeSim, NeuroSim "novel mapping"): one crossbar per kernel position
    and chunk of ``R`` input channels: ``kh*kw * ceil(Cin / R)`` row blocks.
    A linear layer has ``in_features`` rows (both modes agree).

Crossbars
    Each row block spans ``col_blocks = ceil(Cout * cols_per_weight / C)`` crossbars, so a layer
    uses ``groups * row_blocks * col_blocks`` crossbars, times the ``duplication`` factor (weight
    copies that process different output positions in parallel). ``PEs = ceil(crossbars /
    crossbars_per_pe)`` and ``tiles = ceil(PEs / pes_per_tile)``: a layer owns its tiles unless
    the spec lets layers share them (then the network packs PEs contiguously).

Utilisation
    ``used cells / available cells`` with used cells ``groups * Cin/g*kh*kw * Cout/g*cpw`` (times
    the duplication) and available cells ``crossbars * R * C``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from codesign.errors import CodesignError
from codesign.graph.schema import ConvLayer, LIFLayer, LinearLayer
from codesign.hw.spec import HardwareSpec

MAPPING_MODES = ("im2col", "kernel_position")
SynapticLayer = Union[ConvLayer, LinearLayer]


@dataclass(frozen=True)
class LayerMapping:
    """How one synaptic layer sits on the crossbars (counts per layer, not per step)."""

    name: str
    op: str
    """``conv`` or ``linear``."""
    mode: str
    """``im2col`` or ``kernel_position``."""
    wbits: int
    """Weight precision mapped (bits)."""
    slices: int
    """Cells per weight (per column of a differential pair)."""
    cols_per_weight: int
    """Columns per output channel: ``slices * (2 if differential else 1)``."""
    groups: int
    in_per_group: int
    """Input channels (features) per group."""
    out_per_group: int
    """Output channels (features) per group."""
    kernel: tuple[int, int]
    rows_per_group: int
    """Unrolled weight rows per group: ``in_per_group * kh * kw``."""
    block_rows: tuple[int, ...]
    """Rows used by each row block of one group."""
    col_blocks: int
    """Crossbars side by side per row block (they share its input)."""
    cols_used: int
    """Programmed columns per row block, summed over its ``col_blocks`` crossbars."""
    positions: int
    """Output positions per time step (``H' * W'``; 1 for a linear layer)."""
    duplication: int
    crossbars: int
    """Crossbars including duplication."""
    pes: int
    tiles: int
    """Tiles the layer would own alone (``ceil(pes / pes_per_tile)``)."""
    xbar_rows: int
    xbar_cols: int
    crossbars_per_pe: int
    pes_per_tile: int
    wbits_source: str = "graph"
    """Where ``wbits`` came from: ``graph`` (the layer's quantizer), ``override`` (forced) or
    ``float`` (a floating-point layer mapped at ``precision.float_wbits`` fixed point)."""
    bits_per_cell: int = 1

    def describe(self) -> str:
        """How the layer was mapped and why, in one line."""
        why = {"float": "float layer (no quantizer): ", "override": "forced: ",
               "graph": "quantized layer: "}[self.wbits_source]
        blocks = len(self.block_rows)
        return (f"{why}{self.wbits}-bit fixed point, {self.slices} slice"
                f"{'s' if self.slices != 1 else ''} of {self.bits_per_cell} bit"
                f"{'s' if self.bits_per_cell != 1 else ''} ({self.cols_per_weight} columns per "
                f"weight), {blocks} row block{'s' if blocks != 1 else ''} x "
                f"{self.col_blocks} column block{'s' if self.col_blocks != 1 else ''} "
                f"per group, {self.crossbars} crossbars ({self.mode})")

    @property
    def row_blocks(self) -> int:
        """Row blocks over all groups."""
        return self.groups * len(self.block_rows)

    @property
    def used_cells(self) -> int:
        return self.groups * self.rows_per_group * self.cols_used * self.duplication

    @property
    def available_cells(self) -> int:
        return self.crossbars * self.xbar_rows * self.xbar_cols

    @property
    def utilisation(self) -> float:
        """Used cells / cells of the crossbars the layer occupies."""
        return self.used_cells / self.available_cells

    @property
    def max_cols_per_crossbar(self) -> int:
        """Programmed columns of the fullest crossbar."""
        return min(self.cols_used, self.xbar_cols)

    def block_index(self) -> np.ndarray:
        """Row block (within a group) of every weight row, shape ``(in_per_group, kh, kw)``."""
        kh, kw = self.kernel
        c = np.arange(self.in_per_group)[:, None, None]
        off = (np.arange(kh)[:, None] * kw + np.arange(kw)[None, :])[None]
        r = self.xbar_rows
        if self.mode == "im2col":
            return (c * kh * kw + off) // r
        return off * math.ceil(self.in_per_group / r) + c // r


def weight_slices(wbits: int, bits_per_cell: int, signed: str) -> tuple[int, int]:
    """``(slices, cols_per_weight)`` for ``wbits`` weights (see module docstring)."""
    if signed == "differential":
        s = math.ceil(max(wbits - 1, 1) / bits_per_cell)
        return s, 2 * s
    s = math.ceil(wbits / bits_per_cell)
    return s, s


def resolve_wbits(layer: SynapticLayer, spec: HardwareSpec,
                  override: Optional[int] = None) -> int:
    """Weight bits to map: ``override`` > ``spec.precision.wbits`` > the graph's ``wbits`` >
    ``spec.precision.float_wbits`` (for floating-point layers)."""
    return wbits_and_source(layer, spec, override)[0]


def wbits_and_source(layer: SynapticLayer, spec: HardwareSpec,
                     override: Optional[int] = None) -> tuple[int, str]:
    """:func:`resolve_wbits` and where the value came from (``override`` | ``graph`` |
    ``float``)."""
    for v, src in ((override, "override"), (spec.precision.wbits, "override"),
                   (layer.wbits, "graph")):
        if v is not None:
            return int(v), src
    return int(spec.precision.float_wbits), "float"


def digital_widths(m: LayerMapping, planes: int, spec: HardwareSpec) -> tuple[int, int]:
    """``(shift_add_width, accumulator_width)`` in bits for layer ``m`` whose inputs carry
    ``planes`` bits (1 for spikes, the bit planes of multi-level spikes, the input bits of an
    analog input whether applied bit-serially or by a DAC).

    A row block of ``r`` rows of ``w``-bit signed weights and ``p``-bit unsigned inputs sums to
    at most ``r (2^(w-1)) (2^p - 1)`` in magnitude, so its exact partial sum needs
    ``w + p + ceil(log2 r)`` bits (sign included): the shift-adder, which combines the ADC
    outputs of the ``slices`` cells, the bit planes and the differential pair of one row block,
    is that wide (largest block). The accumulator adds the row blocks of one output: ``w + p +
    ceil(log2 R_g)`` with ``R_g`` the rows per group (the whole fan-in). A width fixed in the
    spec (``digital.*.width``) wins.
    """
    p = max(int(planes), 1)
    rb = max(max(m.block_rows), 1)
    sa = m.wbits + p + math.ceil(math.log2(rb)) if rb > 1 else m.wbits + p
    rg = max(m.rows_per_group, 1)
    acc = m.wbits + p + math.ceil(math.log2(rg)) if rg > 1 else m.wbits + p
    d = spec.digital
    return (d.shift_add.width or sa, d.accumulator.width or acc)


def resolve_ubits(lif: Optional[LIFLayer], spec: HardwareSpec,
                  override: Optional[int] = None) -> int:
    """Membrane bits to store, with the same precedence as :func:`resolve_wbits`."""
    for v in (override, spec.precision.ubits, None if lif is None else lif.ubits):
        if v is not None:
            return int(v)
    return spec.precision.float_ubits


def map_layer(
    layer: SynapticLayer,
    spec: HardwareSpec,
    *,
    name: str = "layer",
    mode: str = "im2col",
    duplication: int = 1,
    wbits: Optional[int] = None,
    crossbars_per_pe: Optional[int] = None,
) -> LayerMapping:
    """Map one conv or linear layer (``wbits`` overrides the layer's precision)."""
    if mode not in MAPPING_MODES:
        raise CodesignError(f"mapping: expected one of {MAPPING_MODES}, got {mode!r}")
    if not isinstance(duplication, (int, np.integer)) or duplication < 1:
        raise CodesignError(f"{name}: duplication must be an integer >= 1, got {duplication!r}")
    R, C = spec.crossbar.rows, spec.crossbar.cols
    bits, source = wbits_and_source(layer, spec, wbits)
    slices, cpw = weight_slices(bits, spec.bits_per_cell, spec.crossbar.signed)
    if isinstance(layer, ConvLayer):
        g = int(layer.groups)
        cin, cout = layer.in_channels // g, layer.out_channels // g
        kh, kw = layer.kernel_size
        positions = int(layer.out_shape[1] * layer.out_shape[2])
        op = "conv"
    elif isinstance(layer, LinearLayer):
        g, cin, cout, kh, kw, positions, op = 1, layer.in_features, layer.out_features, 1, 1, 1, \
            "linear"
    else:
        raise CodesignError(f"{name}: only conv and linear layers are mapped, got "
                            f"{type(layer).__name__}")
    rows = cin * kh * kw
    if mode == "im2col" or (kh, kw) == (1, 1):
        n = math.ceil(rows / R)
        block_rows = tuple([R] * (n - 1) + [rows - R * (n - 1)])
        used_mode = mode
    else:
        nq = math.ceil(cin / R)
        chunk = [R] * (nq - 1) + [cin - R * (nq - 1)]
        block_rows = tuple(chunk * (kh * kw))
        used_mode = mode
    cols_used = cout * cpw
    col_blocks = math.ceil(cols_used / C)
    crossbars = g * len(block_rows) * col_blocks * int(duplication)
    cpp = crossbars_per_pe or spec.hierarchy.crossbars_per_pe
    pes = math.ceil(crossbars / cpp)
    ppt = spec.hierarchy.pes_per_tile
    return LayerMapping(
        name=name, op=op, mode=used_mode, wbits=bits, slices=slices, cols_per_weight=cpw,
        groups=g, in_per_group=cin, out_per_group=cout, kernel=(kh, kw), rows_per_group=rows,
        block_rows=block_rows, col_blocks=col_blocks, cols_used=cols_used, positions=positions,
        duplication=int(duplication), crossbars=crossbars, pes=pes,
        tiles=math.ceil(pes / ppt), xbar_rows=R, xbar_cols=C, crossbars_per_pe=cpp,
        pes_per_tile=ppt, wbits_source=source, bits_per_cell=spec.bits_per_cell,
    )


def lossless_adc_bits(active_rows: int, bits_per_cell: int, input_bits: int = 1) -> int:
    """ADC bits that resolve every column sum of one read: ``active_rows`` inputs of
    ``input_bits`` bits each applied at once (1 for spikes and for bit-serial planes, the DAC
    resolution for a multi-bit DAC) on cells of ``bits_per_cell`` bits:
    ``ceil(log2(rows (2^bpc - 1) (2^in - 1) + 1))`` (for information)."""
    top = active_rows * (2**bits_per_cell - 1) * (2**input_bits - 1)
    return int(math.ceil(math.log2(top + 1)))
