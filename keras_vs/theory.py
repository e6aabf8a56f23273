"""Closed-form variance shift (Li et al., CVPR 2019), as Var_test / Var_train.

Notation: ``rate`` is the Keras dropout rate (the paper's drop ratio), so the
retain ratio is ``p = 1 - rate``. Inputs have mean ``mean`` (the paper's c) and
variance ``var`` (v). A value of 1 means no shift; below 1 means the variance
a BatchNormalization layer sees at inference is smaller than the moving
variance it froze in training.

Every function accepts Python floats or NumPy arrays (broadcast together) and
returns a float for scalar input, an array otherwise.
"""

import dataclasses
import math

import numpy as np

__all__ = ["KernelCos2", "cos2_theta", "dropout_shift", "linear_shift", "uout_shift"]


def _as_array(name, value, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a float64 array, finite and within the bounds, or a ValueError naming ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"Invalid value for `{name}`: expected a number or an array of "
            f"numbers. Received: {name}={value!r}"
        ) from None
    bad = ~np.isfinite(arr)
    if low is not None:
        bad |= (arr <= low) if low_open else (arr < low)
    if high is not None:
        bad |= (arr >= high) if high_open else (arr > high)
    if np.any(bad):
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}, "
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        where = f" in {lo}{hi}" if lo or hi else ""
        raise ValueError(
            f"Invalid value for `{name}`: expected finite values{where}. "
            f"Received: {name}={value!r}"
        )
    return arr


def _result(arr):
    """A Python float for a 0-d result, the array otherwise."""
    return float(arr) if np.ndim(arr) == 0 else arr


def _train_var_dropout(p, mean, var):
    """Var of (a/p)·x with a ~ Bernoulli(p) independent of x: E[x²]/p − c²."""
    return (mean**2 + var) / p - mean**2


def dropout_shift(rate, mean=0.0, var=1.0):
    """Case (a): Bernoulli dropout directly before BN.

    ``Var_test / Var_train = v / ((c² + v) / p − c²)``; equals ``1 - rate``
    when ``mean == 0``.

    Args:
        rate: Keras dropout rate in [0, 1).
        mean: Mean ``c`` of the dropout's input.
        var: Variance ``v`` (> 0) of the dropout's input.

    Returns:
        The shift ratio, in (0, 1].

    Example:

    >>> round(dropout_shift(0.5), 6)
    0.5
    """
    rate = _as_array("rate", rate, 0.0, 1.0, high_open=True)
    mean = _as_array("mean", mean)
    var = _as_array("var", var, 0.0, low_open=True)
    return _result(var / _train_var_dropout(1.0 - rate, mean, var))


def linear_shift(rate, d_cos2, rho, mean=0.0, var=1.0):
    """Case (b): dropout, then a conv/dense with kernel ``w``, then BN.

    ``[v + vρ(d·cos²θ − 1)] / [(c² + v)/p − c² + vρ(d·cos²θ − 1)]``. With
    ``rho == 0`` this is `dropout_shift`; it tends to 1 as ``d_cos2`` grows.

    Args:
        rate: Keras dropout rate in [0, 1).
        d_cos2: ``d·cos²θ`` of the kernel column feeding the BN channel (see
            `cos2_theta`), in [0, d].
        rho: Correlation between the dropout's inputs, in [0, 1].
        mean: Mean ``c`` of the dropout's input.
        var: Variance ``v`` (> 0) of the dropout's input.

    Returns:
        The shift ratio.

    Example:

    >>> round(linear_shift(0.5, d_cos2=1.0, rho=0.3), 6)  # d·cos²θ = 1: as (a)
    0.5
    """
    rate = _as_array("rate", rate, 0.0, 1.0, high_open=True)
    d_cos2 = _as_array("d_cos2", d_cos2, 0.0)
    rho = _as_array("rho", rho, 0.0, 1.0)
    mean = _as_array("mean", mean)
    var = _as_array("var", var, 0.0, low_open=True)
    cross = var * rho * (d_cos2 - 1.0)
    test = var + cross
    train = _train_var_dropout(1.0 - rate, mean, var) + cross
    return _result(test / train)


