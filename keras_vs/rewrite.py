"""Fix dropout-before-BN in a model: `plan` (a dry run) and `rewrite`.

Policies:

- ``"after_bn"``: each dropout that feeds a BN directly moves to just after
  that BN (a copy of the dropout, named ``"<bn>_dropout"``).
- ``"head"``: every dropout that feeds a BN is removed and one dropout is
  put after the last BN, before the classifier (``"head_dropout"``).
- ``"uout"``: every dropout that feeds a BN becomes a `keras_vs.Uout`
  (``"<dropout>_uout"``).
- ``"remove"``: every dropout that feeds a BN is removed.

A dropout whose output forks is changed only on the branches that feed a BN
and kept on the others; the plan says so. Dropout and Uout are identities at
inference, so the rewritten model computes the same inference outputs.
"""

import numbers

import dataclasses

from keras_vs import analysis
from keras_vs import graph as graph_lib
from keras_vs import match as match_lib
from keras_vs import policies
from keras_vs import vocab
from keras_vs.changes import Change, Plan

__all__ = ["POLICIES", "Change", "Plan", "plan", "rewrite", "rewrite_with_plan"]

POLICIES = vocab.POLICIES


@dataclasses.dataclass(frozen=True)
class _Kept:
    """The pairs of one dropout a policy leaves alone."""

    dropout: str
    rate: float
    note: str
    feeds: tuple = ()
    kinds: frozenset = frozenset()

    def reason(self, policy):
        if self.kinds == {vocab.RECURRENT}:
            return (f"policy {policy!r} keeps recurrent layers as they are ({self.note}); "
                    "set the layer's dropout and recurrent_dropout to change it")
        if policy == vocab.AFTER_BN and self.kinds == {vocab.THROUGH_LINEAR}:
            return ("after_bn moves only dropouts that feed a BN directly; through a conv/dense "
                    "layer the shift is usually smaller (the paper's case b): policy head, uout or "
                    "remove changes it")
        return f"policy {policy!r} cannot change it"


def _kept_pairs(match, policy, outcome):
    """`Change("keep")` entries for the pairs of `match` that `outcome` leaves alone."""
    kept = {}
    for pair in analysis.pairs(match):
        if pair.source is not None and pair.source in outcome.sources:
            continue
        f = pair.finding
        # A dropout hidden in a custom layer has no source: its name is its identity.
        key = pair.source if pair.source is not None else ("hidden", f.dropout)
        old = kept.setdefault(key, _Kept(f.dropout, f.rate, f.note))
        kept[key] = dataclasses.replace(old, feeds=old.feeds + (f"{f.bn} ({f.kind})",),
                                        kinds=old.kinds | {f.kind})
    return [Change("keep", k.dropout, feeds=k.feeds, rate=k.rate, note=k.reason(policy))
            for k in kept.values()]


def _check_options(policy, options):
    allowed = policies.policy_class(policy).OPTIONS
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"Option(s) {', '.join(unknown)} do not apply to policy {policy!r} "
            f"(it takes {', '.join(allowed)}). Received: "
            + ", ".join(f"{k}={options[k]!r}" for k in unknown)
        )
    for key, upper in (("rate", 1.0), ("beta", 1.0)):
        value = options.get(key)
        if value is None:
            continue
        closed = key == "beta"
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not (0.0 <= value <= upper if closed else 0.0 <= value < upper)
        ):
            bound = "[0, 1]" if closed else "[0, 1)"
            raise ValueError(
                f"Option {key} must be a number in {bound}. Received: {key}={value!r}"
            )
    share = options.get("share_weights", False)
    if not isinstance(share, bool):
        raise ValueError(
            f"Option share_weights must be True or False. Received: share_weights={share!r}"
        )


def _match(model, policy, options):
    """Checks the arguments, matches `model` once and runs the policy on the match."""
    _check_options(policy, options)
    match = match_lib.match(model)
    return match, policies.run_policy(match, policy, options)


