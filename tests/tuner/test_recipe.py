"""tuner.recipe: torch's SGD (coupled weight decay through momentum) and the reference schedules."""

import dataclasses

import keras
import numpy as np
import pytest

from tuner import recipe as rl

EPS = 1e-5
N, D, K = 16, 5, 3


def _model():
    """BN (gamma, beta) then a dense classifier (kernel, bias): every kind of
    parameter the reference decays, with a gradient NumPy can write down."""
    x = keras.Input((D,))
    y = keras.layers.BatchNormalization(momentum=0.9, epsilon=EPS, name="bn")(x)
    y = keras.layers.Dense(K, name="fc")(y)  # logits
    return keras.Model(x, y)


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(1.0, 2.0, size=(N, D)).astype("float32"), rng.integers(0, K, N)


def _gradients(params, x, t):
    """Gradient of the mean cross-entropy of ``_model`` (BN in training mode)."""
    gamma, beta, w, b = params
    xh = (x - x.mean(0)) / np.sqrt(x.var(0) + EPS)  # BN's batch statistics, biased variance
    y = xh * gamma + beta
    z = y @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(K)[t]) / len(x)
    dy = dz @ w.T
    return [(dy * xh).sum(0), dy.sum(0), y.T @ dz, dz.sum(0)]


def _torch_sgd(params, x, t, lrs, momentum, weight_decay):
    """torch.optim.SGD.step, dampening 0: d_p = g + wd * p; buf = m * buf + d_p; p -= lr * buf."""
    params = [p.astype(np.float64) for p in params]
    x = x.astype(np.float64)
    bufs = [None] * len(params)
    for lr in lrs:
        grads = _gradients(params, x, t)
        for i, (p, g) in enumerate(zip(params, grads)):
            d_p = g + weight_decay * p
            bufs[i] = d_p.copy() if bufs[i] is None else momentum * bufs[i] + d_p
            params[i] = p - lr * bufs[i]
    return params


def _train(optimizer, epochs):
    keras.utils.set_random_seed(0)
    model = _model()
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, t = _data()
    start = [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]
    # One full batch per epoch: epochs = optimizer steps.
    model.fit(x, t, batch_size=N, epochs=epochs, shuffle=False, verbose=0)
    return start, [keras.ops.convert_to_numpy(v) for v in model.trainable_weights], x, t


# WRN's recipe over 6 one-step epochs: x0.2 at epochs 60/120/160 of 200,
# i.e. from steps round(1.8) = 2, round(3.6) = 4, round(4.8) = 5. A strong
# decay makes the L2 term visible in six steps.
WRN = dataclasses.replace(rl.RECIPES["wide_resnet"], weight_decay=0.05)
LRS = [0.1, 0.1, 0.02, 0.02, 0.004, 0.0008]


def test_recipe_trains_as_torch_sgd_with_coupled_decay_and_schedule():
    start, trained, x, t = _train(rl.optimizer(WRN, epochs=6, steps_per_epoch=1), 6)
    assert [v.path for v in _model().trainable_weights] == [
        "bn/gamma", "bn/beta", "fc/kernel", "fc/bias"
    ]
    expected = _torch_sgd(start, x, t, LRS, momentum=0.9, weight_decay=0.05)
    for got, want in zip(trained, expected):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_keras_sgd_would_not_match_torch():
    # Guards the test above: Keras' SGD (decoupled decay, lr inside the
    # velocity) ends measurably elsewhere after the same six steps.
    schedule = rl.learning_rate_schedule(WRN, epochs=6, steps_per_epoch=1)
    start, trained, x, t = _train(keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=0.05), 6)
    expected = _torch_sgd(start, x, t, LRS, momentum=0.9, weight_decay=0.05)
    assert any(not np.allclose(got, want, rtol=2e-5, atol=2e-6) for got, want in zip(trained, expected))