def uout_shift(beta, mean=0.0, var=1.0):
    """Uout (``x·(1 + r)``, ``r ~ U(−β, β)``) directly before BN.

    ``v / ((c² + v)(1 + β²/3) − c²)``; equals ``3 / (3 + β²)`` when
    ``mean == 0``.

    Args:
        beta: Uout's β in [0, 1].
        mean: Mean ``c`` of the layer's input.
        var: Variance ``v`` (> 0) of the layer's input.

    Returns:
        The shift ratio, in (0, 1].

    Example:

    >>> round(uout_shift(0.1), 5)
    0.99668
    """
    beta = _as_array("beta", beta, 0.0, 1.0)
    mean = _as_array("mean", mean)
    var = _as_array("var", var, 0.0, low_open=True)
    train = (mean**2 + var) * (1.0 + beta**2 / 3.0) - mean**2
    return _result(var / train)


@dataclasses.dataclass(frozen=True)
class KernelCos2:
    """Per-output-unit geometry of a kernel.

    Attributes:
        cos2: ``cos²θ = (Σw)² / (d·Σw²)`` per output unit (NaN for an
            all-zero column, where θ is undefined).
        d: Fan-in per output unit (``k·k·in_channels/groups`` for a conv).
        d_cos2: ``d·cos²θ`` per output unit, the quantity of the paper's Table 1.
    """

    cos2: np.ndarray
    d: int
    d_cos2: np.ndarray


def _kernel_matrix(kernel, depthwise):
    """Reshapes a kernel to (fan_in, units): one column per output unit."""
    if depthwise:
        # Depthwise kernels are (*spatial, in_channels, multiplier): each
        # output unit sees only its spatial window of one channel.
        if kernel.ndim < 3:
            raise ValueError(
                "A depthwise kernel needs rank >= 3 (*spatial, channels, "
                f"multiplier). Received: kernel shape={kernel.shape}"
            )
        return kernel.reshape(math.prod(kernel.shape[:-2]), -1)
    if kernel.ndim < 2:
        raise ValueError(
            "Expected a kernel of rank >= 2 with output units on the last "
            f"axis. Received: kernel shape={kernel.shape}"
        )
    return kernel.reshape(-1, kernel.shape[-1])


def cos2_theta(kernel):
    """Computes cos²θ and d·cos²θ per output unit of a Dense/Conv kernel.

    θ is the angle between a unit's weight vector and the all-ones vector.

    Args:
        kernel: A built `keras.layers.Dense`, `ConvND` or `DepthwiseConvND`
            layer, or a kernel array with output units on the last axis
            (``(d, units)`` or ``(*spatial, in, out)``).

    Returns:
        A `KernelCos2` with ``cos2``, ``d`` and ``d_cos2``.

    Example:

    >>> r = cos2_theta(np.ones((4, 2)))
    >>> float(r.d_cos2[0]), r.d
    (4.0, 4)
    """
    depthwise = False
    if hasattr(kernel, "get_weights") and not isinstance(kernel, np.ndarray):
        import keras  # only layers need it; the closed forms are plain NumPy

        layer = kernel
        depthwise = isinstance(
            layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
        )
        # Separable convs compose two kernels: no single column per unit.
        weights = None if hasattr(layer, "pointwise_kernel") else getattr(layer, "kernel", None)
        if weights is None:
            raise ValueError(
                "cos2_theta needs a built Dense, Conv or DepthwiseConv layer "
                f"with a `kernel`. Received: layer '{layer.name}' of type "
                f"{type(layer).__name__}"
            )
        kernel = keras.ops.convert_to_numpy(weights)
    else:
        try:
            kernel = np.asarray(kernel, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                "cos2_theta expects a layer or a numeric kernel array. "
                f"Received: {type(kernel).__name__}"
            ) from None
    matrix = _kernel_matrix(np.asarray(kernel, dtype=np.float64), depthwise)
    d = matrix.shape[0]
    sums = matrix.sum(axis=0)
    squares = (matrix**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos2 = np.where(squares > 0, sums**2 / (d * squares), np.nan)
    return KernelCos2(cos2=cos2, d=d, d_cos2=d * cos2)
