"""tuner.project: the search folder's settings file, trial records, names and process role."""

import json
import os

import pytest

from tuner import project


def test_a_new_folder_gets_the_settings(tmp_path):
    folder = str(tmp_path / "p")
    project.prepare(folder, {"epochs": 2, "rate": float("nan")}, overwrite=False, process_role="single")
    with open(os.path.join(folder, project.CONFIG_FILE)) as f:
        assert json.load(f) == {"epochs": 2, "rate": None}  # JSON has no NaN
    project.prepare(folder, {"epochs": 2, "rate": float("nan")}, overwrite=False, process_role="single")


def test_other_settings_are_refused_unless_overwritten(tmp_path):
    folder = str(tmp_path / "p")
    project.prepare(folder, {"epochs": 1}, overwrite=False, process_role="single")
    with pytest.raises(ValueError, match=r"Received: epochs: 1 -> 2"):
        project.prepare(folder, {"epochs": 2}, overwrite=False, process_role="single")
    with pytest.raises(ValueError, match="epochs: 1 -> 2"):  # a worker joins, never deletes
        project.prepare(folder, {"epochs": 2}, overwrite=True, process_role="worker")
    project.prepare(folder, {"epochs": 2}, overwrite=True, process_role="single")
    with open(os.path.join(folder, project.CONFIG_FILE)) as f:
        assert json.load(f) == {"epochs": 2}


def test_a_folder_keras_vs_did_not_write_is_never_touched(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="did not write"):
        project.prepare(str(tmp_path), {}, overwrite=True, process_role="single")
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_trial_records_round_trip(tmp_path):
    assert project.read_trial_file(str(tmp_path)) is None
    project.write_trial_file(str(tmp_path), {"status": "COMPLETED", "seconds": float("inf")})
    assert project.read_trial_file(str(tmp_path)) == {"status": "COMPLETED", "seconds": None}


def test_role_follows_keras_tuners_environment(monkeypatch):
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    assert project.role() == "single"
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert project.role() == "chief"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    assert project.role() == "worker"


def test_default_project_name_is_safe_for_a_folder():
    assert project.default_project_name("wrn-10-1", "digits", "grid") == "wrn-10-1-digits-grid"
    assert project.default_project_name("m", "/data/my set.npz", "random") == "m-my_set-random"
    assert project.default_project_name("m", ((1,), (2,)), "grid") == "m-arrays-grid"
