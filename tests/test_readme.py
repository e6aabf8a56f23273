"""README's set-up commands are the ones CI runs, and its Python blocks run as written, so they cannot rot."""

import ast
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _setup_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands():
    commands = _setup_commands()
    assert len(commands) == 2, commands
    assert "pip install ." in commands[0] and "pip install \".[test]\"" in commands[1]


def test_ci_runs_the_readme_commands_verbatim():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in _setup_commands():
        assert command in ci_lines, command


def python_blocks():
    """README's ```python blocks, in order."""
    return re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


# Marks the start of each block in the run's output, so a failure names its block.
_BLOCK_MARK = "### README python block {}"


def readme_program():
    """One program: every block, in order, each announced on stdout."""
    parts = []
    for i, block in enumerate(python_blocks(), start=1):
        parts.append(f"print({_BLOCK_MARK.format(i)!r}, flush=True)\n{block}\n")
    return "\n".join(parts)


@pytest.mark.slow  # trains the small CNN, two small searches and a keras-tuner search: about a minute
@pytest.mark.tf_only  # the blocks use TensorBoard, which keras-tuner configures on TensorFlow only
def test_readme_python_blocks_run_in_order_in_a_fresh_process(tmp_path):
    program = tmp_path / "readme_blocks.py"
    program.write_text(readme_program())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow"}
    run = subprocess.run([sys.executable, str(program)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=900)
    blocks = re.findall(r"### README python block (\d+)", run.stdout)
    assert run.returncode == 0, (f"failed in block {blocks[-1] if blocks else '?'}:\n"
                                 + run.stderr[-4000:])
    assert [int(b) for b in blocks] == list(range(1, len(python_blocks()) + 1))
    assert "Traceback" not in run.stderr
    # Nothing failed quietly: no failed trial, no search folder of a collision.
    assert "FAILED" not in run.stdout and "no trial completed" not in run.stdout
    # What the measuring block's comments say: a trained model's BNs are shifted, re-estimation
    # brings them to about 1.
    before, after = [ast.literal_eval(line) for line in run.stdout.splitlines()
                     if line.startswith("{'bn1': ")]
    assert max(before.values()) > 1.5 and max(after.values()) < 1.05, (before, after)


def test_readme_python_blocks_bind_model_once():
    # A block that rebinds `model` breaks the blocks after it that search or measure the small CNN.
    bindings = [i for i, block in enumerate(python_blocks(), 1) if re.search(r"^model = ", block, re.M)]
    assert bindings == [1], bindings


def test_every_python_block_has_its_own_imports():
    for i, block in enumerate(python_blocks(), start=1):
        used = {name for name in ("keras", "kvs", "tuner", "zoo", "keras_tuner")
                if re.search(rf"(?<![\w.]){name}\.", block)}
        imported = set(re.findall(r"^import (\w+)(?: as (\w+))?", block, re.M))
        names = {alias or module for module, alias in imported}
        assert used <= names, f"block {i} uses {sorted(used - names)} without importing it"
