"""Membrane-potential distillation (MD-SNN style) with learned 1x1 connectors.

**Reconstruction, not the paper's verified formula.** The MD-SNN paper (Lee et al., DATE 2026)
and its code could not be read; this implements the reconstruction of
``../shared/research/kd_algorithms.md`` §2.3 (the project's research notes, beside the
repository root):

    L_MD = sum_{l in L} w_l * (1/|S|) sum_{t in S} (1/(B N_l)) sum_{b,i}
           d( H_T^l[t]_{b,i} / theta_T^l ,  C_l(H_S^l[t] / theta_S^l)_{b,i} )

* ``H^l[t]`` is the pre-reset, pre-threshold membrane potential of LIF layer ``l`` (the value
  compared with the threshold), recorded through the neuron's ``record`` flag. A quantized
  student's ``H`` is already de-quantized (``H_int * s``), so it is in the teacher's units.
* Each ``H`` is divided by its layer's nominal threshold ``theta`` (``H_hat = 1``: at threshold),
  so nets with different thresholds are compared in threshold units. For a quantized student we
  divide by the nominal ``theta``, not by its grid threshold ``theta_int * s``: dividing by a
  *detached* ``theta_int * s`` leaves a spurious gradient on the shared weight/membrane step
  ``s`` (the numerator scales with ``s``, the denominator is treated as constant), which made the
  membrane term diverge under Adam in our tests; with ``theta`` the gradient on ``s`` is the
  true one (``s`` scales the de-quantized weights and hence ``H``).
* ``d`` is the squared error (``"mse"``) or the smooth-L1 / Huber loss with ``delta = 1``
  (``"smooth_l1"``), averaged over steps ``S``, batch and the layer's ``N_l`` neurons.
* ``C_l`` is a learned connector on the student side: a bias-free 1x1 convolution (conv layers)
  or linear map (fully connected layers) from the student's to the teacher's channel count; the
  identity when the counts agree. Spatial sizes must match.
* Steps align by prefix, ``pi(t) = t``: the student's step ``t`` is compared with the teacher's
  step ``t`` (a causal LIF makes the teacher's first steps independent of later ones), so a
  student with fewer steps than the teacher is fine; one with more is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from codesign.errors import CodesignError
from codesign.snn.model import SpikingNet
from codesign.snn.neuron import LIF

DISTANCES = ("mse", "smooth_l1")


def threshold_of(lif: LIF) -> torch.Tensor:
    """The normalising threshold of a layer: its nominal ``theta`` (see the module docstring)."""
    return torch.tensor([lif.theta])


def normalise(h: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``H / theta`` with ``theta`` of shape ``(1,)`` or per channel ``(C,)``; ``H`` is
    ``(T, B, C, ...)``."""
    theta = theta.to(h.device, h.dtype)
    if theta.numel() > 1:
        theta = theta.reshape((1, 1, -1) + (1,) * (h.dim() - 3))
    return h / theta


def membrane_distance(h_student: torch.Tensor, h_teacher: torch.Tensor,
                      distance: str = "mse") -> torch.Tensor:
    """Mean element-wise distance between two equally shaped, normalised potentials; the teacher
    is detached. ``mse``: ``mean((a - b)^2)``; ``smooth_l1``: Huber with ``delta = 1``."""
    if distance == "mse":
        return F.mse_loss(h_student, h_teacher.detach())
    if distance == "smooth_l1":
        return F.smooth_l1_loss(h_student, h_teacher.detach(), beta=1.0)
    raise CodesignError(f"md distance {distance!r}: expected one of {', '.join(DISTANCES)}")


class Connector(nn.Module):
    """Bias-free 1x1 map of the student's ``H`` to the teacher's channel count, multi-step.

    ``(T, B, C_s, H, W) -> (T, B, C_t, H, W)`` (1x1 conv) or ``(T, B, C_s) -> (T, B, C_t)``
    (linear). Trained with the student; discarded after training.
    """

    def __init__(self, c_student: int, c_teacher: int, spatial: bool) -> None:
        super().__init__()
        self.spatial = spatial
        self.map: nn.Module = (nn.Conv2d(c_student, c_teacher, 1, bias=False) if spatial
                               else nn.Linear(c_student, c_teacher, bias=False))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        t = h.shape[0]
        y = self.map(h.flatten(0, 1))
        return y.reshape((t, -1) + tuple(y.shape[1:]))


def _key(name: str) -> str:
    return name.replace(".", "__")


class DistillHead(nn.Module):
    """Connectors of the distilled layers; pass ``head.parameters()`` to ``fit(extra_params=)``.

    Kept apart from the student so the student's checkpoint stays a plain network.
    """

    def __init__(self, layers: Sequence[str], shapes_s: Mapping[str, tuple[int, ...]],
                 shapes_t: Mapping[str, tuple[int, ...]]) -> None:
        super().__init__()
        self.layers = list(layers)
        self.connectors = nn.ModuleDict()
        for name in self.layers:
            s, t = shapes_s[name], shapes_t[name]
            if len(s) != len(t) or s[1:] != t[1:]:
                raise CodesignError(
                    f"md layer {name!r}: student potential has per-sample shape {s}, teacher "
                    f"{t}; the spatial sizes must match (a 1x1 connector only maps channels)"
                )
            if s[0] != t[0]:
                self.connectors[_key(name)] = Connector(s[0], t[0], spatial=len(s) == 3)

    def connect(self, name: str, h: torch.Tensor) -> torch.Tensor:
        key = _key(name)
        return self.connectors[key](h) if key in self.connectors else h


