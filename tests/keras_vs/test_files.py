"""Atomic file writing."""

import os

import pytest

from keras_vs import files


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("old")
    files.write_atomic(str(path), "new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["results.csv"]


def test_result_gets_a_normal_files_permissions(tmp_path):
    path = tmp_path / "results.json"
    files.write_atomic(str(path), b"{}")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("trained model")
    with pytest.raises(RuntimeError, match="disk full"):
        with files.atomic_path(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write("half a mod")
            raise RuntimeError("disk full")
    assert path.read_text() == "trained model"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_temporary_keeps_the_whole_file_name_for_format_detection(tmp_path):
    path = tmp_path / "best.weights.h5"
    with files.atomic_path(str(path)) as tmp:
        assert tmp.endswith("best.weights.h5")
        assert os.path.dirname(tmp) == str(tmp_path)
        open(tmp, "w").close()
    assert os.listdir(tmp_path) == ["best.weights.h5"]


def test_save_figure_writes_the_extensions_format_and_closes_the_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, _ = plt.subplots()
    files.save_figure(fig, tmp_path / "f.svg")
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()
    assert not plt.fignum_exists(fig.number) and os.listdir(tmp_path) == ["f.svg"]


def test_save_figure_refuses_an_unknown_format_and_leaves_nothing(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, _ = plt.subplots()
    with pytest.raises(ValueError):
        files.save_figure(fig, tmp_path / "f.xyz")
    assert os.listdir(tmp_path) == []
