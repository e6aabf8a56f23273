"""tuner.project: the search folder's settings file, trial records, names and process role."""

import hashlib
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


def _user(weights="w1", architecture="a1", model_file=None, name="m"):
    """The settings of a search of a user's model (fingerprints made up)."""
    config = {"model": f"user model {name!r}", "epochs": 1,
              "model_identity": {"name": name, "architecture": architecture, "weights": weights}}
    if model_file:
        config["model_file"] = model_file
    return config


def _digests(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("overwrite", [False, True])
def test_another_model_of_the_same_name_is_refused_and_nothing_touched(tmp_path, overwrite):
    folder = tmp_path / "p"
    project.prepare(str(folder), _user(model_file="a.keras"), overwrite=False, process_role="single")
    (folder / "trial_0").mkdir()
    (folder / "trial_0" / "keras_vs.json").write_text("{}")
    before = _digests(folder)
    with pytest.raises(ValueError) as caught:
        project.prepare(str(folder), _user(weights="w2", architecture="a2", model_file="b.keras"),
                        overwrite=overwrite, process_role="single")
    (line,) = str(caught.value).splitlines()
    assert "is of another model" in line and "from a.keras" in line and "from b.keras" in line
    assert "project=tuner.ProjectConfig(name=...)" in line and "--project" in line and "Received: model=" in line
    assert _digests(folder) == before


def test_same_architecture_other_weights_says_how_to_resume(tmp_path):
    folder = str(tmp_path / "p")
    project.prepare(folder, _user(), overwrite=False, process_role="single")
    with pytest.raises(ValueError, match="Same architecture, other weights"):
        project.prepare(folder, _user(weights="w2"), overwrite=False, process_role="single")


def test_the_same_model_from_another_file_resumes(tmp_path):
    folder = str(tmp_path / "p")
    project.prepare(folder, _user(model_file="a.keras"), overwrite=False, process_role="single")
    project.prepare(folder, _user(model_file="copy/a.keras"), overwrite=False, process_role="single")
    with open(os.path.join(folder, project.CONFIG_FILE)) as f:
        assert json.load(f)["model_file"] == "a.keras"  # the search's own record is kept


def test_a_user_model_search_without_fingerprint_is_not_resumed(tmp_path):
    folder = str(tmp_path / "p")
    project.prepare(folder, {"model": "user model 'm'", "epochs": 1}, overwrite=False,
                    process_role="single")
    with pytest.raises(ValueError, match="no fingerprint recorded"):
        project.prepare(folder, _user(), overwrite=False, process_role="single")


def test_other_arrays_under_the_same_name_are_refused(tmp_path):
    folder = str(tmp_path / "p")
    data = {"shapes": [[2, 3], [2], [1, 3], [1]], "sha256": "d1"}
    project.prepare(folder, {"dataset": "arrays", "data_identity": data}, overwrite=False,
                    process_role="single")
    other = {"dataset": "arrays", "data_identity": {**data, "sha256": "d2"}}
    with pytest.raises(ValueError, match=r"is of other data: 'arrays' \(shapes 2x3, 2, 1x3, 1"):
        project.prepare(folder, other, overwrite=True, process_role="single")
