"""Pick how the search's trials are distributed, by name or by what the machine has.

On the TensorFlow backend a name gives a `tf.distribute.Strategy`, which
keras-tuner enters while it builds each trial's model. On the JAX backend it
gives a `keras.distribution.DataParallel` over the local devices, which
`distributed` sets as Keras' global distribution for the whole search (model
building and `fit`), restoring the previous one afterwards; `even_batches`
makes NumPy data split evenly over its devices.
"""

import contextlib
import math
import os
import warnings

import keras

from keras_vs import vocab

__all__ = [
    "clear_session",
    "data_parallel_size",
    "describe",
    "distributed",
    "even_batches",
    "get_strategy",
    "tuner_strategy",
]


def get_strategy(name="auto", tpu=None):
    """Returns the strategy (TensorFlow) or distribution (JAX) of each trial, or None.

    TensorFlow backend:

    - ``"auto"``: a TPU if one is attached (TPU devices, or ``TPU_NAME`` /
      ``COLAB_TPU_ADDR`` set) -> `TPUStrategy`; else GPUs ->
      `MirroredStrategy` over all of them; else None (the default strategy).
    - ``"none"``: None.
    - ``"mirrored"``: `MirroredStrategy` over every GPU, or over every logical
      CPU device when there is no GPU (e.g. ones made with
      `tf.config.set_logical_device_configuration`).
    - ``"tpu"``: `TPUStrategy` on ``tpu`` (a TPU name or address; the local
      TPU when None).
    - ``"multi_worker"``: `MultiWorkerMirroredStrategy`; the cluster comes
      from the ``TF_CONFIG`` environment variable.

    JAX backend (`keras.distribution.DataParallel`: variables replicated,
    each batch split over the devices; the batch size must divide evenly):

    - ``"auto"``: DataParallel over every GPU or TPU when there are several;
      else None (one device).
    - ``"none"``: None.
    - ``"mirrored"``: DataParallel over every device of the default platform
      (`keras.distribution.list_devices()`: GPUs or TPUs, else CPUs, e.g.
      the ones made with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``).
    - ``"tpu"``: DataParallel over the local TPU devices.
    - ``"multi_worker"``: not chosen by name; call
      `keras.distribution.initialize` on every host and pass
      ``strategy=keras.distribution.DataParallel()`` to `tuner.search`.

    Other backends accept only ``"auto"`` and ``"none"`` (both give None).

    Args:
        name: One of `keras_vs.vocab.STRATEGIES`.
        tpu: TPU name or address for ``"tpu"`` (TensorFlow only).

    Returns:
        A `tf.distribute.Strategy`, a `keras.distribution.Distribution`, or
        None.

    Example:

    >>> get_strategy("none") is None
    True
    """
    if name not in vocab.STRATEGIES:
        raise ValueError(
            f"Unknown strategy. Expected one of {', '.join(vocab.STRATEGIES)}. Received: strategy={name!r}"
        )
    if name == "none":
        return None
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_distribution(name, tpu)
    if backend != "tensorflow":
        if name == "auto":
            return None
        raise ValueError(
            f"Strategy {name!r} needs the TensorFlow (tf.distribute) or JAX "
            f"(keras.distribution) backend; KERAS_BACKEND is {backend!r}. Received: strategy={name!r}"
        )
    return _tf_strategy(name, tpu)


