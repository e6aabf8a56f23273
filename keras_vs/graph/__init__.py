"""The graph core: the one package that reads Keras' functional-graph internals.

Everything else in keras-vs sees a model through this package:

- `kinds`: what counts as dropout-like and BN-like (`is_dropout_like`,
  `is_bn_like`, wrappers such as `TimeDistributed` included), recurrent
  layers with dropout in their cells (`is_recurrent_dropout`), layers hidden
  in custom layers (`hidden`), whether Keras would jit a model
  (`supports_jit`), `GraphError`.
- `model_graph`: a model and the models nested in it as `View`s whose edges
  ("tensor T as read by node N") are the unit of analysis and rewriting;
  forward `walk`s across model boundaries (`walk_sites` hands out call sites).
- `call_site`: `CallSite`, one layer call as the rest of keras-vs reads it
  (layer, inputs, outputs, a stable key): code outside this package never
  holds a Keras node.
- `stages`: which calls a set of outputs needs and in which stage each call
  runs when BN copies are re-estimated one stage at a time (exact).
- `rebuild`: new models from a graph with per-edge `Action`s; `copy` (every
  layer re-created, all its state carried). Each model comes back as its
  own class, made as Keras makes it when it loads a file.
- `classes`: how each model class is rebuilt (a Functional or Sequential, a
  Functional subclass revived from its functional config, a class remade by
  its own `from_config`); `rebuild` asks it which and lets it make the model.
- `state`: `carry_state`, Keras' saving contract run in memory (what a
  `.keras` round trip keeps, a copy keeps); compile settings.
- `snapshot`: what an inference pass may write (stateful RNN states,
  non-BN non-trainable variables), saved and put back around passes.
- `tree`: every layer a model owns, called by its graph or not (`owned`).
- `inline`: re-calls a model's own layers on new inputs with a hook per
  call (measuring taps BN inputs this way).

Keras internals used here, and nowhere else in keras-vs:
`Functional._nodes_by_depth`, `Node.arguments` (`fill_in`, `kwargs`),
`Node.outputs`, `Node.operation`, `Sequential._functional`,
`Functional._inputs_struct` / `_outputs_struct`, `Layer._flatten_layers`,
`saving_lib._save_state` / `_load_state` / `_walk_saveable` and its store
classes (`carry_state`), `functional.Functional` (the class test in `classes`),
`KerasTensor._keras_history`, `KerasTensor` identity, a layer's `call`
replaced on the instance (`calls_replaced`), `Optimizer._get_variable_index`
and `keras.src.trainers.trainer.model_supports_jit` (`supports_jit`).

Example:

>>> import keras
>>> from keras_vs import graph
>>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dropout(0.5)])
>>> graph.is_dropout_like(m.layers[0])
True
"""

from keras_vs.graph.call_site import CallSite
from keras_vs.graph.inline import Site, calls_replaced, inline, own_call
from keras_vs.graph.kinds import (
    BN_CLASSES,
    DROPOUT_CLASSES,
    RECURRENT_CLASSES,
    GraphError,
    bn_axis,
    forced_training,
    has_graph,
    hidden,
    is_bn_like,
    is_dropout_like,
    is_recurrent_dropout,
    noise_rate,
    producer_name,
    recurrent_dropout,
    supports_jit,
    unwrap,
)
from keras_vs.graph.model_graph import (
    Edge,
    ModelGraph,
    View,
    layer_pairs,
    output_layer,
    signature,
    sublayers,
    walk,
    walk_sites,
)
from keras_vs.graph.rebuild import Action, NewLayer, clone_layer, copy, rebuild
from keras_vs.graph.snapshot import Snapshot, mutable_state
from keras_vs.graph.state import carry_state, compile_like, copy_state, variable_slot
from keras_vs.graph.tree import owned

__all__ = [
    "BN_CLASSES",
    "DROPOUT_CLASSES",
    "RECURRENT_CLASSES",
    "Action",
    "CallSite",
    "Edge",
    "GraphError",
    "ModelGraph",
    "NewLayer",
    "Snapshot",
    "Site",
    "View",
    "bn_axis",
    "calls_replaced",
    "carry_state",
    "clone_layer",
    "compile_like",
    "copy",
    "copy_state",
    "forced_training",
    "has_graph",
    "hidden",
    "inline",
    "is_bn_like",
    "is_dropout_like",
    "is_recurrent_dropout",
    "layer_pairs",
    "mutable_state",
    "noise_rate",
    "output_layer",
    "owned",
    "own_call",
    "producer_name",
    "rebuild",
    "recurrent_dropout",
    "signature",
    "sublayers",
    "supports_jit",
    "unwrap",
    "variable_slot",
    "walk",
    "walk_sites",
]
