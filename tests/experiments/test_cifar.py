import pytest
import tensorflow_datasets as tfds

from experiments import cifar


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


@pytest.mark.slow
@pytest.mark.tf_only
def test_runs_end_to_end_on_tfds_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=48):
        rows, per_bn = cifar.run(
            "positions", "wrn-10-1", "cifar10", (0,), epochs=1, batch_size=16, take=32,
            measure_steps=2, directory=str(tmp_path), verbose=0,
        )
    assert [(r["position"], r["rate"]) for r in rows] == [("before_bn", 0.5), ("before_conv", 0.5)]
    assert rows[0]["shift_direct"] is not None and rows[1]["shift_through_linear"] is not None
    text = cifar.report(rows, "positions", "wrn-10-1", "cifar10", 1)
    assert "test error %, BN re-estimated" in text and text.count("| before_") == 2