def neuron_map(model: SpikingNet) -> dict[str, LIF]:
    return dict(model.neurons())


@torch.no_grad()
def probe_shapes(model: SpikingNet, layers: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Per-sample shape ``(C, ...)`` of each named layer's ``H``, from one zero input in eval."""
    spec = model.spec
    c, s = spec["in_channels"], spec["image_size"]
    x = (torch.zeros(1, model.T, c, s, s) if spec.get("encoding") == "events"
         else torch.zeros(1, c, s, s))
    device = next(model.parameters()).device
    was = model.training
    neurons = neuron_map(model)
    model.eval()
    try:
        for name in layers:
            neurons[name].record = True
        model(x.to(device))
        return {name: tuple(neurons[name].h.shape[2:]) for name in layers}
    finally:
        for name in layers:
            neurons[name].record = False
            neurons[name].h = neurons[name].s = None
        model.train(was)


def resolve_md_layers(student: SpikingNet, teacher: SpikingNet,
                      md_layers: Optional[Sequence[str]]) -> list[str]:
    """The distilled LIF layers: given names (validated), or every LIF layer both nets share."""
    s_names = [n for n, _ in student.neurons()]
    t_names = {n for n, _ in teacher.neurons()}
    common = [n for n in s_names if n in t_names]
    if md_layers is None:
        if not common:
            raise CodesignError("md: student and teacher share no LIF layer name; give md_layers")
        return common
    layers = list(md_layers)
    if not layers:
        raise CodesignError(f"md layers: empty list; valid names: {', '.join(common)}")
    for name in layers:
        if name not in common:
            raise CodesignError(
                f"md layer {name!r} is not a LIF layer of both student and teacher; valid names: "
                f"{', '.join(common) or 'none'}"
            )
    if len(set(layers)) != len(layers):
        raise CodesignError(f"md layers {layers}: a layer is listed twice")
    return layers


def resolve_md_weights(layers: Sequence[str],
                       weights: Union[None, float, Sequence[float], Mapping[str, float]]
                       ) -> dict[str, float]:
    """Per-layer weights ``w_l``: one float for all, a list aligned with ``layers``, or a dict."""
    if weights is None:
        out = {n: 1.0 for n in layers}
    elif isinstance(weights, (int, float)) and not isinstance(weights, bool):
        out = {n: float(weights) for n in layers}
    elif isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(layers))
        if unknown:
            raise CodesignError(f"md weights name layer(s) {unknown} not among md layers {layers}")
        out = {n: float(weights.get(n, 1.0)) for n in layers}
    else:
        ws = [float(w) for w in weights]
        if len(ws) != len(layers):
            raise CodesignError(
                f"md weights: {len(ws)} value(s) for {len(layers)} md layer(s) {list(layers)}"
            )
        out = dict(zip(layers, ws, strict=True))
    for n, w in out.items():
        if not w >= 0.0:
            raise CodesignError(f"md weight of layer {n!r} is {w}; expected a value >= 0")
    return out


class MembraneRecorder:
    """Switch ``record`` on for the chosen layers around one forward, then free the tensors.

    Only the chosen layers keep ``H`` (``(T, B, ...)`` each), so memory stays
    ``O(T * B * neurons of the chosen layers)`` per network; nothing survives the batch.
    """

    def __init__(self, model: SpikingNet, layers: Sequence[str]) -> None:
        neurons = neuron_map(model)
        self.neurons = {n: neurons[n] for n in layers}

    def __enter__(self) -> MembraneRecorder:
        for lif in self.neurons.values():
            lif.record = True
        return self

    def take(self) -> dict[str, torch.Tensor]:
        """The recorded potentials, each divided by its layer's threshold ``theta``."""
        out = {}
        for n, lif in self.neurons.items():
            assert lif.h is not None
            out[n] = normalise(lif.h, threshold_of(lif))
        return out

    def __exit__(self, *exc: object) -> None:
        for lif in self.neurons.values():
            lif.record = False
            lif.h = lif.s = None


def md_loss(h_student: Mapping[str, torch.Tensor], h_teacher: Mapping[str, torch.Tensor],
            head: DistillHead, weights: Mapping[str, float], steps: Optional[Sequence[int]] = None,
            distance: str = "mse") -> tuple[torch.Tensor, dict[str, float]]:
    """``L_MD`` of the module docstring on normalised potentials; returns ``(loss, per-layer)``.

    ``steps`` are 0-based student step indices (default: every student step); the teacher's
    steps are aligned by prefix.
    """
    total: Optional[torch.Tensor] = None
    parts: dict[str, float] = {}
    for name in head.layers:
        hs, ht = h_student[name], h_teacher[name]
        if hs.shape[0] > ht.shape[0]:
            raise CodesignError(
                f"md layer {name!r}: the student runs {hs.shape[0]} steps, the teacher only "
                f"{ht.shape[0]}; prefix alignment needs teacher T >= student T"
            )
        idx = list(range(hs.shape[0])) if steps is None else list(steps)
        hs_sel = head.connect(name, hs[idx])
        d = membrane_distance(hs_sel, ht[idx], distance)
        parts[f"md/{name}"] = float(d.detach())
        term = weights[name] * d
        total = term if total is None else total + term
    assert total is not None
    return total, parts
