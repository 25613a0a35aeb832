"""``make_distill_loss``: one ``loss_fn(model, x, y) -> (loss, parts)`` for :func:`fit`.

    loss = w_ce * CE + alpha * KD + beta * MD + gamma * SD

* ``CE``: cross-entropy of the student, on the mean logits (``ce_mode="mean"``) or averaged over
  per-step logits (``"per_step"``, TWCE). ``w_ce = 1`` by default, as in the temporal-wise KD
  code and the MD-SNN reconstruction; Hinton's convex form ``(1 - alpha) CE + alpha KD`` is
  ``ce_weight=1 - alpha``.
* ``KD`` (method ``"logit"``): ``tau^2 KL(sigma(z_bar_T/tau) || sigma(z_bar_S/tau))`` on mean
  logits; (method ``"temporal"``): the same KL on every student step against the teacher's mean
  logits (TWKL), with per-step CE and ``SD`` = temporal self-distillation (TWSD).
* ``MD`` (method ``"md"``): threshold-normalised membrane-potential distance,
  :mod:`codesign.train.distill.membrane`.

The teacher runs in eval mode under ``torch.no_grad``; only the potentials of the distilled
layers are recorded (detached, freed after each batch), so the extra memory is
``O(T * B * neurons of the chosen layers)`` for each of teacher and student. Connectors live in
the returned ``loss_fn.head`` (a :class:`DistillHead`); give ``loss_fn.head.parameters()`` to
``fit(..., extra_params=...)`` so they are trained with the student.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Optional, Union

import torch
from torch import nn

from codesign.errors import CodesignError
from codesign.snn.model import SpikingNet
from codesign.train.distill.losses import NO_CORRECT_POLICIES, mean_logit_kd, temporal_wise_kd
from codesign.train.distill.membrane import (
    DISTANCES,
    DistillHead,
    MembraneRecorder,
    md_loss,
    probe_shapes,
    resolve_md_layers,
    resolve_md_weights,
)
from codesign.train.loop import LOSS_MODES, ce_from_logits

METHODS = ("logit", "md", "temporal")


@dataclass
class DistillSettings:
    """Resolved settings of a distillation loss (recorded in checkpoint metadata)."""

    methods: list[str]
    alpha: float
    beta: float
    gamma: float
    tau: float
    ce_mode: str
    ce_weight: float
    md_layers: list[str] = field(default_factory=list)
    md_weights: dict[str, float] = field(default_factory=dict)
    md_steps: Optional[list[int]] = None
    md_distance: str = "mse"
    no_correct: str = "skip"

    def to_dict(self) -> dict:
        return asdict(self)


class DistillLoss:
    """Callable ``(model, x, y) -> (loss, parts)``; built by :func:`make_distill_loss`."""

    def __init__(self, teacher: SpikingNet, head: DistillHead, settings: DistillSettings) -> None:
        self.teacher = teacher
        self.head = head
        self.settings = settings

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        st = self.settings
        assert isinstance(model, SpikingNet)
        use_md = "md" in st.methods and st.beta > 0
        layers = st.md_layers if use_md else []
        self.teacher.to(x.device).eval()
        self.head.to(x.device)
        with torch.no_grad(), MembraneRecorder(self.teacher, layers) as rec_t:
            z_t = self.teacher(x)
            h_t = rec_t.take() if use_md else {}
        with MembraneRecorder(model, layers) as rec_s:
            z_s = model(x)
            h_s = rec_s.take() if use_md else {}
        kd: Optional[torch.Tensor] = None
        sd: Optional[torch.Tensor] = None
        if "temporal" in st.methods:
            tw = temporal_wise_kd(z_s, z_t, y, st.tau, st.no_correct)
            ce, kd, sd = tw["ce"], tw["kd"], tw["sd"]
            loss = st.ce_weight * ce + st.alpha * kd + st.gamma * sd
        else:
            ce = ce_from_logits(z_s, y, st.ce_mode)
            loss = st.ce_weight * ce
            if "logit" in st.methods:
                kd = mean_logit_kd(z_s, z_t, st.tau)
                loss = loss + st.alpha * kd
        parts: dict[str, float] = {"ce": float(ce.detach())}
        if kd is not None:
            parts["kd"] = float(kd.detach())
        if sd is not None:
            parts["sd"] = float(sd.detach())
        if use_md:
            md, md_parts = md_loss(h_s, h_t, self.head, st.md_weights, st.md_steps,
                                   st.md_distance)
            loss = loss + st.beta * md
            parts["md"] = float(md.detach())
            parts.update(md_parts)
        parts["loss"] = float(loss.detach())
        return loss, parts


def _nonneg(value: float, name: str) -> float:
    v = float(value)
    if not (v >= 0.0 and math.isfinite(v)):
        raise CodesignError(f"distill {name} = {value}: expected a finite value >= 0")
    return v


def check_compatible(teacher: SpikingNet, student: SpikingNet, what: str = "teacher") -> None:
    """Refuse a teacher whose input (channels, size, encoding kind) or classes differ."""
    ts, ss = teacher.spec, student.spec
    for key in ("in_channels", "image_size", "num_classes"):
        if ts[key] != ss[key]:
            raise CodesignError(
                f"{what} has {key}={ts[key]}, the student {key}={ss[key]}; they must match"
            )
    if (ts.get("encoding") == "events") != (ss.get("encoding") == "events"):
        raise CodesignError(
            f"{what} takes {'event' if ts.get('encoding') == 'events' else 'static'} input, the "
            f"student {'event' if ss.get('encoding') == 'events' else 'static'} input"
        )


def parse_methods(methods: Union[str, Sequence[str]]) -> list[str]:
    """``"logit,md"`` or ``("logit", "md")`` -> validated list, in canonical order."""
    items = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    items = [m for m in items if m]
    if not items:
        raise CodesignError(f"distill methods: none given; expected some of {', '.join(METHODS)}")
    for m in items:
        if m not in METHODS:
            raise CodesignError(f"distill method {m!r} is not known; expected {', '.join(METHODS)}")
    if "logit" in items and "temporal" in items:
        raise CodesignError("distill methods: 'temporal' already has a (per-step) logit term; "
                            "give 'logit' or 'temporal', not both")
    return [m for m in METHODS if m in items]


def make_distill_loss(
    teacher: SpikingNet,
    student: SpikingNet,
    methods: Union[str, Sequence[str]] = ("logit", "md"),
    *,
    alpha: float = 0.5,
    beta: float = 1.0,
    gamma: float = 0.5,
    tau: float = 4.0,
    md_layers: Optional[Sequence[str]] = None,
    md_weights: Union[None, float, Sequence[float], Mapping[str, float]] = None,
    md_steps: Optional[Sequence[int]] = None,
    md_distance: str = "mse",
    ce_mode: Optional[str] = None,
    ce_weight: float = 1.0,
    no_correct: str = "skip",
) -> DistillLoss:
    """Distillation loss for ``fit``: ``w_ce CE + alpha KD + beta MD + gamma SD`` (module doc).

    ``alpha`` weighs the logit KD (mean or per-step), ``beta`` the membrane term, ``gamma`` the
    temporal self-distillation (used by ``"temporal"`` only), ``tau > 0`` is the temperature.
    ``md_layers``: LIF layer names shared by both nets (default: all of them); ``md_weights``:
    per-layer ``w_l`` (one float, a list or a dict; default 1); ``md_steps``: 0-based student
    steps to compare (default all). ``ce_mode`` defaults to ``"per_step"`` with ``"temporal"``
    and ``"mean"`` otherwise. ``no_correct``: TWSD target of samples that no step classifies
    correctly (``"skip"``, ``"uniform"`` as the paper's code, or ``"ensemble"``).
    Bad settings raise :class:`CodesignError`.
    """
    ms = parse_methods(methods)
    alpha, beta, gamma = _nonneg(alpha, "alpha"), _nonneg(beta, "beta"), _nonneg(gamma, "gamma")
    ce_weight = _nonneg(ce_weight, "ce_weight")
    if not (float(tau) > 0 and math.isfinite(float(tau))):
        raise CodesignError(f"distill tau = {tau}: expected a temperature > 0")
    if ce_mode is None:
        ce_mode = "per_step" if "temporal" in ms else "mean"
    if ce_mode not in LOSS_MODES:
        raise CodesignError(f"distill ce_mode {ce_mode!r}: expected one of {LOSS_MODES}")
    if "temporal" in ms and ce_mode != "per_step":
        raise CodesignError("distill 'temporal' uses per-step CE; ce_mode must be 'per_step'")
    if no_correct not in NO_CORRECT_POLICIES:
        raise CodesignError(
            f"distill no_correct {no_correct!r}: expected one of {', '.join(NO_CORRECT_POLICIES)}"
        )
    if md_distance not in DISTANCES:
        raise CodesignError(f"md distance {md_distance!r}: expected one of {', '.join(DISTANCES)}")
    check_compatible(teacher, student)
    layers: list[str] = []
    weights: dict[str, float] = {}
    steps = None
    head = DistillHead([], {}, {})
    if "md" in ms:
        layers = resolve_md_layers(student, teacher, md_layers)
        weights = resolve_md_weights(layers, md_weights)
        if student.T > teacher.T:
            raise CodesignError(
                f"md: the student runs T={student.T} steps, the teacher T={teacher.T}; "
                "membrane distillation aligns steps by prefix and needs teacher T >= student T"
            )
        if md_steps is not None:
            steps = sorted({int(t) for t in md_steps})
            bad = [t for t in steps if not 0 <= t < student.T]
            if bad or not steps:
                raise CodesignError(
                    f"md steps {list(md_steps)}: expected 0-based steps in 0..{student.T - 1}"
                )
        head = DistillHead(layers, probe_shapes(student, layers), probe_shapes(teacher, layers))
        head.to(next(student.parameters()).device)
    elif md_layers is not None or md_steps is not None or md_weights is not None:
        raise CodesignError("md layers/weights/steps given but method 'md' is not selected")
    settings = DistillSettings(methods=ms, alpha=alpha, beta=beta, gamma=gamma, tau=float(tau),
                               ce_mode=ce_mode, ce_weight=ce_weight, md_layers=layers,
                               md_weights=weights, md_steps=steps, md_distance=md_distance,
                               no_correct=no_correct)
    return DistillLoss(teacher.eval(), head, settings)
