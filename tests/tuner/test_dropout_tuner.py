"""tuner.dropout_tuner: what fails a trial (memory, divergence) and what a trial reports."""

import types

import numpy as np

from tuner import dropout_tuner


def test_out_of_memory_errors_are_recognised():
    class ResourceExhaustedError(Exception):
        pass

    assert dropout_tuner._is_out_of_memory(ResourceExhaustedError("OOM when allocating tensor"))
    assert dropout_tuner._is_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory"))
    assert not dropout_tuner._is_out_of_memory(ValueError("shapes do not match"))


def _model(weights):
    return types.SimpleNamespace(get_weights=lambda: weights)


def test_divergence_names_the_epoch():
    fine = _model([np.ones(3)])
    assert dropout_tuner._divergence({"loss": [1.0, 0.5]}, 2, 0, fine) is None
    assert dropout_tuner._divergence({"loss": [1.0, float("nan")]}, 2, 0, fine) == "diverged: loss nan at epoch 2"
    # TerminateOnNaN stopped training early: fewer epochs than asked.
    assert dropout_tuner._divergence({"loss": [1.0]}, 3, 1, fine) == "diverged: loss 1.0 at epoch 2"
    broken = _model([np.array([1.0, np.inf])])
    assert dropout_tuner._divergence({"loss": [1.0]}, 1, 0, broken) == "diverged: non-finite weights after epoch 1"


def test_trial_metrics_are_the_last_epochs_and_the_inconsistency():
    logs = {"val_accuracy": [0.5, 0.75], "val_loss": [1.0, 0.5], "accuracy": [0.6, 0.8], "loss": [0.9, 0.4],
            "variance_shift/max": [1.5, 1.25], "variance_shift/mean": [1.2, 1.1]}
    inconsistency = types.SimpleNamespace(train_mode_accuracy=0.7, inference_accuracy=0.8, gap=-0.1,
                                          disagreement=0.2)
    metrics = dropout_tuner._trial_metrics(logs, inconsistency)
    assert metrics["val_accuracy"] == 0.75 and metrics["variance_shift_max"] == 1.25
    assert metrics["variance_shift_mean"] == 1.1
    assert metrics["inconsistency_gap"] == -0.1 and set(metrics) >= {"loss", "accuracy", "disagreement"}
