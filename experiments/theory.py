"""Closed-form variance shift against simulation on real Keras layers (the paper's theory).

Case (a): Bernoulli dropout over rates, at zero and non-zero input mean.
Uout over beta. Case (b): dropout -> Dense of fan-in d over widths, on
correlated inputs, with the d·cos²θ of the real kernel. Writes
``theory.csv``, ``theory.md`` and ``theory.png``.

Usage:

    python -m experiments.theory --out=results/theory
"""

from absl import flags

from experiments import common

__all__ = [
    "COLUMNS",
    "define_flags",
    "figure",
    "main",
    "report",
    "run",
]

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a script)."""
    flags.DEFINE_list("rates", ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"], "Dropout rates.")
    flags.DEFINE_list("betas", ["0.1", "0.2", "0.3", "0.5", "0.7", "1.0"], "Uout betas.")
    flags.DEFINE_list("widths", ["4", "16", "64", "256"], "Fan-in d of the Dense layer in case (b).")
    flags.DEFINE_list("means", ["0", "0.5"], "Input means c.")
    flags.DEFINE_float("rho", 0.3, "Correlation between inputs in case (b).", lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_integer("samples", 200_000, "Monte Carlo samples per unit.", lower_bound=100)
    flags.DEFINE_integer("seed", 0, "Seed of inputs, masks and kernels.")
    flags.DEFINE_string("out", "results/theory", "Output folder.")


COLUMNS = ("layers", "setting", "case", "value", "mean", "d", "d_cos2", "predicted", "measured", "relative_error")


def run(rates, betas, widths, means=(0.0,), rho=0.3, samples=200_000, seed=0):
    """Predicted vs simulated shift for every setting.

    Args:
        rates: Dropout rates (cases a and b).
        betas: Uout betas.
        widths: Fan-in values of case (b).
        means: Input means c; every case runs at each.
        rho: Input correlation of case (b).
        samples: Monte Carlo samples per unit.
        seed: Seed.

    Returns:
        Rows (dicts with `COLUMNS`).

    Example:

    >>> rows = run([0.5], [0.1], [16], samples=20_000)
    >>> sorted({r["case"] for r in rows})
    ['a', 'b', 'uout']
    """
    from keras_vs import simulate

    rows = []
    for mean in means:
        for row in simulate.shift_rows(rates, betas, widths, samples, mean=mean, rho=rho, seed=seed):
            rows.append({**row, "mean": mean})
    return rows


def report(rows, samples):
    """Markdown summary: the worst error and one table per case."""
    worst = max(rows, key=lambda r: abs(r["relative_error"]))
    lines = [
        "# Variance shift: closed form vs simulation on real layers\n\n",
        f"Var_test / Var_train (1 = no shift) for {samples:,} samples per unit, averaged over "
        "16 units. Largest relative error: "
        f"{100 * abs(worst['relative_error']):.2f}% ({worst['layers']}, {worst['setting']}, "
        f"c={worst['mean']:g}).\n",
    ]
    titles = {
        "a": "Case (a): Dropout directly before BN",
        "uout": "Uout (3 / (3 + β²) at c = 0)",
        "b": "Case (b): Dropout -> Dense(fan-in d) -> BN, wider layers shift less",
    }
    for case, title in titles.items():
        picked = [r for r in rows if r["case"] == case]
        if not picked:
            continue
        cells = [
            {
                "setting": r["setting"],
                "mean": f"{r['mean']:g}",
                "d": r["d"] if r["d"] is not None else "-",
                "d_cos2": f"{r['d_cos2']:.2f}" if r["d_cos2"] is not None else "-",
                "predicted": f"{r['predicted']:.4f}",
                "measured": f"{r['measured']:.4f}",
                "error": f"{100 * r['relative_error']:+.2f}%",
            }
            for r in picked
        ]
        columns = ["setting", "mean", "d", "d_cos2", "predicted", "measured", "error"]
        if case != "b":
            columns = [c for c in columns if c not in ("d", "d_cos2")]
        lines += [f"\n## {title}\n\n", common.markdown_table(cells, columns)]
    return "".join(lines)


def figure(rows):
    """Three panels: dropout over rate, Uout over beta, case (b) over width."""
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, case, x_key, xlabel in (
        (axes[0], "a", "value", "dropout rate"),
        (axes[1], "uout", "value", "Uout beta"),
        (axes[2], "b", "d", "fan-in d (rate 0.5 shown)"),
    ):
        picked = [r for r in rows if r["case"] == case]
        for mean in sorted({r["mean"] for r in picked}):
            sel = [r for r in picked if r["mean"] == mean]
            if case == "b":
                sel = [r for r in sel if abs(r["value"] - 0.5) < 1e-9] or sel
            sel.sort(key=lambda r: r[x_key])
            xs = [r[x_key] for r in sel]
            (line,) = ax.plot(xs, [r["predicted"] for r in sel], label=f"closed form, c={mean:g}")
            ax.plot(xs, [r["measured"] for r in sel], "o", color=line.get_color(),
                    label=f"simulated, c={mean:g}")
        if case == "b":
            ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Var_test / Var_train")
        ax.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
        ax.legend(fontsize=7)
    axes[0].set_title("(a) Dropout -> BN")
    axes[1].set_title("Uout -> BN")
    axes[2].set_title("(b) Dropout -> Dense -> BN")
    fig.tight_layout()
    return fig


def main():
    """Simulates every setting of the flags and writes the table, report and figure."""
    rates = common.parse_floats("rates", FLAGS.rates)
    betas = common.parse_floats("betas", FLAGS.betas)
    widths = common.parse_ints("widths", FLAGS.widths)
    means = common.parse_floats("means", FLAGS.means)
    rows = run(rates, betas, widths, means, FLAGS.rho, FLAGS.samples, FLAGS.seed)
    text = report(rows, FLAGS.samples)
    paths = common.write_outputs(
        FLAGS.out, "theory", csv_files=[("theory.csv", rows, COLUMNS)], markdown=text, figure=figure(rows)
    )
    print(text)
    print("wrote " + ", ".join(paths))


if __name__ == "__main__":
    define_flags()
    common.run_script(main)
