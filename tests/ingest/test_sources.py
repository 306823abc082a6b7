"""The sources file: the minimal shape works, every mistake names the source and the field."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingest.settings import IngestSettings
from ingest.sources import SourcesError, load_sources, parse_sources, sources_from_settings
from tests.ingest.cli_helpers import run_inhouse

MINIMAL = """\
sources:
  - name: docs
    paths: [/srv/shared/policies]
    collection: main
    schedule: "0 * * * *"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    return path


def test_minimal_shape_from_the_issue(tmp_path: Path) -> None:
    config = load_sources(write(tmp_path, MINIMAL))
    (source,) = config.sources
    assert source.name == "docs"
    assert source.paths == (Path("/srv/shared/policies"),)
    assert source.collection == "main"
    assert source.enabled is True
    assert source.include == () and source.exclude == ()
    now = datetime(2026, 3, 1, 10, 17, 5).astimezone()
    assert source.next_run(now) == now.replace(hour=11, minute=0, second=0)


def test_full_shape_relative_paths_and_seconds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
sources:
  - name: hr-docs
    paths: handbook          # one string is one root; relative to this file
    collection: hr
    schedule: "* * * * * */2"
    include: "**/*.md"
    exclude: [drafts/**, "*.tmp"]
    enabled: false
  - name: wiki
    paths: [~/wiki, /abs/one]
    schedule: "@daily"
""",
    )
    config = load_sources(path)
    hr, wiki = config.sources
    assert hr.paths == (tmp_path / "handbook",)
    assert hr.include == ("**/*.md",) and hr.exclude == ("drafts/**", "*.tmp")
    assert hr.enabled is False and hr.collection == "hr"
    assert wiki.paths == (Path.home() / "wiki", Path("/abs/one"))
    assert wiki.collection == "main"
    now = datetime(2026, 3, 1, 10, 17, 5).astimezone()
    assert hr.next_run(now) - now == timedelta(seconds=1)  # 6th field: seconds
    assert config.get("wiki") is wiki and config.get("nope") is None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('schedule: "61 * * * *"', ["source 'docs' (entry 1)", "'schedule'", "invalid cron"]),
        ('schedule: "every hour"', ["source 'docs'", "'schedule'", "every hour"]),
        ("schedule: '* * * * * * * *'", ["source 'docs'", "'schedule'"]),
        ('collection: "Bad Name"\n    schedule: "@hourly"', ["source 'docs'", "'collection'"]),
        ('paths: []\n    schedule: "@hourly"', ["source 'docs'", "'paths'", "at least one"]),
        ('shedule: "@hourly"', ["source 'docs'", "'shedule'", "'schedule'"]),  # typo
        ('schedule: "@hourly"\n    enabled: sometimes', ["source 'docs'", "'enabled'"]),
    ],
)
def test_invalid_entry_names_source_and_field(
    tmp_path: Path, entry: str, expected: list[str]
) -> None:
    text = f"sources:\n  - name: docs\n    paths: [/x]\n    {entry}\n"
    with pytest.raises(SourcesError) as info:
        load_sources(write(tmp_path, text))
    message = info.value.message
    assert message.startswith(str(tmp_path / "sources.yaml"))
    for part in expected:
        assert part in message, message
    assert info.value.code == "invalid_sources"


def test_second_entry_without_name_and_duplicates(tmp_path: Path) -> None:
    text = MINIMAL + "  - paths: [/y]\n    schedule: '@daily'\n"
    with pytest.raises(SourcesError, match=r"source entry 2, field 'name': Field required"):
        load_sources(write(tmp_path, text))
    with pytest.raises(SourcesError, match="'docs' is used twice"):
        load_sources(write(tmp_path, MINIMAL + MINIMAL.split("\n", 1)[1]))
    with pytest.raises(SourcesError, match=r"source 'a/b' .*field 'name'"):
        parse_sources({"sources": [{"name": "a/b", "paths": ["/x"], "schedule": "@daily"}]})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "expected a mapping with a 'sources' list"),
        ("- name: docs\n", "expected a mapping"),
        ("sources: [\n", "not valid YAML"),
        ("sources: {}\n", "field 'sources'"),
        ("sources: []\nextra: 1\n", "field 'extra'"),
    ],
)
def test_invalid_file(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SourcesError, match=expected):
        load_sources(write(tmp_path, text))


def test_missing_file_and_unset_setting(tmp_path: Path) -> None:
    with pytest.raises(SourcesError, match="cannot read the sources file"):
        load_sources(tmp_path / "absent.yaml")
    with pytest.raises(SourcesError, match="INHOUSE_SOURCES"):
        sources_from_settings(None)


def test_setting_reads_inhouse_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("INHOUSE_SOURCES", str(path))
    assert IngestSettings().sources == path
    assert sources_from_settings(IngestSettings().sources).names == ["docs"]


@pytest.mark.parametrize("command", [["worker"], ["reindex"], ["sources"]])
def test_commands_refuse_invalid_config_at_start(tmp_path: Path, command: list[str]) -> None:
    bad = write(tmp_path, 'sources:\n  - name: docs\n    paths: [/x]\n    schedule: "0 25 * * *"\n')
    done = run_inhouse(command, tmp_path / "data", timeout=60, INHOUSE_SOURCES=str(bad))
    assert done.returncode == 2, done.stderr
    assert "source 'docs'" in done.stderr and "'schedule'" in done.stderr
    done = run_inhouse([*command, "--sources", str(tmp_path / "none.yaml")], tmp_path / "data")
    assert done.returncode == 2 and "cannot read the sources file" in done.stderr
