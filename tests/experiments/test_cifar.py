import csv
import json
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


@pytest.mark.parametrize(
    "net, epochs", [("preresnet-110", 164), ("resnext-29-8x64d", 300), ("wrn-28-10", 200), ("wrn-10-1", 200)]
)
def test_epochs_are_the_reference_recipes(net, epochs):
    assert cifar.recipe(net)[0] == epochs


@pytest.mark.parametrize("table, models", [("baseline", 1), ("positions", 2), ("head", 4), ("uout", 4)])
def test_models_per_table(table, models):
    assert cifar.trials(table) == models


def test_commands_give_one_line_per_table_row():
    # A row of the paper's tables is a net on both data sets.
    rows = cifar.commands(list(cifar.NETS), ["cifar10", "cifar100"], cifar.SEEDS, data_dir="/data")
    assert len(rows) == len(cifar.TABLES) * len(cifar.NETS)
    first = rows[0]["command"]
    assert first.startswith("python -m experiments.cifar --table=baseline --nets=preresnet-110")
    assert "--datasets=cifar10,cifar100" in first
    assert "--seeds=0,1,2,3,4" in first and "--data_dir=/data" in first
    assert rows[0]["models"] == 10  # 1 model x 5 seeds x 2 data sets
    assert all(r["hours"] is None for r in rows)


def test_unknown_table_is_echoed():
    with pytest.raises(ValueError, match="Received: table='fig9'"):
        cifar.run("fig9", "wrn-10-1", "cifar10", (0,))


@pytest.mark.slow
def test_time_estimate_comes_from_measured_steps():
    seconds = cifar.estimate_epoch_seconds("wrn-10-1", 10, 8, steps=2)
    assert 0 < seconds < 6250 * 60  # 6,250 steps of batch 8 per epoch
    rows = cifar.commands(["wrn-10-1"], ["cifar10"], (0,), estimate_steps=1)
    baseline = rows[0]
    assert set(baseline["epoch_seconds"]) == {"cifar10"}
    assert baseline["hours"] == pytest.approx(baseline["epoch_seconds"]["cifar10"] * 200 / 3600)


def test_device_names_the_backend():
    import keras

    assert cifar.device().startswith(keras.backend.backend())


def _record(trial_dir, hp, val_accuracy):
    trial_dir.mkdir(parents=True)
    (trial_dir / "keras_vs.json").write_text(json.dumps({
        "trial_id": trial_dir.name, "status": "COMPLETED", "hyperparameters": hp,
        "history": {"val_accuracy": val_accuracy}, "metrics": {},
    }))


def test_best_epoch_is_the_highest_test_accuracy_of_each_trial(tmp_path):
    _record(tmp_path / "trial_0", {"dropout_position": "none"}, [0.5, 0.8, 0.7])
    _record(tmp_path / "trial_1", {"dropout_position": "head", "dropout_type": "uout", "uout_beta": 0.3},
            [0.9, 0.6])
    _record(tmp_path / "trial_2", {"dropout_position": "before_bn", "dropout_type": "bernoulli",
                                   "dropout_rate": 0.5, "uout_beta": 0.1}, [0.1, 0.2, 0.3])
    assert cifar.best_epochs(tmp_path) == {
        ("none", "-", 0.0): (0.8, 2), ("head", "uout", 0.3): (0.9, 1), ("before_bn", "bernoulli", 0.5): (0.3, 3),
    }


def _write(out, table, net, dataset, settings):
    rows = [
        {"dataset": dataset, "seed": seed, "position": p, "type": t, "rate": r,
         "test_accuracy": acc, "best_test_accuracy": acc + 0.01, "recalibrated_accuracy": acc + 0.02}
        for seed in (0, 1) for p, t, r, acc in settings
    ]
    (out / f"cifar-{table}-{net}-{dataset}.csv").write_text(common.csv_text(rows, cifar.COLUMNS))


@pytest.mark.slow
def test_script_prints_one_command_per_row_and_collects_the_tables(tmp_path):
    _write(tmp_path, "baseline", "densenet-bc-100-12", "cifar100", [("none", "-", 0.0, 0.75)])
    script = [sys.executable, "-m", "experiments.cifar", f"--out={tmp_path}"]
    printed = subprocess.run(script + ["--print_commands", "--seeds=0"], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert printed.returncode == 0, printed.stderr[-3000:]
    lines = printed.stdout.splitlines()
    assert len(lines) == len(cifar.TABLES) * len(cifar.NETS) + 1
    assert lines[-1].startswith("python -m experiments.cifar --collect")
    collected = subprocess.run(script + ["--collect"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert collected.returncode == 0, collected.stderr[-3000:]
    tables = (tmp_path / "cifar-tables.md").read_text()
    assert "| DenseNet | - | 25.00 (24.00) |" in tables
    assert tables.count("## ") == len(cifar.TABLES)


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
        [f"{name}.csv", f"{name}_per_bn.csv", f"{name}.md", f"{name}.png", "cifar-positions-wrn-10-1.md"]
    )
    with open(out / f"{name}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["position"], r["rate"]) for r in rows] == [("before_bn", "0.5"), ("before_conv", "0.5")]
    assert rows[0]["shift_direct"] and rows[1]["shift_through_linear"]
    assert all(0 <= float(r["best_test_accuracy"]) <= 1 and r["best_epoch"] == "1" for r in rows)
    assert "test error %, best epoch" in (out / f"{name}.md").read_text()
    assert "| net | C10 (a) | C10 (b) | C100 (a) | C100 (b) |" in (out / "cifar-positions-wrn-10-1.md").read_text()
