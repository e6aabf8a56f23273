"""BN re-estimation: replace every BN's moving statistics by population statistics.

Two methods (`keras_vs.vocab.RECALIBRATION_METHODS`):

``"precise"`` (PreciseBN, Wu & Johnson 2021; `torch.optim.swa_utils.update_bn`):
    one pass over the data with dropout off and every BN normalising with the
    statistics of the current batch, as in training; each BN's population
    mean and variance are pooled exactly (Chan et al.) from the per-batch
    moments of its input. Cost: one forward pass, whatever the depth.
``"exact"``: each BN's statistics are those of its input when every BN
    upstream of it already uses its re-estimated statistics, i.e. exactly what
    the BN sees at inference after the fix. Computed stage by stage on
    activations cached while they fit `memory_budget` (recomputed beyond
    it, bit-identical whatever the budget), or by repeated passes where the
    model cannot be staged: see `keras_vs.exact`.

They differ only in what the upstream BNs do: per-batch statistics
(precise) or the final population statistics (exact). With large, i.i.d.
batches the two agree closely; with small batches exact matches inference
better.
"""

from keras_vs import exact as exact_lib
from keras_vs import graph as graph_lib
from keras_vs import probe as probe_lib
from keras_vs import reach
from keras_vs import vocab
from keras_vs.batches import DEFAULT_BATCH_SIZE, Batches

__all__ = ["DEFAULT_MEMORY_BUDGET", "recalibrate_bn"]

#: Bytes of cached activations the "exact" method may hold (on the host; on
#: JAX on the device that runs it).
DEFAULT_MEMORY_BUDGET = 2 * 1024**3


def recalibrate_bn(
    model,
    data,
    steps=None,
    *,
    batch_size=DEFAULT_BATCH_SIZE,
    inplace=False,
    method="precise",
    memory_budget=DEFAULT_MEMORY_BUDGET,
):
    """Re-estimates every BN's moving mean and variance on ``data``.

    Dropout is off and every weight frozen; gamma, beta and all other
    weights stay bit-identical. The default, ``"precise"``, costs one forward
    pass and is what PreciseBN and `torch.optim.swa_utils.update_bn` do, so
    it scales to big models and big calibration sets and also accepts
    one-shot iterators; ``"exact"`` reproduces the layer-by-layer result
    (each BN calibrated on what it sees at inference) at about one pass when
    the cached activations fit ``memory_budget``. See the module docstring for
    how they differ.

    Args:
        model: A built Functional or Sequential model (nested models,
            shared models and `TimeDistributed` BNs included).
        data: NumPy inputs ``x`` or ``(x, y)``, a `tf.data.Dataset`, a
            `keras.utils.PyDataset` or an iterable of batches; it should not
            be randomly augmented. NaN or infinite inputs raise a
            `ValueError` naming the batch, before anything is written.
        steps: Optional number of batches to use (all if None).
        batch_size: Batch size for NumPy inputs.
        inplace: If False (default) the model is left untouched and a
            recalibrated copy is returned, compiled like the original (with a
            fresh optimizer state). If True the model's own BN statistics are
            overwritten and the model is returned.
        method: ``"precise"`` (default) or ``"exact"``.
        memory_budget: Bytes of activations ``"exact"`` may cache (in host
            memory; on JAX in the device's, where it runs its stages); above
            it, what does not fit is recomputed (one pass over the data per
            BN level from there on) and the result is the same to the bit.

    Returns:
        The recalibrated model. A BN that its layer owns but never calls on
        the data keeps its statistics (a warning names it). The input model is
        left as it was, stateful RNNs' states included; a stateful model reads
        the data in batches of `batch_size` with either method.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    >>> fixed = recalibrate_bn(model, np.arange(32.0).reshape(8, 4))
    >>> fixed is model, round(float(fixed.layers[0].moving_mean[0]), 2)
    (False, 14.0)
    """
    _check_arguments(method, memory_budget)
    batches = Batches(data, steps, batch_size)
    probe = probe_lib.probe_for(model, method)
    if probe.model is None:
        raise reach.no_bn_error(model, probe)
    reach.warn_hidden(probe)
    stats = probe.method.statistics(probe, batches, exact_lib.Options(memory_budget, data))
    reach.warn_not_called([n for n in probe.names if n not in stats], "left unchanged")
    return _write(model, probe, stats, inplace)


def _check_arguments(method, memory_budget):
    if method not in vocab.RECALIBRATION_METHODS:
        raise ValueError(
            f"Unknown method. Expected one of {', '.join(vocab.RECALIBRATION_METHODS)}. "
            f"Received: method={method!r}"
        )
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float)) or (
        memory_budget < 0
    ):
        raise ValueError(
            "Expected memory_budget to be a number of bytes >= 0. "
            f"Received: memory_budget={memory_budget!r}"
        )


def _write(model, probe, stats, inplace):
    target = model if inplace else graph_lib.copy(model)
    if not inplace:
        graph_lib.compile_like(target, model)
    # By place, not by name: a copy may rename a layer rebuilt from its config.
    pairs = [] if inplace else graph_lib.layer_pairs(model, target)
    counterpart = {id(old): new for old, new in pairs}
    for name, (mean, var) in stats.items():
        exact_lib.assign(counterpart.get(id(probe.bns[name]), probe.bns[name]), mean, var)
    return target
