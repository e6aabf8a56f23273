"""The search folder: its files, its settings, and which process of a search this is.

A search folder is keras-tuner's project folder (``trial_<id>/`` per trial,
``oracle.json``) plus what keras-vs writes: ``search_config.json`` (the
settings the search was started with), ``trial_<id>/keras_vs.json`` (each
trial's record) and, at the end, the result files. Rerunning a search with
the same settings resumes it; different settings are refused, a folder that
keras-vs did not write is never touched, and another user model or other data
(`tuner.identity`: fingerprints of the weights, architecture and arrays)
never resumes or overwrites a search, whatever its names.

Example:

>>> default_project_name("wrn-10-1", "digits", "grid")
'wrn-10-1-digits-grid'
"""

import json
import math
import os
import shutil

import numpy as np

from keras_vs.files import write_atomic
from tuner import identity
from tuner.config import DEFAULT_DIRECTORY

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_DIRECTORY",
    "RESULT_FILES",
    "TRIAL_FILE",
    "WEIGHTS_FILE",
    "default_project_name",
    "json_text",
    "prepare",
    "read_trial_file",
    "role",
    "write_trial_file",
]

CONFIG_FILE = "search_config.json"
TRIAL_FILE = "keras_vs.json"
WEIGHTS_FILE = "model.weights.h5"
RESULT_FILES = ("results.csv", "results.json", "results.png", "best_model.keras")


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None  # JSON has no NaN or inf
    if isinstance(value, np.integer):
        return int(value)
    return value


def json_text(value):
    """The text of a JSON file keras-vs writes.

    Args:
        value: Dicts, lists, numbers (NumPy's too) and strings.

    Returns:
        Indented JSON with sorted keys and a final newline; NaN and inf
        become null.
    """
    return json.dumps(_json_safe(value), indent=2, sort_keys=True) + "\n"


def read_trial_file(trial_dir):
    """A trial's record.

    Args:
        trial_dir: The ``trial_<id>`` folder.

    Returns:
        The dict of its ``keras_vs.json`` (status, hyperparameters, metrics,
        per-epoch history, ...), or None if the trial wrote none yet.
    """
    path = os.path.join(trial_dir, TRIAL_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_trial_file(trial_dir, record):
    """Writes a trial's ``keras_vs.json`` record (atomically).

    Args:
        trial_dir: The ``trial_<id>`` folder.
        record: A JSON-able dict (NaN and inf are written as null).
    """
    write_atomic(os.path.join(trial_dir, TRIAL_FILE), json_text(record))


def role():
    """``"single"``, or ``"chief"`` / ``"worker"`` in keras-tuner's distributed mode.

    keras-tuner's environment variables decide: ``KERASTUNER_ORACLE_IP``
    makes the process part of a distributed search, and
    ``KERASTUNER_TUNER_ID=chief`` its chief.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    return "chief" if os.environ.get("KERASTUNER_TUNER_ID") == "chief" else "worker"


def default_project_name(model, dataset, oracle):
    """The search folder's name when none is given.

    Args:
        model: A zoo name or a `keras.Model` (its name is used).
        dataset: A data set name, a file (its stem is used) or arrays.
        oracle: The oracle's name.

    Returns:
        ``"<model>-<dataset>-<oracle>"``, characters other than letters,
        digits, ``-``, ``_`` and ``.`` replaced by ``_``.
    """
    model_name = model if isinstance(model, str) else getattr(model, "name", "model")
    dataset_name = (
        os.path.splitext(os.path.basename(os.fspath(dataset)))[0]
        if isinstance(dataset, (str, os.PathLike))
        else "arrays"
    )
    text = f"{model_name}-{dataset_name}-{oracle}"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def prepare(project_dir, config, overwrite, process_role):
    """Makes the search folder ready for a search with settings ``config``.

    Args:
        project_dir: The search folder.
        config: The search's settings (JSON-able), written to
            ``search_config.json`` when the folder is new.
        overwrite: Delete an earlier search of the folder (not on a worker,
            which joins the chief's search).
        process_role: What `role` returned.

    Raises:
        ValueError: The folder holds files keras-vs did not write, a
            search with other settings (and ``overwrite`` is off), or the
            search of another user model or other data (overwrite or not).
    """
    config_path = os.path.join(project_dir, CONFIG_FILE)
    # Temp files of a concurrent chief/worker writing the config do not count.
    present = [n for n in os.listdir(project_dir) if not n.startswith(".tmp-")] if os.path.isdir(project_dir) else []
    if present:
        if not os.path.isfile(config_path):
            raise ValueError(
                f"The search folder {project_dir!r} exists and holds files that keras-vs did not "
                "write; refusing to touch them. Choose another directory or project name. "
                f"Received: project_dir={project_dir!r}"
            )
        with open(config_path) as f:
            old = json.load(f)
        _check_same_search(project_dir, old, _json_safe(config))  # overwrite or not
        if overwrite and process_role != "worker":
            shutil.rmtree(project_dir)
        else:
            _check_same_settings(project_dir, old, config)
    os.makedirs(project_dir, exist_ok=True)
    if not os.path.isfile(config_path):
        write_atomic(config_path, json_text(config))


_CHOOSE = (
    "A search folder is never resumed or overwritten by another {what}: choose another project "
    "(keras-vs tune: --project=NAME; tuner.search: project=tuner.ProjectConfig(name=...)) or delete the "
    "folder."
)


def _check_same_search(project_dir, old, new):
    """Refuses a folder that holds the search of another user model or other data."""
    if identity.MODEL_KEY in old or identity.MODEL_KEY in new:
        old_id, new_id = old.get(identity.MODEL_KEY) or {}, new.get(identity.MODEL_KEY) or {}
        if (old.get("model"), old_id) != (new.get("model"), new_id):
            hint = ""
            if old_id and new_id and old_id["architecture"] == new_id["architecture"]:
                hint = (" Same architecture, other weights: to resume, pass the model with the "
                        "weights it had (save and load it, or seed its initialization).")
            raise ValueError(
                f"The search in {project_dir!r} is of another model: "
                f"{identity.describe_model(old)}.{hint} {_CHOOSE.format(what='model')} "
                f"Received: model={identity.describe_model(new)}"
            )
    if identity.DATA_KEY in old or identity.DATA_KEY in new:
        if (old.get("dataset"), old.get(identity.DATA_KEY)) != (new.get("dataset"), new.get(identity.DATA_KEY)):
            raise ValueError(
                f"The search in {project_dir!r} is of other data: {identity.describe_data(old)}. "
                f"{_CHOOSE.format(what='data set')} Received: dataset={identity.describe_data(new)}"
            )


def _check_same_settings(project_dir, old, config):
    new = _json_safe(config)
    # Recorded to name the model in messages only: the same model may be saved elsewhere.
    old = {k: v for k, v in old.items() if k != identity.FILE_KEY}
    new = {k: v for k, v in new.items() if k != identity.FILE_KEY}
    if old == new:
        return
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
    raise ValueError(
        f"The search in {project_dir!r} was started with different settings ({details}). "
        "Rerun with the same settings to resume it, choose another project name "
        "(keras-vs tune: --project), or pass overwrite=True (keras-vs tune: --restart) "
        f"to start again. Received: {details}"
    )
