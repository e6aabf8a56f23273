"""The plugin's own ``keras-vs`` commands, one module each.

Each module holds ``COMMAND``, a `keras_vs.cli.Command`, and imports Keras
only when the command runs.
"""
