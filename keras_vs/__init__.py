"""keras-vs: find, measure and fix the Dropout/BatchNormalization variance shift.

Example:

>>> import keras_vs as kvs
>>> round(kvs.theory.dropout_shift(0.5), 3)
0.5
"""

from keras_vs import theory
from keras_vs.layers import Uout

__version__ = "0.1.0"

__all__ = ["Uout", "theory", "__version__"]
