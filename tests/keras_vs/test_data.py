"""keras_vs.data: the offline digits set, .npz files, and the registry of named pipeline sets."""

import numpy as np
import pytest

from keras_vs import data, entry_points


def test_digits_train_split_is_real_scaled_images():
    x, y = data.load("digits", "train")
    assert x.shape[1:] == (8, 8, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() == 1.0
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))


def test_digits_splits_partition_the_set_and_are_deterministic():
    from sklearn.datasets import load_digits

    x_train, y_train = data.load("digits", "train")
    x_test, y_test = data.load("digits", "test")
    assert len(x_test) == 359
    both = np.concatenate([x_train, x_test]).reshape(1797, 64) * 16
    full = load_digits().data
    key = lambda a: sorted(map(bytes, a.astype("uint8")))  # noqa: E731
    assert key(both) == key(full)
    again, _ = data.load("digits", "test")
    np.testing.assert_array_equal(x_test, again)


def test_npz_file_with_x_and_y(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((3, 2)), y=np.arange(3))
    x, y = data.load(str(path))
    assert x.shape == (3, 2) and list(y) == [0, 1, 2]


def test_npz_file_without_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((3, 2)))
    assert data.load(path)[1] is None


def test_npz_without_x_is_named(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"no array named 'x'.*\['images'\]"):
        data.load(str(path))


def test_npz_with_mismatched_labels_is_named(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((3, 2)), y=np.arange(4))
    with pytest.raises(ValueError, match=r"y.shape=\(4,\)"):
        data.load(str(path))


def test_missing_npz_is_named(tmp_path):
    with pytest.raises(ValueError, match="No such .npz file"):
        data.load(str(tmp_path / "nope.npz"))


def test_unknown_name_is_echoed():
    with pytest.raises(ValueError, match=r"Unknown data set 'cifar11'.*Received: name='cifar11'"):
        data.load("cifar11")


def test_unknown_split_is_echoed():
    with pytest.raises(ValueError, match="Received: split='val'"):
        data.load("digits", "val")


# ---------------------------------------------------------------------------
# Sets registered by other packages (entry-point group keras_vs.datasets)

_PROVIDER = '''
from keras_vs.data import DatasetSpec

def read(name, split, batch_size, training, **options):
    return ("read", name, split, batch_size, training, options)

TOY = DatasetSpec("toy", 3, (2,), "test", pipeline=read)
NOT_A_SPEC = object()
'''


@pytest.fixture
def registry(monkeypatch, tmp_path):
    """keras_vs.data with the entry points `entries` (a dict the test fills) instead of the installed ones."""
    (tmp_path / "toy_sets.py").write_text(_PROVIDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    entries = {}
    real = entry_points.targets
    monkeypatch.setattr(entry_points, "targets",
                        lambda group, root=None: dict(entries) if group == data.GROUP else real(group, root))
    data._targets.cache_clear()
    data._registered.cache_clear()
    yield entries
    data._targets.cache_clear()
    data._registered.cache_clear()


def test_a_registered_set_is_named_specified_and_read_by_its_pipeline(registry):
    registry.update({"toy": "toy_sets:TOY", "digits": "toy_sets:TOY"})  # "digits" stays the built-in
    assert data.names() == ("digits", "toy") and data.pipeline_names() == ("toy",)
    assert data.spec("toy").num_classes == 3 and data.spec("digits").source == "sklearn"
    assert data.pipeline("toy", "test", 8, seed=1) == ("read", "toy", "test", 8, None, {"seed": 1})
    with pytest.raises(ValueError, match=r"keras_vs.data.pipeline\('toy'.*toy_sets.*Received: name='toy'"):
        data.load("toy")


def test_the_deprecated_tfds_dataset_dispatches_through_the_registry(registry):
    registry["toy"] = "toy_sets:TOY"
    with pytest.warns(DeprecationWarning, match="tuner.tfds.tfds_dataset"):
        assert data.tfds_dataset("toy", batch_size=2)[:4] == ("read", "toy", "train", 2)


@pytest.mark.parametrize("target, match", [
    ("no_such_module:TOY", r"could not be loaded from no_such_module:TOY \(ModuleNotFoundError"),
    ("toy_sets:NOT_A_SPEC", r"toy_sets:NOT_A_SPEC is not a DatasetSpec named 'toy'"),
])
def test_a_broken_registration_is_named_when_the_set_is_asked_for(registry, target, match):
    registry["toy"] = target
    assert "toy" in data.names()  # listing imports nothing
    with pytest.raises(ValueError, match=match):
        data.spec("toy")


def test_unknown_pipeline_set_is_echoed(registry):
    with pytest.raises(ValueError, match=r"\(none registered\). Received: name='cifar10'"):
        data.pipeline("cifar10")
