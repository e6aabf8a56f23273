"""Pick a `tf.distribute` strategy for the search's trials, by name or by what the machine has."""

import os

import keras

STRATEGIES = ("auto", "none", "mirrored", "tpu", "multi_worker")


def get_strategy(name="auto", tpu=None):
    """Returns the `tf.distribute.Strategy` to train each trial under, or None.

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

    Strategies need the TensorFlow backend; on other backends only ``"auto"``
    and ``"none"`` are accepted (both give None).

    Args:
        name: One of `STRATEGIES`.
        tpu: TPU name or address for ``"tpu"``.

    Returns:
        A `tf.distribute.Strategy`, or None.

    Example:

    >>> get_strategy("none") is None
    True
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy. Expected one of {', '.join(STRATEGIES)}. Received: strategy={name!r}")
    if name == "none":
        return None
    backend = keras.backend.backend()
    if backend != "tensorflow":
        if name == "auto":
            return None
        raise ValueError(
            f"Strategy {name!r} needs the TensorFlow backend (tf.distribute); "
            f"KERAS_BACKEND is {backend!r}. Received: strategy={name!r}"
        )
    import tensorflow as tf

    if name == "auto":
        if tf.config.list_physical_devices("TPU") or tpu or os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
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


def describe(strategy):
    """A short human-readable name of ``strategy`` (None: the default)."""
    if strategy is None:
        return "default (one device)"
    return f"{type(strategy).__name__} ({strategy.num_replicas_in_sync} replicas)"
