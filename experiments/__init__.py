"""Reproductions of the paper's findings, one script per experiment.

Run from a clone of the repository (after ``pip install .``), e.g.
``python -m experiments.positions --out=results/positions``. Each script
writes a CSV table, a Markdown summary and a figure; RESULTS.md shows the
outputs measured on this project's machines, with the command that produced
each.
"""

__all__ = ["EXPERIMENTS"]

# One table: the experiment scripts (modules with a ``main``) and what each reproduces.
EXPERIMENTS = {
    "theory": "closed-form shift vs simulation on real layers (Eq. for cases a, b and Uout)",
    "width": "measured shift and d·cos²θ of trained WRN-style nets as width grows (Table 1 argument)",
    "positions": "dropout position x rate x seeds on real data, with BN re-estimation (Fig. 4/5)",
    "cifar": "the paper's CIFAR-10/100 runs: command lines, time estimate, and the runner",
}
