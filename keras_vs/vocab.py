"""The one vocabulary of keras-vs: every name a user passes or reads.

Every other module (keras_vs, zoo, tuner, experiments) imports these tuples
instead of re-typing them, so a new position or policy is added here once.

Example:

>>> from keras_vs import vocab
>>> "after_bn" in vocab.POLICIES
True
"""

__all__ = [
    "AFTER_BN",
    "DIRECT",
    "DROPOUT_POSITIONS",
    "DROPOUT_TYPES",
    "FINDING_KINDS",
    "HEAD",
    "MODEL_POSITIONS",
    "NO_DROPOUT_POSITIONS",
    "OPAQUE",
    "ORACLES",
    "POLICIES",
    "RECALIBRATION_METHODS",
    "RECURRENT",
    "REMOVE",
    "STRATEGIES",
    "THROUGH_LINEAR",
    "UOUT",
]

# Finding kinds: how a dropout-like layer reaches a BN.
DIRECT = "direct"  # no conv/dense on the path: the paper's case (a)
THROUGH_LINEAR = "through_linear"  # one or more conv/dense: case (b)
OPAQUE = "opaque"  # hidden inside a custom layer keras-vs cannot look into
# dropout= / recurrent_dropout= inside a recurrent layer's cells (LSTM, GRU, ...):
# the layer is the source; rewrites keep it.
RECURRENT = "recurrent"
FINDING_KINDS = (DIRECT, THROUGH_LINEAR, OPAQUE, RECURRENT)

# Rewrite policies for a model one already has.
AFTER_BN = "after_bn"
HEAD = "head"
UOUT = "uout"
REMOVE = "remove"
POLICIES = (AFTER_BN, HEAD, UOUT, REMOVE)

# Where the zoo puts dropout ("none" first: the no-dropout baseline);
# "after_conv" is the reference code's own DenseNet dropout (pytorch-classification's
# --drop: after each dense layer's 3x3 conv, before the concatenation).
DROPOUT_POSITIONS = ("none", "before_bn", "before_conv", "after_conv", "head")
# What the tuner searches for a user's own model: the model as it is, or a policy.
MODEL_POSITIONS = ("original", AFTER_BN, HEAD, REMOVE)
# Dropout types: "bernoulli" takes a drop `rate`, "uout" a noise `beta`.
DROPOUT_TYPES = ("bernoulli", "uout")

# BN re-estimation methods of `keras_vs.recalibrate_bn`.
RECALIBRATION_METHODS = ("precise", "exact")

# Positions of `MODEL_POSITIONS` and `DROPOUT_POSITIONS` that build no dropout.
NO_DROPOUT_POSITIONS = ("none", REMOVE)
# keras-tuner search algorithms of `tuner.search` and `keras-vs tune`.
ORACLES = ("random", "bayesian", "hyperband", "grid")
# tf.distribute strategies of a search (`tuner.get_strategy`).
STRATEGIES = ("auto", "none", "mirrored", "tpu", "multi_worker")
