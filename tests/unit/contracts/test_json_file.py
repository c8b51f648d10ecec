"""The key CLI's files: written atomically 0600, re-read by readers when they change."""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from contracts.json_file import WatchedJsonFile


def _names(document: Mapping[str, Any]) -> list[str]:
    return list(document.get("names", []))


def test_a_missing_file_is_an_empty_document(tmp_path: Path) -> None:
    assert WatchedJsonFile(tmp_path / "absent.json", _names).value == []


def test_write_replaces_the_file_owner_only_and_reads_it_back(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "names.json"
    writer = WatchedJsonFile(path, _names)
    writer.write({"names": ["a", "b"]})
    assert writer.value == ["a", "b"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["names.json"]  # no temporary file left


def test_a_reader_sees_another_writers_change(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    reader = WatchedJsonFile(path, _names, check_interval=0)
    WatchedJsonFile(path, _names).write({"names": ["a"]})
    reader.maybe_reload()
    assert reader.value == ["a"]


def test_a_reader_checks_at_most_once_per_interval(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    reader = WatchedJsonFile(path, _names, check_interval=3600)
    reader.maybe_reload()  # the first check is due at once
    WatchedJsonFile(path, _names).write({"names": ["a"]})
    reader.maybe_reload()
    assert reader.value == []
    reader.reload()
    assert reader.value == ["a"]


def test_a_bad_file_raises_and_is_tried_again(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    reader = WatchedJsonFile(path, _names, check_interval=0)
    path.write_text("{not json")
    for _ in range(2):
        with pytest.raises(ValueError, match="Expecting property name"):
            reader.maybe_reload()


def test_with_on_error_a_bad_file_keeps_the_last_good_value_once(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    reader = WatchedJsonFile(path, _names, check_interval=0)
    WatchedJsonFile(path, _names).write({"names": ["good"]})
    reader.maybe_reload()
    path.write_text(json.dumps({"names": ["x"]})[:-3])
    errors: list[Exception] = []
    reader.maybe_reload(on_error=errors.append)
    reader.maybe_reload(on_error=errors.append)  # the same bad version is not read again
    assert reader.value == ["good"]
    assert [type(e) for e in errors] == [json.JSONDecodeError]
