"""Hardware side of codesign: spec (YAML, units), component models, mapping and cost.

Public API::

    spec = load_spec("hw_configs/spikesim_rram_65nm.yaml")        # validated HardwareSpec
    spec = spec.with_overrides(adc_bits=6, wbits=4, ubits=4)       # re-validated copy
    result = map_network(graph, spec, activity=None,               # dense, or measured spikes
                         mapping="im2col", duplication=1)
    result.layers, result.summary, result.per_step                 # DataFrame, dict, DataFrame

The files (csv, json, png) are written by :func:`codesign.report.write_report`, one layer up.

Imports numpy/pandas/matplotlib only (never torch).
"""

from codesign.hw.components import build_components
from codesign.hw.mapping import MAPPING_MODES, LayerMapping, map_layer
from codesign.hw.network import MapResult, map_network
from codesign.hw.spec import HardwareSpec, load_spec, preset_path, spec_from_dict

__all__ = [
    "HardwareSpec", "LayerMapping", "MAPPING_MODES", "MapResult", "build_components",
    "load_spec", "map_layer", "map_network", "preset_path", "spec_from_dict",
]
