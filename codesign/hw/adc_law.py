"""One ADC cost law: energy and area per conversion from the Murmann ADC survey.

Energy per conversion (pJ), fitted here to the Murmann-survey regression as evaluated in
``../shared/research/imc_simulators.md`` (section 5.2, accelergy-adc-plug-in ``model.yaml``:
4/6/8 bit at 65/32/22 nm = 3.5/4.0/6.5, 0.92/1.07/1.71 and 0.46/0.53/0.85 pJ)::

    E(b, node, f) = E0 * (node / 32 nm)^alpha * (1 + 2^(b - b0)) * max(1, f / f_c(b))^gamma

* ``E0 (1 + 2^(b - b0))``: a per-conversion floor (comparator, logic, references) plus a term
  doubling per bit (capacitive DAC / comparator noise); the 9 survey points are fitted by least
  squares in log space (``E0 = 0.866 pJ``, ``alpha = 1.873``, ``b0 = 8.037``), worst point
  within 1.6 %. It is fitted on 4-8 bits; 1-3 bits are an extrapolation (the floor).
* Sample-rate term: below the corner ``f_c(b)`` the survey's energy bound does not depend on
  rate; above it the Schreier figure of merit falls by 2.872 dB per e-fold of rate, i.e. energy
  grows as ``f^gamma``, ``gamma = 2.872 / (10 / ln 10) = 0.661``. The corner is where the
  rate-limited FOM line ``213.78 - 2.872 ln f`` meets the resolution cap
  ``128.31 + 3.2205 b``: ``f_c(8 b) = 1.07 GHz``, and ``x 3.069`` per bit fewer
  (accelergy-adc-plug-in ``adc_data/model.yaml`` @6851cb8, ``FOMS_hf`` ``frequency``,
  ``intercept`` and ``max_by_enob`` coefficients).

Area of one ADC (um2), the same plug-in's regression over the survey (bottom-10 % quantile,
"the best possible ADC")::

    A = exp(1.34619) * node_nm^0.99328 * f_Hz^0.180715 * E_pJ^0.299124

(at 32 nm, 8 b, 1 GS/s: 5.97e3 um2, the ~6.0e3 um2 of the research notes).

A preset that quotes a measured ADC (e.g. SpikeSim's 2.03084 pJ, 693.633 um2 at 4 b, 65 nm)
anchors the law at that point: ``E(b) = E_ref * law(b, node, f_b) / law(b_ref, node_ref, f_ref)``
(same for area), so bit, node and rate scaling always come from this one law.
"""

from __future__ import annotations

import math

E0_PJ = 0.866
"""Energy floor of one conversion at 32 nm (pJ), least-squares fit (see module docstring)."""
NODE_EXP = 1.873
"""Exponent of the node in the energy law (fit)."""
B0_BITS = 8.037
"""Resolution at which the doubling term equals the floor (bits, fit)."""
F_CORNER_8B_HZ = 1.07e9
"""Rate above which an 8-bit conversion costs more (Hz; accelergy-adc-plug-in FOMS model)."""
CORNER_PER_BIT = 3.069
"""Factor by which the corner rises per bit fewer (``exp(3.22051 / 2.87190)``)."""
RATE_EXP = 0.661
"""Energy ~ ``f^RATE_EXP`` above the corner (``2.87190 ln 10 / 10``)."""
AREA_LOG_K = 1.34619
AREA_NODE_EXP = 0.99328
AREA_FREQ_EXP = 0.180715
AREA_ENERGY_EXP = 0.299124


def corner_hz(bits: float) -> float:
    """Sample rate below which energy per conversion does not depend on rate (Hz)."""
    return F_CORNER_8B_HZ * CORNER_PER_BIT ** (8.0 - bits)


def energy_pj(bits: float, node_nm: float, rate_hz: float) -> float:
    """Energy of one conversion at ``bits``, ``node_nm`` and ``rate_hz`` samples/s (pJ)."""
    e = E0_PJ * (node_nm / 32.0) ** NODE_EXP * (1.0 + 2.0 ** (bits - B0_BITS))
    return e * max(1.0, rate_hz / corner_hz(bits)) ** RATE_EXP


def area_um2(bits: float, node_nm: float, rate_hz: float) -> float:
    """Area of one ADC (um2) from the survey area regression.

    ``rate_hz`` is the rate the ADC is *designed* for, not the sample rate a SAR reaches by
    converting fewer bits: :func:`codesign.hw.components.adc_model` passes the rate of the
    spec's reference ADC (``1 / latency`` at ``ref_bits``) for every ``bits``. Why: a SAR
    converts one bit per comparator cycle, so at ``b`` bits on the same clock its sample rate
    is ``~1 / b``; fed that rate, the regression's ``f^0.18`` term (fast *designs* in the survey
    are large) outgrew the ``E^0.30`` term where the energy is near its floor (1-6 bits), and a
    4-bit SAR cost more area than a 6-bit one (5873 vs 5724 um2 at 32 nm, 1-bit 7430 um2),
    although the same comparator and clock with a smaller capacitive DAC are smaller. At the
    design rate the area grows with bits through the energy alone (tests/test_sim_energy_adc.py,
    ``test_adc_area_grows_with_bits``)."""
    e = energy_pj(bits, node_nm, rate_hz)
    return math.exp(AREA_LOG_K) * node_nm**AREA_NODE_EXP * rate_hz**AREA_FREQ_EXP \
        * e**AREA_ENERGY_EXP
