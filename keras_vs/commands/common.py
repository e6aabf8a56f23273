"""What the commands share: flags, model files, data, output paths.

Nothing here imports Keras at module level: helpers import it when called.
"""

import os
import warnings

from absl import flags

from keras_vs.checks import first_line
from keras_vs.cli import CliError, UsageError

__all__ = [
    "check_output",
    "define_data",
    "define_json",
    "define_output",
    "define_unsafe",
    "float_list",
    "is_weights_file",
    "load_data",
    "load_note",
    "load_model_file",
    "quiet_tensorflow",
    "save_model_file",
]

MODEL_EXTENSIONS = (".keras", ".h5", ".hdf5")
WEIGHTS_EXTENSION = ".weights.h5"


# ---------------------------------------------------------------------------
# Flags used by several commands


def define_json(fv):
    flags.DEFINE_bool("json", False, "Print machine-readable JSON instead of a table.", flag_values=fv)


def define_unsafe(fv):
    flags.DEFINE_bool(
        "unsafe", False,
        "Allow loading Lambda layers (stored Python code): only for files you trust.",
        flag_values=fv,
    )


def define_output(fv, what):
    flags.DEFINE_string(
        "output", None,
        f"Where to write {what}: a .keras model (or legacy .h5), or weights only with "
        f"{WEIGHTS_EXTENSION}. Never the input file.",
        short_name="o", flag_values=fv,
    )
    flags.DEFINE_bool("overwrite", False, "Replace OUT if it exists (never the input model).",
                      flag_values=fv)


