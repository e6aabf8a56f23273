"""Runs a callback once Keras is imported, whenever that happens.

`import keras_vs` must not import Keras (``keras-vs --help`` starts without
it) yet must register `Uout` with Keras' loader before anyone loads a model.
`after_keras` does the second without the first: with Keras imported it
calls at once; otherwise it puts a finder at the front of `sys.meta_path`
(one, holding every callback) that finds ``keras`` as the other finders would and
has its module executed by the real loader, then calls back and leaves
`sys.meta_path`.
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
        return
    finder = next((f for f in sys.meta_path if isinstance(f, _Finder)), None)
    if finder is None:
        finder = _Finder()
        sys.meta_path.insert(0, finder)
    if callback not in finder.callbacks:
        finder.callbacks.append(callback)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``keras`` through the other finders and wraps its loader.

    It leaves `sys.meta_path` when Keras is executed, not when it is found:
    ``importlib.util.find_spec("keras")`` only probes (keras-vs' CLI probes
    before it imports).
    """

    def __init__(self):
        self.callbacks = []

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or "keras" in sys.modules:
            return None
        spec = None
        for finder in [f for f in sys.meta_path if not isinstance(f, _Finder)]:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, self)
        return spec


class _Loader(importlib.abc.Loader):
    """Keras' own loader, then the callback; puts the real loader back on the module."""

    def __init__(self, loader, finder):
        self.loader = loader
        self.finder = finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The import system calls this through `spec.loader`; from here on
        # importlib and tools (resources, inspect) see Keras' own loader.
        module.__loader__ = module.__spec__.loader = self.loader
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        try:
            self.loader.exec_module(module)
        except BaseException:
            sys.meta_path.insert(0, self.finder)  # the next `import keras` tries again
            raise
        for callback in self.finder.callbacks:
            try:
                callback()
            except Exception as e:  # noqa: BLE001 - `import keras` itself must not fail
                warnings.warn(
                    f"keras-vs could not register its layers with Keras ({type(e).__name__}: "
                    f"{e}); import keras_vs.layers to see why. Received: callback={callback!r}",
                    RuntimeWarning, stacklevel=2)
