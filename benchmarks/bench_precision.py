"""Zoo training throughput in mixed precision against float32, side by side.

For each model, one compiled copy per dtype policy (``zoo.get(name,
dtype_policy=...)``: ``float32`` and, by default, ``mixed_bfloat16``) is
warmed up (tracing and compilation excluded), then the copies train in
turn, ``--repeats`` times one `fit` epoch of ``--steps`` steps each, on the
same in-memory batches; the script prints the median images/s of each
policy and its ratio to float32. The aim on a GPU with bf16 tensor cores
(H100/H200) is a ratio >= 1.8; on a CPU without bf16 units it is expected
below 1 (the casts cost, nothing is faster).

    python benchmarks/bench_precision.py                 # wrn-16-4, 32x32, batch 32 (CPU)
    python benchmarks/bench_precision.py --models=wrn-28-10,preresnet-110 --batch=128  # a GPU
    python benchmarks/bench_precision.py --policies=mixed_bfloat16,mixed_float16
    python benchmarks/bench_precision.py --smoke         # tiny model and inputs, seconds
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def throughput(name, policies, image, batch, steps, repeats, jit_compile):
    """``policy -> median images/s`` of training ``name`` (float32 first)."""
    import keras
    import numpy as np

    import zoo

    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * batch, image, image, 3)).astype("float32")
    y = (np.arange(steps * batch) % 10).astype("int32")
    models = {}
    for policy in ("float32", *policies):
        keras.utils.set_random_seed(0)
        model = zoo.get(name, input_shape=(image, image, 3), dtype_policy=policy)
        model.compile(
            keras.optimizers.SGD(0.1, momentum=0.9),
            keras.losses.SparseCategoricalCrossentropy(from_logits=False),
            jit_compile=jit_compile,
        )
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)  # compiles
        print(f"  {name} {policy}: warm-up {time.perf_counter() - start:.1f} s", flush=True)
        models[policy] = model
    rates = {policy: [] for policy in models}
    for _ in range(repeats):
        for policy, model in models.items():  # in turn: every policy sees the same load
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            rates[policy].append(steps * batch / (time.perf_counter() - start))
    return {policy: statistics.median(r) for policy, r in rates.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="wrn-16-4", help="comma-separated zoo names")
    parser.add_argument("--policies", default="mixed_bfloat16",
                        help="comma-separated policies timed against float32")
    parser.add_argument("--image", type=int, default=32, help="side of the square inputs")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="train steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jit_compile", default="auto", choices=("auto", "true", "false"),
                        help="the models' jit_compile (auto: Keras' default, XLA on JAX)")
    parser.add_argument("--smoke", action="store_true", help="wrn-10-1, 8x8, batch 4, 2 steps")
    args = parser.parse_args(argv)
    if args.smoke:
        args.models, args.image, args.batch, args.steps, args.repeats = "wrn-10-1", 8, 4, 2, 1
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    policies = [p for p in args.policies.split(",") if p and p != "float32"]

    import keras

    print(f"backend={keras.backend.backend()} cpus={os.cpu_count()} image={args.image} "
          f"batch={args.batch} steps={args.steps} repeats={args.repeats} jit_compile={jit} "
          "(median images/s of one fit epoch each, taken in turn after a warm-up)")
    rows = []
    for name in args.models.split(","):
        rows.append((name, throughput(name, policies, args.image, args.batch, args.steps,
                                      args.repeats, jit)))
        keras.backend.clear_session()
    for name, rates in rows:
        base = rates["float32"]
        for policy, rate in rates.items():
            print(f"{name:<22}{policy:<16}{rate:>10.1f} img/s  ratio to float32 {rate / base:5.2f}")
    for name, rates in rows:
        for policy in policies:
            print(f"ratio ({policy} / float32 training throughput) {name}: "
                  f"{rates[policy] / rates['float32']:.2f}")


if __name__ == "__main__":
    main()
