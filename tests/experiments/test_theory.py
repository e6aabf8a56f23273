import subprocess
import sys

import pytest

from experiments import common
from experiments import theory as theory_exp

ROOT = common.__file__.rsplit("/experiments/", 1)[0]


@pytest.fixture(scope="module")
def rows():
    return theory_exp.run([0.3, 0.6], [0.2], [8, 128], means=(0.0, 0.5), samples=40_000)


def test_every_setting_runs_at_every_mean(rows):
    assert len(rows) == 2 * (2 + 1 + 2 * 2)
    assert {(r["case"], r["mean"]) for r in rows} == {
        (case, mean) for case in ("a", "uout", "b") for mean in (0.0, 0.5)
    }


def test_simulation_agrees_with_the_closed_form(rows):
    for row in rows:
        assert abs(row["relative_error"]) < 0.02, row


def test_wider_layers_shift_less_in_case_b(rows):
    b = {(r["d"], r["value"], r["mean"]): r for r in rows if r["case"] == "b"}
    for rate in (0.3, 0.6):
        assert b[(128, rate, 0.0)]["d_cos2"] > b[(8, rate, 0.0)]["d_cos2"]
        assert b[(128, rate, 0.0)]["measured"] > b[(8, rate, 0.0)]["measured"]


def test_report_names_the_worst_error_and_each_case(rows):
    text = theory_exp.report(rows, 40_000)
    worst = max(abs(r["relative_error"]) for r in rows)
    assert f"{100 * worst:.2f}%" in text
    assert "## Case (a)" in text and "## Uout" in text and "## Case (b)" in text


def test_figure_has_a_panel_per_case(rows):
    fig = theory_exp.figure(rows)
    assert [ax.get_title() for ax in fig.axes] == ["(a) Dropout -> BN", "Uout -> BN", "(b) Dropout -> Dense -> BN"]
    common.pyplot().close(fig)


def _script(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "experiments.theory", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_script_writes_table_report_and_figure(tmp_path):
    result = _script("--samples=2000", "--rates=0.5", "--betas=0.1", "--widths=4", "--means=0", f"--out={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theory.csv", "theory.md", "theory.png"]
    assert (tmp_path / "theory.csv").read_text().splitlines()[0].startswith("layers,setting,case")


def test_script_rejects_a_bad_rate_with_the_value(tmp_path):
    result = _script("--rates=0.5,abc", f"--out={tmp_path}")
    assert result.returncode != 0 and "Received: --rates=0.5,abc" in result.stderr
    assert not any(tmp_path.iterdir())
