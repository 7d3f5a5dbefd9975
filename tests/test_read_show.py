"""The one reader of untrusted files and the one printer of their strings, fed what a hostile folder holds:
each refusal is one line, and each comes back in well under a second."""

from __future__ import annotations

import os
import time

import pytest

from neuronlab.io.read import UnreadableFile, parse_yaml, read_json, read_text, read_yaml
from neuronlab.show import csv_cell, shown

BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)  # 324 bytes; 9**9 strings once expanded


def refused(call, *args) -> str:
    start = time.monotonic()
    with pytest.raises(UnreadableFile) as error:
        call(*args)
    assert time.monotonic() - start < 1.0
    assert "\n" not in str(error.value)
    return str(error.value)


def test_an_alias_bomb_a_fifo_a_deep_nest_a_link_and_a_huge_file_are_one_line_each(tmp_path):
    (tmp_path / "overrides.yaml").write_text(BOMB)
    assert "aliases" in refused(read_yaml, tmp_path / "overrides.yaml")
    os.mkfifo(tmp_path / "result.json")
    assert "not a regular file" in refused(read_json, tmp_path / "result.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "nested more than" in refused(read_json, tmp_path / "deep.json")
    (tmp_path / "flow.yaml").write_text("[" * 100_000 + "]" * 100_000)
    assert "nested more than" in refused(read_yaml, tmp_path / "flow.yaml")
    (tmp_path / "link.json").symlink_to(tmp_path / "deep.json")
    assert "symbolic link" in refused(read_json, tmp_path / "link.json")
    (tmp_path / "big.json").write_bytes(b" " * 2000)
    assert "more than 1000" in refused(read_json, tmp_path / "big.json", 1000)
    (tmp_path / "latin1.yaml").write_bytes(b"a: \xff\n")
    assert "not UTF-8" in refused(read_text, tmp_path / "latin1.yaml")
    assert "not JSON" in refused(read_json, tmp_path / "overrides.yaml")


def test_plain_records_read_as_safe_load_reads_them(tmp_path):
    import yaml

    text = "a: &anchor 1\nb: [x, {c: 2.5}]\n"  # an anchor alone is fine: only aliases expand
    assert parse_yaml(text) == yaml.safe_load(text)
    (tmp_path / "r.json").write_text('{"status": "completed", "metrics": {"a": [1, "]}"]}}')
    assert read_json(tmp_path / "r.json") == {"status": "completed", "metrics": {"a": [1, "]}"]}}


def test_printed_strings_are_one_capped_line_and_csv_cells_never_formulas():
    assert shown("ok\x1b[2J\nrow") == "ok\\x1b[2J\\nrow"
    assert shown("x" * 10_000_000) == "x" * 200 + "…"
    assert shown("naïve ✓") == "naïve ✓"
    assert shown("\u202eevil") == "\\u202eevil"  # right-to-left override
    assert [csv_cell(v) for v in ("=HYPERLINK(1)", "+1", "-2", "@SUM", "\tx", "ok", -0.5, 3)] == [
        "'=HYPERLINK(1)",
        "'+1",
        "'-2",
        "'@SUM",
        "'\tx",
        "ok",
        -0.5,
        3,
    ]
