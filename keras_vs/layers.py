"""Layers: Uout, the paper's variance-stable dropout."""

import numbers

import keras
from keras import ops

__all__ = ["Uout"]

_PACKAGE = "keras_vs"


def _validate_beta(beta):
    """Returns ``beta`` as a float in [0, 1], or raises a ValueError echoing it."""
    if (
        isinstance(beta, bool)
        or not isinstance(beta, numbers.Real)
        or not 0.0 <= float(beta) <= 1.0
    ):
        raise ValueError(
            "Invalid value received for argument `beta` of Uout. Expected a "
            f"float between 0 and 1 (inclusive). Received: beta={beta!r}"
        )
    return float(beta)


def _validate_noise_shape(noise_shape):
    """Returns ``noise_shape`` as a tuple of positive ints or None entries (or None)."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, str):
        raise ValueError(
            "Invalid value received for argument `noise_shape` of Uout. "
            "Expected a tuple or list of positive integers or None. "
            f"Received: noise_shape={noise_shape!r}"
        )
    try:
        dims = tuple(noise_shape)
    except TypeError:
        raise ValueError(
            "Invalid value received for argument `noise_shape` of Uout. "
            "Expected a tuple or list of positive integers or None. "
            f"Received: noise_shape={noise_shape!r}"
        ) from None
    for dim in dims:
        if dim is not None and (
            isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim <= 0
        ):
            raise ValueError(
                "Invalid value received for argument `noise_shape` of Uout. "
                "Expected every entry to be a positive integer or None. "
                f"Received: noise_shape={noise_shape!r}"
            )
    return tuple(None if d is None else int(d) for d in dims)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Uout(keras.layers.Layer):
    """Uniform-noise dropout ("Uout"), the paper's variance-stable dropout.

    In training each activation is multiplied by ``1 + r`` with
    ``r ~ U(-beta, beta)`` drawn independently per activation (or per entry of
    ``noise_shape``); in inference the layer is the identity. Because the noise
    has mean 1 the expected activation is unchanged, and with zero-mean inputs
    the train/inference variance ratio is ``3 / (3 + beta**2)`` instead of
    Bernoulli dropout's ``1 - rate`` (see `keras_vs.theory.uout_shift`).

    Args:
        beta: Float in [0, 1], half-width of the uniform noise.
        noise_shape: Optional tuple like `keras.layers.Dropout`'s: the shape of
            the noise tensor, ``None`` entries taken from the input (e.g.
            ``(None, 1, 1, None)`` shares noise over the spatial axes).
        seed: Optional Python integer seed.
        **kwargs: Base layer keyword arguments (``name``, ``dtype``, ...).

    Example:

    >>> layer = Uout(beta=0.2, seed=0)
    >>> x = keras.ops.ones((2, 3))
    >>> bool(keras.ops.all(layer(x, training=False) == x))
    True
    """

    def __init__(self, beta=0.1, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.beta = _validate_beta(beta)
        self.noise_shape = _validate_noise_shape(noise_shape)
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
        ):
            raise ValueError(
                "Invalid value received for argument `seed` of Uout. Expected "
                f"an integer or None. Received: seed={seed!r}"
            )
        self.seed = seed
        if self.beta > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def _concrete_noise_shape(self, inputs):
        """The noise shape for ``inputs``: ``noise_shape``'s None entries filled from them."""
        shape = ops.shape(inputs)
        if self.noise_shape is None:
            return shape
        if len(self.noise_shape) != len(shape):
            raise ValueError(
                f"Uout layer '{self.name}' has noise_shape={self.noise_shape} "
                f"of rank {len(self.noise_shape)}, which does not match its "
                f"input of rank {len(shape)}. Received: input shape={shape}"
            )
        return tuple(
            s if n is None else n for n, s in zip(self.noise_shape, shape)
        )

    def call(self, inputs, training=False):
        if not training or self.beta == 0:
            return inputs
        noise = keras.random.uniform(
            self._concrete_noise_shape(inputs),
            minval=-self.beta,
            maxval=self.beta,
            dtype=inputs.dtype,
            seed=self.seed_generator,
        )
        return inputs * (1.0 + noise)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"beta": self.beta, "noise_shape": self.noise_shape, "seed": self.seed}
        )
        return config
