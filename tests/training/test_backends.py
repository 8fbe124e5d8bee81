"""Which backend trains the runs: local worker processes unless a Ray address is set."""

from __future__ import annotations

import pytest

from tinyformers.training import backends
from tinyformers.training.workers import LocalProcesses


def test_the_backend_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setattr(backends, "_chosen", None)
    monkeypatch.delenv(backends.RAY_ADDRESS_ENV, raising=False)
    assert isinstance(backends.backend_from_env(), LocalProcesses)
    assert backends.backend_from_env() is backends.backend_from_env()  # one per process
    monkeypatch.setattr(backends, "_chosen", None)
    monkeypatch.setenv(backends.RAY_ADDRESS_ENV, "ray://head:10001")
    pytest.importorskip("ray")
    from tinyformers.training.ray_backend import RayBackend

    chosen = backends.backend_from_env()  # connects on first use, not here
    assert isinstance(chosen, RayBackend) and chosen.address == "ray://head:10001"
    monkeypatch.setattr(backends, "_chosen", None)
