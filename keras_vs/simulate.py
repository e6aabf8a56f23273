"""Monte Carlo measurement of variance shift on real Keras layers.

Used by the ``keras-vs theory`` command and the theory tests: the closed forms
in `keras_vs.theory` are checked against what the layers actually do.
"""

import numpy as np
from keras import ops


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
