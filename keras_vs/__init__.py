"""keras-vs: find, measure and fix the Dropout/BatchNormalization variance shift.

The public names are imported when first used (PEP 562), so ``import
keras_vs`` and ``keras-vs --help`` start without Keras. `Uout` is registered
with Keras' loader as soon as Keras is imported, before or after keras_vs,
so ``keras.saving.load_model`` reads files with Uout layers after ``import
keras_vs``.

Example:

>>> import keras_vs as kvs
>>> round(kvs.theory.dropout_shift(0.5), 3)
0.5
"""

import importlib as _importlib
import importlib.util as _importlib_util
import sys as _sys
import types as _types

from keras_vs import _keras_import

__version__ = "0.1.0"

# Public name -> the module that defines it.
_PUBLIC = {
    "BNAttribution": "keras_vs.attribution",
    "Candidate": "keras_vs.doctor",
    "Change": "keras_vs.rewrite",
    "DoctorReport": "keras_vs.doctor",
    "Finding": "keras_vs.analysis",
    "GraphError": "keras_vs.graph",
    "Inconsistency": "keras_vs.shift",
    "Plan": "keras_vs.rewrite",
    "ShiftAttribution": "keras_vs.attribution",
    "Uout": "keras_vs.layers",
    "VarianceShift": "keras_vs.shift",
    "VarianceShiftCallback": "keras_vs.callbacks",
    "attribute_shift": "keras_vs.attribution",
    "doctor": "keras_vs.doctor",
    "find_disharmony": "keras_vs.analysis",
    "measure_variance_shift": "keras_vs.shift",
    "plan": "keras_vs.rewrite",
    "prediction_inconsistency": "keras_vs.shift",
    "recalibrate_bn": "keras_vs.recalibrate",
    "rewrite": "keras_vs.rewrite",
    "rewrite_with_plan": "keras_vs.rewrite",
}
# Public submodules, besides the names above.
_MODULES = ("theory",)

__all__ = sorted([*_PUBLIC, *_MODULES]) + ["__version__"]


def __getattr__(name):
    """A public name, imported on first use; or a submodule not imported yet."""
    module_name = _PUBLIC.get(name)
    if module_name is not None:
        value = getattr(_importlib.import_module(module_name), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    if not name.startswith("_") and _importlib_util.find_spec(f"{__name__}.{name}") is not None:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(_types.ModuleType):
    """keras_vs itself; keeps `kvs.rewrite` the function when its module loads.

    Loading submodule ``keras_vs.rewrite`` (or ``doctor``) sets the package's
    attribute of that name to the module; the public name is the function.
    """

    def __setattr__(self, name, value):
        if isinstance(value, _types.ModuleType) and _PUBLIC.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


def _register_layers():
    _importlib.import_module("keras_vs.layers")  # registers Uout for .keras loading


_keras_import.after_keras(_register_layers)
