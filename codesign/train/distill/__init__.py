"""Knowledge distillation for spiking networks: logit, temporal-wise, membrane, multi-stage.

* :func:`make_distill_loss` builds a ``loss_fn`` for :func:`codesign.train.loop.fit` from
  ``methods`` among ``logit`` (KD on mean logits), ``temporal`` (full-range timestep KD,
  Yu et al. ICML 2025) and ``md`` (membrane-potential distillation, a reconstruction of MD-SNN).
* :func:`multi_stage_distill` runs teacher -> assistant -> student.
* The loss primitives live in :mod:`.losses` and :mod:`.membrane`.
"""

from codesign.train.distill.combine import (
    METHODS,
    DistillLoss,
    DistillSettings,
    check_compatible,
    make_distill_loss,
    parse_methods,
)
from codesign.train.distill.losses import (
    logit_kd,
    mean_logit_kd,
    per_step_ce,
    per_step_kd,
    self_distillation_target,
    temporal_self_distillation,
    temporal_wise_kd,
)
from codesign.train.distill.membrane import Connector, DistillHead, md_loss, membrane_distance
from codesign.train.distill.multistage import MultiStageResult, distill, multi_stage_distill

__all__ = [
    "METHODS", "Connector", "DistillHead", "DistillLoss", "DistillSettings", "MultiStageResult",
    "check_compatible", "distill", "logit_kd", "make_distill_loss", "md_loss", "mean_logit_kd",
    "membrane_distance", "multi_stage_distill", "parse_methods", "per_step_ce", "per_step_kd",
    "self_distillation_target", "temporal_self_distillation", "temporal_wise_kd",
]
