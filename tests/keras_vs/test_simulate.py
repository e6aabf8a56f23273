import keras
import numpy as np
import pytest

from keras_vs import simulate


def test_correlated_inputs_have_requested_moments():
    x = simulate.correlated_inputs(200_000, 4, mean=1.5, var=2.0, rho=0.4, seed=0)
    np.testing.assert_allclose(x.mean(0), 1.5, atol=0.02)
    np.testing.assert_allclose(x.var(0), 2.0, rtol=0.02)
    corr = np.corrcoef(x.T)[np.triu_indices(4, 1)]
    np.testing.assert_allclose(corr, 0.4, atol=0.01)


@pytest.mark.parametrize("kwargs, echoed", [({"rho": 1.2}, "rho=1.2"), ({"var": 0.0}, "var=0.0")])
def test_correlated_inputs_reject_bad_moments(kwargs, echoed):
    with pytest.raises(ValueError, match="Received: " + echoed):
        simulate.correlated_inputs(10, 2, **kwargs)


def test_measured_shift_of_identity_layer_is_one():
    x = simulate.correlated_inputs(1000, 3, seed=1)
    np.testing.assert_allclose(simulate.measured_shift(keras.layers.Identity(), x), 1.0)


def test_shift_rows_cover_each_case_and_width():
    rows = simulate.shift_rows([0.5], [0.2], widths=(4, 32), samples=5000)
    assert [(r["case"], r["d"]) for r in rows] == [("a", None), ("uout", None), ("b", 4), ("b", 32)]
    assert rows[0]["d_cos2"] is None and rows[3]["d_cos2"] > rows[2]["d_cos2"] > 0


def test_shift_rows_measure_close_to_the_closed_form():
    for row in simulate.shift_rows([0.3], [0.5], widths=(16,), samples=50_000, mean=0.5):
        assert abs(row["relative_error"]) < 0.02, row
