"""keras-vs: find, measure and fix the Dropout/BatchNormalization variance shift.

Example:

>>> import keras_vs as kvs
>>> round(kvs.theory.dropout_shift(0.5), 3)
0.5
"""

from keras_vs import theory
from keras_vs.analysis import Finding, find_disharmony
from keras_vs.callbacks import VarianceShiftCallback
from keras_vs.graph import GraphError
from keras_vs.layers import Uout
from keras_vs.rewrite import Change, plan, rewrite
from keras_vs.shift import (
    Inconsistency,
    VarianceShift,
    measure_variance_shift,
    prediction_inconsistency,
    recalibrate_bn,
)

__version__ = "0.1.0"

__all__ = [
    "Change",
    "Finding",
    "GraphError",
    "Inconsistency",
    "Uout",
    "VarianceShift",
    "VarianceShiftCallback",
    "find_disharmony",
    "measure_variance_shift",
    "plan",
    "prediction_inconsistency",
    "recalibrate_bn",
    "rewrite",
    "theory",
    "__version__",
]
