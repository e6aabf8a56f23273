"""tuner.config: the training and data records, and records next to keywords."""

import json
import os

import keras
import pytest

import tuner
from tuner import config as config_lib
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


def test_a_record_or_its_keywords_not_both():
    defaults = {"epochs": 8, "batch_size": 128}
    given = TrainingConfig(epochs=2)
    assert config_lib.given_or_made("training_config", given, TrainingConfig, defaults, epochs=8) is given
    assert config_lib.given_or_made("training_config", None, TrainingConfig, defaults, epochs=3).epochs == 3
    with pytest.raises(ValueError, match=r"Pass epochs inside training_config, not next to it. Received: epochs=3"):
        config_lib.given_or_made("training_config", given, TrainingConfig, defaults, epochs=3)
    with pytest.raises(ValueError, match="Expected training_config to be a tuner.TrainingConfig"):
        config_lib.given_or_made("training_config", {"epochs": 2}, TrainingConfig, defaults, epochs=8)


def test_hypermodel_takes_records_or_keywords_alike():
    by_keywords = tuner.DropoutHyperModel(
        "wrn-10-1", positions=("none", "head"), rates=(0.2,), betas=(0.5,), epochs=3, batch_size=64,
        learning_rate=0.05,
    )
    by_records = tuner.DropoutHyperModel(
        "wrn-10-1",
        space=tuner.SearchSpace(positions=("none", "head"), rates=(0.2,), betas=(0.5,)),
        training_config=tuner.TrainingConfig(epochs=3, batch_size=64, learning_rate=0.05),
    )
    assert by_records.space == by_keywords.space
    assert by_records.training_config == by_keywords.training_config
    assert by_records.recipe == by_keywords.recipe and by_records.recipe.learning_rate == 0.05
    assert by_records.grid_points() == by_keywords.grid_points()
    with pytest.raises(ValueError, match="Pass rates inside space"):
        tuner.DropoutHyperModel("wrn-10-1", rates=(0.2,), space=tuner.SearchSpace())


def test_search_refuses_a_keyword_next_to_its_record(tmp_path):
    with pytest.raises(ValueError, match="Pass epochs inside training_config"):
        tuner.search(_tiny(), "digits", epochs=2, training_config=TrainingConfig(), directory=str(tmp_path))
    with pytest.raises(ValueError, match="Pass take inside data_config"):
        tuner.search(_tiny(), "digits", take=64, data_config=DataConfig(), directory=str(tmp_path))
    assert not os.listdir(tmp_path)  # refused before any folder was made


def test_search_with_records_resumes_the_same_search_by_keywords(tmp_path):
    common = dict(oracle="grid", max_trials=1, directory=str(tmp_path), verbose=0)
    first = tuner.search(_tiny(), "digits", positions=("head",), types=("uout",), betas=(0.5,), epochs=1,
                         take=64, probe_size=32, **common)
    again = tuner.search(
        _tiny(), "digits", **common,
        space=tuner.SearchSpace(positions=("head",), types=("uout",), betas=(0.5,)),
        training_config=TrainingConfig(epochs=1),
        data_config=DataConfig(take=64, probe_size=32),
    )
    assert first.ran == ["0"] and again.ran == []  # the same settings: resumed, nothing left to run
    assert again.rows == first.rows
    with open(os.path.join(first.project_dir, "search_config.json")) as f:
        assert json.load(f)["betas"] == [0.5]