def test_momentum_buffer_keeps_gradients_not_steps_across_a_rate_change():
    # No decay, rate x0.1 from step 2: torch's step 2 is 0.1 * lr * (m * b + g).
    recipe = rl.Recipe(1.0, 0.0, (1,), 0.1, epochs=3)
    opt = rl.optimizer(recipe, epochs=3, steps_per_epoch=1)
    w = keras.Variable(np.zeros(1, "float32"))
    opt.build([w])
    for _ in range(3):
        opt.apply([keras.ops.ones(1)], [w])
    # buf: 1, 1.9, 2.71; steps: 1 * 1, 0.1 * 1.9, 0.1 * 2.71 (Keras' SGD: 1.09, 0.19 + 0.081...).
    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), [-(1.0 + 0.19 + 0.271)], rtol=1e-6)


def test_preresnet_rate_drops_at_epochs_81_and_122_as_the_reference():
    steps = 391  # ceil(50000 / 128)
    assert rl.milestone_steps(rl.RECIPES["preresnet"], 164, steps) == [81 * steps, 122 * steps]
    schedule = rl.learning_rate_schedule(rl.RECIPES["preresnet"], 164, steps)
    lrs = [float(schedule(s)) for s in (81 * steps - 1, 81 * steps, 122 * steps - 1, 122 * steps)]
    np.testing.assert_allclose(lrs, [0.1, 0.01, 0.01, 0.001], rtol=1e-6)


@pytest.mark.parametrize(
    "family, milestones, gamma, wd, epochs",
    [
        ("preresnet", (81, 122), 0.1, 1e-4, 164),
        ("resnext", (150, 225), 0.1, 5e-4, 300),
        ("wide_resnet", (60, 120, 160), 0.2, 5e-4, 200),
        ("densenet", (150, 225), 0.1, 1e-4, 300),
    ],
)
def test_recipes_are_the_training_md_commands(family, milestones, gamma, wd, epochs):
    r = rl.RECIPES[family]
    assert (r.milestones, r.gamma, r.weight_decay, r.epochs) == (milestones, gamma, wd, epochs)
    assert (r.learning_rate, r.momentum) == (0.1, 0.9)


def test_rate_scales_with_the_batch_size():
    recipe = rl.Recipe(0.1, 0.0, (), 0.1, epochs=1)
    assert rl.learning_rate_schedule(recipe, 1, 1, batch_size=64) == pytest.approx(0.05)


def test_decoupled_decay_is_off_and_config_round_trips():
    opt = rl.optimizer(rl.RECIPES["densenet"], epochs=2, steps_per_epoch=5)
    assert opt.weight_decay is None and opt.coupled_weight_decay == 1e-4
    again = rl.TorchSGD.from_config(opt.get_config())
    assert (again.momentum, again.coupled_weight_decay) == (0.9, 1e-4)


def test_compiled_model_saves_and_loads_with_torch_sgd(tmp_path):
    model = _model()
    model.compile(rl.TorchSGD(0.1, momentum=0.9, coupled_weight_decay=1e-4), "mse")
    x, _ = _data()
    model.train_on_batch(x, np.zeros((N, K), "float32"))  # builds the momentum buffers
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is rl.TorchSGD and loaded.optimizer.coupled_weight_decay == 1e-4
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"coupled_weight_decay": -1.0}, "Received: coupled_weight_decay=-1.0"),
        ({"coupled_weight_decay": "1e-4"}, "Received: coupled_weight_decay='1e-4'"),
        ({"weight_decay": 1e-4}, "Received: weight_decay=0.0001"),
        ({"nesterov": True}, "Received: nesterov=True"),
    ],
)
def test_bad_arguments_are_echoed(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rl.TorchSGD(0.1, momentum=0.9, **kwargs)


def test_bad_run_length_is_echoed():
    with pytest.raises(ValueError, match="Received: epochs=0"):
        rl.milestone_steps(rl.RECIPES["preresnet"], 0, 10)
