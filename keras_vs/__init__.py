"""keras-vs: find, measure and fix the Dropout/BatchNormalization variance shift.

Importing the package imports Keras and registers `Uout` with Keras' loader,
so ``keras.saving.load_model`` reads files with Uout layers after ``import
keras_vs``. The one exception is the ``keras-vs`` console script: started as
that script, the package imports these names when one is first used, so that
``keras-vs --help`` starts without Keras.

Example:

>>> import keras_vs as kvs
>>> round(kvs.theory.dropout_shift(0.5), 3)
0.5
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"


def _load():
    """Imports the public API into the package (and registers Uout with Keras)."""
    from keras_vs import theory
    from keras_vs.analysis import Finding, find_disharmony
    from keras_vs.attribution import BNAttribution, ShiftAttribution, attribute_shift
    from keras_vs.callbacks import VarianceShiftCallback
    from keras_vs.doctor import Candidate, DoctorReport, doctor
    from keras_vs.graph import GraphError
    from keras_vs.layers import Uout
    from keras_vs.rewrite import Change, Plan, plan, rewrite
    from keras_vs.shift import (
        Inconsistency,
        VarianceShift,
        measure_variance_shift,
        prediction_inconsistency,
        recalibrate_bn,
    )

    globals().update(
        (name, value) for name, value in locals().items() if not name.startswith("_")
    )


def _started_as_command():
    """Whether this process is the ``keras-vs`` console script (or ``python -m keras_vs.cli``)."""
    orig = list(getattr(_sys, "orig_argv", None) or [])
    if "-m" in orig[:-1] and orig[orig.index("-m") + 1] == "keras_vs.cli":
        return True
    argv = getattr(_sys, "argv", None) or [""]
    name = _os.path.basename(argv[0])
    for suffix in ("-script.py", ".exe"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return name == "keras-vs"


def __getattr__(name):
    # Only reached while the imports are deferred (see the module docstring),
    # or for a submodule that is not imported yet.
    if name == "theory":
        import importlib

        return importlib.import_module("keras_vs.theory")
    if name in __all__ and name != "__version__":
        _load()
        return globals()[name]
    raise AttributeError(f"module 'keras_vs' has no attribute {name!r}")


__all__ = [
    "BNAttribution",
    "Candidate",
    "Change",
    "DoctorReport",
    "Finding",
    "GraphError",
    "Inconsistency",
    "Plan",
    "ShiftAttribution",
    "Uout",
    "VarianceShift",
    "VarianceShiftCallback",
    "attribute_shift",
    "doctor",
    "find_disharmony",
    "measure_variance_shift",
    "plan",
    "prediction_inconsistency",
    "recalibrate_bn",
    "rewrite",
    "theory",
    "__version__",
]

if not _started_as_command():
    _load()
