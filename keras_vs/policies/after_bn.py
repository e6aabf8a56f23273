"""Policy ``"after_bn"``: each dropout that feeds a BN directly moves to just after it.

The moved dropout is a copy of the old one named ``"<bn>_dropout"``. BNs
whose moved dropouts land on the same edges share one new layer (the largest
rate wins). A BN output that feeds another BN directly would make the moved
dropout feed that BN directly: the dropout goes after that BN instead.

Example:

>>> import keras
>>> from keras_vs import match
>>> x = keras.Input((4,))
>>> y = keras.layers.BatchNormalization(name="bn")(keras.layers.Dropout(0.5, name="d")(x))
>>> print(AfterBNPolicy(match.match(keras.Model(x, y)), {}).outcome().changes[0])
move    d as 'bn_dropout' after bn (rate=0.5); fed bn (direct)
"""

import dataclasses

import keras

from keras_vs import graph as graph_lib
from keras_vs import match as match_lib
from keras_vs import vocab
from keras_vs.changes import Change
from keras_vs.layers import Uout
from keras_vs.policies.base import Policy, groups, register, spec_parameter, spec_rate

__all__ = ["AfterBNPolicy", "Placement", "landing"]

_SPATIAL_RANKS = {
    keras.layers.SpatialDropout1D: 3,
    keras.layers.SpatialDropout2D: 4,
    keras.layers.SpatialDropout3D: 5,
}


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the dropouts moved off some BNs land, as one new layer.

    Attributes:
        edges: The `graph.Edge`s the new layer goes on (after a BN).
        placed: Names of the BNs the layer ends up after.
        bns: The `keras_vs.match.Reach`es of the BNs whose dropouts land here.
        sources: The dropout layers moved here, in order.
    """

    edges: tuple
    placed: tuple
    bns: tuple = ()
    sources: tuple = ()

    @property
    def where(self):
        return "after " + ", ".join(self.placed) if self.placed else "nowhere (the BN has no output)"


def landing(bn):
    """The `Placement` (without sources) of a dropout moved off BN `bn` (a `Reach`).

    Those are the BN's output edges, except that an edge which feeds another
    BN directly would make the dropout feed that BN directly: the dropout
    goes after that BN instead.
    """
    edges, placed, todo, seen = [], [], [bn], set()
    while todo:
        r = todo.pop(0)
        if r.bn.key in seen:
            continue
        seen.add(r.bn.key)
        for e in r.bn.out_edges():
            direct = [x for x in match_lib.reach([e])[0] if x.kind == vocab.DIRECT]
            if direct:
                todo.extend(direct)
            else:
                edges.append(e)
                if r.name not in placed:
                    placed.append(r.name)
    return Placement(tuple(edges), tuple(placed))


def _fits(layer, rank):
    """Whether a copy of `layer` can be called on a tensor of rank `rank`."""
    if isinstance(layer, keras.layers.Wrapper):
        return rank >= 3
    want = _SPATIAL_RANKS.get(type(layer))
    return want is None or want == rank


def _like(layer, name, rate=None):
    """A `NewLayer` with `layer`'s class and config, renamed, rate overridden."""
    config = dict(layer.get_config())
    config["name"] = name
    if rate is not None:
        inner = graph_lib.unwrap(layer)
        key = "beta" if isinstance(inner, Uout) else (
            "stddev" if isinstance(inner, keras.layers.GaussianNoise) else "rate")
        if inner is layer:
            config[key] = float(rate)
        else:  # TimeDistributed(Dropout): the rate lives in the wrapped config
            wrapped = dict(config["layer"])
            wrapped["config"] = {**wrapped["config"], key: float(rate)}
            config["layer"] = wrapped
    return graph_lib.NewLayer(type(layer), config)


@register(vocab.AFTER_BN)
class AfterBNPolicy(Policy):
    """Moves each dropout that feeds a BN directly to after that BN.

    Options: ``rate`` (of the moved dropouts), ``beta`` (of moved Uout layers).
    """

    OPTIONS = ("rate", "beta", "share_weights")

    def run(self):
        found = groups(self.match, lambda e: e.feeds_bn_directly)
        bypass = graph_lib.Action("bypass")
        for group in found:
            for e in group.chosen:
                self.edit(e.edge, bypass)
        landed = {}  # BN key -> (spec, Placement)
        for place in self._placements(found):
            spec = self._spec(place)
            for e in place.edges:
                self.edit(e, graph_lib.Action("after", spec))
            landed.update((r.bn.key, (spec, place)) for r in place.bns)
        for group in found:
            self._report(group, landed)

    def _placements(self, found):
        """A `Placement` per set of landing edges, BNs in the order first fed."""
        targets = {}  # BN key -> (Reach, {dropout source: layer})
        for group in found:
            for r in (r for e in group.chosen for r in e.direct):
                targets.setdefault(r.bn.key, (r, {}))[1].setdefault(group.source, group.layer)
        places = {}
        for bn, sources in targets.values():
            place = landing(bn)
            key = tuple(e.key for e in place.edges)
            old = places.setdefault(key, place)
            places[key] = dataclasses.replace(
                old, bns=old.bns + (bn,), sources=old.sources + tuple(sources.values()))
        return list(places.values())

    def _spec(self, place):
        """The one new layer of a `Placement`: a copy of its largest-rate dropout."""
        layer = max(place.sources, key=graph_lib.noise_rate)
        base = place.placed[0].rsplit("/", 1)[-1] if place.placed else layer.name
        # A moved Uout keeps its kind: --beta sets its beta, --rate the others' rate.
        option = "beta" if isinstance(graph_lib.unwrap(layer), Uout) else "rate"
        spec = _like(layer, self.new_name(f"{base}_dropout"), self.options.get(option))
        if place.edges and not _fits(layer, len(place.edges[0].tensor.shape)):
            # e.g. a SpatialDropout2D moved after a BN on a flat tensor.
            rate = self.options.get("rate") or graph_lib.noise_rate(layer)
            spec = graph_lib.NewLayer(keras.layers.Dropout, {"name": spec.name, "rate": float(rate)})
        return spec

    def _report(self, group, landed):
        bns = {}
        for r in (r for e in group.chosen for r in e.direct):
            bns.setdefault(r.bn.key, r)
        direct = {r.bn.layer_key for r in bns.values()}
        through = {r.name for e in group.chosen for r in e.reaches
                   if r.kind != vocab.DIRECT and r.bn.layer_key not in direct}
        note = group.fork_note("feed no BN directly")
        if through:
            note += ("; " if note else "") + (
                f"the moved branch also fed {', '.join(sorted(through))} through a "
                "linear layer: that path loses this dropout")
        bypassed = [e.edge for e in group.chosen]
        for key, r in bns.items():
            spec, place = landed[key]
            self.report(Change("move", group.name, new_layer=spec.name, where=place.where,
                               feeds=(f"{r.name} ({r.kind})",), rate=spec_rate(spec),
                               parameter=spec_parameter(spec), note=note),
                        bypassed + list(place.edges), group.source)
