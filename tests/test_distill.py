"""Tests for codesign.train.distill: loss primitives, the combinator, validation, a short run,
multi-stage orchestration and the ``codesign train --teacher`` CLI."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from codesign.cli.main import cli
from codesign.data import load_dataset
from codesign.errors import CodesignError
from codesign.snn.checkpoint import load_checkpoint, save_checkpoint
from codesign.snn.zoo import build_model
from codesign.train.distill import (
    Connector,
    DistillHead,
    logit_kd,
    make_distill_loss,
    md_loss,
    membrane_distance,
    multi_stage_distill,
    per_step_kd,
    self_distillation_target,
    temporal_self_distillation,
    temporal_wise_kd,
)
from codesign.train.loop import TrainConfig, fit

torch.set_num_threads(1)

# A very small VGG for 8x8 inputs: conv(4) 8x8 -> pool -> conv(4) 4x4 -> pool -> fc(8) -> 10.
SMALL = {"arch": "vgg", "channels": [4, "M", 4, "M"], "fc": [8], "image_size": 8, "T": 3}
WIDE = {**SMALL, "channels": [6, "M", 8, "M"], "fc": [12]}


def _net(spec: dict = SMALL, seed: int = 0, **over) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(copy.deepcopy(spec), **over)


def _batch(n: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


# ----------------------------------------------------------------------------- logit KD


def test_logit_kd_zero_equal_positive_otherwise_and_matches_formula() -> None:
    zt = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    assert float(logit_kd(zt.clone(), zt, 4.0)) == pytest.approx(0.0, abs=1e-7)
    zs = torch.tensor([[0.0, 1.0, 0.0], [1.0, -1.0, 0.0]], requires_grad=True)
    tau = 2.0
    value = logit_kd(zs, zt, tau)
    p = F.softmax(zt / tau, 1)
    manual = ((p * (p.log() - F.log_softmax(zs / tau, 1))).sum(1).mean() * tau**2).detach()
    value = value.detach()
    assert float(value) > 0 and float(value) == pytest.approx(float(manual), rel=1e-6)
    # batchmean, not reduction="mean" (which would divide by K = 3 as well)
    ref = (F.kl_div(F.log_softmax(zs / tau, 1), p, reduction="batchmean") * tau**2).detach()
    assert float(value) == pytest.approx(float(ref), rel=1e-6)


def test_logit_kd_gradient_reaches_student_never_teacher() -> None:
    zs = torch.randn(4, 5, requires_grad=True)
    zt = torch.randn(4, 5, requires_grad=True)
    logit_kd(zs, zt, 3.0).backward()
    assert zs.grad is not None and zs.grad.abs().sum() > 0
    assert zt.grad is None


# ------------------------------------------------------------------------- temporal-wise KD


def test_self_distillation_target_correct_mean_and_no_correct_policies() -> None:
    # T = 3 steps, B = 2 samples, K = 2 classes; label 0 for both.
    z = torch.tensor([[[2.0, 0.0], [0.0, 1.0]],
                      [[0.0, 3.0], [0.0, 2.0]],
                      [[4.0, 1.0], [0.0, 5.0]]])
    y = torch.tensor([0, 0])
    target, mask = self_distillation_target(z, y, "skip")
    assert torch.allclose(target[0], torch.tensor([3.0, 0.5]))  # mean of steps 0 and 2
    assert mask.tolist() == [1.0, 0.0]  # sample 1: no step correct -> skipped
    target_u, mask_u = self_distillation_target(z, y, "uniform")
    assert torch.equal(target_u[1], torch.zeros(2)) and mask_u.tolist() == [1.0, 1.0]
    target_e, _ = self_distillation_target(z, y, "ensemble")
    assert torch.allclose(target_e[1], z[:, 1].mean(0))
    with pytest.raises(CodesignError, match="no_correct"):
        self_distillation_target(z, y, "zeros")


def test_temporal_terms_zero_when_steps_agree_positive_otherwise() -> None:
    y = torch.tensor([0, 1])
    base = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    same = base.unsqueeze(0).repeat(4, 1, 1)  # every step identical and correct
    teacher = same.clone()
    terms = temporal_wise_kd(same.clone().requires_grad_(), teacher, y, 3.0)
    assert float(terms["kd"].detach()) == pytest.approx(0.0, abs=1e-6)
    assert float(terms["sd"].detach()) == pytest.approx(0.0, abs=1e-6)
    student = (same + torch.randn(4, 2, 3)).requires_grad_()
    teacher.requires_grad_()
    terms = temporal_wise_kd(student, teacher, y, 3.0)
    assert float(terms["kd"].detach()) > 0 and float(terms["ce"].detach()) > 0
    total = terms["ce"] + terms["kd"] + terms["sd"]
    total.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_per_step_kd_is_mean_over_steps_and_sd_only_on_valid_samples() -> None:
    zs = torch.randn(3, 4, 5)
    zt = torch.randn(4, 5)
    expected = sum(logit_kd(zs[t], zt, 2.0) for t in range(3)) / 3
    assert float(per_step_kd(zs, zt, 2.0)) == pytest.approx(float(expected), rel=1e-5)
    wrong = torch.tensor([[[0.0, 5.0]], [[0.0, 4.0]]])  # never correct for label 0
    assert float(temporal_self_distillation(wrong, torch.tensor([0]), 3.0, "skip")) == 0.0
    assert float(temporal_self_distillation(wrong, torch.tensor([0]), 3.0, "uniform")) > 0.0


# ------------------------------------------------------------------------ membrane distance


def test_membrane_distance_connector_and_head() -> None:
    h = torch.randn(2, 3, 4, 5, 5)
    assert float(membrane_distance(h, h.clone())) == 0.0
    assert float(membrane_distance(h, h + 0.5)) == pytest.approx(0.25, rel=1e-6)
    assert float(membrane_distance(h, h + 3.0, "smooth_l1")) == pytest.approx(2.5, rel=1e-6)
    with pytest.raises(CodesignError, match="distance"):
        membrane_distance(h, h, "cosine")
    conv = Connector(4, 6, spatial=True)
    assert conv(h).shape == (2, 3, 6, 5, 5)
    lin = Connector(4, 7, spatial=False)
    assert lin(torch.randn(2, 3, 4)).shape == (2, 3, 7)
    with pytest.raises(CodesignError, match="spatial sizes must match"):
        DistillHead(["lif1"], {"lif1": (4, 5, 5)}, {"lif1": (4, 4, 4)})


def test_md_loss_zero_equal_positive_otherwise_gradient_to_student_and_connector() -> None:
    ht = {"a": torch.randn(3, 2, 4, 5, 5, requires_grad=True), "b": torch.randn(3, 2, 8)}
    head = DistillHead(["a", "b"], {"a": (4, 5, 5), "b": (8,)}, {"a": (4, 5, 5), "b": (8,)})
    w = {"a": 1.0, "b": 0.5}
    loss, parts = md_loss({k: v.detach().clone() for k, v in ht.items()}, ht, head, w)
    assert float(loss) == 0.0 and set(parts) == {"md/a", "md/b"}
    hs = {"a": torch.randn(3, 2, 2, 5, 5, requires_grad=True), "b": torch.randn(3, 2, 8)}
    head2 = DistillHead(["a"], {"a": (2, 5, 5)}, {"a": (4, 5, 5)})
    loss, _ = md_loss(hs, ht, head2, {"a": 1.0}, steps=[0, 2])
    loss.backward()
    assert float(loss.detach()) > 0
    assert hs["a"].grad is not None and hs["a"].grad[1].abs().sum() == 0  # step 1 not compared
    assert next(head2.parameters()).grad is not None
    assert ht["a"].grad is None


# ------------------------------------------------------------------------------ combinator


def test_make_distill_loss_zero_for_identical_nets_and_gradients_for_student_only() -> None:
    teacher = _net(SMALL).eval()
    x, y = _batch()
    twin = copy.deepcopy(teacher).eval()
    loss_fn = make_distill_loss(teacher, twin, ("logit", "md"), alpha=0.5, beta=1.0, tau=4)
    _, parts = loss_fn(twin, x, y)
    assert parts["kd"] == pytest.approx(0.0, abs=1e-6)
    assert parts["md"] == pytest.approx(0.0, abs=1e-6)
    student = _net(WIDE, seed=3, quant={"wbits": 4, "ubits": 4}).train()
    loss_fn = make_distill_loss(teacher, student, "temporal,md", md_weights=[1.0, 2.0, 0.5])
    assert len(list(loss_fn.head.parameters())) == 3  # channels differ on all three layers
    loss, parts = loss_fn(student, x, y)
    assert parts["kd"] > 0 and parts["md"] > 0 and "sd" in parts
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.layers["conv2"].op.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in loss_fn.head.parameters())
    # nothing stays recorded after the batch (memory is freed)
    assert all(lif.h is None and not lif.record for _, lif in teacher.neurons())
    assert all(lif.h is None and not lif.record for _, lif in student.neurons())


def test_md_normalises_by_threshold() -> None:
    teacher = _net(SMALL, neuron={"theta": 1.0}).eval()
    scaled = copy.deepcopy(teacher)
    for _, lif in scaled.neurons():
        lif.theta = 2.0
    loss_fn = make_distill_loss(teacher, scaled, "md", md_layers=["lif1"])
    x, y = _batch()
    _, parts = loss_fn(scaled.eval(), x, y)
    # same lif1 potential, different threshold -> H/theta differs
    assert parts["md/lif1"] > 0


@pytest.mark.parametrize("kwargs, match", [
    ({"methods": "logit,bogus"}, "not known"),
    ({"methods": ""}, "none given"),
    ({"methods": "logit,temporal"}, "not both"),
    ({"alpha": -0.1}, "alpha"),
    ({"beta": -1.0}, "beta"),
    ({"tau": 0.0}, "tau"),
    ({"methods": "md", "md_layers": ["lif9"]}, "valid names: lif1, lif2, lif_fc1"),
    ({"methods": "md", "md_weights": [1.0, -2.0, 1.0]}, ">= 0"),
    ({"methods": "md", "md_weights": [1.0]}, "1 value"),
    ({"methods": "logit", "md_layers": ["lif1"]}, "not selected"),
])
def test_make_distill_loss_refuses_bad_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(CodesignError, match=match):
        make_distill_loss(_net(), _net(seed=1), **kwargs)


def test_teacher_must_match_inputs_and_classes() -> None:
    with pytest.raises(CodesignError, match="num_classes"):
        make_distill_loss(_net(num_classes=5), _net(), "logit")
    with pytest.raises(CodesignError, match="image_size"):
        make_distill_loss(_net({**SMALL, "image_size": 16}), _net(), "logit")
    with pytest.raises(CodesignError, match="in_channels"):
        make_distill_loss(_net(in_channels=2), _net(), "logit")
    with pytest.raises(CodesignError, match="teacher T >= student T"):
        make_distill_loss(_net(T=2), _net(), "md")


# ------------------------------------------------------------------ short run, multi-stage


@pytest.fixture(scope="module")
def mnist_slice():
    d = load_dataset("mnist5k")
    return d.x_train[:320], d.y_train[:320], d.x_test[:200], d.y_test[:200]


def test_short_distillation_run_lowers_the_loss(mnist_slice) -> None:
    xtr, ytr, xte, yte = mnist_slice
    cfg = TrainConfig(epochs=1, batch_size=32, lr=3e-3, seed=0, device="cpu", val_fraction=0.0)
    teacher = _net("vgg-tiny", T=2)
    fit(teacher, xtr, ytr, xte, yte, cfg, progress=False)
    student = _net("vgg-tiny", seed=1, T=2, quant={"wbits": 4, "ubits": 4})
    loss_fn = make_distill_loss(teacher, student, "logit,md", beta=0.3,
                                md_layers=["lif2", "lif_fc1"])
    cfg.epochs = 3
    res = fit(student, xtr, ytr, xte, yte, cfg, loss_fn=loss_fn, progress=False,
              extra_params=list(loss_fn.head.parameters()))
    losses = [row["loss"] for row in res.history]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    assert res.history[-1]["md"] < res.history[0]["md"]


def test_multi_stage_runs_two_fits(mnist_slice) -> None:
    xtr, ytr, xte, yte = mnist_slice
    xtr, ytr = xtr[:96], ytr[:96]
    cfg = TrainConfig(epochs=1, batch_size=48, seed=0, device="cpu", val_fraction=0.0)
    t, a, s = (_net(n, T=2) for n in ("vgg-mid", "vgg-tiny", "vgg-tiny"))
    res = multi_stage_distill(t, a, s, xtr, ytr, xte, yte, cfg, methods="logit,md",
                              progress=False)
    assert len(res.assistant.history) == 1 and len(res.student.history) == 1
    assert res.assistant_settings["md_layers"] == ["lif1", "lif2", "lif3", "lif_fc1"]


# ----------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory) -> Path:
    """An (untrained) vgg-tiny teacher for the 8x8 digits data, split 0."""
    path = tmp_path_factory.mktemp("distill") / "teacher.pt"
    net = _net("vgg-tiny", in_channels=1, image_size=8, num_classes=10, T=2)
    save_checkpoint(path, net, {"dataset": "digits", "split_seed": 0, "test_accuracy": 0.1})
    return path


def _train(args: list[str]):
    return CliRunner().invoke(cli, ["train", "--data", "digits", "--T", "2", "--quiet", *args])


@pytest.mark.parametrize("extra, match", [
    (["--alpha", "0.5"], "need --teacher"),
    (["--TEACHER", "--distill", "logit,nope"], "not known"),
    (["--TEACHER", "--alpha", "-1"], "alpha"),
    (["--TEACHER", "--tau", "0"], "tau"),
    (["--TEACHER", "--distill", "md", "--md-layers", "lif1,conv9"], "valid names: lif1"),
    (["--TEACHER", "--assistant", "x.pt", "--assistant-model", "vgg-mid"], "not both"),
    (["--teacher", "missing.pt"], "not found"),
    (["--TEACHER", "--split-seed", "1"], "split-seed 0"),
    (["--TEACHER", "--model", "vgg-tiny", "--data", "mnist5k"], "trained on digits"),
])
def test_cli_refuses_bad_distillation_input(teacher_ckpt, tmp_path, extra, match) -> None:
    extra = [str(teacher_ckpt) if a == "--TEACHER" else a for a in extra]
    if str(teacher_ckpt) in extra:
        extra.insert(extra.index(str(teacher_ckpt)), "--teacher")
    args = ["--model", "vgg-tiny", "--epochs", "1", "--out", str(tmp_path / "s.pt"), *extra]
    res = _train(args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("codesign: error:") and match in lines[0]


def test_cli_teacher_other_class_count_refused(tmp_path) -> None:
    path = tmp_path / "t5.pt"
    net = _net("vgg-tiny", image_size=8, num_classes=5, T=2)
    save_checkpoint(path, net, {"dataset": "digits", "split_seed": 0})
    res = _train(["--model", "vgg-tiny", "--epochs", "1", "--teacher", str(path),
                  "--out", str(tmp_path / "s.pt")])
    assert res.exit_code == 2 and "num_classes" in res.output


def test_cli_distills_and_records_settings(teacher_ckpt, tmp_path) -> None:
    out = tmp_path / "student.pt"
    res = _train(["--model", "vgg-tiny", "--wbits", "4", "--ubits", "4", "--epochs", "1",
                  "--teacher", str(teacher_ckpt), "--distill", "temporal,md", "--alpha", "0.2",
                  "--beta", "0.5", "--tau", "3", "--md-layers", "lif1,lif_fc1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    _, meta = load_checkpoint(out)
    d = meta["distillation"]
    assert d["methods"] == ["md", "temporal"] and d["alpha"] == 0.2 and d["beta"] == 0.5
    assert d["tau"] == 3.0 and d["md_layers"] == ["lif1", "lif_fc1"]
    assert d["ce_mode"] == "per_step" and d["teacher"] == str(teacher_ckpt)


def test_cli_multi_stage_saves_assistant(teacher_ckpt, tmp_path) -> None:
    out = tmp_path / "student.pt"
    res = _train(["--model", "vgg-tiny", "--epochs", "1", "--teacher", str(teacher_ckpt),
                  "--assistant-model", "vgg-tiny", "--out", str(out)])
    assert res.exit_code == 0, res.output
    _, meta = load_checkpoint(out)
    assert meta["distillation"]["assistant"]["trained"] is True
    a_path = Path(meta["distillation"]["assistant"]["path"])
    assert a_path.name == "student.assistant.pt" and a_path.is_file()
