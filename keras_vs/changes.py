"""What a rewrite changes: `Change` records and the `Plan` that lists them.

Matching and reporting are one thing here (as in torch.fx's
`replace_pattern`): the policies return these records, `plan` prints them,
and `rewrite` applies the same matches.

Example:

>>> print(Change("remove", "drop", feeds=("bn (direct)",), rate=0.5))
remove  drop (rate=0.5); fed bn (direct)
"""

import dataclasses

__all__ = ["Change", "Plan"]


@dataclasses.dataclass(frozen=True)
class Change:
    """One change a rewrite makes.

    Attributes:
        action: ``"remove"``, ``"move"``, ``"replace"``, ``"insert"`` or
            ``"keep"`` (a dropout the policy leaves as it is, with the reason).
        layer: The dropout the change is about (None for an insertion).
        new_layer: Name of the layer created (None for a removal).
        where: Where the new layer goes, e.g. ``"after bn"``.
        feeds: The BNs the dropout feeds, as ``"bn (direct)"`` strings.
        rate: Rate of the new layer (Uout: beta), or of the removed dropout.
        parameter: The name of the layer parameter `rate` holds (``"rate"``,
            ``"beta"`` for Uout, ``"stddev"``); None: ``"beta"`` for a
            replacement, ``"rate"`` otherwise.
        note: What else to know: forks kept, branches affected, sharing.
    """

    action: str
    layer: str = None
    new_layer: str = None
    where: str = None
    feeds: tuple = ()
    rate: float = None
    note: str = ""
    parameter: str = None

    def __str__(self):
        parts = [f"{self.action:<7}"]
        if self.layer:
            parts.append(self.layer)
        if self.new_layer:
            parts.append(f"{'as' if self.layer else ''} {self.new_layer!r}".strip())
        if self.where:
            parts.append(self.where)
        if self.rate is not None:
            name = self.parameter or ("beta" if self.action == "replace" else "rate")
            parts.append(f"({name}={self.rate:g})")
        text = " ".join(parts)
        if self.feeds:
            text += f"; fed {', '.join(self.feeds)}"
        if self.note:
            text += f"; {self.note}"
        return text


class Plan(list):
    """A list of `Change` that prints one change per line.

    ``"keep"`` entries are the dropout -> BN pairs the policy leaves as they
    are, each with the reason (e.g. ``after_bn`` moves only dropouts that
    feed a BN directly); `changes` and `kept` split the list.
    """

    def __init__(self, changes, policy):
        super().__init__(changes)
        self.policy = policy

    @property
    def changes(self):
        """The entries that change the model."""
        return [c for c in self if c.action != "keep"]

    @property
    def kept(self):
        """The entries the policy leaves as they are (action ``"keep"``)."""
        return [c for c in self if c.action == "keep"]

    def __str__(self):
        if not self:
            return f"policy {self.policy!r}: no changes (no dropout feeds a BN)"
        head = f"policy {self.policy!r}: {len(self.changes)} change(s)"
        if self.kept:
            head += f", {len(self.kept)} kept"
        return "\n".join([head] + [f"  {c}" for c in self])
