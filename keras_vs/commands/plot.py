"""The figure of ``keras-vs measure --plot``: the variance shift of each BN layer."""

import math

__all__ = ["save_shift_figure", "shift_figure"]

# Values spanning more than this factor get a logarithmic axis.
LOG_SCALE_RATIO = 10.0
# Up to this many BN layers are named on the x axis; beyond, integer indices.
MAX_NAMED_TICKS = 24


def shift_figure(names, values, title):
    """A matplotlib figure of the variance shift against BN layer.

    Args:
        names: BN layer names, shallow to deep.
        values: The statistic ``max(real/moving, moving/real)`` of each.
        title: Says which model and data; "variance shift" is prepended.

    Returns:
        A `matplotlib.figure.Figure` (not shown, not saved).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib import ticker

    values = [float(v) for v in values]
    index = list(range(1, len(values) + 1))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.35 * len(values)), 4.0))
    ax.plot(index, values, marker="o", markersize=4, label="measured shift")
    ax.axhline(1.0, color="gray", linewidth=0.9, linestyle="--", label="no shift (1)")
    finite = [v for v in values if math.isfinite(v) and v > 0]
    if finite and max(finite + [1.0]) / min(finite + [1.0]) > LOG_SCALE_RATIO:
        ax.set_yscale("log")
    if len(names) <= MAX_NAMED_TICKS:
        ax.set_xticks(index)
        ax.set_xticklabels([f"{i} {n}" for i, n in zip(index, names)], rotation=45, ha="right",
                           fontsize=8)
        ax.set_xlabel("BN layer (shallow to deep)")
    else:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_xlabel("BN layer index (shallow to deep)")
    ax.set_xlim(0.5, len(values) + 0.5)
    ax.set_ylabel("variance shift\nmax(real/moving, moving/real)")  # two lines: fits 4 inches
    ax.set_title(f"Variance shift per BN layer: {title}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_shift_figure(names, values, title, path):
    """Writes `shift_figure` to ``path`` atomically; SVG keeps its text as text.

    Raises:
        ValueError: matplotlib cannot write that format.
    """
    import matplotlib

    from keras_vs import files

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig = shift_figure(names, values, title)
        files.save_figure(fig, path)
