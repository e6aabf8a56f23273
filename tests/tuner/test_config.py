"""tuner.config: the search's records; tuner.deprecation: the old keywords that became their fields."""

import json
import os
import pathlib
import re

import keras
import pytest

import tuner
from tuner.config import DataConfig, TrainingConfig


def _tiny():
    keras.utils.set_random_seed(0)  # the same weights every call: the same model, whose search resumes
    x = keras.Input((8, 8, 1), name="x")
    y = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(x)
    y = keras.layers.Dropout(0.3, name="drop")(y)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    y = keras.layers.Dense(10, activation="softmax", name="predictions")(y)
    return keras.Model(x, y, name="tiny")


def test_defaults_are_the_default_search():
    assert TrainingConfig() == TrainingConfig(epochs=8, batch_size=128)
    assert DataConfig() == DataConfig(take=None, probe_size=256)


def test_rates_are_floats_and_records_are_frozen():
    config = TrainingConfig(learning_rate=1, weight_decay=0)
    assert config.learning_rate == 1.0 and type(config.learning_rate) is float
    with pytest.raises(AttributeError):
        config.epochs = 2


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: TrainingConfig(epochs=0), "Expected epochs to be a positive integer. Received: epochs=0"),
        (lambda: TrainingConfig(batch_size=True), "batch_size=True"),
        (lambda: TrainingConfig(learning_rate=-1.0), "learning_rate=-1.0"),
        (lambda: TrainingConfig(weight_decay=float("nan")), "weight_decay=nan"),
        (lambda: TrainingConfig(from_logits="yes"), "from_logits='yes'"),
        (lambda: DataConfig(take=0), "take=0"),
        (lambda: DataConfig(probe_size=None), "probe_size=None"),
    ],
)
def test_bad_values_name_what_was_received(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_run_and_project_records_check_their_values():
    assert tuner.RunConfig(verbose=2).fit_verbose == 2  # follows verbose unless given
    assert tuner.RunConfig(callbacks=[]).callbacks == ()
    assert tuner.ProjectConfig(directory=pathlib.Path("d")).directory == "d"
    for make, match in [
        (lambda: tuner.RunConfig(oracle="sobol"), "Unknown oracle.*Received: oracle='sobol'"),
        (lambda: tuner.RunConfig(objective="val_loss"), "objective='val_loss'"),
        (lambda: tuner.RunConfig(max_trials=0), "max_trials=0"),
        (lambda: tuner.RunConfig(seed=1.5), "seed=1.5"),
        (lambda: tuner.RunConfig(strategy="gpu"), "Unknown strategy.*Received: strategy='gpu'"),
    ]:
        with pytest.raises(ValueError, match=match):
            make()


def test_old_keywords_of_the_hypermodel_warn_and_build_the_same_records():
    with pytest.warns(DeprecationWarning) as caught:  # one warning per old keyword
        by_keywords = tuner.DropoutHyperModel(
            "wrn-10-1", positions=("none", "head"), rates=(0.2,), betas=(0.5,), epochs=3, batch_size=64,
            learning_rate=0.05,
        )
    assert len(caught) == 6 and any(
        re.search(r"tuner.DropoutHyperModel\(rates=...\) is deprecated.*"
                  r"pass space=tuner.SearchSpace\(rates=...\) instead", str(w.message)) for w in caught)
    by_records = tuner.DropoutHyperModel(
        "wrn-10-1",
        space=tuner.SearchSpace(positions=("none", "head"), rates=(0.2,), betas=(0.5,)),
        training=tuner.TrainingConfig(epochs=3, batch_size=64, learning_rate=0.05),
    )
    assert by_records.space == by_keywords.space
    assert by_records.training_config == by_keywords.training_config
    assert by_records.recipe == by_keywords.recipe and by_records.recipe.learning_rate == 0.05
    assert by_records.grid_points() == by_keywords.grid_points()
    with pytest.warns(DeprecationWarning, match="pass training="):
        renamed = tuner.DropoutHyperModel("wrn-10-1", training_config=tuner.TrainingConfig(epochs=3))
    assert renamed.training_config.epochs == 3
    with pytest.raises(ValueError, match="pass rates inside space, not next to it"), pytest.warns(DeprecationWarning):
        tuner.DropoutHyperModel("wrn-10-1", rates=(0.2,), space=tuner.SearchSpace())
    with pytest.raises(ValueError, match="Expected training to be a tuner.TrainingConfig"):
        tuner.DropoutHyperModel("wrn-10-1", training={"epochs": 2})
    with pytest.raises(TypeError, match="unexpected keyword argument 'rate'"):
        tuner.DropoutHyperModel("wrn-10-1", rate=0.2)


def test_search_refuses_a_keyword_next_to_its_record(tmp_path):
    project = tuner.ProjectConfig(directory=str(tmp_path))
    with pytest.raises(ValueError, match="pass epochs inside training"), pytest.warns(DeprecationWarning):
        tuner.search(_tiny(), "digits", epochs=2, training=TrainingConfig(), project=project)
    with pytest.raises(ValueError, match="pass take inside data"), pytest.warns(DeprecationWarning):
        tuner.search(_tiny(), "digits", take=64, data_config=DataConfig(), project=project)
    assert not os.listdir(tmp_path)  # refused before any folder was made


def test_search_by_old_keywords_warns_and_resumes_the_same_search_by_records(tmp_path):
    with pytest.warns(DeprecationWarning) as caught:
        first = tuner.search(_tiny(), "digits", positions=("head",), types=("uout",), betas=(0.5,), epochs=1,
                             take=64, probe_size=32, oracle="grid", max_trials=1, directory=str(tmp_path),
                             verbose=0)
    said = {str(w.message) for w in caught if str(w.message).startswith("tuner.search(")}
    assert ("tuner.search(directory=...) is deprecated and will be removed in the next release: "
            "pass project=tuner.ProjectConfig(directory=...) instead.") in said
    assert "tuner.search(max_trials=...) is deprecated and will be removed in the next release: " \
           "pass run=tuner.RunConfig(max_trials=...) instead." in said
    assert len(said) == 10  # one per old keyword
    again = tuner.search(
        _tiny(), "digits",
        space=tuner.SearchSpace(positions=("head",), types=("uout",), betas=(0.5,)),
        training=TrainingConfig(epochs=1),
        data=DataConfig(take=64, probe_size=32),
        run=tuner.RunConfig(oracle="grid", max_trials=1, verbose=0),
        project=tuner.ProjectConfig(directory=str(tmp_path)),
    )
    assert first.ran == ["0"] and again.ran == []  # the same settings: resumed, nothing left to run
    assert again.rows == first.rows
    with open(os.path.join(first.project_dir, "search_config.json")) as f:
        assert json.load(f)["betas"] == [0.5]
