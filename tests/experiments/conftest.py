"""Makes the repository's `experiments` scripts importable.

They are run from a clone (``python -m experiments.NAME``) and not
installed, so the repository root goes at the *end* of ``sys.path``: the
installed keras_vs, zoo and tuner still come first.
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))
