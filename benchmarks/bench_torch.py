"""Zoo training throughput against PyTorch: the same Wide ResNet, side by side.

Builds a zoo Wide ResNet (Keras, compiled with the backend's default: XLA on
JAX) and the same network written in PyTorch after the reference code
(bearpaw/pytorch-classification ``models/cifar/wrn.py``), prints both
parameter counts (they must agree), warms each up, then times them
alternately: ``--repeats`` times ``--steps`` SGD steps (momentum 0.9) on one
fixed batch, and prints the median images/s of each and their ratio. PyTorch
runs eagerly, on CUDA when available; Keras on whatever device its backend
picked. Needs torch; meant for a GPU machine with ``KERAS_BACKEND=jax``.

    python benchmarks/bench_torch.py [--model=wrn-28-10] [--batch=128] [--smoke]
"""

import argparse
import os
import re
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def torch_wrn(depth, widen, classes=10):
    """bearpaw's WideResNet (pre-activation basic blocks, 1x1 projection shortcuts)."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.equal = cin == cout
            self.short = None if self.equal else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

        def forward(self, x):
            o = torch.relu(self.bn1(x))
            if not self.equal:
                x = o  # the projection reads the activated input, as in the reference
            o = self.conv2(torch.relu(self.bn2(self.conv1(o))))
            return o + (x if self.equal else self.short(x))

    n = (depth - 4) // 6
    widths = [16, 16 * widen, 32 * widen, 64 * widen]
    layers = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)]
    for stage, stride in zip(range(3), (1, 2, 2)):
        for i in range(n):
            cin = widths[stage] if i == 0 else widths[stage + 1]
            layers.append(Block(cin, widths[stage + 1], stride if i == 0 else 1))
    layers += [nn.BatchNorm2d(widths[3]), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(widths[3], classes)]
    return nn.Sequential(*layers)


def keras_rates(name, x, y, steps):
    import keras
    import numpy as np

    import zoo

    keras.utils.set_random_seed(0)
    model = zoo.get(name, input_shape=x.shape[1:])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    start = time.perf_counter()
    model.train_on_batch(x, y)
    warm = time.perf_counter() - start

    def run():
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)  # returns NumPy: synchronises
        return steps * len(x) / (time.perf_counter() - start)

    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, warm, run


def torch_rates(depth, widen, x, y, steps):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    net = torch_wrn(depth, widen).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().to(device)
    yt = torch.from_numpy(y).long().to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        return loss

    start = time.perf_counter()
    step().item()
    warm = time.perf_counter() - start

    def run():
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss.item()  # synchronises
        return steps * len(x) / (time.perf_counter() - start)

    params = sum(p.numel() for p in net.parameters())
    return params, warm, run, device


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="wrn-28-10", help="a zoo wrn-DEPTH-WIDTH name")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="wrn-10-1, batch 8, 2 steps, 1 repeat")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.batch, args.steps, args.repeats = "wrn-10-1", 8, 2, 1
    match = re.fullmatch(r"wrn-(\d+)-(\d+)", args.model)
    if not match:
        raise SystemExit(
            f"Expected a zoo Wide ResNet name like wrn-28-10. Received: --model={args.model}"
        )
    depth, widen = map(int, match.groups())

    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, 32, 32, 3)).astype("float32")
    y = (np.arange(args.batch) % 10).astype("int32")
    k_params, k_warm, k_run = keras_rates(args.model, x, y, args.steps)
    t_params, t_warm, t_run, device = torch_rates(depth, widen, x, y, args.steps)
    print(f"backend={keras.backend.backend()} model={args.model} batch={args.batch} "
          f"steps={args.steps} repeats={args.repeats} torch device={device}")
    # Trainable parameters, as PyTorch (and the reference's "Total params") count them.
    print(f"trainable parameters: keras-vs zoo {k_params:,}, PyTorch {t_params:,}"
          f" ({'equal' if k_params == t_params else 'DIFFERENT'})")
    print(f"warm-up (first step, compile included): keras-vs {k_warm:.1f} s, "
          f"PyTorch {t_warm:.1f} s")
    rates = {"keras": [], "torch": []}
    for _ in range(args.repeats):  # alternate: both see the same load
        rates["keras"].append(k_run())
        rates["torch"].append(t_run())
    k, t = statistics.median(rates["keras"]), statistics.median(rates["torch"])
    print(f"keras-vs zoo: median {k:,.0f} img/s  {['%.0f' % r for r in rates['keras']]}")
    print(f"PyTorch eager: median {t:,.0f} img/s  {['%.0f' % r for r in rates['torch']]}")
    print(f"ratio (keras-vs / PyTorch throughput) {args.model}: {k / t:.2f}")


if __name__ == "__main__":
    main()
