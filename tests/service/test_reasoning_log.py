"""The reasoning log: its own JSON-lines files per UTC day, lookup by id, retention."""

from __future__ import annotations

import json
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from service.reasoning_log import ReasoningLog, ReasoningRecord, new_request_id, request_day


def record(request_id: str, reasoning: str = "thinking hard", **extra: object) -> ReasoningRecord:
    fields: dict[str, object] = {
        "request_id": request_id,
        "time": "2026-11-28T10:00:00.000+00:00",
        "caller_id": "key-1",
        "collections": ["hr"],
        "question": "Vacation?",
        "model": "deepseek-r1:8b",
        "reasoning": reasoning,
        "usage": {"prompt_tokens": 10, "completion_tokens": 20},
        "durations_ms": {"total_ms": 12.5},
        **extra,
    }
    return ReasoningRecord(**fields)  # type: ignore[arg-type]


class Clock:
    def __init__(self, day: date) -> None:
        self.day = day

    def __call__(self) -> date:
        return self.day


def test_request_ids_are_unique_and_carry_their_day() -> None:
    ids = {new_request_id() for _ in range(1000)}

    assert len(ids) == 1000
    sample = ids.pop()
    assert len(sample) == 24 and int(sample, 16) >= 0
    assert request_day(sample) == datetime.now(UTC).date()
    assert request_day("not-an-id") is None


def test_records_go_to_one_private_file_per_day_and_read_back(tmp_path: Path) -> None:
    log = ReasoningLog(tmp_path / "reasoning", 30)
    first, second = new_request_id(), new_request_id()

    log.write(record(first, "alpha ünïcode"))
    log.write(record(second, "beta", status="no_answer"))

    files = list((tmp_path / "reasoning").iterdir())
    assert [f.name for f in files] == [f"reasoning-{datetime.now(UTC).date()}.jsonl"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "reasoning").stat().st_mode) == 0o700
    lines = files[0].read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [first, second]
    got = log.get(first)
    assert got is not None and got["reasoning"] == "alpha ünïcode" and got["status"] == "ok"
    assert got["collections"] == ["hr"] and got["usage"]["completion_tokens"] == 20
    second_got = log.get(second)
    assert second_got is not None and second_got["status"] == "no_answer"
    assert log.get(new_request_id()) is None


def test_a_request_finishing_after_midnight_is_found_in_the_next_days_file(
    tmp_path: Path,
) -> None:
    request_id = new_request_id()
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    ReasoningLog(tmp_path, 30, today=Clock(tomorrow)).write(record(request_id))

    assert ReasoningLog(tmp_path, 30).get(request_id) is not None


def test_foreign_ids_are_searched_in_every_file(tmp_path: Path) -> None:
    log = ReasoningLog(tmp_path, 30, today=Clock(date(2026, 1, 5)))
    log.write(record("custom-id"))

    found = log.get("custom-id")
    assert found is not None and found["request_id"] == "custom-id"


def test_a_torn_line_is_skipped(tmp_path: Path) -> None:
    log = ReasoningLog(tmp_path, 30)
    request_id = new_request_id()
    log.write(record(request_id))
    path = next(tmp_path.iterdir())
    with path.open("a") as handle:
        handle.write('{"request_id":"' + request_id + '","reason')  # crash mid-write

    found = log.get(request_id)
    assert found is not None and found["reasoning"] == "thinking hard"


def test_purge_deletes_only_files_past_retention(tmp_path: Path) -> None:
    clock = Clock(date(2026, 11, 1))
    log = ReasoningLog(tmp_path, 30, today=clock)
    for day in (date(2026, 9, 30), date(2026, 10, 1), date(2026, 10, 2), date(2026, 11, 1)):
        clock.day = day
        log.write(record(new_request_id()))
    (tmp_path / "notes.txt").write_text("not ours")
    clock.day = date(2026, 11, 1)

    removed = log.purge()

    # retention 30 days on 2026-11-01: files of days before 2026-10-02 go
    assert sorted(p.name for p in removed) == [
        "reasoning-2026-09-30.jsonl",
        "reasoning-2026-10-01.jsonl",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt",
        "reasoning-2026-10-02.jsonl",
        "reasoning-2026-11-01.jsonl",
    ]


def test_purge_of_a_missing_directory_is_a_no_op(tmp_path: Path) -> None:
    assert ReasoningLog(tmp_path / "absent", 1).purge() == []
