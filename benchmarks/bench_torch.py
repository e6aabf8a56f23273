"""Zoo training throughput against PyTorch: the same networks, side by side.

For each zoo model of ``--model`` (a comma-separated list of registry names,
any of the four families: ``wrn-D-W``, ``preresnet-D``, ``resnext-29-CxWd``,
``densenet-bc-D-K``, ``densenet-D-K``), builds the zoo network (Keras,
compiled with the backend's default: XLA on JAX) and the same network written
in PyTorch after the reference code (bearpaw/pytorch-classification
``models/cifar/``: ``wrn.py``, ``preresnet.py``, ``resnext.py``,
``densenet.py``), prints both parameter counts (they must agree), warms each
up, then times them alternately: ``--repeats`` times ``--steps`` SGD steps
(momentum 0.9) on one fixed batch, and prints the median images/s of each and
their ratio, one block per model. PyTorch runs eagerly, on CUDA when
available; Keras on whatever device its backend picked. Needs torch; meant for
a GPU machine with ``KERAS_BACKEND=jax``.

    python benchmarks/bench_torch.py [--model=wrn-28-10] [--batch=128] [--smoke]
    python benchmarks/bench_torch.py --model=wrn-28-10,preresnet-110,densenet-bc-100-12
"""

import argparse
import gc
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def torch_wrn(depth, width, classes=10):
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
    widths = [16, 16 * width, 32 * width, 64 * width]
    layers = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)]
    for stage, stride in zip(range(3), (1, 2, 2)):
        for i in range(n):
            cin = widths[stage] if i == 0 else widths[stage + 1]
            layers.append(Block(cin, widths[stage + 1], stride if i == 0 else 1))
    layers += [nn.BatchNorm2d(widths[3]), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(widths[3], classes)]
    return nn.Sequential(*layers)


def torch_preresnet(depth, block="basic", classes=10):
    """bearpaw's PreResNet (pre-activation basic or bottleneck blocks, 1x1 projections, no BN)."""
    import torch
    from torch import nn

    bottleneck = block == "bottleneck"
    expansion = 4 if bottleneck else 1

    class Block(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            cout = width * expansion
            if bottleneck:  # 1x1, 3x3 (carries the stride), 1x1 to 4x the width
                convs = [nn.Conv2d(cin, width, 1, bias=False),
                         nn.Conv2d(width, width, 3, stride, 1, bias=False),
                         nn.Conv2d(width, cout, 1, bias=False)]
            else:
                convs = [nn.Conv2d(cin, width, 3, stride, 1, bias=False),
                         nn.Conv2d(width, cout, 3, 1, 1, bias=False)]
            self.convs = nn.ModuleList(convs)
            self.bns = nn.ModuleList(nn.BatchNorm2d(c.in_channels) for c in convs)
            identity = stride == 1 and cin == cout
            self.short = None if identity else nn.Conv2d(cin, cout, 1, stride, bias=False)

        def forward(self, x):
            o = x
            for bn, conv in zip(self.bns, self.convs):  # BN-ReLU-conv, each
                o = conv(torch.relu(bn(o)))
            # The projection reads the raw block input, as the reference (not the WRN's).
            return o + (x if self.short is None else self.short(x))

    n = (depth - 2) // (9 if bottleneck else 6)
    layers, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False)], 16
    for width, stride in zip((16, 32, 64), (1, 2, 2)):
        for i in range(n):
            layers.append(Block(cin, width, stride if i == 0 else 1))
            cin = width * expansion
    layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def torch_resnext(depth, cardinality, base_width, widen_factor=4, classes=10):
    """bearpaw's CifarResNeXt (post-activation grouped bottlenecks, conv+BN projections).

    The grouped width is ``cardinality * base_width`` in stage 1, doubled per
    stage, as the zoo's (the reference fixes base_width at 64: its
    ``cardinality * out_channels // widen_factor``).
    """
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, group_width, cout, stride):
            super().__init__()
            self.conv_reduce = nn.Conv2d(cin, group_width, 1, bias=False)
            self.bn_reduce = nn.BatchNorm2d(group_width)
            self.conv_conv = nn.Conv2d(group_width, group_width, 3, stride, 1,
                                       groups=cardinality, bias=False)
            self.bn = nn.BatchNorm2d(group_width)
            self.conv_expand = nn.Conv2d(group_width, cout, 1, bias=False)
            self.bn_expand = nn.BatchNorm2d(cout)
            self.short = nn.Identity()
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                           nn.BatchNorm2d(cout))

        def forward(self, x):
            o = torch.relu(self.bn_reduce(self.conv_reduce(x)))
            o = torch.relu(self.bn(self.conv_conv(o)))
            return torch.relu(self.short(x) + self.bn_expand(self.conv_expand(o)))

    n = (depth - 2) // 9
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for scale, stride in zip((1, 2, 4), (1, 2, 2)):
        cout = 64 * widen_factor * scale
        for i in range(n):
            layers.append(Block(cin, cardinality * base_width * scale, cout,
                                stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def torch_densenet(depth, growth_rate, bottleneck=True, compression=0.5, stem_filters=None,
                   classes=10):
    """bearpaw's DenseNet (BN-ReLU-conv dense layers, BN-ReLU-conv1x1-avgpool transitions).

    The stem has ``2 * growth_rate`` filters with bottleneck layers and 16
    without, as the zoo's (the reference always uses ``2 * growth_rate``).
    """
    import torch
    from torch import nn

    k = growth_rate

    class Layer(nn.Module):
        def __init__(self, cin):
            super().__init__()
            mid = 4 * k if bottleneck else cin
            self.pre = nn.Identity()
            if bottleneck:  # BN-ReLU-conv1x1 to 4k channels first
                self.pre = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(),
                                         nn.Conv2d(cin, mid, 1, bias=False))
            self.bn, self.conv = nn.BatchNorm2d(mid), nn.Conv2d(mid, k, 3, 1, 1, bias=False)

        def forward(self, x):
            return torch.cat((x, self.conv(torch.relu(self.bn(self.pre(x))))), 1)

    n = (depth - 4) // (6 if bottleneck else 3)
    cin = stem_filters or (2 * k if bottleneck else 16)
    layers = [nn.Conv2d(3, cin, 3, 1, 1, bias=False)]
    for stage in range(3):
        for _ in range(n):
            layers.append(Layer(cin))
            cin += k
        if stage < 2:
            cout = max(1, int(cin * compression))  # the zoo's floor, the reference's cin // 2
            layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False),
                       nn.AvgPool2d(2)]
            cin = cout
    layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


