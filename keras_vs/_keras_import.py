"""Runs a callback once Keras is imported, whenever that happens.

`import keras_vs` must not import Keras (``keras-vs --help`` starts without
it) yet must register `Uout` with Keras' loader before anyone loads a model.
`after_keras` does the second without the first: with Keras imported it
calls at once; otherwise it puts a one-shot finder at the front of
`sys.meta_path` that finds ``keras`` as the other finders would and has its
module executed by the real loader, then calls back and leaves `sys.meta_path`.
The module keeps its real loader (`__loader__`, `__spec__.loader`).

Example:

>>> import keras
>>> calls = []
>>> after_keras(lambda: calls.append("keras is here"))  # Keras is imported: at once
>>> calls
['keras is here']
"""

import importlib.abc
import sys
import warnings

__all__ = ["after_keras"]


def after_keras(callback):
    """Calls ``callback()`` now if Keras is imported, else right after ``import keras`` finishes."""
    if "keras" in sys.modules:
        callback()
    elif not any(isinstance(f, _Finder) and f.callback is callback for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder(callback))


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``keras`` through the other finders and wraps its loader; used once."""

    def __init__(self, callback):
        self.callback = callback

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, self.callback)
        return spec


class _Loader(importlib.abc.Loader):
    """Keras' own loader, then the callback; puts the real loader back on the module."""

    def __init__(self, loader, callback):
        self.loader = loader
        self.callback = callback

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The import system calls this through `spec.loader`; from here on
        # importlib and tools (resources, inspect) see Keras' own loader.
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        try:
            self.callback()
        except Exception as e:  # noqa: BLE001 - `import keras` itself must not fail
            warnings.warn(
                f"keras-vs could not register its layers with Keras ({type(e).__name__}: "
                f"{e}); import keras_vs.layers to see why. Received: callback={self.callback!r}",
                RuntimeWarning, stacklevel=2)
