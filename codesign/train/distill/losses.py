"""Logit-level distillation losses on per-step SNN logits.

Notation (see ``../shared/research/kd_algorithms.md`` §1): ``z(t)`` are the logits of step
``t`` (a tensor ``(T, B, K)``), ``z_bar = (1/T) sum_t z(t)`` the mean ("rate") logits,
``sigma`` the softmax and ``tau`` the temperature. Every target (teacher logits, the
self-distillation ensemble) is detached: gradients only reach the student.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from codesign.errors import CodesignError

NO_CORRECT_POLICIES = ("skip", "uniform", "ensemble")


def logit_kd(z_student: torch.Tensor, z_teacher: torch.Tensor, tau: float) -> torch.Tensor:
    """Hinton KD between two ``(B, K)`` logit tensors, teacher detached.

    ``L = tau^2 * (1/B) sum_b KL( sigma(z_T/tau) || sigma(z_S/tau) )``
    with ``KL(p || q) = sum_k p_k (log p_k - log q_k)``; summed over classes and averaged over
    the batch (``.sum(1).mean()``; ``reduction="mean"`` would also divide by ``K``). The
    ``tau^2`` factor keeps the gradient scale independent of ``tau``. Zero iff the two
    softmaxes agree.
    """
    log_q = F.log_softmax(z_student / tau, dim=-1)
    log_p = F.log_softmax(z_teacher.detach() / tau, dim=-1)
    kl = F.kl_div(log_q, log_p, reduction="none", log_target=True)
    return kl.sum(-1).mean() * tau**2


def mean_logit_kd(student_steps: torch.Tensor, teacher_steps: torch.Tensor,
                  tau: float) -> torch.Tensor:
    """Standard KD on the mean logits: ``tau^2 KL(sigma(z_bar_T/tau) || sigma(z_bar_S/tau))``.

    ``student_steps`` is ``(T_S, B, K)``, ``teacher_steps`` ``(T_T, B, K)``; each network is
    averaged over its own steps (rate decoding).
    """
    return logit_kd(student_steps.mean(0), teacher_steps.mean(0), tau)


def per_step_kd(student_steps: torch.Tensor, target: torch.Tensor, tau: float) -> torch.Tensor:
    """Temporal-wise KL: ``(1/T) sum_t tau^2 KL(sigma(target/tau) || sigma(z_S(t)/tau))``.

    ``target`` is one ``(B, K)`` logit tensor shared by every step (the teacher's mean logits
    for TWKL), detached.
    """
    tgt = target.detach().unsqueeze(0).expand_as(student_steps)
    return logit_kd(student_steps.flatten(0, 1), tgt.flatten(0, 1), tau)


def self_distillation_target(student_steps: torch.Tensor, y: torch.Tensor,
                             no_correct: str = "skip") -> tuple[torch.Tensor, torch.Tensor]:
    """Internal teacher of temporal-wise self-distillation (TWSD), detached.

    The mean of the logits of the steps that classify the sample correctly (the official code of
    Yu et al., ICML 2025, ``make_teacher``):

        c_t = 1[argmax z(t) = y],   target = sum_t c_t z(t) / sum_t c_t.

    Samples with no correct step (``sum_t c_t = 0``) are handled by ``no_correct``:

    * ``"skip"`` (default, our choice): they get no self-distillation term (mask 0); the CE and
      teacher-KD terms still train them. We prefer it because the alternative pushes hopeless
      samples towards maximal entropy, which fights the CE term early in short training runs.
    * ``"uniform"``: target = zero logits, i.e. a uniform soft target (what the paper's code
      does through its ``+ 1e-8`` denominator; a confidence penalty).
    * ``"ensemble"``: fall back to the plain mean of all steps ``z_bar``.

    Returns ``(target (B, K), mask (B,))`` with ``mask`` the weight of each sample.
    """
    if no_correct not in NO_CORRECT_POLICIES:
        raise CodesignError(
            f"no_correct {no_correct!r}: expected one of {', '.join(NO_CORRECT_POLICIES)}"
        )
    z = student_steps.detach()
    correct = (z.argmax(-1) == y.unsqueeze(0)).to(z.dtype)  # (T, B)
    count = correct.sum(0)  # (B,)
    target = (correct.unsqueeze(-1) * z).sum(0) / count.clamp(min=1.0).unsqueeze(-1)
    mask = torch.ones_like(count)
    none = count == 0
    if no_correct == "skip":
        mask = (~none).to(z.dtype)
    elif no_correct == "ensemble":
        target = torch.where(none.unsqueeze(-1), z.mean(0), target)
    # "uniform": target stays the zero vector for those samples.
    return target, mask


def temporal_self_distillation(student_steps: torch.Tensor, y: torch.Tensor, tau: float,
                               no_correct: str = "skip") -> torch.Tensor:
    """TWSD: ``(1/T) sum_t (1/B) sum_b m_b tau^2 KL(sigma(target_b/tau) || sigma(z_b(t)/tau))``.

    ``target`` and the sample mask ``m`` come from :func:`self_distillation_target`; the batch
    average divides by ``B`` (all samples), so skipped samples simply contribute zero.
    """
    target, mask = self_distillation_target(student_steps, y, no_correct)
    log_q = F.log_softmax(student_steps / tau, dim=-1)  # (T, B, K)
    log_p = F.log_softmax(target / tau, dim=-1).unsqueeze(0)  # (1, B, K)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)  # (T, B)
    return (kl * mask.unsqueeze(0)).mean() * tau**2


def per_step_ce(student_steps: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """TWCE: ``(1/T) sum_t CE(z(t), y)`` (TET-style per-step cross-entropy)."""
    t = student_steps.shape[0]
    return F.cross_entropy(student_steps.flatten(0, 1), y.repeat(t))


def temporal_wise_kd(student_steps: torch.Tensor, teacher_steps: torch.Tensor, y: torch.Tensor,
                     tau: float, no_correct: str = "skip") -> dict[str, torch.Tensor]:
    """The three terms of temporal-wise (full-range timestep) KD, Yu et al. ICML 2025 (c).

    ``L = TWCE + alpha * TWKL + gamma * TWSD`` with

    * ``TWCE = (1/T) sum_t CE(z_S(t), y)``,
    * ``TWKL = (1/T) sum_t tau^2 KL(sigma(z_bar_T/tau) || sigma(z_S(t)/tau))`` (the paper's
      teacher is an ANN with one logit vector; our SNN teacher contributes its mean logits),
    * ``TWSD = (1/T) sum_t tau^2 KL(sigma(target/tau) || sigma(z_S(t)/tau))`` toward the mean of
      the correctly-classifying steps (:func:`self_distillation_target`).

    Every prefix of steps is supervised directly, so running only the first ``k < T`` steps at
    inference stays accurate (paper's Prop. 3: ``L_SKD^(k) <= (T/k) L_TW^(T)``). Returns the
    unweighted terms ``{"ce", "kd", "sd"}``; the caller weights them.
    """
    return {
        "ce": per_step_ce(student_steps, y),
        "kd": per_step_kd(student_steps, teacher_steps.mean(0), tau),
        "sd": temporal_self_distillation(student_steps, y, tau, no_correct),
    }
