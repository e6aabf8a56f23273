"""Optional dependencies: TensorFlow, TensorFlow Datasets, TensorBoard.

keras-vs, the zoo and the tuner run on the JAX backend without TensorFlow.
The few features that need it (TFDS data sets, TensorBoard event files)
import it through `require`, which fails with a message naming what to
install instead of a bare ``ModuleNotFoundError``.
"""

import importlib
import importlib.util

__all__ = ["MissingDependencyError", "available", "require"]

# What to install for each optional module.
INSTALL = {
    "tensorflow": "pip install tensorflow",
    "tensorflow_datasets": "pip install tensorflow tensorflow-datasets",
}


class MissingDependencyError(ImportError, ValueError):
    """A feature needs a package that is not installed; the message says what to install.

    An `ImportError`, and a `ValueError` too: command-line tools report it
    as a bad argument (``--dataset=cifar10`` on a machine without TFDS).
    """


def available(module):
    """Whether ``module`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module, feature, received):
    """Imports and returns ``module``, or raises `MissingDependencyError`.

    Args:
        module: Module name, e.g. ``"tensorflow_datasets"``.
        feature: What needs it, for the message, e.g. ``"The TFDS data set 'cifar10'"``.
        received: The argument that asked for the feature, e.g. ``"name='cifar10'"``.

    Returns:
        The imported module.

    Example:

    >>> require("json", "Reading JSON", "path='a.json'").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        install = INSTALL.get(module, f"pip install {module.replace('_', '-')}")
        raise MissingDependencyError(
            f"{feature} needs {module}, which cannot be imported ({e}). Install it with "
            f"`{install}`; keras-vs itself, the digits data set and .npz files run without "
            f"it (e.g. on KERAS_BACKEND=jax). Received: {received}",
            name=module,
        ) from None
