"""Model zoo: spiking VGG- and ResNet-style networks built from a spec (dict or YAML).

Spec keys (defaults in :data:`DEFAULT_SPEC`)::

    arch: vgg | resnet
    in_channels: 1            # 1 or 2 channel 28x28, 3 channel 32x32 ...
    image_size: 28
    num_classes: 10
    T: 4                      # time steps
    encoding: direct | rate | events
    batch_norm: true
    neuron: {beta: 0.5, theta: 1.0, reset: subtract, surrogate: atan, alpha: 2.0,
             reset_timing: immediate}   # or delayed (snnTorch's default reset_delay=True)
    quant: {wbits: null, ubits: null, first_bits: null, last_bits: null, per_channel: false}
    # vgg:    channels: [32, M, 64, M]   (int = 3x3 conv + BN + LIF, M = 2x2 max pool, A = avg pool)
    #         fc: [256]                  (hidden linear + LIF layers before the readout)
    # resnet: stem: 16, stages: [[16, 1, 1], [32, 1, 2]]   ([channels, blocks, stride] each)

``quant.first_bits``/``last_bits`` set the first conv's and the readout's weight precision; when
``wbits`` is given and they are not, they default to 8 bits (the common practice of keeping the
encoding layer and the classifier at higher precision). ``null`` means floating point.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

from torch import nn

from codesign import params
from codesign.errors import CodesignError
from codesign.snn.encoding import ENCODINGS
from codesign.snn.layers import Flatten, GlobalAvgPool, Pool, Synapse
from codesign.snn.model import MSBlock, SpikingNet
from codesign.snn.neuron import LIF, RESET_TIMINGS, RESETS
from codesign.snn.surrogate import SURROGATES

DEFAULT_SPEC: dict[str, Any] = {
    "arch": "vgg",
    "in_channels": 1,
    "image_size": 28,
    "num_classes": 10,
    "T": 4,
    "encoding": "direct",
    "batch_norm": True,
    "neuron": {"beta": 0.5, "theta": 1.0, "reset": "subtract", "surrogate": "atan", "alpha": 2.0,
               "reset_timing": "immediate"},
    "quant": {"wbits": None, "ubits": None, "first_bits": None, "last_bits": None,
              "per_channel": False},
}

PRESETS: dict[str, dict[str, Any]] = {
    "vgg-small": {"arch": "vgg", "channels": [32, "M", 64, "M", 64, "M"], "fc": [256]},
    "vgg-mid": {"arch": "vgg", "channels": [16, "M", 32, "M", 32, "M"], "fc": [128]},
    "vgg-tiny": {"arch": "vgg", "channels": [8, "M", 16, "M", 16, "M"], "fc": [64]},
    "vgg9": {"arch": "vgg", "channels": [64, 64, "A", 128, 128, "A", 256, 256, 256, "A"],
             "fc": [1024], "in_channels": 3, "image_size": 32},
    "resnet-small": {"arch": "resnet", "stem": 16, "stages": [[16, 1, 1], [32, 1, 2], [64, 1, 2]]},
}

_TOP_KEYS = set(DEFAULT_SPEC) | {"name", "channels", "fc", "stem", "stages"}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_spec(model: Union[str, dict, Path], **overrides: Any) -> dict:
    """Full spec from a preset name, a YAML path or a dict, with nested ``overrides`` applied.

    A YAML spec is read by the one strict loader (:func:`codesign.params.load_yaml`); every
    value, from a file, a dict (a checkpoint's ``spec``) or an override (a CLI flag), is checked
    by :func:`_validate` before any tensor is allocated.
    """
    if isinstance(model, Mapping):
        spec: dict = dict(model)
        origin = "spec"
    elif not isinstance(model, (str, Path)):
        raise CodesignError(f"model spec: expected a preset name, a .yaml file or a mapping, got "
                            f"{type(model).__name__}")
    elif str(model) in PRESETS:
        spec = {"name": str(model), **PRESETS[str(model)]}
        origin = f"model {model!r}"
    elif str(model).endswith((".yaml", ".yml")):
        path = Path(model)
        spec = params.load_yaml(path, "model spec")
        spec.setdefault("name", path.stem)
        origin = str(path)
    else:
        raise CodesignError(
            f"model {model!r} is not known; expected one of {', '.join(PRESETS)} or a .yaml spec"
        )
    ck = params.Checker(origin)
    ck.keys(spec, tuple(sorted(_TOP_KEYS)), "")
    for key in ("neuron", "quant"):
        if key in spec:
            ck.mapping(spec[key], key, f"a mapping of {key} keys")
            ck.keys(spec[key], tuple(DEFAULT_SPEC[key]), key)
    full = _merge(DEFAULT_SPEC, spec)
    full = _merge(full, {k: v for k, v in overrides.items() if v is not None})
    _validate(full, origin)
    return full


def _validate(spec: dict, origin: str) -> None:
    """Types, ranges and sizes of a merged spec (limits: :mod:`codesign.params`); the parameter
    count and the largest feature map are bounded before the network is built."""
    ck = params.Checker(origin)
    ck.keys(spec, tuple(sorted(_TOP_KEYS)), "")
    if "name" in spec:
        ck.text(spec["name"], "name", nonempty=True)
    ck.choice(spec["arch"], "arch", ("vgg", "resnet"))
    cin = ck.pos_int(spec["in_channels"], "in_channels", le=params.MAX_CHANNELS)
    size = ck.pos_int(spec["image_size"], "image_size", le=params.MAX_IMAGE_SIZE)
    ncls = ck.pos_int(spec["num_classes"], "num_classes", le=params.MAX_CLASSES)
    ck.pos_int(spec["T"], "T", "a positive number of time steps", le=params.MAX_T)
    ck.choice(spec["encoding"], "encoding", tuple(ENCODINGS))
    ck.boolean(spec["batch_norm"], "batch_norm")
    n = ck.mapping(spec["neuron"], "neuron", "a mapping of neuron keys")
    ck.keys(n, tuple(DEFAULT_SPEC["neuron"]), "neuron")
    ck.real(n["beta"], "neuron.beta", ge=0.0, le=1.0)
    ck.real(n["theta"], "neuron.theta", gt=0.0, le=params.MAX_QUANTITY)
    ck.choice(n["reset"], "neuron.reset", RESETS)
    ck.choice(n["reset_timing"], "neuron.reset_timing", RESET_TIMINGS)
    ck.choice(n["surrogate"], "neuron.surrogate", SURROGATES)
    ck.real(n["alpha"], "neuron.alpha", gt=0.0, le=1e6)
    q = ck.mapping(spec["quant"], "quant", "a mapping of quant keys")
    ck.keys(q, tuple(DEFAULT_SPEC["quant"]), "quant")
    for key in ("wbits", "first_bits", "last_bits"):
        ck.bits(q[key], f"quant.{key}")
    ck.bits(q["ubits"], "quant.ubits", minimum=2)
    ck.boolean(q["per_channel"], "quant.per_channel")
    n_params, largest = 0, cin * size * size
    if spec["arch"] == "vgg":
        chans = spec.get("channels")
        if not isinstance(chans, list) or not chans:
            ck.fail("channels", "a non-empty list of conv widths and M/A pooling marks", chans)
        c = cin
        for i, item in enumerate(chans):
            if item in ("M", "A"):
                size //= 2
                if size <= 0:
                    ck.fail(f"channels[{i}]", "no more pooling stages than the image size allows",
                            item)
                continue
            w = ck.pos_int(item, f"channels[{i}]", "a conv width or 'M'/'A'",
                           le=params.MAX_CHANNELS)
            n_params += 9 * c * w
            c = w
            largest = max(largest, c * size * size)
            ck.size(largest, params.MAX_LAYER_NEURONS, f"channels[{i}]", "feature map size")
        feat = c * size * size
        fc = spec.get("fc", [])
        if not isinstance(fc, list):
            ck.fail("fc", "a list of hidden layer widths", fc)
        for j, width in enumerate(fc):
            w = ck.pos_int(width, f"fc[{j}]", "a positive layer width", le=params.MAX_CHANNELS)
            n_params += feat * w
            feat = w
    else:
        c = ck.pos_int(spec.get("stem"), "stem", "a positive number of channels",
                       le=params.MAX_CHANNELS)
        n_params += 9 * cin * c
        largest = max(largest, c * size * size)
        stages = spec.get("stages")
        if not isinstance(stages, list) or not stages:
            ck.fail("stages", "a non-empty list of [channels, blocks, stride]", stages)
        for i, st in enumerate(stages):
            if not isinstance(st, list) or len(st) != 3:
                ck.fail(f"stages[{i}]", "[channels, blocks, stride]", st)
            w = ck.pos_int(st[0], f"stages[{i}][0]", "a positive number of channels",
                           le=params.MAX_CHANNELS)
            blocks = ck.pos_int(st[1], f"stages[{i}][1]", "a positive number of blocks",
                                le=1000)
            stride = ck.pos_int(st[2], f"stages[{i}][2]", "a positive stride", le=size)
            size = -(-size // stride)
            n_params += 9 * c * w + 9 * w * w + (c * w if (stride != 1 or w != c) else 0)
            n_params += (blocks - 1) * 18 * w * w
            c = w
            largest = max(largest, c * size * size)
        feat = c
    ck.size(largest, params.MAX_LAYER_NEURONS, "image_size", "largest feature map")
    n_params += feat * ncls
    ck.size(n_params, params.MAX_PARAMS, "channels" if spec["arch"] == "vgg" else "stages",
            "weights")


def _bits(q: dict, which: str) -> Optional[int]:
    if q[which] is not None:
        return q[which]
    return 8 if q["wbits"] is not None else None


class _Builder:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.layers = nn.ModuleDict()
        self.q = spec["quant"]
        self.n = spec["neuron"]
        self.bn = bool(spec["batch_norm"])

    def lif(self, name: str, feed: Optional[Synapse]) -> LIF:
        lif = LIF(self.n["beta"], self.n["theta"], self.n["reset"], self.n["surrogate"],
                  self.n["alpha"], self.q["ubits"], self.n["reset_timing"])
        if feed is not None and feed.wq.enabled and lif.ubits is not None:
            lif.bind_scale(feed.weight_step)
        self.layers[name] = lif
        return lif

    def synapse(self, name: str, kind: str, cin: int, cout: int, wbits: Optional[int],
                **kw: Any) -> Synapse:
        syn = Synapse(kind, cin, cout, wbits=wbits, per_channel=bool(self.q["per_channel"]), **kw)
        self.layers[name] = syn
        return syn


def build_model(spec: Union[str, dict, Path], **overrides: Any) -> SpikingNet:
    """Build a :class:`SpikingNet` from a preset name, YAML path or spec dict."""
    full = resolve_spec(spec, **overrides)
    b = _Builder(full)
    if full["arch"] == "vgg":
        feat = _build_vgg(b, full)
    else:
        feat = _build_resnet(b, full)
    b.synapse("fc_out", "linear", feat, full["num_classes"], _bits(b.q, "last_bits"), bias=True)
    model = SpikingNet(full, b.layers)
    model.calibrate_quantizers()
    return model


def _build_vgg(b: _Builder, spec: dict) -> int:
    c, size = spec["in_channels"], spec["image_size"]
    i = p = 0
    for item in spec["channels"]:
        if item in ("M", "A"):
            p += 1
            b.layers[f"pool{p}"] = Pool("max" if item == "M" else "avg", 2)
            size //= 2
            if size <= 0:
                raise CodesignError("spec channels: too many pooling stages for the image size")
            continue
        i += 1
        bits = _bits(b.q, "first_bits") if i == 1 else b.q["wbits"]
        syn = b.synapse(f"conv{i}", "conv", c, item, bits, kernel_size=3, padding=1,
                        batch_norm=b.bn)
        b.lif(f"lif{i}", syn)
        c = item
    b.layers["flatten"] = Flatten()
    feat = c * size * size
    for j, width in enumerate(spec.get("fc", []), start=1):
        syn = b.synapse(f"fc{j}", "linear", feat, width, b.q["wbits"], bias=True)
        b.lif(f"lif_fc{j}", syn)
        feat = width
    return feat


def _build_resnet(b: _Builder, spec: dict) -> int:
    c = spec["stem"]
    b.synapse("stem", "conv", spec["in_channels"], c, _bits(b.q, "first_bits"),
              kernel_size=3, padding=1, batch_norm=b.bn)
    k = 0
    for width, blocks, stride in spec["stages"]:
        for j in range(blocks):
            k += 1
            st = stride if j == 0 else 1
            wb = b.q["wbits"]
            lif_a = LIF(b.n["beta"], b.n["theta"], b.n["reset"], b.n["surrogate"], b.n["alpha"],
                        b.q["ubits"], b.n["reset_timing"])
            conv_a = Synapse("conv", c, width, kernel_size=3, stride=st, padding=1,
                             batch_norm=b.bn, wbits=wb, per_channel=bool(b.q["per_channel"]))
            lif_b = LIF(b.n["beta"], b.n["theta"], b.n["reset"], b.n["surrogate"], b.n["alpha"],
                        b.q["ubits"], b.n["reset_timing"])
            if conv_a.wq.enabled and lif_b.ubits is not None:
                lif_b.bind_scale(conv_a.weight_step)
            conv_b = Synapse("conv", width, width, kernel_size=3, padding=1, batch_norm=b.bn,
                             wbits=wb, per_channel=bool(b.q["per_channel"]))
            short = None
            if st != 1 or width != c:
                short = Synapse("conv", c, width, kernel_size=1, stride=st, padding=0,
                                batch_norm=b.bn, wbits=wb, per_channel=bool(b.q["per_channel"]))
            b.layers[f"block{k}"] = MSBlock(lif_a, conv_a, lif_b, conv_b, short)
            c = width
    b.lif("lif_out", None)
    b.layers["gap"] = GlobalAvgPool()
    return c