def define_data(fv):
    """--data, --split, --batch_size, --steps, --data_dir, --download."""
    from keras_vs import data as data_lib  # NumPy only

    flags.DEFINE_string(
        "data", None,
        f"Data set: {', '.join(data_lib.names())} (read as tf.data pipelines: "
        f"{', '.join(data_lib.pipeline_names()) or 'none registered'}), "
        "or a .npz file with an array x (and y).",
        flag_values=fv,
    )
    flags.DEFINE_enum("split", "train", list(data_lib.SPLITS), "Data split.", flag_values=fv)
    flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("steps", None, "Number of batches to use (all when not given).",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_string("data_dir", None, "TensorFlow Datasets data folder (TFDS' default when not given).",
                        flag_values=fv)
    flags.DEFINE_bool("download", False, "Let TensorFlow Datasets download a missing data set.",
                      flag_values=fv)


def float_list(name, text_values):
    """Parses a list flag of numbers; `CliError` naming the flag otherwise."""
    try:
        return [float(v) for v in text_values]
    except ValueError:
        raise UsageError(
            f"--{name} expects a comma-separated list of numbers. "
            f"Received: --{name}={','.join(text_values)}"
        ) from None


def flat(error):
    """An error message on one line."""
    return " ".join(str(error).split())


def quiet_tensorflow():
    """Silences TensorFlow's Python logger (retracing notices) on the TF backend."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")


# ---------------------------------------------------------------------------
# Data


def load_data(fv):
    """The data of --data/--split as NumPy ``x`` or ``(x, y)``, or a tf.data pipeline.

    Raises:
        CliError: --data is missing, unknown or cannot be read.
    """
    from keras_vs import data as data_lib

    name = fv.data
    if not name:
        raise UsageError(
            f"--data is required: {', '.join(data_lib.names())} or a .npz file. Received: no --data"
        )
    if name in data_lib.pipeline_names():  # registered by another package (the tuner's TFDS sets)
        try:
            ds = data_lib.pipeline(name, fv.split, fv.batch_size, training=False,
                                   data_dir=fv.data_dir, download=fv.download)
        except (FileNotFoundError, ValueError) as e:
            raise CliError(flat(e)) from None
        return ds
    try:
        x, y = data_lib.load(name, fv.split)
    except ValueError as e:
        raise CliError(flat(e)) from None
    return x if y is None else (x, y)


# ---------------------------------------------------------------------------
# Model files


def _check_extension(path, what):
    if not path.lower().endswith(MODEL_EXTENSIONS):
        raise CliError(
            f"{what} must be a {', '.join(MODEL_EXTENSIONS)} file"
            + (f" (or {WEIGHTS_EXTENSION} for weights only)" if what == "OUT" else "")
            + f". Received: {what}={path!r}"
        )


def is_weights_file(path):
    return path.lower().endswith(WEIGHTS_EXTENSION)


def load_model_file(path, unsafe=False, compile=False):
    """Loads a ``.keras`` or legacy ``.h5`` model for a command.

    Keras' safe mode is on unless ``unsafe``: a file with a Lambda layer is
    refused instead of running the code stored in it. keras-vs layers
    (`keras_vs.Uout`) are registered first.

    Args:
        path: The MODEL argument.
        unsafe: Allow Lambda deserialisation (the ``--unsafe`` flag).
        compile: Restore the training configuration saved with the model.

    Returns:
        The loaded `keras.Model`.

    Raises:
        CliError: One line naming the file, for anything that is not a
            loadable Keras model.
    """
    if not os.path.exists(path):
        raise CliError(f"No such model file. Received: MODEL={path!r}")
    if os.path.isdir(path):
        raise CliError(f"MODEL is a folder, not a model file. Received: MODEL={path!r}")
    if is_weights_file(path):
        raise CliError(
            f"MODEL holds weights only ({WEIGHTS_EXTENSION}), not a model. Received: MODEL={path!r}"
        )
    _check_extension(path, "MODEL")
    import zipfile

    if path.lower().endswith(".keras") and not zipfile.is_zipfile(path):
        raise CliError(f"Not a Keras model file (a .keras file is a zip archive). Received: MODEL={path!r}")
    import keras

    import keras_vs.layers  # noqa: F401  (registers Uout with Keras' loader)

    try:
        with warnings.catch_warnings():
            # Metrics are built on first use, and a trained optimizer's state
            # is not needed here: both notices are noise.
            warnings.filterwarnings("ignore", message="Compiled the loaded model")
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model = keras.saving.load_model(path, compile=compile, safe_mode=not unsafe)
    except Exception as e:  # noqa: BLE001  (any loader failure is a user error here)
        if not unsafe and "safe_mode" in str(e):
            raise CliError(
                "The model contains a Lambda layer (stored Python code); refusing to load it "
                f"in safe mode. Pass --unsafe only if you trust the file. Received: MODEL={path!r}"
            ) from None
        raise CliError(f"Could not load {path!r} as a Keras model ({first_line(e)})") from None
    if not isinstance(model, keras.Model):
        raise CliError(
            f"The file holds a {type(model).__name__}, not a Keras model. Received: MODEL={path!r}"
        )
    return model


def check_output(out, model_path, overwrite):
    """Refuses an OUT that is the input, exists (without --overwrite) or cannot be written."""
    if not out:
        raise UsageError("-o/--output is required. Received: no -o")
    _check_extension(out, "OUT")
    if os.path.exists(out):
        if os.path.exists(model_path) and (
            os.path.samefile(out, model_path)
            or os.path.realpath(out) == os.path.realpath(model_path)
        ):
            raise CliError(f"OUT is the input model: keras-vs never overwrites it. Received: OUT={out!r}")
        if os.path.isdir(out):
            raise CliError(f"OUT is a folder. Received: OUT={out!r}")
        if not overwrite:
            raise CliError(f"OUT already exists; pass --overwrite to replace it. Received: OUT={out!r}")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise CliError(f"The folder for OUT does not exist. Received: OUT={out!r}")


def save_model_file(model, out):
    """Saves ``model`` to ``out`` atomically (a temporary file, then a rename).

    A ``.weights.h5`` path gets the weights only (`keras.Model.save_weights`),
    any other path the whole model, in the format of its extension.
    """
    from absl import logging as absl_logging

    from keras_vs import files

    verbosity = absl_logging.get_verbosity()
    try:
        # The user chose the format: Keras' "HDF5 is legacy" warning is noise.
        absl_logging.set_verbosity(absl_logging.ERROR)
        with files.atomic_path(out) as tmp:
            if is_weights_file(out):
                model.save_weights(tmp)
            else:
                model.save(tmp, overwrite=True)
                _check_loads(model, tmp, out)
    except CliError:
        raise
    except Exception as e:  # noqa: BLE001
        raise CliError(f"Could not write the model ({first_line(e)}). Received: OUT={out!r}") from None
    finally:
        absl_logging.set_verbosity(verbosity)


def load_note(model, out):
    """A line for an OUT that plain Keras cannot load (it holds keras-vs layers), else None.

    keras-vs layers (`keras_vs.Uout`) are registered with Keras' loader by
    ``import keras_vs``; without it ``keras.saving.load_model`` fails with
    "Could not locate class".
    """
    import keras

    from keras_vs import graph

    if is_weights_file(out):
        return None
    names = sorted({type(layer).__name__ for layer in graph.sublayers(model)
                    if keras.saving.get_registered_name(type(layer)).startswith("keras_vs>")})
    if not names:
        return None
    return (f"note: {out} holds keras-vs layers ({', '.join(names)}): plain Keras loads it after "
            f"'import keras_vs', which registers them: import keras_vs, keras; "
            f"model = keras.saving.load_model({out!r})")


def _check_loads(model, tmp, out):
    """Loads the file just written and compares its outputs with `model`'s.

    A file that does not load back, or computes something else, is never
    left at OUT (the caller's temporary file is removed).
    """
    import keras
    import numpy as np

    try:
        loaded = keras.saving.load_model(tmp, compile=False, safe_mode=False)
    except Exception as e:  # noqa: BLE001
        raise CliError(f"The written model does not load back ({first_line(e)}); nothing "
                       f"written. Received: OUT={out!r}") from None
    if type(loaded) is not type(model):
        raise CliError(f"The written model loads back as {type(loaded).__name__}, not "
                       f"{type(model).__name__}; nothing written. Received: OUT={out!r}")
    x = _sample_input(model)
    if x is None:
        return  # non-float or unknown input shapes: loading is the check
    want, got = (keras.tree.flatten(m(x, training=False)) for m in (model, loaded))
    for a, b in zip(want, got):
        a, b = (np.asarray(keras.ops.convert_to_numpy(t), dtype="float64") for t in (a, b))
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(a).max(initial=0))):
            raise CliError(f"The written model loads back but computes other outputs "
                           f"(max difference {np.abs(a - b).max():.3g}); nothing written. "
                           f"Received: OUT={out!r}")


def _sample_input(model):
    """Two deterministic examples for a model with float inputs, else None.

    None too for a stateful model: a call would advance its states.
    """
    import numpy as np

    from keras_vs import graph

    if any(getattr(layer, "stateful", False) for layer in graph.sublayers(model)):
        return None
    rng = np.random.default_rng(0)
    batch = []
    for t in model.inputs:
        shape = tuple(t.shape)
        if not str(t.dtype).startswith(("float", "bfloat")) or None in shape[1:]:
            return None
        batch.append(rng.normal(size=(2,) + shape[1:]).astype("float32"))
    return batch[0] if len(batch) == 1 else batch
