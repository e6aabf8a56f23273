"""VarianceShiftCallback: the paper's variance-shift statistic, recorded while training."""

import copy
import math

import keras
import numpy as np

from keras_vs import batches as batches_lib
from keras_vs import checks
from keras_vs import optional
from keras_vs import probe as probe_lib
from keras_vs import reach
from keras_vs import shift

__all__ = ["VarianceShiftCallback"]

DEFAULT_PROBE_SIZE = 256


class VarianceShiftCallback(keras.callbacks.Callback):
    """Measures the variance shift at the end of epochs and puts it in ``logs``.

    At the end of every ``every``-th epoch (the first included) the statistic
    of `keras_vs.measure_variance_shift` is measured on a fixed probe set and
    ``variance_shift/max`` and ``variance_shift/mean`` (and with
    ``per_layer=True`` ``variance_shift/<bn name>``) are added to ``logs``, so
    History, CSVLogger and TensorBoard record them: list this callback before
    those. With ``log_dir`` every BN's value is also written as a TensorBoard
    scalar. There are no batch hooks (they would stop asynchronous dispatch);
    the probe (a tap on the model's own layers, see `keras_vs.probe`) is
    built and compiled once per training run, so each measurement costs about
    one inference pass over the probe set, and it only reads the model, so
    training is unchanged. A BN that its layer never calls is left out of the
    logs (a warning names it once; the result's ``not_called`` lists it).

    Args:
        data: The probe data: NumPy ``x`` or ``(x, y)``, a `tf.data.Dataset`
            or a `keras.utils.PyDataset`. Its first ``probe_size`` examples
            are read once, here, and reused every time.
        every: Measure every this many epochs.
        probe_size: Number of probe examples.
        batch_size: Batch size used to measure.
        per_layer: Also add every BN's value to ``logs``.
        log_dir: Optional folder for TensorBoard per-layer scalars (written
            with `tf.summary`: needs TensorFlow, on any backend).
        steps: Optional number of batches of ``data`` to read at most (an
            infinite ``ds.repeat()`` works without it: only ``probe_size``
            examples are read).
        attribute: Also split the shift into its statistics, dropout and
            upstream parts (`keras_vs.attribute_shift`) and add
            ``variance_shift/<part>_part`` (the largest over BNs; with
            ``per_layer`` also ``variance_shift/<bn name>/<part>_part``) to
            ``logs``. It costs a model copy and two more passes over the probe
            set per measurement; the result is kept in ``last_attribution``.

    Example:

    >>> import numpy as np
    >>> cb = VarianceShiftCallback(np.zeros((8, 4)), probe_size=8)
    >>> cb.every, len(cb.probe_x)
    (1, 8)
    """

    def __init__(
        self,
        data,
        every=1,
        probe_size=DEFAULT_PROBE_SIZE,
        batch_size=batches_lib.DEFAULT_BATCH_SIZE * 4,
        per_layer=False,
        log_dir=None,
        steps=None,
        attribute=False,
    ):
        super().__init__()
        self.every = checks.integer("every", every)
        checks.integer("probe_size", probe_size)
        self.batch_size = checks.integer("batch_size", batch_size)
        self.per_layer = bool(per_layer)
        self.attribute = bool(attribute)
        self.last_attribution = None
        self.log_dir = None if log_dir is None else str(log_dir)
        if self.log_dir is not None:  # fail now, not at the end of the first epoch
            optional.require("tensorflow", "VarianceShiftCallback's TensorBoard scalars",
                             f"log_dir={self.log_dir!r}")
        self.probe_x, _ = batches_lib.Batches(
            data, steps=steps, batch_size=self.batch_size, bounded=False
        ).head(int(probe_size))
        _check_finite(self.probe_x)  # fail now, not after the first epoch
        self.last = None
        self._probe = None
        self._writer = None
        self._warned = False

    def __deepcopy__(self, memo):
        # keras-tuner copies callbacks per trial: copy settings and probe
        # data, never the attached model, probe model or summary writer.
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            if key in ("_model", "_probe", "_writer"):
                clone.__dict__[key] = None
            else:
                clone.__dict__[key] = copy.deepcopy(value, memo)
        return clone

    def set_model(self, model):
        if getattr(self, "_model", None) is not model:
            self._probe = None
        super().set_model(model)

    def on_train_begin(self, logs=None):
        # Fail before the first epoch, not after it, on a model with no BN
        # or probe data of another shape.
        if getattr(self.model, "inputs", None):
            try:
                batches_lib.check_batch(self.model.inputs, self.probe_x)
            except ValueError as e:
                raise ValueError(f"VarianceShiftCallback's data: {e}") from None
        self._build_probe()

    def _build_probe(self):
        if self._probe is None:
            probe = probe_lib.Probe(self.model)
            if probe.model is None and probe.hidden:
                raise reach.no_bn_error(self.model, probe)
            reach.warn_hidden(probe)
            self._probe = probe
        return self._probe

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.every:
            return
        result = self.measure()
        if not len(result):
            return
        values = {"variance_shift/max": result.max(), "variance_shift/mean": result.mean()}
        if self.per_layer:
            values.update({f"variance_shift/{name}": value for name, value in result.items()})
        if self.attribute:
            values.update(self._parts())
        if logs is not None:
            logs.update(values)
        if self.log_dir is not None:
            self._write(epoch, result)

    def _parts(self):
        """``logs`` entries of the attribution of the shift, measured now."""
        from keras_vs.attribution import PARTS, attribute_shift

        self.last_attribution = parts = attribute_shift(self.model, self.probe_x,
                                                        batch_size=self.batch_size)
        values = {f"variance_shift/{p}_part": max(a.part(p) for a in parts.values()) for p in PARTS}
        if self.per_layer:
            values.update({f"variance_shift/{name}/{p}_part": a.part(p)
                           for name, a in parts.items() for p in PARTS})
        return values

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def measure(self):
        """Measures the attached model now on the probe set.

        Returns:
            A `keras_vs.shift.VarianceShift` (also kept as ``self.last``).
        """
        # Compiled even for a small probe set (the compile is paid once per
        # run and every later epoch reuses it), unless the model itself runs
        # eagerly (debugging).
        self.last = shift.measure(
            self._build_probe(),
            batches_lib.Batches(self.probe_x, batch_size=self.batch_size),
            compiled=not getattr(self.model, "run_eagerly", False),
        )
        if not self._warned:
            reach.warn_not_called(self.last.not_called, "not measured")
            self._warned = bool(self.last.not_called)
        return self.last

    def _write(self, epoch, result):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            for name, value in result.items():
                if math.isfinite(value):
                    tf.summary.scalar(f"variance_shift/{name}", value, step=epoch)
        self._writer.flush()


def _check_finite(x):
    """Refuses probe data with NaN or infinite values (they would be the measured statistic)."""
    for a in keras.tree.flatten(x):
        a = np.asarray(a)
        if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
            bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            raise ValueError(
                f"VarianceShiftCallback's data holds {bad} NaN or infinite value(s): the "
                f"measured shift would be NaN. Received: data of shape {a.shape} with "
                "non-finite values"
            )
