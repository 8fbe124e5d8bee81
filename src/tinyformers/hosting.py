"""One switch for a server shared by a class: ``TINYFORMERS_HOSTED=1``.

The switch turns on every class-safe default at once; each setting can still be set on its own
by its variable, which wins over the switch. ``Hosting.from_env()`` is the one reader of these
variables: the training caps (``training.jobs.Limits``), the saved-work caps
(``hub.workspace.WorkLimits``) and the app's own settings all take their values from it.

The README's hosting section has the table of what the switch changes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

HOSTED_ENV = "TINYFORMERS_HOSTED"
EXTERNAL_MODELS_ENV = "TINYFORMERS_EXTERNAL_MODELS"
MODELS_DIR_ENV = "TINYFORMERS_MODELS_DIR"
ERROR_DETAILS_ENV = "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS"
XSRF_ENV = "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION"
UPLOAD_SIZE_ENV = "STREAMLIT_SERVER_MAX_UPLOAD_SIZE"  # the same as --server.maxUploadSize
ERROR_DETAILS = ("full", "stacktrace", "type", "none")  # Streamlit's client.showErrorDetails
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

# field -> (variable, type): the numeric settings, each positive
NUMBERS: dict[str, tuple[str, type]] = {
    "max_trainings": ("TINYFORMERS_MAX_TRAININGS", int),
    "max_seconds": ("TINYFORMERS_MAX_SECONDS", float),
    "max_steps": ("TINYFORMERS_MAX_STEPS", int),
    "max_parameters": ("TINYFORMERS_MAX_PARAMETERS", int),
    "work_max_mb": ("TINYFORMERS_WORK_MAX_MB", float),
    "work_max_models": ("TINYFORMERS_WORK_MAX_MODELS", int),
    "work_max_days": ("TINYFORMERS_WORK_MAX_DAYS", float),
    "session_models": ("TINYFORMERS_SESSION_MODELS", int),
    "max_upload_mb": ("TINYFORMERS_MAX_UPLOAD_MB", float),
}


@dataclass(frozen=True)
class Hosting:
    """The settings of this server: a laptop's defaults, or a class server's with ``hosted``."""

    hosted: bool = False
    max_trainings: int = 2
    max_seconds: float = 300.0
    max_steps: int = 20_000
    max_parameters: int = 5_000_000
    work_max_mb: float = 200.0
    work_max_models: int = 5
    work_max_days: float = 7.0
    session_models: int = 20
    max_upload_mb: float | None = None  # None: only Streamlit's own limit (server.maxUploadSize)
    external_models: bool = True
    error_details: str = "full"
    xsrf_protection: bool = True

    def __post_init__(self) -> None:
        for name in NUMBERS:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if self.error_details not in ERROR_DETAILS:
            raise ValueError(
                f"error_details must be one of {', '.join(ERROR_DETAILS)}, "
                f"got {self.error_details!r}"
            )

    @classmethod
    def class_defaults(cls) -> Hosting:
        """What ``TINYFORMERS_HOSTED=1`` turns on, before any variable of its own."""
        return cls(
            hosted=True,
            max_trainings=1,
            max_seconds=120.0,
            max_steps=5_000,
            max_parameters=2_000_000,
            work_max_mb=50.0,
            work_max_models=3,
            work_max_days=3.0,
            session_models=3,
            max_upload_mb=0.5,
            external_models=False,
            error_details="none",
            xsrf_protection=True,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Hosting:
        """The switch's defaults, then every setting's own variable over them. A value that
        cannot be read raises ``ValueError`` naming the variable."""
        env = os.environ if environ is None else environ
        base = cls.class_defaults() if read_switch(env, HOSTED_ENV, False) else cls()
        changes: dict[str, object] = {}
        for name, (variable, kind) in NUMBERS.items():
            value = read_number(env, variable, kind)
            if value is not None:
                changes[name] = value
        models_dir = env.get(MODELS_DIR_ENV, "").strip()
        # On a class server, typed model folders are allowed only inside a host's models folder.
        external = base.external_models or bool(models_dir)
        changes["external_models"] = read_switch(env, EXTERNAL_MODELS_ENV, external)
        changes["xsrf_protection"] = read_switch(env, XSRF_ENV, base.xsrf_protection)
        details = env.get(ERROR_DETAILS_ENV, "").strip().lower()
        if details:
            if details in ("true", "false"):  # Streamlit's older spelling
                details = "full" if details == "true" else "stacktrace"
            if details not in ERROR_DETAILS:
                raise ValueError(
                    f"{ERROR_DETAILS_ENV} must be one of {', '.join(ERROR_DETAILS)}, "
                    f"got {env[ERROR_DETAILS_ENV]!r}"
                )
            changes["error_details"] = details
        return replace(base, **changes)

    def max_upload_bytes(self) -> int | None:
        """The largest upload the app reads, in bytes, or None when it reads any."""
        return None if self.max_upload_mb is None else int(self.max_upload_mb * 1_000_000)

    def streamlit_environment(self) -> dict[str, str]:
        """Streamlit's own settings for this mode, as environment variables for a server
        process (a class server hides error details and keeps XSRF protection on)."""
        if not self.hosted:
            return {}
        settings = {
            ERROR_DETAILS_ENV: self.error_details,
            XSRF_ENV: "true" if self.xsrf_protection else "false",
        }
        if self.max_upload_mb is not None:  # Streamlit's own limit: whole megabytes, at least 1
            settings[UPLOAD_SIZE_ENV] = str(max(1, math.ceil(self.max_upload_mb)))
        return settings


def read_switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    """An on/off variable: 1, true, yes or on; 0, false, no or off; unset or empty: default."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be 1 (on) or 0 (off), got {raw!r}")


def read_number(env: Mapping[str, str], name: str, kind: type = float) -> float | int | None:
    """A positive number from a variable, or None when it is unset or empty."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value