def _plan(match, policy, outcome):
    return Plan(list(outcome.changes) + _kept_pairs(match, policy, outcome), policy)


def _build(model, match, outcome, options):
    new = graph_lib.rebuild(match.graph, dict(outcome.actions),
                            share_weights=options.get("share_weights", False))
    graph_lib.compile_like(new, model)
    return new


def plan(model, policy, **options):
    """Lists the changes `rewrite` would make; builds nothing.

    Args:
        model: A Functional or Sequential `keras.Model`.
        policy: ``"after_bn"``, ``"head"``, ``"uout"`` or ``"remove"``.
        **options: ``rate`` (after_bn, head: rate of the moved or inserted
            dropouts), ``beta`` (uout, default 0.1; after_bn: of moved Uout
            layers; head: of a Uout head), ``share_weights``.

    Returns:
        A `Plan`: a list of `Change` that prints one line per change, the
        pairs the policy keeps (action ``"keep"``) included with the reason.

    Example:

    >>> import keras
    >>> x = keras.Input((4,))
    >>> y = keras.layers.Dropout(0.5, name="drop")(x)
    >>> y = keras.layers.BatchNormalization(name="bn")(y)
    >>> print(plan(keras.Model(x, y), "after_bn"))
    policy 'after_bn': 1 change(s)
      move    drop as 'bn_dropout' after bn (rate=0.5); fed bn (direct)
    """
    match, outcome = _match(model, policy, options)
    return _plan(match, policy, outcome)


def rewrite(model, policy, **options):
    """Returns a new model with the dropouts that feed a BN fixed by `policy`.

    The input model is never modified. Weights are copied into the new
    layers (``share_weights=True`` reuses the original layers and their
    variables instead). Inference outputs are unchanged.

    Args:
        model: A Functional or Sequential `keras.Model`.
        policy: ``"after_bn"``, ``"head"``, ``"uout"`` or ``"remove"``.
        **options: As for `plan`.

    Returns:
        A new model of the input's own class (a keras-hub task stays that
        task, a Functional subclass keeps its ``train_step``; a nested model
        whose class builds its graph from hyperparameters, such as a
        keras-hub backbone holding the pair, becomes a Functional), with
        every layer's state and dtype policy, compiled as the input was
        (fresh optimizer state). Its BN layers keep
        the moving statistics measured with the old dropouts in front of
        them: re-estimate them with `keras_vs.recalibrate_bn` (or
        fine-tune) to remove the shift.

    Example:

    >>> import keras
    >>> x = keras.Input((4,))
    >>> y = keras.layers.Dropout(0.5, name="drop")(x)
    >>> y = keras.layers.BatchNormalization(name="bn")(y)
    >>> new = rewrite(keras.Model(x, y), "after_bn")
    >>> [layer.name for layer in new.layers[1:]]
    ['bn', 'bn_dropout']
    """
    match, outcome = _match(model, policy, options)
    return _build(model, match, outcome, options)


def rewrite_with_plan(model, policy, **options):
    """`rewrite` and `plan` from one match: the plan is the rewrite's report.

    Args:
        model: A Functional or Sequential `keras.Model`.
        policy: ``"after_bn"``, ``"head"``, ``"uout"`` or ``"remove"``.
        **options: As for `plan`.

    Returns:
        ``(new_model, plan)``: what `rewrite` and `plan` return, the
        changes of the plan being those the new model has.

    Example:

    >>> import keras
    >>> x = keras.Input((4,))
    >>> y = keras.layers.BatchNormalization(name="bn")(keras.layers.Dropout(0.5, name="drop")(x))
    >>> new, report = rewrite_with_plan(keras.Model(x, y), "remove")
    >>> [c.action for c in report], [layer.name for layer in new.layers[1:]]
    (['remove'], ['bn'])
    """
    match, outcome = _match(model, policy, options)
    return _build(model, match, outcome, options), _plan(match, policy, outcome)