# The zoo family of a registry entry -> the PyTorch builder taking its architecture arguments.
TORCH_BUILDERS = {
    "wide_resnet": torch_wrn,
    "preresnet": torch_preresnet,
    "resnext": torch_resnext,
    "densenet": torch_densenet,
}


def parse_models(value):
    """Maps ``--model`` (comma-separated zoo names) to ``[(name, torch builder, kwargs)]``.

    The architecture arguments come from the zoo's registry entry, so that
    both sides build what ``zoo.get(name)`` builds: a name does not always
    tell them (110 and 164 are both 6n + 2 and 9n + 2, and preresnet-164 has
    bottleneck blocks because its entry says so; resnext-11-2x4d has widen
    factor 1). Every name is checked before anything is built.
    """
    import zoo

    parsed = []
    for name in (n.strip() for n in value.split(",")):
        try:
            entry = zoo.entry(name)
        except ValueError:
            entry = None
        if entry is None or entry.family not in TORCH_BUILDERS:
            raise SystemExit(
                f"Unknown zoo model {name!r}. Expected zoo names, comma-separated (wrn-D-W, "
                "preresnet-D, resnext-29-CxWd, densenet-bc-D-K, densenet-D-K): "
                f"{', '.join(zoo.list_models())}. Received: --model={value}"
            )
        parsed.append((name, TORCH_BUILDERS[entry.family], entry.config))
    return parsed


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


def torch_rates(builder, config, x, y, steps):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    net = builder(**config).to(device)
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


def bench(name, builder, config, args, x, y):
    """Builds, warms up and times one model on both sides; prints its block."""
    import keras

    k_params, k_warm, k_run = keras_rates(name, x, y, args.steps)
    t_params, t_warm, t_run, device = torch_rates(builder, config, x, y, args.steps)
    print(f"backend={keras.backend.backend()} model={name} batch={args.batch} "
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
    print(f"ratio (keras-vs / PyTorch throughput) {name}: {k / t:.2f}", flush=True)


def release():
    """Frees the last model's memory on both sides, so the next one has the device to itself."""
    import keras
    import torch

    keras.backend.clear_session()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="wrn-28-10",
                        help="zoo names, comma-separated, e.g. wrn-28-10,preresnet-110,"
                             "resnext-29-8x64d,densenet-bc-100-12")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true",
                        help="wrn-10-1 only, batch 8, 2 steps, 1 repeat")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.batch, args.steps, args.repeats = "wrn-10-1", 8, 2, 1
    models = parse_models(args.model)

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, 32, 32, 3)).astype("float32")
    y = (np.arange(args.batch) % 10).astype("int32")
    for i, (name, builder, config) in enumerate(models):
        if i:
            print()
        bench(name, builder, config, args, x, y)
        release()


if __name__ == "__main__":
    main()
