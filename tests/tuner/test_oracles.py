"""tuner.oracles: each oracle by name, the grid's order, atomic oracle files."""

import keras_tuner
import pytest

from keras_vs import vocab
from tuner import oracles

POINTS = [{"dropout_position": "none"}, {"dropout_position": "head", "dropout_type": "uout", "uout_beta": 0.5}]


@pytest.mark.parametrize("name", vocab.ORACLES)
def test_every_name_gives_an_oracle_that_maximises_val_accuracy(name):
    oracle = oracles.make_oracle(name, max_trials=2, epochs=2, seed=0, points=POINTS)
    assert isinstance(oracle, keras_tuner.Oracle) and isinstance(oracle, oracles._AtomicFiles)
    assert oracle.objective.name == "val_accuracy" and oracle.objective.direction == "max"


def test_the_objective_can_be_the_accuracy_after_bn_reestimation():
    oracle = oracles.make_oracle("random", max_trials=2, epochs=2, seed=0, objective="val_accuracy_recalibrated")
    assert oracle.objective.name == "val_accuracy_recalibrated" and oracle.objective.direction == "max"
    with pytest.raises(ValueError, match="Received: objective='accuracy'"):
        oracles.make_oracle("random", max_trials=2, epochs=2, seed=0, objective="accuracy")


def _trial(trial_id, values, status="RUNNING"):
    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return keras_tuner.engine.trial.Trial(hp, trial_id=trial_id, status=status)


def test_grid_takes_each_point_once_in_order():
    oracle = oracles.make_oracle("grid", max_trials=5, epochs=1, seed=0, points=POINTS)
    assert oracle.populate_space("0")["values"] == POINTS[0]
    oracle.trials = {"0": _trial("0", POINTS[0])}
    assert oracle.populate_space("1")["values"] == POINTS[1]  # the first point is taken
    assert oracle.populate_space("0")["values"] == POINTS[0]  # a rerun trial keeps its own
    oracle.trials["1"] = _trial("1", POINTS[1], status="COMPLETED")
    assert oracle.populate_space("2")["status"] == "STOPPED"  # every point taken, none running


class _Trial:
    trial_id = "03"


def test_file_writing_callbacks_get_a_path_per_trial(tmp_path):
    import keras

    given = [keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
             keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch:02d}.weights.h5"), save_weights_only=True),
             keras.callbacks.BackupAndRestore(str(tmp_path / "backup"), save_freq=3)]
    csv_logger, checkpoint, backup = oracles.trial_callbacks(object(), given, _Trial())
    assert csv_logger.filename == str(tmp_path / "log_03.csv")
    assert checkpoint.filepath == str(tmp_path / "e{epoch:02d}_03.weights.h5")
    assert backup.backup_dir == str(tmp_path / "backup" / "03") and backup.save_freq == 3
    assert given[0].filename == str(tmp_path / "log.csv")  # the user's callbacks are untouched


@pytest.mark.parametrize("max_trials, first_id", [(9, "0"), (10, "00")])
def test_trial_ids_are_padded_to_the_width_of_max_trials_as_readme_says(tmp_path, max_trials, first_id):
    # README: "Trial #1" is trial_id "0" in a search of up to 9 trials, "00" in one of 10 to 99.
    names = [f"p{i}" for i in range(12)]
    oracle = oracles.make_oracle("grid", max_trials=max_trials, epochs=1, seed=0,
                                 points=[{"dropout_position": n} for n in names])
    oracle._set_project_dir(str(tmp_path), "p")
    hp = keras_tuner.HyperParameters()
    hp.Choice("dropout_position", names)
    oracle.update_space(hp)
    assert oracle.create_trial("tuner0").trial_id == first_id
