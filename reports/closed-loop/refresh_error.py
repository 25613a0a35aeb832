"""Error of the training-time IR drop (``--ir-refresh K``) against the exact wires, chip by chip.

Usage: .venv/bin/python reports/closed-loop/refresh_error.py [K [BATCHES [NONIDEAL [LR]]]]
       (defaults 8, 17, ir_drop,programming,read_noise, 5e-4; LR 0: the codes never move, so
       the chips differ only by their programming-variation draws)

Trains the shipped W4/U4 student on mnist5k through the hardware as the closed loop does
(:class:`codesign.loop.ChipPerBatch`, a fresh chip of ``rram_physical_32nm`` per batch, IR drop
exact on one chip in K), with cross-entropy and Adam at the loop's learning rate (LR), batch
64, and for every training chip compares the conductances it was read with against the exact
wires of the same chip (the same draws, :func:`codesign.sim.network.draw_chips`, wired by
:func:`codesign.sim.network.wire_layers`). Printed per chip, over the five layers: the largest
and the mean column-current error for 64 random inputs with 20 % of the rows active, relative
to the largest exact current of the layer, and the share of cells whose code moved since the
last refresh (a change of the pre-wire conductance of more than half a level). Writes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codesign.data import load_dataset  # noqa: E402
from codesign.hw.spec import load_spec, preset_path  # noqa: E402
from codesign.loop import ChipPerBatch  # noqa: E402
from codesign.sim import network as hn  # noqa: E402
from codesign.sim.wire_refresh import RefreshedIRDrop  # noqa: E402
from codesign.snn.checkpoint import load_checkpoint  # noqa: E402


class Measured(RefreshedIRDrop):
    """:class:`RefreshedIRDrop` that compares every chip it wires with the exact wires."""

    def __init__(self, every: int) -> None:
        super().__init__(every)
        self.rows: list[tuple[int, int, float, float, float]] = []
        self.ref: dict[str, torch.Tensor] = {}

    def program(self, net: hn.HardwareNet, chip_seed: Optional[int]
                ) -> Optional[torch.Generator]:
        _, models, pre = hn.draw_chips(net, [chip_seed])
        names = list(pre)
        exact = hn.wire_layers(models, pre)
        since = self.chips % self.every
        if since == 0:
            self.ref = {n: t.clone() for n, t in pre.items()}
        gen = super().program(net, chip_seed)
        vg = torch.Generator().manual_seed(1)
        worst, mean, moved = 0.0, 0.0, 0.0
        for n in names:
            xb = net.synapses[n].xbar
            g_exact = xb.read_conductances(exact[n])[0]
            v = (torch.rand((64, g_exact.shape[1]), generator=vg) < 0.2).float()
            i_exact = torch.einsum("br,krc->kbc", v, g_exact)
            i_used = torch.einsum("br,krc->kbc", v, xb.g[0])
            scale = float(i_exact.abs().amax())
            err = (i_used - i_exact).abs()
            worst = max(worst, float(err.max()) / scale)
            mean = max(mean, float(err.mean()) / scale)
            moved = max(moved, float(((pre[n] - self.ref[n]).abs() > 0.5).float().mean()))
        self.rows.append((self.chips - 1, since, 100 * worst, 100 * mean, 100 * moved))
        return gen


def main() -> None:
    every = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    n_batches = int(sys.argv[2]) if len(sys.argv) > 2 else 17
    names = tuple((sys.argv[3] if len(sys.argv) > 3 else "ir_drop,programming,read_noise")
                  .split(","))
    lr = float(sys.argv[4]) if len(sys.argv) > 4 else 5e-4
    torch.set_num_threads(1)
    data = load_dataset("mnist5k", split_seed=0)
    perm = torch.randperm(data.x_train.shape[0], generator=torch.Generator().manual_seed(0))
    idx = [perm[i:i + 64] for i in range(0, 64 * n_batches, 64)]
    model, _ = load_checkpoint(ROOT / "models" / "student_w4u4.pt")
    spec = load_spec(preset_path("rram_physical_32nm")).with_overrides(
        {"nonideal.ir_drop.model": "transfer"})
    net = hn.build(model, spec, tuple(data.x_train.shape[1:]), nonideal=names, seed=0)
    hook = ChipPerBatch(model, net, np.random.default_rng(0), every)
    wires = Measured(every)
    hook.wires = wires
    model.register_forward_pre_hook(hook)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for i in idx:
        loss = F.cross_entropy(model(data.x_train[i]).mean(0), data.y_train[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    print(f"every {every}, non-idealities {', '.join(names)}, lr {lr:g}")
    print("| training chip | chips since the refresh | max error (% of the largest current) | "
          "mean error, worst layer (%) | cells moved, worst layer (%) |")
    print("|---:|---:|---:|---:|---:|")
    for chip, since, worst, mean, moved in wires.rows:
        print(f"| {chip} | {since} | {worst:.2f} | {mean:.3f} | {moved:.2f} |")


if __name__ == "__main__":
    main()
