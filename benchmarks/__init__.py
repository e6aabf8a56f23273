"""Ratio benchmarks, run as scripts (``python benchmarks/bench_*.py``); a package so that
import-linter places them above the zoo (.importlinter)."""
