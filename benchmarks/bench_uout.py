"""Uout vs keras.layers.Dropout: the cost of a training step.

Two copies of the same network differ only in their dropout layers
(``keras.layers.Dropout(rate)`` or ``keras_vs.Uout(beta)``). Both are
compiled and warmed up (tracing excluded), then trained alternately,
``--repeats`` times ``--steps`` steps each; the script prints the median
seconds per step of each and the ratio Uout / Dropout.

Usage:

    python benchmarks/bench_uout.py            # conv net on 32x32x3, batch 64
    python benchmarks/bench_uout.py --smoke    # tiny, seconds
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_vs  # noqa: E402

FULL = {"image": 32, "width": 64, "blocks": 4, "batch": 64, "steps": 20, "repeats": 7}
SMOKE = {"image": 8, "width": 8, "blocks": 2, "batch": 8, "steps": 2, "repeats": 3}


def build(kind, image, width, blocks, seed=0):
    """Conv -> noise -> BN -> ReLU blocks; ``kind`` picks the noise layer."""
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((image, image, 3))
    for i in range(blocks):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"block{i}_conv")(x)
        if kind == "dropout":
            x = keras.layers.Dropout(0.3, name=f"block{i}_dropout")(x)
        else:
            x = keras_vs.Uout(0.3, name=f"block{i}_uout")(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, name="classifier")(x)
    model = keras.Model(inputs, outputs, name=kind)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def time_steps(model, x, y, steps):
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model and inputs")
    parser.add_argument("--steps", type=int, default=None, help="train steps per repeat")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats")
    args = parser.parse_args()
    cfg = dict(SMOKE if args.smoke else FULL)
    cfg["steps"] = args.steps or cfg["steps"]
    cfg["repeats"] = args.repeats or cfg["repeats"]

    rng = np.random.default_rng(0)
    x = rng.normal(size=(cfg["batch"], cfg["image"], cfg["image"], 3)).astype("float32")
    y = rng.integers(0, 10, size=cfg["batch"])
    models = {k: build(k, cfg["image"], cfg["width"], cfg["blocks"]) for k in ("dropout", "uout")}
    for model in models.values():
        time_steps(model, x, y, 2)  # tracing and the first steps are not timed
    times = {k: [] for k in models}
    for _ in range(cfg["repeats"]):
        for kind, model in models.items():
            times[kind].append(time_steps(model, x, y, cfg["steps"]))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"backend={keras.backend.backend()} cpus={os.cpu_count()} batch={cfg['batch']} "
        f"image={cfg['image']} width={cfg['width']} blocks={cfg['blocks']} "
        f"steps={cfg['steps']} repeats={cfg['repeats']}"
    )
    for kind, value in medians.items():
        print(f"{kind:>8}: {value * 1e3:8.2f} ms/step (median)")
    print(f"ratio (Uout / Dropout time per training step): {medians['uout'] / medians['dropout']:.3f}")


if __name__ == "__main__":
    main()
