"""One settings object: the service's settings contain the ingest settings, read once through
``load_settings``; an invalid variable is a usage error (exit 2) that names it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ingest.settings import IngestSettings, SettingsError, load_settings
from service.cli import main
from service.settings import ServiceSettings


def test_service_settings_carry_the_ingest_settings_under_the_same_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "sources.yaml"
    for name, value in {
        "INHOUSE_DATA_DIR": str(tmp_path / "d"),
        "INHOUSE_SOURCES": str(sources),
        "INHOUSE_EMBED__BATCH_SIZE": "16",
        "INHOUSE_PARSE__TIMEOUT_S": "42",
        "INHOUSE_CHUNK__TOKENS": "120",
        "INHOUSE_RETRIEVAL__MODE": "dense",
        "INHOUSE_LIMITS__UPLOAD_MB": "7",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(ServiceSettings)
    assert isinstance(settings, IngestSettings)  # passed as is to the ingest code it runs
    assert settings.data_dir == tmp_path / "d" and settings.sources == sources
    assert settings.embed.batch_size == 16 and settings.parse.timeout_s == 42
    assert settings.chunk.tokens == 120 and settings.retrieval.mode == "dense"
    assert settings.limits.upload_mb == 7
    assert settings.legacy_manifest_path == tmp_path / "d" / "manifest.sqlite3"
    # one declaration of each field: the ingest fields are not declared again
    assert "data_dir" not in ServiceSettings.__annotations__
    assert "sources" not in ServiceSettings.__annotations__


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INHOUSE_LIMITS__UPLOAD_MB", "abc"),
        ("INHOUSE_PARSE__WORKERS", "0"),
        ("INHOUSE_DEFAULT_COLLECTION", "Not Valid"),
        ("INHOUSE_OIDC__ISSUER", "ftp://login.example.com"),
        ("INHOUSE_ADMIN_KEY", "too short secret"),
    ],
)
def test_an_invalid_variable_is_named(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(ServiceSettings)
    assert str(caught.value).startswith(f"invalid settings: {variable}: ")
    if variable == "INHOUSE_ADMIN_KEY":
        assert value not in str(caught.value)  # pydantic's input value is never echoed


def test_every_command_exits_2_naming_the_variable(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INHOUSE_LIMITS__UPLOAD_MB", "abc")
    assert main(["keys", "list"]) == 2  # a service command
    err = capsys.readouterr().err
    assert "INHOUSE_LIMITS__UPLOAD_MB" in err and "Input should be" in err
    monkeypatch.setenv("INHOUSE_PARSE__MAX_PAGES", "none")
    assert main(["index", "status"]) == 2  # an ingest command
    assert "INHOUSE_PARSE__MAX_PAGES" in capsys.readouterr().err
    assert not data_dir.exists()  # nothing was started


def test_serve_exits_2_before_starting(venv_bin: Path, tmp_path: Path) -> None:
    env = dict(os.environ, INHOUSE_LIMITS__UPLOAD_MB="abc", INHOUSE_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [str(venv_bin / "inhouse"), "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "INHOUSE_LIMITS__UPLOAD_MB" in done.stderr
    assert "Traceback" not in done.stderr
