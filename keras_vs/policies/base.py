"""What every rewrite policy shares: the registry, `Outcome`, `Policy`.

A policy is a small class registered under its name in `vocab.POLICIES`
(``@register(vocab.REMOVE)``, as timm registers a model beside its
definition). It takes a `keras_vs.match.Match` and its options and returns an
`Outcome`: the per-edge graph `Action`s `keras_vs.rewrite` rebuilds and the
`Change`s `keras_vs.plan` prints, recorded together so they cannot disagree.

Example:

>>> import keras
>>> from keras_vs import match
>>> x = keras.Input((4,))
>>> y = keras.layers.BatchNormalization(name="bn")(keras.layers.Dropout(0.5, name="d")(x))
>>> [c.action for c in POLICY_CLASSES["remove"](match.match(keras.Model(x, y)), {}).outcome().changes]
['remove']
"""

import dataclasses
import types

import keras

from keras_vs import graph as graph_lib
from keras_vs import vocab
from keras_vs.layers import Uout

__all__ = ["POLICY_CLASSES", "DropoutGroup", "Outcome", "Policy", "groups", "parameter", "register",
           "spec_parameter", "spec_rate"]

#: Policy name -> `Policy` subclass; filled by `register`, one per `vocab.POLICIES`.
POLICY_CLASSES = {}


def register(name):
    """Class decorator: makes `cls` the policy called `name`.

    Args:
        name: One of `keras_vs.vocab.POLICIES` (the one list of names).
    """
    if name not in vocab.POLICIES:
        raise ValueError(f"Unknown policy. Expected one of {', '.join(vocab.POLICIES)}. "
                         f"Received: name={name!r}")

    def decorate(cls):
        cls.name = name
        POLICY_CLASSES[name] = cls
        return cls

    return decorate


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one policy does to one model.

    Attributes:
        changes: The `Change`s to report, in order (``"keep"`` ones included).
        actions: ``{edge key: (graph.Action, ...)}``: what the rebuild edits.
        sources: The `keras_vs.match.DropoutMatch.source` of every dropout
            a change is about (changed or reported as kept).
    """

    changes: tuple
    actions: types.MappingProxyType
    sources: frozenset


@dataclasses.dataclass(frozen=True)
class DropoutGroup:
    """Every call of one dropout layer, with the out-edges a policy changes.

    Attributes:
        source: `keras_vs.match.DropoutMatch.source` of the calls.
        name: The dropout's qualified name.
        layer: The dropout layer.
        chosen: The `keras_vs.match.EdgeMatch`es to change.
        kept: Names of the consumers of the edges left as they are.
    """

    source: tuple
    name: str
    layer: object
    chosen: tuple
    kept: frozenset

    @property
    def rate(self):
        return graph_lib.noise_rate(self.layer)

    @property
    def feeds(self):
        """``"bn (kind)"`` per BN the chosen edges feed (a direct path wins)."""
        seen = {}
        for r in (r for e in self.chosen for r in e.reaches):
            name, kind = seen.get(r.bn.layer_key, (r.name, None))
            if kind != vocab.DIRECT:
                seen[r.bn.layer_key] = (name, r.kind)
        return tuple(f"{name} ({kind})" for name, kind in seen.values())

    def fork_note(self, why="feed no BN"):
        """Which branches keep the dropout, and which outputs lose it too."""
        notes = []
        if self.kept:
            notes.append(f"forks: kept on the branch(es) to {', '.join(sorted(self.kept))}, "
                         f"which {why}")
        lost = set().union(*(e.outputs for e in self.chosen))
        if lost:
            notes.append("the changed branch also reaches output(s) "
                         f"{', '.join(sorted(lost))} through no BN: the dropout is gone there too")
        return "; ".join(notes)


def groups(match, select):
    """A `DropoutGroup` per dropout layer with edges chosen by `select(edge_match)`."""
    found = {}
    for call in match.editable:
        chosen = tuple(e for e in call.edges if select(e))
        if not chosen:
            continue
        kept = frozenset(e.edge.consumer_name for e in call.edges if not select(e))
        old = found.get(call.source)
        if old is not None:
            chosen, kept = old.chosen + chosen, old.kept | kept
        found[call.source] = DropoutGroup(call.source, call.name, call.layer, chosen, kept)
    return list(found.values())


def parameter(layer):
    """The name of the parameter `graph.noise_rate` reads: "beta", "stddev" or "rate"."""
    inner = graph_lib.unwrap(layer)
    if isinstance(inner, Uout):
        return "beta"
    return "stddev" if isinstance(inner, keras.layers.GaussianNoise) else "rate"


def _inner_config(spec):
    config = spec.config
    if isinstance(config.get("layer"), dict):  # a wrapper: the rate is its layer's
        config = config["layer"].get("config", {})
    return config


def spec_parameter(spec):
    """The rate parameter of a `graph.NewLayer`'s config: "beta" (Uout), "stddev" or "rate"."""
    config = _inner_config(spec)
    return next((key for key in ("beta", "stddev", "rate") if key in config), None)


def spec_rate(spec):
    """The value of `spec_parameter(spec)` (None when the config has none)."""
    key = spec_parameter(spec)
    return None if key is None else _inner_config(spec)[key]


def _total_calls(view):
    """How many times a view's model runs per call of the root model."""
    if not view.calls:
        return 1
    return sum(_total_calls(parent) for parent, _ in view.calls)


class Policy:
    """A rewrite policy: subclasses implement `run` with `edit` and `report`.

    Args:
        match: A `keras_vs.match.Match`.
        options: The policy's options (checked by `keras_vs.rewrite`).
    """

    name = None
    #: The options the policy takes (`keras_vs.plan` refuses others).
    OPTIONS = ("share_weights",)

    def __init__(self, match, options):
        self.match = match
        self.options = dict(options)
        self._taken = set(match.graph.taken_names())
        self._actions = {}
        self._records = []  # (change, edges it edits, source)

    def new_name(self, base):
        """A layer name no layer of the model has (`base`, `base_1`, ...)."""
        name, i = base, 1
        while name in self._taken:
            name = f"{base}_{i}"
            i += 1
        self._taken.add(name)
        return name

    def edit(self, edge, action):
        """Adds `action` (a `graph.Action`) to `edge`."""
        self._actions[edge.key] = self._actions.get(edge.key, ()) + (action,)

    def actions_on(self, edge):
        return self._actions.get(edge.key, ())

    def report(self, change, edges=(), source=None):
        """Records `change`, the edges it edits and the dropout it is about."""
        self._records.append((change, tuple(edges), source))

    def run(self):
        raise NotImplementedError

    def outcome(self):
        """Runs the policy once; returns its `Outcome`."""
        self.run()
        changes = tuple(_with_sharing(change, edges) for change, edges, _ in self._records)
        sources = frozenset(s for _, _, s in self._records if s is not None)
        return Outcome(changes, types.MappingProxyType(dict(self._actions)), sources)


def _with_sharing(change, edges):
    """Says when an edit lands in a nested model that runs more than once per call."""
    views = {id(e.view): e.view for e in edges}.values()
    extra = [
        f"inside nested model {view.prefix[:-1]!r}, called {calls} times: every call changes"
        for view, calls in ((v, _total_calls(v)) for v in views)
        if calls > 1
    ]
    if change.action == "keep" or not extra:
        return change
    return dataclasses.replace(change, note="; ".join(([change.note] if change.note else []) + extra))
