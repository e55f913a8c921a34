"""atomic_write_text: the whole new text or the old file, the mode kept, no temporary left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hdiaks_widgets.fileio import atomic_write_text

TEXT = 'line one\nzweite Zeile — ünïcode ✓\n"""quotes""" {braces} \\backslash\n'


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_text_writes_utf8_text_with_newlines(tmp_path: Path) -> None:
    target = tmp_path / "job.json"
    assert atomic_write_text(target, TEXT) == target
    assert target.read_bytes() == TEXT.encode("utf-8")


def test_atomic_write_text_replaces_existing_content(tmp_path: Path) -> None:
    target = tmp_path / "job.json"
    target.write_text("old content that is longer than the new one\n" * 10, encoding="utf-8")
    atomic_write_text(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"


def test_atomic_write_text_accepts_a_str_path(tmp_path: Path) -> None:
    atomic_write_text(os.fspath(tmp_path / "a.txt"), "x")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "x"


def test_atomic_write_text_new_file_gets_0644_not_mkstemps_0600(tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    atomic_write_text(target, TEXT)
    assert _mode(target) == 0o644


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664], ids=oct)
def test_atomic_write_text_keeps_the_existing_mode(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "job.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(mode)
    atomic_write_text(target, TEXT)
    assert _mode(target) == mode
    assert target.read_text(encoding="utf-8") == TEXT


def test_atomic_write_text_given_mode_wins_over_the_existing_one(tmp_path: Path) -> None:
    target = tmp_path / "profiles.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o644)
    atomic_write_text(target, TEXT, mode=0o600)
    assert _mode(target) == 0o600


def test_atomic_write_text_given_mode_applies_to_a_new_file(tmp_path: Path) -> None:
    target = tmp_path / "endpoints.json"
    atomic_write_text(target, TEXT, mode=0o600)
    assert _mode(target) == 0o600


def test_atomic_write_text_leaves_only_the_target_in_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "job.json"
    atomic_write_text(target, TEXT)
    atomic_write_text(target, TEXT + "more\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.json"]


def test_atomic_write_text_failure_while_writing_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "job.json"
    target.write_text("old\n", encoding="utf-8")
    # A lone surrogate cannot be encoded: the write fails after part of the text was written.
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "partial text " * 1000 + "\udc80 rest")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.json"]


def test_atomic_write_text_failure_never_creates_a_partial_new_file(tmp_path: Path) -> None:
    target = tmp_path / "job.json"
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "partial text\n" + "\udc80")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text_failure_to_rename_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("keep", encoding="utf-8")
    with pytest.raises(OSError):
        atomic_write_text(target, TEXT)  # os.replace cannot put a file over a non-empty directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert (target / "inside").read_text(encoding="utf-8") == "keep"


def test_atomic_write_text_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "absent" / "job.json", TEXT)
    assert list(tmp_path.iterdir()) == []
