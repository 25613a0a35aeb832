"""Input encodings and the model spec loader."""

from __future__ import annotations

import pytest
import torch

from codesign.errors import CodesignError
from codesign.snn.encoding import encode
from codesign.snn.zoo import build_model, resolve_spec


def test_direct_repeats_the_image() -> None:
    x = torch.rand(3, 1, 4, 4)
    seq = encode(x, "direct", 5)
    assert seq.shape == (5, 3, 1, 4, 4)
    assert torch.equal(seq[4], x)


def test_rate_is_binary_with_intensity_as_probability() -> None:
    torch.manual_seed(0)
    x = torch.full((2000, 1), 0.3)
    seq = encode(x, "rate", 8)
    assert set(seq.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(seq.mean()) - 0.3) < 0.01


def test_events_transposed_and_truncated() -> None:
    x = torch.randint(0, 2, (3, 6, 2, 5, 5)).float()
    seq = encode(x, "events", 4)
    assert seq.shape == (4, 3, 2, 5, 5)
    assert torch.equal(seq[2], x[:, 2])
    with pytest.raises(CodesignError, match="fewer than T=8"):
        encode(x, "events", 8)


def test_spec_from_yaml_and_refusals(tmp_path) -> None:
    p = tmp_path / "net.yaml"
    p.write_text("arch: vgg\nchannels: [4, M]\nfc: []\nin_channels: 2\nT: 3\n"
                 "quant: {wbits: 3, ubits: 4}\n")
    net = build_model(p)
    assert net.T == 3 and net.spec["name"] == "net"
    assert net(torch.rand(2, 2, 28, 28)).shape == (3, 2, 10)
    p.write_text("arch: vgg\nchanels: [4, M]\n")
    with pytest.raises(CodesignError, match="chanels"):
        resolve_spec(p)
    with pytest.raises(CodesignError, match="quant.wbits"):
        resolve_spec("vgg-tiny", quant={"wbits": 0})
    with pytest.raises(CodesignError, match="T"):
        resolve_spec("vgg-tiny", T=-1)
