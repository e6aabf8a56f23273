"""The four rewrite policies: which edges of a model each one edits, and how.

`Planner` reads a model through the graph core, matches the dropouts each
policy changes and records two things at once: per-edge graph `Action`s
(what `keras_vs.rewrite` rebuilds) and `Change`s (what `keras_vs.plan`
reports), so the plan and the rewrite cannot disagree.

Example:

>>> import keras
>>> x = keras.Input((4,))
>>> y = keras.layers.BatchNormalization(name="bn")(keras.layers.Dropout(0.5, name="d")(x))
>>> [c.action for c in Planner(keras.Model(x, y), "remove", {}).changes]
['remove']
"""

import dataclasses

import keras

from keras_vs import analysis
from keras_vs import graph as graph_lib
from keras_vs.changes import Change
from keras_vs.layers import Uout

__all__ = ["Planner"]

# Layers that act elementwise on one input: a head dropout may go before them.
_PASSTHROUGH = tuple(
    getattr(keras.layers, name)
    for name in ("Activation", "ReLU", "Softmax", "LeakyReLU", "ELU", "Identity",
                 "Flatten", "Reshape")
    if hasattr(keras.layers, name)
) + analysis.DROPOUT_LIKE


class _Names:
    def __init__(self, taken):
        self.taken = set(taken)

    def new(self, base):
        name, i = base, 1
        while name in self.taken:
            name = f"{base}_{i}"
            i += 1
        self.taken.add(name)
        return name


def _feeds(reports):
    seen = {}
    for report in reports:
        for r in report.reaches.values():
            if seen.get(r.name) != analysis.DIRECT:
                seen[r.name] = r.kind
    return tuple(f"{name} ({kind})" for name, kind in seen.items())


def _fork_note(kept, lost_outputs, why="feed no BN"):
    notes = []
    if kept:
        notes.append(f"forks: kept on the branch(es) to {', '.join(sorted(kept))}, which {why}")
    if lost_outputs:
        notes.append(
            "the changed branch also reaches output(s) "
            f"{', '.join(sorted(lost_outputs))} through no BN: the dropout is gone there too"
        )
    return "; ".join(notes)


def _like(layer, name, rate=None):
    """A `NewLayer` with `layer`'s class and config, renamed, rate overridden."""
    config = dict(layer.get_config())
    config["name"] = name
    if rate is not None:
        inner = graph_lib.unwrap(layer)
        if isinstance(inner, Uout):
            key = "beta"
        elif isinstance(inner, keras.layers.GaussianNoise):
            key = "stddev"
        else:
            key = "rate"
        if inner is layer:
            config[key] = float(rate)
        else:  # TimeDistributed(Dropout): the rate lives in the wrapped config
            wrapped = dict(config["layer"])
            wrapped["config"] = {**wrapped["config"], key: float(rate)}
            config["layer"] = wrapped
    return graph_lib.NewLayer(type(layer), config)


def _rate_of(spec):
    key = _rate_key(spec)
    return None if key is None else _inner_config(spec)[key]


def _parameter(layer):
    """The name of the parameter `analysis.dropout_rate` reads from `layer`."""
    inner = graph_lib.unwrap(layer)
    if isinstance(inner, Uout):
        return "beta"
    return "stddev" if isinstance(inner, keras.layers.GaussianNoise) else "rate"


def _inner_config(spec):
    config = spec.config
    if isinstance(config.get("layer"), dict):  # a wrapper: the rate is its layer's
        config = config["layer"].get("config", {})
    return config


def _rate_key(spec):
    """The name of the parameter `_rate_of` reads: "beta" (Uout), "stddev" or "rate"."""
    config = _inner_config(spec)
    return next((key for key in ("beta", "stddev", "rate") if key in config), None)


_SPATIAL_RANKS = {
    keras.layers.SpatialDropout1D: 3,
    keras.layers.SpatialDropout2D: 4,
    keras.layers.SpatialDropout3D: 5,
}


def _fits(layer, rank):
    """Whether a copy of `layer` can be called on a tensor of rank `rank`."""
    if isinstance(layer, keras.layers.Wrapper):
        return rank >= 3
    want = _SPATIAL_RANKS.get(type(layer))
    return want is None or want == rank


def _total_calls(view):
    """How many times a view's model runs per call of the root model."""
    if not view.calls:
        return 1
    return sum(_total_calls(parent) for parent, _ in view.calls)



