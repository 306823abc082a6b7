"""The sources file: what the re-index worker keeps current, and when.

YAML, path from ``INHOUSE_SOURCES``::

    sources:
      - name: docs
        paths: [/srv/shared/policies]      # one or more folders (or files); a string works too
        collection: main                    # default: main
        schedule: "0 * * * *"               # cron; a 6th field adds seconds ("*/30 * * * * 0")
        include: ["**/*.pdf", "**/*.docx"]  # optional globs
        exclude: ["drafts/**"]
        enabled: true                       # default: true; false = never on schedule

Relative paths are taken relative to the sources file's folder. Schedules are read in
the machine's local time zone. Any mistake is a :class:`SourcesError` naming the source
and the field, raised when the file is loaded (at start, not at the first run).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ingest.errors import IngestError
from ingest.settings import validate_collection_name

SOURCE_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


class SourcesError(IngestError):
    """The sources file is missing, unreadable or invalid."""

    code = "invalid_sources"


class Source(BaseModel):
    """One configured source: folders scanned into one collection on a cron schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique name (letters, digits, '-', '_'; at most 64).")
    paths: tuple[Path, ...] = Field(description="Root folders (or files) to scan; at least one.")
    collection: str = Field("main", description="Collection the files are indexed into.")
    schedule: str = Field(description="Cron expression (5 fields, or 6 with seconds last).")
    include: tuple[str, ...] = Field((), description="Globs a file must match (any).")
    exclude: tuple[str, ...] = Field((), description="Globs that drop a file.")
    enabled: bool = Field(True, description="Run on schedule; a disabled source runs on demand.")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not 1 <= len(value) <= 64 or any(ch not in SOURCE_NAME_CHARS for ch in value):
            raise ValueError("use 1-64 letters, digits, '-' or '_'")
        return value

    @field_validator("paths", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            value = [value]
        if isinstance(value, list | tuple) and not value:
            raise ValueError("give at least one folder")
        return value

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _globs(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("collection")
    @classmethod
    def _valid_collection(cls, value: str) -> str:
        return validate_collection_name(value)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        value = value.strip()
        if not croniter.is_valid(value) or len(value.split()) > 6:
            raise ValueError(
                f"invalid cron expression {value!r} (5 fields 'min hour day month weekday',"
                " or 6 with seconds last)"
            )
        return value

    def next_run(self, after: datetime) -> datetime:
        """The first scheduled time strictly after ``after`` (an aware datetime)."""
        nxt: datetime = croniter(self.schedule, after).get_next(datetime)
        return nxt


class SourcesConfig(BaseModel):
    """The whole sources file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: tuple[Source, ...] = Field(description="Configured sources, unique names.")

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, value: tuple[Source, ...]) -> tuple[Source, ...]:
        seen: set[str] = set()
        for source in value:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} is used twice")
            seen.add(source.name)
        return value

    def get(self, name: str) -> Source | None:
        return next((s for s in self.sources if s.name == name), None)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]


def parse_sources(
    data: Any, *, origin: str = "sources", base_dir: Path | None = None
) -> SourcesConfig:
    """Validate already-loaded YAML data; relative paths are resolved against ``base_dir``."""
    if not isinstance(data, dict) or "sources" not in data:
        raise SourcesError(f"{origin}: expected a mapping with a 'sources' list")
    try:
        config = SourcesConfig.model_validate(data)
    except ValidationError as exc:
        raise SourcesError(f"{origin}: " + "; ".join(_describe(exc, data))) from None
    if base_dir is None:
        return config
    return SourcesConfig(
        sources=tuple(
            s.model_copy(update={"paths": tuple(_absolute(p, base_dir) for p in s.paths)})
            for s in config.sources
        )
    )


def load_sources(path: Path) -> SourcesConfig:
    """Read and validate the sources file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourcesError(f"cannot read the sources file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SourcesError(f"{path}: not valid YAML: {exc}") from None
    return parse_sources(data, origin=str(path), base_dir=path.expanduser().resolve().parent)


def _absolute(path: Path, base_dir: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base_dir / path


def _describe(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    """One line per problem: which source (by name when it has one) and which field."""
    raw = data.get("sources")
    lines = []
    for error in exc.errors():
        loc = error["loc"]
        message = error["msg"].removeprefix("Value error, ")
        if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
            index = loc[1]
            entry = raw[index] if isinstance(raw, Sequence) and index < len(raw) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            who = f"source {name!r} (entry {index + 1})" if name else f"source entry {index + 1}"
            field = ".".join(str(part) for part in loc[2:]) or "(the entry)"
            lines.append(f"{who}, field {field!r}: {message}")
        else:
            field = ".".join(str(part) for part in loc) or "(top level)"
            lines.append(f"field {field!r}: {message}")
    return lines


def sources_from_settings(settings_sources: Path | None) -> SourcesConfig:
    """Load the sources file named by ``INHOUSE_SOURCES`` (or ``--sources``)."""
    if settings_sources is None:
        raise SourcesError(
            "no sources file: set INHOUSE_SOURCES (or pass --sources) to a YAML file"
        )
    return load_sources(settings_sources)
