"""Model zoo: spiking VGG- and ResNet-style networks built from a spec (dict or YAML).

Spec keys (defaults in :data:`DEFAULT_SPEC`)::

    arch: vgg | resnet
    in_channels: 1            # 1 or 2 channel 28x28, 3 channel 32x32 ...
    image_size: 28
    num_classes: 10
    T: 4                      # time steps
    encoding: direct | rate | events
    batch_norm: true
    neuron: {beta: 0.5, theta: 1.0, reset: subtract, surrogate: atan, alpha: 2.0}
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
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from torch import nn

from codesign.errors import CodesignError
from codesign.snn.encoding import ENCODINGS
from codesign.snn.layers import Flatten, GlobalAvgPool, Pool, Synapse
from codesign.snn.model import MSBlock, SpikingNet
from codesign.snn.neuron import LIF
from codesign.snn.quant import check_bits

DEFAULT_SPEC: dict[str, Any] = {
    "arch": "vgg",
    "in_channels": 1,
    "image_size": 28,
    "num_classes": 10,
    "T": 4,
    "encoding": "direct",
    "batch_norm": True,
    "neuron": {"beta": 0.5, "theta": 1.0, "reset": "subtract", "surrogate": "atan", "alpha": 2.0},
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
    """Full spec from a preset name, a YAML path or a dict, with nested ``overrides`` applied."""
    if isinstance(model, dict):
        spec: dict = model
        origin = "spec"
    elif str(model) in PRESETS:
        spec = {"name": str(model), **PRESETS[str(model)]}
        origin = f"model {model!r}"
    elif str(model).endswith((".yaml", ".yml")):
        path = Path(model)
        if not path.is_file():
            raise CodesignError(f"{path}: model spec file not found")
        try:
            spec = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise CodesignError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
        spec.setdefault("name", path.stem)
        origin = str(path)
    else:
        raise CodesignError(
            f"model {model!r} is not known; expected one of {', '.join(PRESETS)} or a .yaml spec"
        )
    if not isinstance(spec, dict):
        raise CodesignError(f"{origin}: expected a mapping of spec keys")
    unknown = set(spec) - _TOP_KEYS
    if unknown:
        raise CodesignError(
            f"{origin}: unknown key(s) {sorted(unknown)}; expected keys among {sorted(_TOP_KEYS)}"
        )
    full = _merge(DEFAULT_SPEC, spec)
    full = _merge(full, {k: v for k, v in overrides.items() if v is not None})
    _validate(full, origin)
    return full


def _validate(spec: dict, origin: str) -> None:
    def bad(key: str, expected: str) -> CodesignError:
        return CodesignError(f"{origin}: {key} = {_get(spec, key)!r}; expected {expected}")

    if spec["arch"] not in ("vgg", "resnet"):
        raise bad("arch", "vgg or resnet")
    for key in ("in_channels", "image_size", "num_classes", "T"):
        v = spec[key]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise bad(key, "a positive integer")
    if spec["encoding"] not in ENCODINGS:
        raise bad("encoding", f"one of {ENCODINGS}")
    q = spec["quant"]
    unknown = set(q) - set(DEFAULT_SPEC["quant"])
    if unknown:
        raise CodesignError(f"{origin}: unknown quant key(s) {sorted(unknown)}")
    check_bits(q["wbits"], f"{origin}: quant.wbits")
    check_bits(q["first_bits"], f"{origin}: quant.first_bits")
    check_bits(q["last_bits"], f"{origin}: quant.last_bits")
    check_bits(q["ubits"], f"{origin}: quant.ubits", minimum=2)
    unknown = set(spec["neuron"]) - set(DEFAULT_SPEC["neuron"])
    if unknown:
        raise CodesignError(f"{origin}: unknown neuron key(s) {sorted(unknown)}")
    if spec["arch"] == "vgg":
        chans = spec.get("channels")
        if not isinstance(chans, list) or not chans:
            raise bad("channels", "a list of conv widths and M/A pooling marks")
        for c in chans:
            if c not in ("M", "A") and (isinstance(c, bool) or not isinstance(c, int) or c <= 0):
                raise bad("channels", "positive integers or 'M'/'A'")
        if not isinstance(spec.get("fc", []), list):
            raise bad("fc", "a list of hidden layer widths")
    else:
        if not isinstance(spec.get("stem"), int) or spec["stem"] <= 0:
            raise bad("stem", "a positive integer")
        stages = spec.get("stages")
        if not isinstance(stages, list) or not all(
            isinstance(s, list) and len(s) == 3 and all(isinstance(v, int) and v > 0 for v in s)
            for s in stages
        ):
            raise bad("stages", "a list of [channels, blocks, stride] positive integers")


def _get(spec: dict, dotted: str) -> Any:
    cur: Any = spec
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


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
                  self.n["alpha"], self.q["ubits"])
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
                        b.q["ubits"])
            conv_a = Synapse("conv", c, width, kernel_size=3, stride=st, padding=1,
                             batch_norm=b.bn, wbits=wb, per_channel=bool(b.q["per_channel"]))
            lif_b = LIF(b.n["beta"], b.n["theta"], b.n["reset"], b.n["surrogate"], b.n["alpha"],
                        b.q["ubits"])
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
