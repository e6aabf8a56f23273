"""What other packages add to keras-vs, found by entry-point group.

The plugin imports none of the packages built on it; they declare what they
add in their distribution's metadata instead, and keras-vs reads it:

- ``keras_vs.commands``: ``keras-vs`` commands (``tune = tuner.cli:COMMAND``),
  read by `keras_vs.cli`;
- ``keras_vs.datasets``: named data sets (``cifar10 = tuner.tfds:CIFAR10``),
  read by `keras_vs.data`.

Run from a source tree without installed metadata, a group is read from the
tree's ``setup.py`` (parsed as a literal, never run).

Example:

>>> targets("keras_vs.no_such_group", root="/nonexistent")
{}
"""

import ast
import importlib
import os

__all__ = ["installed", "load", "source_tree", "targets"]

# The folder above this package: a source checkout keeps setup.py there.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def targets(group, root=None):
    """Where each entry of `group` lives, ``{name: "module:attribute"}``.

    Args:
        group: The entry-point group, e.g. ``"keras_vs.commands"``.
        root: The source tree whose ``setup.py`` is read too (default: the
            folder above the package; none there when installed).

    Returns:
        The installed entries, then those of the source tree's setup.py; the
        first declaration of a name wins. Sorted by name.
    """
    found = dict(installed(group))
    for name, target in source_tree(group, root).items():
        found.setdefault(name, target)
    return dict(sorted(found.items()))


def installed(group):
    """The entries of `group` in the installed distributions' metadata."""
    from importlib import metadata

    try:
        return {ep.name: ep.value for ep in metadata.entry_points(group=group)}
    except Exception:  # noqa: BLE001  (broken metadata of another package)
        return {}


def source_tree(group, root=None):
    """The entries of `group` in the setup.py in `root`, if any (read, not run)."""
    setup_py = os.path.join(root or _ROOT, "setup.py")
    if not os.path.isfile(setup_py):
        return {}
    try:
        with open(setup_py) as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError):
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            try:
                groups = ast.literal_eval(node.value)
            except ValueError:
                return {}
            return _parse(groups.get(group, ()))
    return {}


def _parse(lines):
    out = {}
    for line in lines:
        name, _, target = line.partition("=")
        if name.strip() and target.strip():
            out[name.strip()] = target.strip()
    return out


def load(target, attribute):
    """Imports ``"module:attribute"`` and returns the attribute.

    Args:
        target: ``"module:dotted.attribute"``, or ``"module"`` alone.
        attribute: The attribute to read when `target` names none.

    Raises:
        Exception: Whatever importing the module or reading the attribute
            raises (callers report it with the entry's name).
    """
    module_name, _, attr = target.partition(":")
    value = importlib.import_module(module_name.strip())
    for part in (attr.strip() or attribute).split("."):
        value = getattr(value, part)
    return value
