"""Monte Carlo measurement of variance shift on real Keras layers.

Used by the ``keras-vs theory`` command and the theory tests: the closed forms
in `keras_vs.theory` are checked against what the layers actually do.
"""

import keras
import numpy as np
from keras import ops

from keras_vs import theory
from keras_vs.layers import Uout

__all__ = ["correlated_inputs", "measured_shift", "shift_rows"]

# Units of the simulated layer: every ratio is averaged over them.
_UNITS = 16


def correlated_inputs(num_samples, width, mean=0.0, var=1.0, rho=0.0, seed=0):
    """Draws Gaussian inputs with a common mean, variance and correlation.

    Args:
        num_samples: Number of rows (samples).
        width: Number of columns (units); every pair has correlation ``rho``.
        mean: Mean of every unit.
        var: Variance (> 0) of every unit.
        rho: Pairwise correlation in [0, 1].
        seed: NumPy seed.

    Returns:
        A float32 array of shape ``(num_samples, width)``.

    Example:

    >>> correlated_inputs(4, 3).shape
    (4, 3)
    """
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"`rho` must be in [0, 1]. Received: rho={rho!r}")
    if var <= 0:
        raise ValueError(f"`var` must be > 0. Received: var={var!r}")
    rng = np.random.default_rng(seed)
    common = rng.standard_normal((num_samples, 1))
    own = rng.standard_normal((num_samples, width))
    z = np.sqrt(rho) * common + np.sqrt(1.0 - rho) * own
    return (mean + np.sqrt(var) * z).astype("float32")


def measured_shift(noise_layer, inputs, linear_layer=None):
    """Var_test / Var_train per unit, measured by running the layers.

    The same inputs go through ``noise_layer`` in training mode and in
    inference mode (then through ``linear_layer`` if given); the ratio of the
    two per-unit variances is the shift a following BN layer would see.

    Args:
        noise_layer: A dropout-like layer (``keras.layers.Dropout``, `Uout`).
        inputs: Array of shape ``(num_samples, width)``.
        linear_layer: Optional layer (e.g. ``keras.layers.Dense``) applied
            after the noise layer, for the paper's case (b).

    Returns:
        NumPy array with one ratio per output unit.

    Example:

    >>> import keras
    >>> x = correlated_inputs(10000, 4)
    >>> measured_shift(keras.layers.Dropout(0.5, seed=1), x).shape
    (4,)
    """
    train = noise_layer(inputs, training=True)
    test = noise_layer(inputs, training=False)
    if linear_layer is not None:
        train = linear_layer(train)
        test = linear_layer(test)
    train = np.asarray(ops.convert_to_numpy(train), dtype=np.float64)
    test = np.asarray(ops.convert_to_numpy(test), dtype=np.float64)
    return test.var(axis=0) / train.var(axis=0)


def _row(layers, setting, case, value, predicted, measured, d=None, d_cos2=None):
    """One result row; per-unit values are averaged over the units."""
    predicted, measured = float(np.mean(predicted)), float(np.mean(measured))
    return {
        "layers": layers,
        "setting": setting,
        "case": case,
        "value": float(value),
        "d": d,
        "d_cos2": None if d_cos2 is None else float(np.mean(d_cos2)),
        "predicted": predicted,
        "measured": measured,
        "relative_error": measured / predicted - 1.0,
    }


def _noise_rows(rates, betas, samples, mean, seed):
    """Case (a) (Dropout -> BN) for every rate, then Uout -> BN for every beta."""
    x = correlated_inputs(samples, _UNITS, mean=mean, seed=seed)
    rows = [
        _row("Dropout", f"rate={rate:g}", "a", rate, theory.dropout_shift(rate, mean),
             measured_shift(keras.layers.Dropout(rate, seed=seed), x))
        for rate in rates
    ]
    rows += [
        _row("Uout", f"beta={beta:g}", "uout", beta, theory.uout_shift(beta, mean),
             measured_shift(Uout(beta, seed=seed), x))
        for beta in betas
    ]
    return rows


def _linear_rows(rates, width, samples, mean, rho, seed):
    """Case (b): Dropout -> Dense(fan-in ``width``) -> BN for every rate."""
    x = correlated_inputs(samples, width, mean=mean, rho=rho, seed=seed + width)
    # A positive kernel mean makes d·cos²θ grow with d, as in the paper's wide networks.
    dense = keras.layers.Dense(
        _UNITS,
        use_bias=False,
        kernel_initializer=keras.initializers.RandomNormal(0.05, 0.1, seed=seed),
    )
    dense.build((None, width))
    d_cos2 = theory.cos2_theta(dense).d_cos2
    return [
        _row(
            f"Dropout->Dense(d={width})",
            f"rate={rate:g} rho={rho:g}",
            "b",
            rate,
            theory.linear_shift(rate, d_cos2, rho, mean),
            measured_shift(keras.layers.Dropout(rate, seed=seed), x, dense),
            d=width,
            d_cos2=d_cos2,
        )
        for rate in rates
    ]


def shift_rows(rates, betas, widths=(16,), samples=200_000, mean=0.0, rho=0.3, seed=0):
    """Closed form against Monte Carlo on real layers, one row per setting.

    Case (a) runs ``keras.layers.Dropout`` for every rate, Uout every beta,
    and case (b) ``Dropout -> Dense(16 units, fan-in d)`` for every rate and
    width ``d`` on inputs with pairwise correlation ``rho``. The Dense kernel
    is drawn with a positive mean, so ``d·cos²θ`` grows with ``d`` as in the
    paper's wide networks.

    Args:
        rates: Dropout rates, each in [0, 1).
        betas: Uout betas, each in [0, 1].
        widths: Fan-in ``d`` values of the Dense layer (case b).
        samples: Monte Carlo samples per unit.
        mean: Mean ``c`` of the inputs.
        rho: Correlation between inputs in case (b).
        seed: Seed of the inputs, the masks and the kernel.

    Returns:
        A list of dicts with ``layers``, ``setting``, ``case`` (``"a"``,
        ``"uout"`` or ``"b"``), ``value`` (rate or beta), ``d``,
        ``d_cos2`` (mean over units; None outside case b), ``predicted`` and
        ``measured`` (means over units) and ``relative_error``
        (measured / predicted - 1).

    Example:

    >>> rows = shift_rows([0.5], [], samples=20_000)
    >>> rows[0]["layers"], round(rows[0]["predicted"], 3)
    ('Dropout', 0.5)
    """
    rows = _noise_rows(rates, betas, samples, mean, seed)
    for width in widths:
        rows += _linear_rows(rates, width, samples, mean, rho, seed)
    return rows
