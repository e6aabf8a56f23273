import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keras_vs import simulate, theory
from keras_vs.layers import Uout

rates = st.floats(0.0, 0.95)
means = st.floats(-3.0, 3.0)
variances = st.floats(0.05, 10.0)


@given(rate=rates, var=variances)
def test_dropout_shift_with_zero_mean_is_retain_ratio(rate, var):
    assert theory.dropout_shift(rate, 0.0, var) == pytest.approx(1.0 - rate)


@given(rate=rates, mean=means, var=variances)
def test_dropout_shift_nonzero_mean_is_stronger(rate, mean, var):
    assert 0.0 < theory.dropout_shift(rate, mean, var) <= 1.0 - rate + 1e-12


@given(low=rates, high=rates, mean=means)
def test_dropout_shift_is_monotone_in_rate(low, high, mean):
    low, high = sorted((low, high))
    assert theory.dropout_shift(high, mean) <= theory.dropout_shift(low, mean) + 1e-12


@given(rate=rates, d_cos2=st.floats(0.0, 100.0), mean=means, var=variances)
def test_linear_shift_without_correlation_is_case_a(rate, d_cos2, mean, var):
    assert theory.linear_shift(rate, d_cos2, 0.0, mean, var) == pytest.approx(
        theory.dropout_shift(rate, mean, var)
    )


@given(rate=rates, rho=st.floats(0.05, 1.0), small=st.floats(1.0, 50.0), factor=st.floats(1.5, 100))
def test_linear_shift_grows_towards_one_with_width(rate, rho, small, factor):
    narrow = theory.linear_shift(rate, small, rho)
    wide = theory.linear_shift(rate, small * factor, rho)
    assert narrow <= wide + 1e-12 <= 1.0 + 2e-12


@pytest.mark.parametrize(
    "d_cos2, expected",
    [
        # rate 0.5 (p = 0.5), c = 0.5, v = 2, rho = 0.3; cross term v·rho·(d·cos²θ − 1):
        # 1.8 -> (2 + 1.8) / ((0.25 + 2) / 0.5 − 0.25 + 1.8) = 3.8 / 6.05
        (4.0, 3.8 / 6.05),
        # −0.45 -> (2 − 0.45) / (4.25 − 0.45) = 1.55 / 3.8
        (0.25, 1.55 / 3.8),
    ],
)
def test_linear_shift_cross_term_by_hand(d_cos2, expected):
    assert theory.linear_shift(0.5, d_cos2, 0.3, mean=0.5, var=2.0) == pytest.approx(expected, rel=1e-12)


def test_linear_shift_tends_to_one_for_infinite_width():
    assert theory.linear_shift(0.5, 1e9, 0.5) == pytest.approx(1.0, abs=1e-8)


def test_uout_shift_matches_paper_value():
    assert theory.uout_shift(0.1) == pytest.approx(0.99668, abs=1e-5)


@given(beta=st.floats(0.0, 1.0))
def test_uout_shift_with_zero_mean_is_three_over_three_plus_beta_squared(beta):
    assert theory.uout_shift(beta) == pytest.approx(3.0 / (3.0 + beta**2))


def test_functions_broadcast_arrays():
    out = theory.dropout_shift(np.array([0.1, 0.5]), mean=np.array([[0.0], [1.0]]))
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out[0], [0.9, 0.5])


def test_scalar_input_returns_python_float():
    assert type(theory.uout_shift(0.2)) is float


@pytest.mark.parametrize(
    "call, echoed",
    [
        (lambda: theory.dropout_shift(1.0), "rate=1.0"),
        (lambda: theory.dropout_shift(-0.1), "rate=-0.1"),
        (lambda: theory.dropout_shift(0.1, var=0.0), "var=0.0"),
        (lambda: theory.linear_shift(0.1, 2.0, rho=1.5), "rho=1.5"),
        (lambda: theory.linear_shift(0.1, -1.0, rho=0.5), "d_cos2=-1.0"),
        (lambda: theory.uout_shift(2.0), "beta=2.0"),
        (lambda: theory.uout_shift("x"), "beta='x'"),
    ],
)
def test_invalid_arguments_error_echoes_value(call, echoed):
    with pytest.raises(ValueError, match="Received: " + echoed):
        call()


# --- cos²θ of real kernels ---------------------------------------------------
def test_cos2_theta_of_constant_kernel_is_one():
    result = theory.cos2_theta(np.full((5, 3), 0.7))
    np.testing.assert_allclose(result.cos2, 1.0)
    np.testing.assert_allclose(result.d_cos2, 5.0)