def _tf_strategy(name, tpu):
    """The `tf.distribute.Strategy` of ``name`` (not ``"none"``), or None for the default."""
    import tensorflow as tf

    if name == "auto":
        tpu_attached = tf.config.list_physical_devices("TPU") or os.environ.get("TPU_NAME")
        if tpu or tpu_attached or os.environ.get("COLAB_TPU_ADDR"):
            return _tpu_strategy(tf, tpu)
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        return None
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "tpu":
        return _tpu_strategy(tf, tpu)
    if not os.environ.get("TF_CONFIG"):
        raise ValueError(
            "Strategy 'multi_worker' reads the cluster from the TF_CONFIG environment "
            "variable, which is not set. Received: strategy='multi_worker', TF_CONFIG unset"
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def _tpu_strategy(tf, tpu):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise ValueError(f"Could not connect to a TPU ({e}). Received: tpu={tpu!r}") from None
    return tf.distribute.TPUStrategy(resolver)


def _jax_distribution(name, tpu):
    """`keras.distribution.DataParallel` over the local devices for ``name`` (JAX)."""
    if name == "multi_worker":
        raise ValueError(
            "Strategy 'multi_worker' is tf.distribute's; on JAX call "
            "keras.distribution.initialize(...) on every host and pass "
            "strategy=keras.distribution.DataParallel() to tuner.search. "
            "Received: strategy='multi_worker', KERAS_BACKEND='jax'"
        )
    if name == "tpu":
        if tpu:
            raise ValueError(
                "On JAX the TPU devices are the local ones (a TPU VM); a TPU name or "
                f"address is a TensorFlow option. Received: strategy='tpu', tpu={tpu!r}"
            )
        devices = _devices("tpu")
        if not devices:
            raise ValueError(
                f"Strategy 'tpu' found no TPU device; JAX has {_devices(None)}. "
                "Received: strategy='tpu'"
            )
    else:
        devices = _devices(None)  # GPUs or TPUs when there are any, else CPUs
        if name == "auto" and (len(devices) < 2 or devices[0].startswith("cpu")):
            return None
    return keras.distribution.DataParallel(devices=devices)


def _devices(platform):
    try:
        return keras.distribution.list_devices(platform)
    except RuntimeError:  # JAX raises when it has no backend of that platform
        return []


def _is_keras_distribution(strategy):
    """Whether ``strategy`` is a `keras.distribution.Distribution` (e.g. DataParallel)."""
    # keras.distribution exports DataParallel and ModelParallel, not their base class.
    public = (keras.distribution.DataParallel, keras.distribution.ModelParallel)
    return isinstance(strategy, public) or (
        hasattr(strategy, "get_variable_layout") and hasattr(strategy, "get_data_layout")
    )


def tuner_strategy(strategy):
    """The ``distribution_strategy`` to give keras-tuner: tf.distribute strategies only.

    A `keras.distribution.Distribution` is not one (keras-tuner reads
    ``strategy.extended``); it is set around the search by `distributed`.
    """
    return None if _is_keras_distribution(strategy) else strategy


@contextlib.contextmanager
def distributed(strategy):
    """Sets a `keras.distribution.Distribution` as Keras' global distribution inside.

    The previous global distribution (usually None) is restored on exit,
    also after an error. Anything else (None, a tf.distribute strategy) is
    left to keras-tuner and this does nothing.

    Args:
        strategy: What `get_strategy` returned, or a user's own strategy or
            distribution.

    Example:

    >>> with distributed(None):
    ...     pass
    """
    if not _is_keras_distribution(strategy):
        yield
        return
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(strategy)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def data_parallel_size(strategy):
    """How many ways a `keras.distribution.Distribution` splits each batch (1 for anything else)."""
    if not _is_keras_distribution(strategy):
        return 1
    mesh = strategy.device_mesh
    return int(dict(zip(mesh.axis_names, mesh.shape))[strategy.batch_dim_name])


def even_batches(strategy, train, val, batch_size, steps):
    """Makes every batch of NumPy data split evenly over a DataParallel's devices.

    JAX shards each batch over the devices and cannot split a batch of 103
    examples in two. So under a `keras.distribution.Distribution` the batch
    size must be a multiple of the device count, and NumPy ``(x, y)`` sets
    lose their last ``len % devices`` examples (a warning says how many);
    tf.data pipelines pass unchanged. Anything else is returned as it is.

    Args:
        strategy: What `get_strategy` returned, or the user's own.
        train, val: ``(x, y)`` NumPy tuples or `tf.data.Dataset` objects.
        batch_size: Global batch size.
        steps: Training batches per epoch.

    Returns:
        ``(train, val, steps)``, ``steps`` recounted for the trimmed set.

    Raises:
        ValueError: ``batch_size`` is not a multiple of the device count.
    """
    n = data_parallel_size(strategy)
    if n == 1:
        return train, val, steps
    if batch_size % n:
        raise ValueError(
            f"{describe(strategy)} splits each batch over {n} devices: the batch size must be "
            f"a multiple of {n}. Received: batch_size={batch_size}"
        )

    def trim(data, what):
        if not isinstance(data, tuple):
            return data
        keep = len(data[0]) - len(data[0]) % n
        if keep == 0:
            raise ValueError(
                f"The {what} set has fewer examples than the {n} devices of {describe(strategy)}. "
                f"Received: {len(data[0])} {what} examples"
            )
        if keep < len(data[0]):
            warnings.warn(
                f"{describe(strategy)}: every batch must split evenly over {n} devices, so the "
                f"last {len(data[0]) - keep} of {len(data[0])} {what} examples are left out",
                stacklevel=3,
            )
        return tuple(a[:keep] for a in data)

    train, val = trim(train, "training"), trim(val, "validation")
    if isinstance(train, tuple):
        steps = max(1, math.ceil(len(train[0]) / batch_size))
    return train, val, steps


def clear_session():
    """`keras.backend.clear_session`, keeping Keras' global distribution.

    Keras' ``clear_session`` resets all global state, the distribution set
    by `distributed` included; each trial clears the session before it
    builds its model, and that model must still be built under it.
    """
    current = keras.distribution.distribution()
    keras.backend.clear_session()
    if current is not None:
        keras.distribution.set_distribution(current)


def describe(strategy):
    """A short human-readable name of ``strategy`` (None: the default)."""
    if strategy is None:
        return "default (one device)"
    if _is_keras_distribution(strategy):
        devices = [str(d) for d in strategy.device_mesh.devices.flat]
        return f"{type(strategy).__name__} ({len(devices)} devices: {', '.join(devices)})"
    return f"{type(strategy).__name__} ({strategy.num_replicas_in_sync} replicas)"