class Planner:
    """Matches one policy on a model: `actions` to rebuild it, `changes` to report.

    Args:
        model: A Functional or Sequential model.
        policy: One of `keras_vs.vocab.POLICIES` (checked by the caller).
        options: The policy's options (checked by the caller).
    """

    def __init__(self, model, policy, options):
        self.policy = policy
        self.options = options
        self.graph = graph_lib.ModelGraph(model)
        self.calls = analysis.dropout_calls(self.graph)
        self.names = _Names(self.graph.taken_names())
        self.actions = {}
        self.changes = []
        self._shared = {}  # prefix of an edited nested model called more than once -> calls
        getattr(self, f"_{policy}")()
        self.changes = [self._with_sharing(c) for c in self.changes]

    def add(self, edge, action):
        self.actions.setdefault(edge.key, ())
        self.actions[edge.key] += (action,)
        view = edge.view
        calls = _total_calls(view)
        if calls > 1:
            self._shared[view.prefix] = calls

    def _with_sharing(self, change):
        """Says when an edit lands in a nested model that other calls share."""
        if change.action == "keep":
            return change
        texts = [change.layer or "", change.where or ""] + list(change.feeds)
        extra = [
            f"inside nested model {prefix[:-1]!r}, called {calls} times: every call changes"
            for prefix, calls in self._shared.items()
            if any(prefix in text for text in texts)
        ]
        if not extra:
            return change
        note = "; ".join(([change.note] if change.note else []) + extra)
        return dataclasses.replace(change, note=note)

    def _by_layer(self, select):
        """Groups, per dropout layer, the calls' edges chosen by `select`."""
        groups = {}
        for call in self.calls:
            chosen = [r for r in call.edges if select(r)]
            if not chosen:
                continue
            g = groups.setdefault(call.name, {"layer": call.layer, "chosen": [], "kept": set()})
            g["chosen"] += chosen
            g["kept"] |= {r.edge.consumer_name for r in call.edges if not select(r)}
        return groups

    def _drop_feeding(self, action_for):
        """Applies `action_for(layer)` to every edge of a dropout that feeds a BN."""
        groups = self._by_layer(lambda r: r.feeds_bn)
        for name, g in groups.items():
            action = action_for(name, g["layer"])
            if action is None:
                continue
            for report in g["chosen"]:
                self.add(report.edge, action)
            lost = set().union(*(r.outputs for r in g["chosen"]))
            yield name, g, action, _fork_note(g["kept"], lost)

    # -- policies -----------------------------------------------------------
    def _remove(self):
        bypass = graph_lib.Action("bypass")
        for name, g, _, note in self._drop_feeding(lambda n, l: bypass):
            self.changes.append(
                Change("remove", name, feeds=_feeds(g["chosen"]),
                       rate=analysis.dropout_rate(g["layer"]), note=note,
                       parameter=_parameter(g["layer"]))
            )

    def _uout(self):
        beta = self.options.get("beta")

        def action_for(name, layer):
            if isinstance(layer, Uout) and (beta is None or beta == layer.beta):
                self.changes.append(Change("keep", name, note="already a Uout"))
                return None
            spec = graph_lib.NewLayer(
                Uout,
                {"name": self.names.new(f"{layer.name}_uout"),
                 "beta": 0.1 if beta is None else float(beta),
                 "seed": getattr(layer, "seed", None)},
            )
            return graph_lib.Action("via", spec)

        for name, g, action, note in self._drop_feeding(action_for):
            self.changes.append(
                Change("replace", name, new_layer=action.layer.name,
                       feeds=_feeds(g["chosen"]), rate=_rate_of(action.layer), note=note)
            )

    def _after_bn(self):
        groups = self._by_layer(lambda r: r.feeds_bn_directly)
        bypass = graph_lib.Action("bypass")
        targets = {}  # (id(view), id(node)) -> [reach, [(name, layer)]]
        for name, g in groups.items():
            for report in g["chosen"]:
                self.add(report.edge, bypass)
                for k, r in report.reaches.items():
                    if r.kind == analysis.DIRECT:
                        t = targets.setdefault(k, [r, []])
                        if name not in [n for n, _ in t[1]]:
                            t[1].append((name, g["layer"]))
        specs = self._place_moved(targets)
        for name, g in groups.items():
            self._report_move(name, g, specs)

    def _place_moved(self, targets):
        """Inserts the moved dropouts; returns ``{bn key: (NewLayer, where)}``.

        BNs whose dropouts land on the same edges share one new layer (the
        largest rate wins).
        """
        landing = {}
        for k, (r, sources) in targets.items():
            edges, placed = self._landing(r)
            group = landing.setdefault(tuple(e.key for e in edges), [edges, placed, [], []])
            group[2].append(k)
            group[3] += sources
        specs = {}
        for edges, placed, keys, sources in landing.values():
            _, layer = max(sources, key=lambda s: analysis.dropout_rate(s[1]))
            base = placed[0].rsplit("/", 1)[-1] if placed else layer.name
            # A moved Uout keeps its kind: --beta sets its beta, --rate the others' rate.
            option = "beta" if isinstance(graph_lib.unwrap(layer), Uout) else "rate"
            spec = _like(layer, self.names.new(f"{base}_dropout"), self.options.get(option))
            if edges and not _fits(layer, len(edges[0].tensor.shape)):
                # e.g. a SpatialDropout2D moved after a BN on a flat tensor.
                rate = self.options.get("rate") or analysis.dropout_rate(layer)
                spec = graph_lib.NewLayer(
                    keras.layers.Dropout, {"name": spec.name, "rate": float(rate)}
                )
            for e in edges:
                self.add(e, graph_lib.Action("after", spec))
            where = "after " + ", ".join(placed) if placed else "nowhere (the BN has no output)"
            for k in keys:
                specs[k] = (spec, where)
        return specs

    def _report_move(self, name, g, specs):
        bns = {}
        for report in g["chosen"]:
            for k, r in report.reaches.items():
                if r.kind == analysis.DIRECT:
                    bns[k] = r
        through = {r.name for report in g["chosen"] for r in report.reaches.values()
                   if r.kind != analysis.DIRECT} - {r.name for r in bns.values()}
        lost = set().union(*(r.outputs for r in g["chosen"]))
        note = _fork_note(g["kept"], lost, "feed no BN directly")
        if through:
            note += ("; " if note else "") + (
                f"the moved branch also fed {', '.join(sorted(through))} through a "
                "linear layer: that path loses this dropout")
        for k, r in bns.items():
            spec, where = specs[k]
            self.changes.append(
                Change("move", name, new_layer=spec.name, where=where,
                       feeds=(f"{r.name} ({r.kind})",), rate=_rate_of(spec),
                       parameter=_rate_key(spec), note=note)
            )

    def _landing(self, reach_):
        """The edges after a BN node where a moved dropout goes.

        Those are the BN's output edges, except that an edge which feeds
        another BN directly would make the dropout feed that BN directly:
        the dropout goes after that BN instead.

        Returns:
            ``(edges, names of the BNs the dropout ends up after)``.
        """
        edges, placed, todo, seen = [], [], [reach_], set()
        while todo:
            r = todo.pop(0)
            if (id(r.view), id(r.node)) in seen:
                continue
            seen.add((id(r.view), id(r.node)))
            for t in r.node.outputs:
                for e in r.view.out_edges(t):
                    reaches, _ = analysis.reach([e])
                    direct = [x for x in reaches.values() if x.kind == analysis.DIRECT]
                    if direct:
                        todo.extend(direct)
                    else:
                        edges.append(e)
                        if r.name not in placed:
                            placed.append(r.name)
        return edges, placed

    def _head(self):
        removed = []
        bypass = graph_lib.Action("bypass")
        for name, g, _, note in self._drop_feeding(lambda n, l: bypass):
            removed.append(g["layer"])
            self.changes.append(
                Change("remove", name, feeds=_feeds(g["chosen"]),
                       rate=analysis.dropout_rate(g["layer"]), note=note,
                       parameter=_parameter(g["layer"]))
            )
        if not removed:
            return
        plain = [layer for layer in removed if not isinstance(layer, Uout)]
        cls, key = (keras.layers.Dropout, "rate") if plain else (Uout, "beta")
        rate = self.options.get(key)  # a Uout head takes beta=, a Dropout head rate=
        if rate is None:
            rate = max(analysis.dropout_rate(layer) for layer in (plain or removed))
        seen = set()
        for out in self.graph.root.output_edges():
            edge, where = self._head_edge(out)
            if edge.key in seen:
                continue
            seen.add(edge.key)
            producer = edge.view.producer(edge.tensor)
            bypassed = any(a.kind == "bypass" for a in self.actions.get(edge.key, ()))
            if producer is not None and analysis.is_dropout_like(producer.operation) \
                    and not bypassed:
                self.changes.append(Change(
                    "keep", edge.view.qualname(producer.operation),
                    note=f"already a dropout {where}: no head dropout added"))
                continue
            spec = graph_lib.NewLayer(cls, {"name": self.names.new("head_dropout"),
                                            key: float(rate)})
            self.add(edge, graph_lib.Action("after", spec))
            self.changes.append(Change("insert", new_layer=spec.name, where=where,
                                       rate=float(rate), parameter=key))

    def _head_edge(self, edge):
        """Walks back from an output to the classifier's input edge."""
        while True:
            view = edge.view
            if len(view.out_edges(edge.tensor)) != 1:
                break  # the tensor forks: a dropout above it would reach other branches
            node = view.producer(edge.tensor)
            if node is None:
                break
            child = view.children.get(id(node))
            if child is not None:
                if len(child.calls) != 1:
                    break
                slot = [i for i, t in enumerate(node.outputs) if t is edge.tensor][0]
                edge = child.output_edges()[slot]
                continue
            op = node.operation
            ins = view.in_edges(node)
            if analysis.is_linear(op) and len(ins) == 1:
                return ins[0], f"before {view.qualname(op)}"
            if isinstance(op, _PASSTHROUGH) and len(ins) == 1:
                edge = ins[0]
                continue
            break
        return edge, f"before {edge.consumer_name}"