def test_cos2_theta_of_balanced_kernel_is_zero():
    result = theory.cos2_theta(np.array([[1.0], [-1.0], [2.0], [-2.0]]))
    np.testing.assert_allclose(result.cos2, 0.0)


def test_cos2_theta_of_zero_column_is_nan():
    assert np.isnan(theory.cos2_theta(np.zeros((3, 1))).cos2[0])


@given(
    d=st.integers(1, 20),
    units=st.integers(1, 5),
    scale=st.floats(0.01, 100.0),
    seed=st.integers(0, 1000),
)
def test_cos2_theta_is_scale_invariant_and_bounded(d, units, scale, seed):
    w = np.random.default_rng(seed).normal(size=(d, units)) + 0.1
    a, b = theory.cos2_theta(w), theory.cos2_theta(w * scale)
    np.testing.assert_allclose(a.cos2, b.cos2, rtol=1e-9)
    assert np.all(a.cos2 <= 1 + 1e-12) and np.all(a.cos2 >= 0)


def test_cos2_theta_of_conv_counts_window_times_channels():
    layer = keras.layers.Conv2D(4, 3, use_bias=False)
    layer.build((None, 8, 8, 5))
    result = theory.cos2_theta(layer)
    assert result.d == 3 * 3 * 5
    kernel = keras.ops.convert_to_numpy(layer.kernel).reshape(45, 4).astype("float64")
    np.testing.assert_allclose(result.cos2, kernel.sum(0) ** 2 / (45 * (kernel**2).sum(0)), rtol=1e-6)


def test_cos2_theta_of_grouped_conv_uses_group_fan_in():
    layer = keras.layers.Conv2D(4, 3, groups=2, use_bias=False)
    layer.build((None, 8, 8, 6))
    assert theory.cos2_theta(layer).d == 3 * 3 * 3


def test_cos2_theta_of_depthwise_conv_uses_window_only():
    layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)
    layer.build((None, 8, 8, 5))
    result = theory.cos2_theta(layer)
    assert result.d == 9 and result.cos2.shape == (10,)


def test_cos2_theta_rejects_layer_without_kernel():
    with pytest.raises(ValueError, match="Received: layer 'bn_x' of type BatchNormalization"):
        theory.cos2_theta(keras.layers.BatchNormalization(name="bn_x"))


def test_cos2_theta_rejects_vector():
    with pytest.raises(ValueError, match=r"Received: kernel shape=\(3,\)"):
        theory.cos2_theta(np.ones(3))


# --- Closed forms against Monte Carlo on the real layers --------------------
# Units are i.i.d. in cases (a) and Uout, so averaging the per-unit ratios
# pools 64 x 40,000 samples: well below 1% sampling error.
@pytest.mark.parametrize("mean", [0.0, 0.8])
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.7])
def test_dropout_shift_matches_simulated_dropout_layer(rate, mean):
    x = simulate.correlated_inputs(40_000, 64, mean=mean, var=2.0, seed=1)
    measured = simulate.measured_shift(keras.layers.Dropout(rate, seed=2), x).mean()
    assert measured == pytest.approx(theory.dropout_shift(rate, mean, 2.0), rel=0.01)


@pytest.mark.parametrize("mean", [0.0, 0.8])
@pytest.mark.parametrize("beta", [0.1, 0.2, 0.3, 0.5])
def test_uout_shift_matches_simulated_uout_layer(beta, mean):
    x = simulate.correlated_inputs(40_000, 64, mean=mean, var=2.0, seed=1)
    measured = simulate.measured_shift(Uout(beta, seed=2), x).mean()
    assert measured == pytest.approx(theory.uout_shift(beta, mean, 2.0), rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.0, 0.3])
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.7])
def test_linear_shift_matches_simulated_dropout_dense(rate, rho):
    # Each output unit has its own d·cos²θ, so units are checked one by one;
    # a kernel with non-zero mean spreads d·cos²θ over a wide range.
    x = simulate.correlated_inputs(1_000_000, 16, mean=0.3, rho=rho, seed=3)
    dense = keras.layers.Dense(
        8, use_bias=False, kernel_initializer=keras.initializers.RandomNormal(0.05, 0.1, seed=4)
    )
    dense.build((None, 16))
    d_cos2 = theory.cos2_theta(dense).d_cos2
    assert d_cos2.max() - d_cos2.min() > 3
    measured = simulate.measured_shift(keras.layers.Dropout(rate, seed=5), x, dense)
    np.testing.assert_allclose(measured, theory.linear_shift(rate, d_cos2, rho, 0.3), rtol=0.01)
