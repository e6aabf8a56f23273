"""Graph questions for running a Functional graph in stages.

A graph is cut into stages at chosen operations (the boundaries): a
boundary node runs one stage after its latest input, every other node in
the stage of its latest input, so stage ``s`` needs only what the
boundaries of stages ``< s`` produce. The questions here only read the
graph (`View` nodes, their input and output tensors and operations); what
the stages compute and how they run is the caller's.

Example:

>>> import keras
>>> x = keras.Input((2,))
>>> bn = keras.layers.BatchNormalization()
>>> y = keras.layers.Dense(2)(bn(x))
>>> from keras_vs.graph import ModelGraph
>>> view = ModelGraph(keras.Model(x, y)).root
>>> cut = stages_of(view, lambda op: op is bn)
>>> [cut.stage[id(n)] for n in view.nodes], cut.level[id(y)]
([1, 1], 1)
"""

import dataclasses

import numpy as np

__all__ = ["Stages", "last_reads", "needed_nodes", "per_example_bytes", "stage_io", "stages_of"]


@dataclasses.dataclass(frozen=True)
class Stages:
    """Where a view's graph is cut.

    Attributes:
        stage: ``id(node) -> stage``.
        level: ``id(tensor) -> stage that computes it`` (0 for the view's inputs).
    """

    stage: dict
    level: dict


def stages_of(view, is_boundary):
    """The stage of every node and tensor of `view`, cut at ``is_boundary(operation)``."""
    level = {id(t): 0 for t in view.inputs}
    stage = {}
    for node in view.nodes:
        base = max((level[id(t)] for t in node.arguments.keras_tensors), default=0)
        s = base + 1 if is_boundary(node.operation) else base
        stage[id(node)] = s
        for t in node.outputs:
            level[id(t)] = s
    return Stages(stage, level)


def needed_nodes(view, tensors):
    """The nodes of `view` that `tensors` depend on, in graph order."""
    needed, stack = set(), list(tensors)
    while stack:
        node = view.producer(stack.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            stack.extend(node.arguments.keras_tensors)
    return [n for n in view.nodes if id(n) in needed]


def last_reads(nodes, stage):
    """``id(tensor) -> the last stage whose nodes (of `nodes`) read it``."""
    last = {}
    for n in nodes:
        for t in n.arguments.keras_tensors:
            last[id(t)] = max(last.get(id(t), -1), stage[id(n)])
    return last


def stage_io(nodes, stage, s, wanted, last_read):
    """The tensors a sub-model computing stage `s` takes and gives.

    Args:
        nodes: The nodes to run (`needed_nodes`), in graph order.
        stage: ``id(node) -> stage``.
        s: The stage.
        wanted: Tensors stage `s` must give besides what later stages read.
        last_read: `last_reads` of `nodes`.

    Returns:
        ``(inputs, outputs)``: the tensors of earlier stages (or the graph's
        inputs) stage `s` reads, and `wanted` then the tensors of stage `s`
        that later stages read; both empty when stage `s` gives nothing.
    """
    outs = {id(t): t for t in wanted}
    for n in nodes:
        if stage[id(n)] == s:
            outs.update((id(t), t) for t in n.outputs if last_read.get(id(t), -1) > s)
    outs = list(outs.values())
    if not outs:
        return [], []
    producer = {id(t): n for n in nodes for t in n.outputs}
    inputs, seen, stack = [], set(), list(outs)
    while stack:  # backwards from the outputs to what earlier stages computed
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        node = producer.get(id(t))
        if node is None or stage[id(node)] < s:
            inputs.append(t)
        else:
            stack.extend(node.arguments.keras_tensors)
    return inputs, outs


def per_example_bytes(nodes):
    """Bytes per example of the largest per-example output of `nodes`; None if a shape is unknown."""
    largest = 0
    for node in nodes:
        for t in node.outputs:
            if not t.shape or t.shape[0] is not None:  # not per example (moments rows)
                continue
            dims = tuple(t.shape[1:])
            if any(d is None for d in dims):
                return None
            try:
                itemsize = np.dtype(t.dtype).itemsize
            except TypeError:  # e.g. strings
                return None
            largest = max(largest, int(np.prod(dims)) * itemsize)
    return largest
