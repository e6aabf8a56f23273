"""The rewrite policies: which edges of a model each one edits, and how.

One class per name of `keras_vs.vocab.POLICIES`, registered beside its
definition (``@register(name)``): `AfterBNPolicy` (``after_bn.py``),
`HeadPolicy` (``head.py``), `UoutPolicy` (``uout.py``), `RemovePolicy`
(``remove.py``). Each takes one `keras_vs.match.Match` and returns an
`Outcome`: the graph actions `keras_vs.rewrite` rebuilds and the `Change`s
`keras_vs.plan` reports, recorded together. A new policy: a module here with
a `Policy` subclass registered under a new name of `vocab.POLICIES`,
imported below.

Example:

>>> import keras
>>> from keras_vs import match
>>> x = keras.Input((4,))
>>> y = keras.layers.BatchNormalization(name="bn")(keras.layers.Dropout(0.5, name="d")(x))
>>> [c.action for c in run_policy(match.match(keras.Model(x, y)), "remove", {}).changes]
['remove']
"""

import warnings

from keras_vs import match as match_lib
from keras_vs import vocab
from keras_vs.deprecation import KerasVsDeprecationWarning
from keras_vs.policies.after_bn import AfterBNPolicy, Placement
from keras_vs.policies.base import POLICY_CLASSES, DropoutGroup, Outcome, Policy, register
from keras_vs.policies.head import HeadPolicy
from keras_vs.policies.remove import RemovePolicy
from keras_vs.policies.uout import UoutPolicy

__all__ = [
    "POLICY_CLASSES",
    "AfterBNPolicy",
    "DropoutGroup",
    "HeadPolicy",
    "Outcome",
    "Placement",
    "Planner",
    "Policy",
    "RemovePolicy",
    "UoutPolicy",
    "policy_class",
    "register",
    "run_policy",
]

# The vocabulary is the one list of names: every name has its class, and no other.
if set(POLICY_CLASSES) != set(vocab.POLICIES):  # pragma: no cover
    raise ImportError(f"Policies without a class or a name: {sorted(set(POLICY_CLASSES) ^ set(vocab.POLICIES))}")


def policy_class(policy):
    """The `Policy` class of a policy name; a ValueError echoing anything else.

    Args:
        policy: One of `keras_vs.vocab.POLICIES`.

    Returns:
        Its class in `POLICY_CLASSES`.
    """
    if not isinstance(policy, str) or policy not in POLICY_CLASSES:
        raise ValueError(f"Unknown policy. Expected one of {', '.join(vocab.POLICIES)}. "
                         f"Received: policy={policy!r}")
    return POLICY_CLASSES[policy]


def run_policy(match, policy, options):
    """Runs policy `policy` on a match.

    Args:
        match: A `keras_vs.match.Match`.
        policy: One of `keras_vs.vocab.POLICIES`.
        options: The policy's options (see its class' ``OPTIONS``).

    Returns:
        An `Outcome`.
    """
    return policy_class(policy)(match, options).outcome()


class Planner:
    """Deprecated: use ``run_policy(keras_vs.match.match(model), policy, options)``.

    Attributes:
        graph: The `keras_vs.graph.ModelGraph` of `model`.
        actions: ``{edge key: (graph.Action, ...)}``.
        changes: The `Change`s.
    """

    def __init__(self, model, policy, options):
        warnings.warn(
            "keras_vs.policies.Planner is deprecated and will be removed in the next release: "
            "use keras_vs.policies.run_policy(keras_vs.match.match(model), policy, options), "
            "whose Outcome has .changes and .actions.",
            KerasVsDeprecationWarning,
            stacklevel=2,
        )
        match = match_lib.match(model)
        outcome = run_policy(match, policy, options)
        self.policy = policy
        self.options = options
        self.graph = match.graph
        self.actions = dict(outcome.actions)
        self.changes = list(outcome.changes)
