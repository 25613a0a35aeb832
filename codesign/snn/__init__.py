"""Spiking-network core: LIF neuron, quantizers, multi-step layers, model zoo, checkpoints."""

from codesign.snn.checkpoint import load_checkpoint, save_checkpoint
from codesign.snn.layers import Synapse, fold_batchnorm
from codesign.snn.model import SpikingNet
from codesign.snn.neuron import LIF
from codesign.snn.quant import WeightQuantizer
from codesign.snn.zoo import PRESETS, build_model, resolve_spec

__all__ = [
    "LIF", "PRESETS", "SpikingNet", "Synapse", "WeightQuantizer", "build_model",
    "fold_batchnorm", "load_checkpoint", "resolve_spec", "save_checkpoint",
]
