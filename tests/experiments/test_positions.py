import subprocess
import sys

import pytest

from experiments import common
from experiments import positions

ROOT = common.__file__.rsplit("/experiments/", 1)[0]


def _row(position, rate, seed, accuracy, statistic=1.0):
    return {
        "model": "net", "seed": seed, "position": position, "type": "-" if position == "none" else "bernoulli",
        "rate": rate, "test_accuracy": accuracy, "recalibrated_accuracy": accuracy + 0.01,
        "shift_max": statistic, "shift_direct": statistic if position == "before_bn" else None,
        "expected_direct": 1 / (1 - rate) if position == "before_bn" else None,
        "train_mode_accuracy": 0.9, "train_inference_accuracy": 0.8,
    }


ROWS = [
    _row("none", 0.0, 0, 0.90), _row("none", 0.0, 1, 0.92),
    _row("before_bn", 0.5, 0, 0.70, 2.1), _row("before_bn", 0.5, 1, 0.74, 1.9),
]
PER_BN = [
    {**ROWS[2], "index": i, "bn": f"bn{i}", "statistic": 1.0 + i, "direct": i == 2} for i in (1, 2, 3)
]


def test_summary_averages_seeds_per_setting():
    cells = {(c["position"], c["rate"]): c for c in positions.summary(ROWS)}
    assert cells[("none", "0")]["test_accuracy"] == "0.9100 ± 0.0141"
    assert cells[("before_bn", "0.5")]["shift_direct"] == "2.000 ± 0.141"
    assert cells[("before_bn", "0.5")]["expected_direct"] == "2.000 ± 0.000"
    assert cells[("none", "0")]["seeds"] == 2


def test_report_has_one_line_per_setting():
    lines = [line for line in positions.report(ROWS, "digits", 8).splitlines() if line.startswith("| net")]
    assert len(lines) == 2


def test_figure_draws_a_row_of_panels_per_model():
    fig = positions.figure(ROWS, PER_BN)
    assert len(fig.axes) == 3
    assert fig.axes[0].get_title().startswith("net: test accuracy")
    common.pyplot().close(fig)


@pytest.mark.slow
@pytest.mark.tf_only
def test_script_trains_measures_and_writes_its_files(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.positions", "--models=wrn-10-1", "--positions=none,head",
         "--rates=0.5", "--seeds=0", "--epochs=1", "--take=64", "--verbose=0",
         f"--directory={tmp_path / 'searches'}", f"--out={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "positions.csv", "positions.md", "positions.png", "positions_per_bn.csv"
    ]
    table = (out / "positions.csv").read_text().splitlines()
    assert len(table) == 3 and table[0].startswith("model,seed,position")
