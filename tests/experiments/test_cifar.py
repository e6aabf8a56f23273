import csv
import pathlib
import subprocess
import sys

import pytest

from experiments import cifar, common

ROOT = pathlib.Path(cifar.__file__).resolve().parents[1]


def test_densenet_recipe_keeps_lr_0_1_at_its_batch_64():
    epochs, batch, lr_at_128 = cifar.recipe("densenet-bc-100-12")
    assert (epochs, batch) == (300, 64) and lr_at_128 * batch / 128 == pytest.approx(0.1)


def test_flags_override_the_recipe():
    assert cifar.recipe("wrn-28-10", epochs=2, batch_size=32)[:2] == (2, 32)


@pytest.mark.parametrize("table, models", [("baseline", 1), ("positions", 2), ("head", 4), ("uout", 4)])
def test_models_per_table(table, models):
    assert cifar.trials(table) == models


def test_commands_cover_every_table_net_and_data_set():
    rows = cifar.commands(list(cifar.NETS), ["cifar10", "cifar100"], cifar.SEEDS, data_dir="/data")
    assert len(rows) == len(cifar.TABLES) * len(cifar.NETS) * 2
    first = rows[0]["command"]
    assert first.startswith("python -m experiments.cifar --table=baseline --nets=preresnet-110")
    assert "--seeds=0,1,2,3,4" in first and "--data_dir=/data" in first
    assert all(r["hours"] is None for r in rows)


def test_unknown_table_is_echoed():
    with pytest.raises(ValueError, match="Received: table='fig9'"):
        cifar.run("fig9", "wrn-10-1", "cifar10", (0,))


@pytest.mark.slow
def test_time_estimate_comes_from_measured_steps():
    seconds = cifar.estimate_seconds_per_step("wrn-10-1", 10, 8, steps=2)
    assert 0 < seconds < 60


# The script's main under TFDS' mock data (random CIFAR-shaped images), in a
# subprocess: the real flags, data pipeline, training, measuring and files.
MOCK_MAIN = """
import sys
import tensorflow_datasets as tfds
from experiments import cifar, common
cifar.define_flags()
with tfds.testing.mock_data(num_examples=48):
    sys.argv = ["cifar"] + sys.argv[1:]
    common.run_script(cifar.main)
"""


@pytest.mark.slow
@pytest.mark.tf_only
def test_script_runs_end_to_end_on_tfds_mock_data(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-c", MOCK_MAIN, "--table=positions", "--nets=wrn-10-1", "--datasets=cifar10",
         "--seeds=0", "--epochs=1", "--batch_size=16", "--take=32", "--measure_steps=2", "--verbose=0",
         f"--directory={tmp_path / 'searches'}", f"--out={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    name = "cifar-positions-wrn-10-1-cifar10"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.csv", f"{name}_per_bn.csv", f"{name}.md", f"{name}.png"]
    )
    with open(out / f"{name}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["position"], r["rate"]) for r in rows] == [("before_bn", "0.5"), ("before_conv", "0.5")]
    assert rows[0]["shift_direct"] and rows[1]["shift_through_linear"]
    assert "test error %, BN re-estimated" in (out / f"{name}.md").read_text()


def test_figure_has_a_pair_of_bars_per_setting():
    rows = [
        {"position": p, "type": "bernoulli", "rate": 0.5, "test_accuracy": 0.9, "recalibrated_accuracy": 0.92}
        for p in ("before_bn", "before_conv")
    ]
    fig = cifar.figure(rows, "t")
    heights = [round(bar.get_height(), 6) for bar in fig.axes[0].patches]
    assert heights == [10.0, 10.0, 8.0, 8.0]
    common.pyplot().close(fig)
