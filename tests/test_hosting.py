"""The class-server switch, TINYFORMERS_HOSTED: its defaults, the variables over it, and the
readers (training caps, saved-work caps, `tinyformers serve`) that take their values from it."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from tinyformers.hosting import NUMBERS, Hosting
from tinyformers.hub.workspace import WorkLimits
from tinyformers.serve import HOSTING_ENV, ServeError, read_env_file, replica_environment
from tinyformers.training.jobs import Limits

ROOT = Path(__file__).resolve().parents[1]
HOSTING_VARIABLES = [variable for variable, _ in NUMBERS.values()] + [
    "TINYFORMERS_HOSTED",
    "TINYFORMERS_EXTERNAL_MODELS",
    "TINYFORMERS_MODELS_DIR",
    "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS",
    "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch) -> None:
    """Each test starts from an environment without any hosting variable."""
    for name in HOSTING_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_without_the_switch_the_laptop_defaults_hold() -> None:
    assert Hosting.from_env({}) == Hosting()
    assert Hosting.from_env({"TINYFORMERS_HOSTED": "0"}) == Hosting()
    assert Hosting.from_env({"TINYFORMERS_HOSTED": ""}) == Hosting()
    local = Hosting()
    assert local.external_models and local.max_upload_bytes() is None
    assert local.error_details == "full" and local.streamlit_environment() == {}


@pytest.mark.parametrize("on", ["1", "true", "YES", " on "])
def test_the_switch_turns_every_class_default_on(on: str) -> None:
    hosted = Hosting.from_env({"TINYFORMERS_HOSTED": on})
    local = Hosting()
    assert hosted == Hosting.class_defaults() and hosted.hosted
    assert hosted.max_trainings < local.max_trainings
    assert hosted.max_seconds < local.max_seconds
    assert hosted.max_steps < local.max_steps
    assert hosted.max_parameters < local.max_parameters
    assert hosted.work_max_mb < local.work_max_mb
    assert hosted.work_max_models < local.work_max_models
    assert hosted.work_max_days < local.work_max_days
    assert hosted.session_models < local.session_models
    assert hosted.max_upload_bytes() == 500_000
    assert not hosted.external_models
    assert hosted.error_details == "none" and hosted.xsrf_protection


def test_each_variable_wins_over_the_switch() -> None:
    hosted = {"TINYFORMERS_HOSTED": "1"}
    for name, (variable, kind) in NUMBERS.items():
        value = Hosting.from_env({**hosted, variable: "7"})
        assert getattr(value, name) == kind(7), variable
        assert value.hosted
    assert Hosting.from_env({**hosted, "TINYFORMERS_EXTERNAL_MODELS": "1"}).external_models
    assert not Hosting.from_env({"TINYFORMERS_EXTERNAL_MODELS": "0"}).external_models
    details = {**hosted, "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS": "stacktrace"}
    assert Hosting.from_env(details).error_details == "stacktrace"
    xsrf = {**hosted, "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION": "false"}
    assert not Hosting.from_env(xsrf).xsrf_protection


def test_a_models_folder_brings_the_external_option_back_on_a_class_server(tmp_path) -> None:
    env = {"TINYFORMERS_HOSTED": "1", "TINYFORMERS_MODELS_DIR": str(tmp_path)}
    assert Hosting.from_env(env).external_models
    assert not Hosting.from_env({**env, "TINYFORMERS_EXTERNAL_MODELS": "0"}).external_models
    assert not Hosting.from_env({**env, "TINYFORMERS_MODELS_DIR": "  "}).external_models


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "TINYFORMERS_HOSTED",
            "maybe",
            "TINYFORMERS_HOSTED must be 1 (on) or 0 (off), got 'maybe'",
        ),
        ("TINYFORMERS_EXTERNAL_MODELS", "2", "TINYFORMERS_EXTERNAL_MODELS must be 1 (on) or 0"),
        ("TINYFORMERS_MAX_STEPS", "lots", "TINYFORMERS_MAX_STEPS must be a number, got 'lots'"),
        ("TINYFORMERS_MAX_STEPS", "2.5", "TINYFORMERS_MAX_STEPS must be a number, got '2.5'"),
        ("TINYFORMERS_MAX_SECONDS", "-5", "TINYFORMERS_MAX_SECONDS must be positive, got '-5'"),
        ("TINYFORMERS_MAX_UPLOAD_MB", "0", "TINYFORMERS_MAX_UPLOAD_MB must be positive"),
        ("TINYFORMERS_WORK_MAX_DAYS", "nan", "TINYFORMERS_WORK_MAX_DAYS must be positive"),
        ("TINYFORMERS_SESSION_MODELS", "many", "TINYFORMERS_SESSION_MODELS must be a number"),
        ("STREAMLIT_CLIENT_SHOW_ERROR_DETAILS", "some", "must be one of full, stacktrace"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(variable, value, message) -> None:
    for hosted in ("0", "1"):
        with pytest.raises(ValueError, match=re.escape(message)):
            Hosting.from_env({"TINYFORMERS_HOSTED": hosted, variable: value})


def test_the_settings_themselves_must_be_positive() -> None:
    with pytest.raises(ValueError, match="session_models must be positive"):
        Hosting(session_models=0)
    with pytest.raises(ValueError, match="error_details must be one of"):
        Hosting(error_details="all")


def test_training_caps_come_from_the_switch(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORMERS_HOSTED", "1")
    limits, hosted = Limits.from_env(), Hosting.class_defaults()
    assert limits.max_steps == hosted.max_steps and limits.max_seconds == hosted.max_seconds
    assert limits.max_parameters == hosted.max_parameters
    assert limits.max_concurrent == hosted.max_trainings
    monkeypatch.setenv("TINYFORMERS_MAX_TRAININGS", "4")
    assert Limits.from_env().max_concurrent == 4
    monkeypatch.setenv("TINYFORMERS_HOSTED", "perhaps")
    with pytest.raises(ValueError, match="TINYFORMERS_HOSTED must be 1"):
        Limits.from_env()


def test_saved_work_caps_come_from_the_switch(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORMERS_HOSTED", "1")
    hosted = Hosting.class_defaults()
    assert WorkLimits.from_env() == WorkLimits(
        max_bytes=int(hosted.work_max_mb * 2**20),
        max_models=hosted.work_max_models,
        max_age_days=hosted.work_max_days,
    )
    monkeypatch.setenv("TINYFORMERS_WORK_MAX_MODELS", "9")
    assert WorkLimits.from_env().max_models == 9
    monkeypatch.delenv("TINYFORMERS_HOSTED")
    assert WorkLimits.from_env().max_bytes == WorkLimits().max_bytes


def test_serve_gives_a_hosted_replica_streamlit_s_class_settings() -> None:
    env = replica_environment({"TINYFORMERS_HOSTED": "1"}, {})
    assert env["STREAMLIT_CLIENT_SHOW_ERROR_DETAILS"] == "none"
    assert env["STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION"] == "true"
    assert env["STREAMLIT_SERVER_MAX_UPLOAD_SIZE"] == "1"
    mine = {"TINYFORMERS_HOSTED": "1", "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS": "type"}
    assert replica_environment(mine, {})["STREAMLIT_CLIENT_SHOW_ERROR_DETAILS"] == "type"
    local = replica_environment({}, {})
    assert "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS" not in local
    with pytest.raises(ServeError, match="TINYFORMERS_HOSTED must be 1"):
        replica_environment({"TINYFORMERS_HOSTED": "sometimes"}, {})


def test_the_deployment_turns_the_switch_on() -> None:
    settings = read_env_file(HOSTING_ENV)
    hosted = Hosting.from_env(settings)
    assert hosted.hosted and not hosted.external_models
    for name, value in hosted.streamlit_environment().items():
        assert settings[name] == value, name


def shown(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def test_the_readme_table_states_what_the_switch_changes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    local, hosted = Hosting(), Hosting.class_defaults()
    for name, (variable, _) in NUMBERS.items():
        row = next((line for line in readme.splitlines() if f"| `{variable}` |" in line), None)
        assert row is not None, f"the README's switch table lacks {variable}"
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if getattr(local, name) is not None:
            assert cells[2] == shown(getattr(local, name)), variable
        assert cells[3] == shown(getattr(hosted, name)), variable
    assert "`TINYFORMERS_HOSTED=1`" in (ROOT / "SECURITY.md").read_text(encoding="utf-8")


def test_every_setting_has_a_field() -> None:
    names = {f.name for f in fields(Hosting)}
    assert set(NUMBERS) <= names
