"""The read-noise tape (codesign.sim.noise_tape) against ``torch.randn`` of the same generator."""

from __future__ import annotations

import pytest
import torch

from codesign.sim.noise_tape import NoiseTape, core_for_draws, tape_of


@pytest.mark.parametrize("chunk,ahead", [(16, 1), (48, 2), (4096, 3), (1 << 21, 4)])
def test_the_stream_is_the_generators_randn_whatever_the_chunks(chunk, ahead):
    gen = torch.Generator().manual_seed(5)  # held: a tape only keeps a weak reference
    tape = NoiseTape(gen, chunk=chunk, ahead=ahead)
    sizes = [7, 100, 3, 250, 1, 4096, 33]
    got = torch.cat([tape.take(n) for n in sizes])
    # one long draw; a multiple of 16 (torch recomputes a draw's last partial block of 16)
    want = torch.randn(16 * 300, generator=torch.Generator().manual_seed(5))[:sum(sizes)]
    assert torch.equal(got, want)


@pytest.mark.parametrize("shape", [(5, 7), (1, 100), (40, 3), (3, 64)])
def test_add_is_current_plus_z_std_row_major_across_chunk_boundaries(shape):
    rows, cols = shape
    gen = torch.Generator().manual_seed(9)
    tape = NoiseTape(gen, chunk=48)  # rows of 7, 100, 3 and 64 straddle chunk boundaries
    cur = torch.linspace(-3, 3, rows * cols).reshape(rows, cols)
    std = torch.linspace(0.5, 2.0, rows).reshape(rows, 1)
    first = tape.add_(cur.clone(), std)
    second = tape.add_(cur.clone(), std)
    n = 2 * rows * cols
    z = torch.randn(-(-n // 16) * 16, generator=torch.Generator().manual_seed(9))[:n]
    z1, z2 = z[:rows * cols].reshape(rows, cols), z[rows * cols:].reshape(rows, cols)
    assert torch.allclose(first, cur + z1 * std, rtol=0, atol=1e-6)
    assert torch.allclose(second, cur + z2 * std, rtol=0, atol=1e-6)


def test_one_tape_per_generator():
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert tape_of(g1) is tape_of(g1)
    assert tape_of(g1) is not tape_of(g2)


def test_a_bad_chunk_is_refused():
    with pytest.raises(ValueError, match="multiple of 16"):
        NoiseTape(torch.Generator(), chunk=100)


def test_core_for_draws_gives_a_core_back_and_restores_the_threads():
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with core_for_draws(True):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), core_for_draws(True):
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
        with core_for_draws(False):
            assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        with core_for_draws(True):
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)
