"""experiments.common: statistics, tables, files and flags the scripts share."""

import math
import os

import pytest

from experiments import common


def test_mean_std_uses_sample_std_and_skips_missing():
    mean, std = common.mean_std([1.0, None, 3.0, float("nan")])
    assert mean == 2.0 and std == pytest.approx(math.sqrt(2.0))


def test_mean_std_of_nothing_is_nan():
    assert all(math.isnan(v) for v in common.mean_std([None]))


def test_format_mean_std_shows_one_value_without_spread():
    assert common.format_mean_std([0.5], 2) == "0.50"
    assert common.format_mean_std([0.5, 0.7], 2) == "0.60 ± 0.14"
    assert common.format_mean_std([], 2) == "-"


def test_parse_floats_echoes_the_flag():
    with pytest.raises(ValueError, match=r"Received: --rates=0.1,x"):
        common.parse_floats("rates", ["0.1", "x"])


def test_csv_and_markdown_tables_keep_column_order_and_blank_missing():
    rows = [{"b": 2.0, "a": "x"}, {"a": "y"}]
    assert common.csv_text(rows, ("a", "b")) == "a,b\nx,2\ny,\n"
    assert common.markdown_table(rows, ("a", "b")).splitlines() == ["| a | b |", "|---|---|", "| x | 2 |", "| y | - |"]


def test_write_outputs_writes_every_file_and_no_temporaries(tmp_path):
    plt = common.pyplot()
    fig, _ = plt.subplots()
    paths = common.write_outputs(
        tmp_path / "out", "exp", csv_files=[("exp.csv", [{"a": 1}], ("a",))], markdown="# t\n", figure=fig
    )
    assert sorted(os.path.basename(p) for p in paths) == ["exp.csv", "exp.md", "exp.png"]
    assert sorted(os.listdir(tmp_path / "out")) == ["exp.csv", "exp.md", "exp.png"]
    assert (tmp_path / "out" / "exp.png").read_bytes()[:4] == b"\x89PNG"


def test_group_rows_keeps_first_seen_order():
    rows = [{"k": 2, "v": 1}, {"k": 1, "v": 2}, {"k": 2, "v": 3}]
    groups = common.group_rows(rows, ("k",))
    assert list(groups) == [(2,), (1,)] and [r["v"] for r in groups[(2,)]] == [1, 3]
