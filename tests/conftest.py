"""Test-session hooks.

``CODESIGN_REQUIRE_PEERS=1`` (set by ``.ci/run``): a test skipped because a peer SNN library
(snnTorch, SpikingJelly) could not be imported FAILS instead, so CI cannot pass while the
peer-equivalence tests silently did not run. Without the variable such a skip stays a skip
(a developer without the peers installed can still run the rest).

Shared fixtures of the simulator and cost-model tests: :func:`student` (the shipped W4/U4
checkpoint) and :func:`mnist_test` (the mnist5k test split they all read). A test module that
defines a fixture of the same name uses its own.
"""

from __future__ import annotations

import os

import pytest

PEERS = ("snntorch", "spikingjelly")
STUDENT = "models/student_w4u4.pt"
"""The shipped W4/U4 student checkpoint (relative to the repository root, where pytest runs)."""


@pytest.fixture(scope="module")
def student():
    """The shipped W4/U4 student in eval mode, loaded once per test module (a module's tests
    share it; no module sees another's)."""
    from codesign.snn.checkpoint import load_checkpoint

    model, _ = load_checkpoint(STUDENT)
    return model.eval()


@pytest.fixture(scope="session")
def mnist_test():
    """``(x_test, y_test)`` of mnist5k split with seed 0 and a 20 % test fraction (real data;
    tests take the first N images)."""
    from codesign.data import load_dataset

    d = load_dataset("mnist5k", split_seed=0, test_fraction=0.2)
    return d.x_test, d.y_test


def _peer_skip(reason: str) -> bool:
    return any(p in reason for p in PEERS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CODESIGN_REQUIRE_PEERS") != "1" or not report.skipped:
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(
        report.longrepr)
    if _peer_skip(reason):
        report.outcome = "failed"
        report.longrepr = (f"CODESIGN_REQUIRE_PEERS=1: peer-equivalence test skipped "
                           f"({reason}); install snntorch 1.0.0 and spikingjelly 2.0.0")
