"""Where background runs train: local worker processes by default, or a Ray cluster when
``TINYFORMERS_RAY_ADDRESS`` names one. The web process asks once, here."""

from __future__ import annotations

import os
import threading

from tinyformers.training.jobs import Backend
from tinyformers.training.workers import local_processes

RAY_ADDRESS_ENV = "TINYFORMERS_RAY_ADDRESS"

_chosen: Backend | None = None
_lock = threading.Lock()


def backend_from_env() -> Backend:
    """Ray when ``TINYFORMERS_RAY_ADDRESS`` is set (``ray://host:10001`` or ``auto``), else
    local worker processes. One per process."""
    global _chosen
    with _lock:
        if _chosen is None:
            address = os.environ.get(RAY_ADDRESS_ENV, "").strip()
            if address:
                from tinyformers.training.ray_backend import RayBackend  # Ray is optional

                _chosen = RayBackend(address)
            else:
                _chosen = local_processes()
        return _chosen
