"""Runs one pytest file under `bazel test` (see //:BUILD)."""

import os
import sys

import pytest

if __name__ == "__main__":
    # Bazel runs tests from the runfiles tree, where pytest.ini and
    # conftest.py sit next to the sources.
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
