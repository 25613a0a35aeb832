"""The column ADC as a plug-in: transfer function here, cost in :mod:`codesign.hw.components`.

Transfer function of a ``b``-bit converter with full scale ``I_fs`` (column current, here in units
of ``v_read dG``, see :mod:`codesign.sim.nonideal`), ``LSB = I_fs / (2^b - 1)``:

    code  = clip(round(((1 + gain_error) I + offset LSB) / LSB), 0, 2^b - 1)
    I_hat = code LSB

Full scale (``nonideal.adc.range``): ``array`` is the largest current the block can produce,
every one of its ``n`` rows driven with every cell at ``g_on``, ``I_fs = n g_on / dG``;
``calibrated`` is the largest column current seen on a calibration batch (see
:func:`codesign.sim.network.calibrate_adc`). The ADC resolution is the spec's ``adc.bits`` (or
``--adc-bits``): the very number the cost model charges (:attr:`ADC.bits`).

The digital back end turns ``I_hat`` into a slice sum by subtracting the off-state current of the
active rows (it counts them) and rounding to the integer grid: ``m = round(I_hat - n_active
g_off / dG)``. That is exact whenever ``|I_hat - I| < 1/2``, e.g. with no noise and ``LSB < 1``:
:func:`lossless_bits` gives the smallest such ``b``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from codesign.errors import CodesignError


def lossless_bits(full_scale: float) -> int:
    """Smallest ``b`` with ``LSB = full_scale / (2^b - 1) < 1`` (exact slice sums without noise)."""
    return max(1, int(math.floor(math.log2(full_scale + 1.0))) + 1)


@dataclass(frozen=True)
class ADC:
    """One column ADC setting (per crossbar row block)."""

    bits: int
    """Resolution (bits), 1..16: the bits the cost model charges."""
    full_scale: float
    """Full-scale column current (units of ``v_read dG``)."""
    offset_lsb: float = 0.0
    """Input-referred offset (LSB)."""
    gain_error: float = 0.0
    """Relative gain error."""

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or \
                not 1 <= self.bits <= 16:
            raise CodesignError(f"ADC bits {self.bits!r}: expected an integer 1..16")
        if not self.full_scale > 0:
            raise CodesignError(f"ADC full scale {self.full_scale!r}: expected > 0")

    @property
    def max_code(self) -> int:
        return 2 ** self.bits - 1

    @property
    def lsb(self) -> float:
        """Step of the converter (units of ``v_read dG``)."""
        return self.full_scale / self.max_code

    def steps(self, full_scale: torch.Tensor) -> tuple[float, float]:
        """``((1 + gain_error) / LSB, LSB)`` of one full scale (a one-element float32 tensor),
        the float32 values :meth:`convert` computes from it, as Python numbers (so a block's
        conversions run with scalar operands: the same arithmetic, bit for bit)."""
        lsb = full_scale / self.max_code
        return float((1.0 + self.gain_error) / lsb), float(lsb)

    def convert(self, current: torch.Tensor, full_scale: torch.Tensor | float | None = None,
                *, steps: tuple[float, float] | None = None) -> torch.Tensor:
        """``I -> I_hat`` (same units), in place on ``current`` (a fresh tensor).

        ``full_scale`` (broadcastable to ``current``, e.g. one value per row block) replaces
        :attr:`full_scale`; ``steps`` (:meth:`steps`) replaces both."""
        if steps is None:
            fs = self.full_scale if full_scale is None else full_scale
            lsb = fs / self.max_code
            scale = (1.0 + self.gain_error) / lsb
        else:
            scale, lsb = steps
        current.mul_(scale)
        if self.offset_lsb:
            current.add_(self.offset_lsb)
        current.round_().clamp_(0.0, float(self.max_code))
        return current.mul_(lsb)
