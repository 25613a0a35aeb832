"""Codes of the first layer's analog input, as the row driver applies them: ONE definition,
used by the cost model's activity (:func:`codesign.hw.activity.binary_planes`) and by the
simulator's crossbar (:meth:`codesign.sim.crossbar.CrossbarLayer.forward_chips`).

Physics. A row DAC, or a bit-serial driver that applies one bit of the input code per read,
converts a code into a row voltage against a *fixed* full scale set when the chip is designed;
it does not rescale each batch to its own maximum. The full scale is the range the data
pipeline guarantees for every analog input: images in ``[0, 1]`` (``codesign.data``: every
loader scales to it, ``npz`` refuses floats outside it), so ``INPUT_FULL_SCALE = 1``. With
``bits`` of resolution the driver has ``L = 2^bits - 1`` steps and the code of an input ``x`` is

    q = round(clip(x, 0, 1) * L)        (round half to even; an input above full scale saturates)

Bit-serial drive applies bit ``k`` of ``q`` on read ``k`` (``bits`` reads, shift-added with
weight ``2^k``); a DAC applies ``q / L`` of the read voltage in one read. Either way the product
is ``sum_r w_r q_r`` in units of ``1 / L`` of the input. A batch whose brightest pixel is 0.5
uses half the codes (``q <= 128`` at 8 bits), exactly as on the chip.

The function works on numpy arrays and torch tensors alike (``clip``, ``*`` and ``round`` are
the same IEEE float operations in both, and both round half to even), so that the cost model and
the simulator cannot disagree on a code; this module imports neither library's tensors.
"""

from __future__ import annotations

from typing import TypeVar

INPUT_FULL_SCALE = 1.0
"""Input value driven at the top code (the data pipeline's range is ``[0, INPUT_FULL_SCALE]``)."""

A = TypeVar("A")


def input_levels(bits: int) -> int:
    """Steps of a ``bits``-bit input driver: ``2^bits - 1`` (the top code)."""
    return 2 ** int(bits) - 1


def input_codes(x: A, bits: int) -> A:
    """Integer-valued codes ``round(clip(x / INPUT_FULL_SCALE, 0, 1) * (2^bits - 1))`` of an
    analog input (module docstring), same type and float dtype as ``x`` (numpy array or torch
    tensor)."""
    scaled = x if INPUT_FULL_SCALE == 1.0 else x / INPUT_FULL_SCALE  # type: ignore[operator]
    return (scaled.clip(0.0, 1.0) * input_levels(bits)).round()  # type: ignore[attr-defined]
