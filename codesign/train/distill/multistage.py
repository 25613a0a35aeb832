"""Multi-stage (teacher-assistant) distillation: teacher -> assistant -> student.

"Distilling Spikes" (Kushawaha et al., ICPR 2020) proposes multi-stage KD through an
intermediate network; only its abstract could be read, so this is a *Distilling-Spikes-style*
implementation, not a reproduction of its formulas: each stage is an ordinary distillation run
(:func:`make_distill_loss` + :func:`fit`),

    stage 1: assistant <- distil(teacher),   stage 2: student <- distil(assistant),

with the assistant frozen (eval mode, no gradients) in stage 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import torch

from codesign.snn.model import SpikingNet
from codesign.train.distill.combine import DistillLoss, make_distill_loss
from codesign.train.loop import TrainConfig, TrainResult, fit


def distill(teacher: SpikingNet, student: SpikingNet, x_train: torch.Tensor,
            y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, cfg: TrainConfig,
            *, progress: bool = True, label: str = "distill",
            **loss_kwargs: Any) -> tuple[TrainResult, DistillLoss]:
    """One distillation run: build the loss, train ``student`` in place (connectors included)."""
    loss_fn = make_distill_loss(teacher, student, **loss_kwargs)
    result = fit(student, x_train, y_train, x_test, y_test, cfg, loss_fn=loss_fn,
                 extra_params=list(loss_fn.head.parameters()), progress=progress, label=label)
    return result, loss_fn


@dataclass
class MultiStageResult:
    assistant: TrainResult
    student: TrainResult
    assistant_settings: dict
    student_settings: dict


def multi_stage_distill(teacher: SpikingNet, assistant: SpikingNet, student: SpikingNet,
                        x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                        y_test: torch.Tensor, cfg: TrainConfig, *,
                        assistant_cfg: Optional[TrainConfig] = None,
                        assistant_kwargs: Optional[Mapping[str, Any]] = None,
                        progress: bool = True, **loss_kwargs: Any) -> MultiStageResult:
    """Train ``assistant`` from ``teacher``, then ``student`` from the trained ``assistant``.

    ``loss_kwargs`` (methods, alpha, beta, tau, ...) apply to both stages unless
    ``assistant_kwargs`` overrides them for stage 1; ``assistant_cfg`` defaults to ``cfg``.
    Both networks are trained in place.
    """
    stage1 = {**loss_kwargs, **(assistant_kwargs or {})}
    res_a, loss_a = distill(teacher, assistant, x_train, y_train, x_test, y_test,
                            assistant_cfg or cfg, progress=progress, label="stage 1 assistant",
                            **stage1)
    assistant.eval()
    res_s, loss_s = distill(assistant, student, x_train, y_train, x_test, y_test, cfg,
                            progress=progress, label="stage 2 student", **loss_kwargs)
    return MultiStageResult(res_a, res_s, loss_a.settings.to_dict(), loss_s.settings.to_dict())
