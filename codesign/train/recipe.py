"""Build the network to train from a preset/spec and a data set, optionally from a checkpoint.

Quantization-aware fine-tuning starts from a floating-point checkpoint (``init``): the
architecture, T and neuron come from it, the new bit-widths from the caller; every weight and
batch-norm statistic is copied and the quantizer steps are LSQ-initialised from the copied
(BN-folded) weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import torch

from codesign.data import DataSplit
from codesign.errors import CodesignError
from codesign.snn.checkpoint import read_checkpoint
from codesign.snn.model import SpikingNet
from codesign.snn.zoo import build_model


def data_overrides(data: DataSplit) -> dict[str, Any]:
    """Spec entries that the data fixes: input channels, image size, classes, encoding."""
    c, h, w = data.input_shape
    if h != w:
        raise CodesignError(f"data {data.name}: non-square inputs {h}x{w} are not supported")
    out: dict[str, Any] = {"in_channels": c, "image_size": h, "num_classes": data.num_classes}
    if data.kind == "events":
        out["encoding"] = "events"
    return out


def prepare_model(model: Union[str, dict, Path, None], data: DataSplit, *,
                  init: Optional[Union[str, Path]] = None, **overrides: Any) -> SpikingNet:
    """Network for ``data``: from ``model`` (preset, YAML or spec) or from checkpoint ``init``.

    ``overrides`` are spec entries (``T``, ``encoding``, ``neuron``, ``quant`` dicts); ``None``
    values are ignored.
    """
    fixed = data_overrides(data)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if init is None:
        if model is None:
            raise CodesignError("train: give --model or --init")
        net = build_model(model, **fixed, **overrides)
        _check_events_T(net, data)
        return net
    blob = read_checkpoint(init)
    spec = dict(blob["spec"])
    if model is not None and isinstance(model, str) and spec.get("name") not in (None, model):
        raise CodesignError(
            f"{init}: checkpoint holds model {spec.get('name')!r}, not --model {model!r}"
        )
    for key in ("in_channels", "image_size", "num_classes"):
        if spec[key] != fixed[key]:
            raise CodesignError(
                f"{init}: checkpoint expects {key}={spec[key]}, data {data.name} has {fixed[key]}"
            )
    net = build_model(spec, **overrides)
    _copy_weights(net, blob["state_dict"], str(init))
    net.calibrate_quantizers()
    _check_events_T(net, data)
    return net


def _check_events_T(net: SpikingNet, data: DataSplit) -> None:
    if data.kind == "events" and data.x_train.shape[1] < net.T:
        raise CodesignError(
            f"--T {net.T}: data {data.name} has only {data.x_train.shape[1]} frames per sample"
        )


def _copy_weights(net: SpikingNet, state: dict[str, torch.Tensor], origin: str) -> None:
    """Copy every tensor of ``state`` that the new network has; quantizer steps may be new."""
    own = net.state_dict()
    for k, v in own.items():
        if k not in state:
            if k.endswith(("wq.scale", "own_scale")):
                continue
            raise CodesignError(f"{origin}: checkpoint lacks tensor {k!r} that the model needs")
        if tuple(state[k].shape) != tuple(v.shape):
            if k.endswith("wq.scale"):
                continue
            raise CodesignError(
                f"{origin}: tensor {k!r} has shape {tuple(state[k].shape)}, "
                f"expected {tuple(v.shape)}"
            )
        own[k] = state[k]
    net.load_state_dict(own)
