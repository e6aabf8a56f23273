"""Every benchmark runs in its tiny smoke mode and prints its ratio (no timing is asserted)."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))
# Scripts that compare against another framework, and the module they need.
NEEDS = {"bench_torch.py": "torch"}


@pytest.mark.slow
@pytest.mark.tf_only
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke_run_prints_a_ratio(script):
    if script in NEEDS:
        pytest.importorskip(NEEDS[script])
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"ratio[^\n]*\d", result.stdout, re.IGNORECASE), result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_results_md_records_each_benchmark(script):
    assert f"python benchmarks/{script}" in (ROOT / "RESULTS.md").read_text()
