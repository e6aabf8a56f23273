"""tuner.results: rows, the table, the CSV/JSON files and the best row, from made-up trials."""

import csv
import os

import keras_tuner
import pytest

from tuner import results


def _row(trial_id, status="COMPLETED", position="head", dropout_type="bernoulli", rate=0.5, accuracy=0.9):
    return {
        "trial_id": trial_id, "trial_number": int(trial_id) + 1, "status": status, "position": position,
        "type": dropout_type, "rate": rate, "val_accuracy": accuracy if status == "COMPLETED" else None,
        "val_loss": 0.3, "variance_shift_max": 1.25, "variance_shift_mean": 1.1,
        "train_mode_accuracy": 0.8, "inference_accuracy": 0.85, "inconsistency_gap": -0.05,
        "disagreement": 0.1, "tuner_id": "tuner0", "seconds": 2.0,
        "message": "" if status == "COMPLETED" else "diverged",
    }


ROWS = [_row("0", position="none", dropout_type="-", rate=0.0, accuracy=0.8), _row("1"),
        _row("2", status="FAILED"), _row("3", dropout_type="uout", accuracy=0.9)]


def test_best_row_is_the_most_accurate_earliest_completed_trial():
    assert results.best_row(ROWS)["trial_id"] == "1"  # a tie goes to the earlier trial
    assert results.best_row([ROWS[2]]) is None


def test_best_row_ranks_by_the_recalibrated_accuracy_when_asked():
    rows = [dict(r, val_accuracy_recalibrated=v) for r, v in zip(ROWS, (0.95, 0.7, None, 0.85))]
    assert results.best_row(rows)["trial_id"] == "1"  # as trained: 0.8, 0.9, -, 0.9
    assert results.best_row(rows, "val_accuracy_recalibrated")["trial_id"] == "0"
    with pytest.raises(ValueError, match="Received: objective='val_loss'"):
        results.best_row(rows, "val_loss")


def test_the_recalibrated_accuracy_is_a_column_of_the_table_csv_and_summary():
    row = dict(ROWS[3], val_accuracy_recalibrated=0.875)
    (line,) = [ln for ln in results.format_table([row]).splitlines() if ln.startswith("   #4")]
    assert "0.9000    0.8750" in line and "recal. BN" in results.format_table([row])
    (read,) = csv.DictReader(results._csv_text([row]).splitlines())
    assert float(read["val_accuracy_recalibrated"]) == 0.875
    assert "val_accuracy 0.9000 (0.8750 after BN re-estimation)" in results.summary_line(row)


def test_table_has_a_line_per_trial_and_dashes_for_missing_values():
    lines = results.format_table(ROWS).splitlines()
    assert len(lines) == 2 + len(ROWS)
    assert lines[2].split()[:4] == ["#1", "0", "COMPLETED", "none"]
    assert lines[4].split()[:2] == ["#3", "2"] and " - " in lines[4]


def test_summary_line_says_what_a_trial_tried_and_found():
    assert results.summary_line(ROWS[3]) == (
        "[keras-vs] Trial #4 (trial_id 3: head, uout 0.5): val_accuracy 0.9000, max variance shift "
        "1.250, train-set accuracy 0.8000 (training mode) vs 0.8500 (inference mode) [2.0s]"
    )
    assert results.summary_line(ROWS[0]).startswith("[keras-vs] Trial #1 (trial_id 0: none): ")
    assert results.summary_line(ROWS[2]) == "[keras-vs] Trial #3 (trial_id 2: head, bernoulli 0.5): FAILED diverged"


def test_csv_has_the_documented_columns():
    with_empty = results._csv_text(ROWS)
    reader = list(csv.DictReader(with_empty.splitlines()))
    assert reader[0]["type"] == "-" and reader[2]["val_accuracy"] == ""
    assert list(reader[0])[:6] == ["trial_id", "trial_number", "status", "position", "type", "rate"]


def test_csv_holds_the_trials_max_and_mean_shift():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("dropout_position", "none")
    trial = keras_tuner.engine.trial.Trial(hp, trial_id="0", status="COMPLETED")
    for name, value in (("val_accuracy", 0.9), ("variance_shift_max", 1.5), ("variance_shift_mean", 1.2)):
        trial.metrics.update(name, value)
    (row,) = csv.DictReader(results._csv_text([results.trial_row(trial)]).splitlines())
    assert float(row["variance_shift_max"]) == 1.5 and float(row["variance_shift_mean"]) == 1.2


def test_plot_draws_one_curve_per_position_and_type(tmp_path):
    curves = results._curves(ROWS)
    assert list(curves) == ["head / bernoulli", "head / uout", "none"]
    assert sorted(curves["head / bernoulli"]) == [0.5]  # the trial without dropout is not joined
    assert results._means(curves["head / bernoulli"], "val_accuracy") == pytest.approx([0.9])
    path = tmp_path / "results.png"
    results.plot_results(ROWS, str(path), title="tiny")
    assert os.path.getsize(path) > 0


def _drawn_lines(rows, monkeypatch):
    """``{label: (x, linestyle)}`` of the accuracy panel, as plot_results draws it."""
    import matplotlib.figure

    figures = []
    monkeypatch.setattr(results, "save_figure", lambda fig, path: figures.append(fig))
    results.plot_results(rows, "unused.png")
    (fig,) = figures
    return {line.get_label(): (list(line.get_xdata()), line.get_linestyle())
            for line in fig.axes[0].get_lines()}, fig


def test_plot_joins_only_rates_of_one_position_and_type(monkeypatch):
    rows = [_row("0", position="remove", dropout_type="-", rate=0.0),
            _row("1", position="before_bn", rate=0.2), _row("2", position="head", rate=0.2),
            _row("3", position="before_bn", rate=0.5)]
    lines, _ = _drawn_lines(rows, monkeypatch)
    assert lines == {"before_bn / bernoulli": ([0.2, 0.5], "-"),
                     "head / bernoulli": ([0.2], "None"), "remove": ([0.0], "None")}


def test_plot_of_a_search_without_a_completed_trial_says_so(monkeypatch):
    lines, fig = _drawn_lines([_row("0", status="FAILED"), _row("1", status="FAILED")], monkeypatch)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert lines == {} and texts == ["no trial completed (2 run)"]


def test_a_worker_result_cannot_load_models():
    result = results.SearchResult([], None, "p", {}, ["0"], "worker")
    with pytest.raises(ValueError, match="Received: role='worker'"):
        result.load_model("0")
