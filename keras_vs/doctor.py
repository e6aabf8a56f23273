"""The doctor: why a trained model's BNs are shifted, and which fix helps, measured.

`doctor` attributes every BN's shift (`keras_vs.attribution`), then
evaluates candidate fixes on held-out data with the model's own compiled
metric: keeping the model, BN re-estimation ("precise" and "exact") and,
when asked to fine-tune, fine-tuning as it is and after each applicable
rewrite policy (each followed by exact re-estimation). A rewrite changes
nothing at inference, so without fine-tuning it would equal re-estimation
and is not tried. Every candidate is scored on the same held-out examples;
a paired bootstrap gives each candidate's interval and the interval of its
difference from keeping the model. A fix is recommended only when that
difference is beyond its interval; otherwise the advice is to keep the
model. The input model is never modified.
"""

import dataclasses

import keras
import numpy as np

from keras_vs import attribution as attribution_lib
from keras_vs import checks
from keras_vs import graph as graph_lib
from keras_vs import vocab
from keras_vs.batches import DEFAULT_BATCH_SIZE, Batches

__all__ = ["KEEP", "Candidate", "DoctorReport", "doctor"]

KEEP = "keep"
RESAMPLES = 2000
_CHUNK = 200  # bootstrap resamples drawn at a time (memory: _CHUNK x examples)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One fix scored on the held-out data.

    Attributes:
        fix: ``"keep"``, ``"recalibrate_precise"``, ``"recalibrate_exact"``,
            ``"fine_tune"`` or ``"rewrite_<policy>"`` (the last two fine-tuned
            ``fine_tune_epochs`` epochs, then re-estimated exactly).
        metric: The metric's name.
        value: Its value on the held-out examples.
        low, high: Its bootstrap interval.
        diff_low, diff_high: Interval of ``value - keep's value`` (paired).
    """

    fix: str
    metric: str
    value: float
    low: float
    high: float
    diff_low: float = 0.0
    diff_high: float = 0.0

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DoctorReport:
    """What `doctor` found and recommends.

    Attributes:
        attribution: The `keras_vs.attribution.ShiftAttribution`.
        findings: Sentences: what dominates each shifted BN, what rewrite can do.
        candidates: `Candidate`s, ``"keep"`` first.
        recommendation: The recommended candidate's ``fix`` (``"keep"``: keep it).
        reason: One sentence on why.
        split: How the held-out data was chosen.
        higher_is_better: The metric's direction.
        confidence: The intervals' level.
        model: The recommended model when `doctor` was called with
            ``apply=True`` and the recommendation is a fix, else None.
        verified: That model's metric, evaluated again on the held-out data.
    """

    attribution: object
    findings: list
    candidates: list
    recommendation: str
    reason: str
    split: str
    higher_is_better: bool
    confidence: float
    model: object = None
    verified: object = None

    def candidate(self, fix):
        """The `Candidate` named `fix` (KeyError if it was not tried)."""
        for c in self.candidates:
            if c.fix == fix:
                return c
        raise KeyError(f"No candidate {fix!r}. Received: fix={fix!r}; tried {[c.fix for c in self.candidates]}")

    def as_dict(self):
        """JSON-ready: ``layers``, ``candidates``, ``recommendation`` and the rest."""
        return {
            "layers": [a.as_dict() for a in self.attribution.values()],
            "candidates": [c.as_dict() for c in self.candidates],
            "recommendation": self.recommendation,
            "reason": self.reason,
            "findings": list(self.findings),
            "split": self.split,
            "higher_is_better": self.higher_is_better,
            "confidence": self.confidence,
            "verified": self.verified,
        }


def doctor(model, data, validation_data=None, *, validation_split=0.2, fine_tune_epochs=0,
           batch_size=DEFAULT_BATCH_SIZE, apply=False, confidence=0.95, seed=0):
    """Attributes the variance shift of `model`, tries fixes on held-out data, recommends one.

    Args:
        model: A trained single-output model (not modified). Its compiled
            metric is the score (the first one; accuracy for a model compiled
            without a per-example metric, or not compiled); fine-tuning uses
            its compiled loss and optimizer settings.
        data: The training data, labelled: ``(x, y)`` NumPy arrays, a
            `tf.data.Dataset` or a `keras.utils.PyDataset`. Calibrates the
            re-estimation and the attribution (and is what fine-tuning fits).
        validation_data: Labelled held-out data in the same forms. None: the
            last `validation_split` of `data` (NumPy only, unshuffled, as
            Keras' ``fit(validation_split=)``), and the rest calibrates.
        validation_split: Fraction held out when `validation_data` is None.
        fine_tune_epochs: Epochs of fine-tuning to try (0: none).
        batch_size: Batch size for NumPy data (the one training used).
        apply: Return the recommended model in ``report.model`` and verify it.
        confidence: Level of the bootstrap intervals.
        seed: Seed of the bootstrap.

    Returns:
        A `DoctorReport`.

    Raises:
        ValueError: A multi-output model, data without labels, or data that
            cannot be split (the message says what was received).
    """
    _check(model, validation_split, fine_tune_epochs, confidence)
    train, held, split = _split(data, validation_data, validation_split, batch_size)
    name, score, up = _metric(model)
    fixes, notes = _fixes(model, train, fine_tune_epochs, batch_size)
    attribution = fixes.pop("_attribution")
    scores = {fix: score(held[1], _predict(m, held[0], batch_size)) for fix, m in fixes.items()}
    candidates = _candidates(scores, name, confidence, seed)
    best, reason = _recommend(candidates, up)
    report = DoctorReport(attribution, _findings(model, attribution, fine_tune_epochs) + notes, candidates, best,
                          reason, split, up, confidence)
    if apply and best != KEEP:
        report.model = fixes[best]
        report.verified = float(np.mean(score(held[1], _predict(report.model, held[0], batch_size))))
    return report


def _check(model, validation_split, fine_tune_epochs, confidence):
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a keras.Model. Received: model of type {type(model).__name__}")
    if len(model.outputs) != 1:
        raise ValueError("The doctor needs a single-output model. "
                         f"Received: model {model.name!r} with {len(model.outputs)} outputs")
    if not 0 < validation_split < 1:
        raise ValueError(f"Expected 0 < validation_split < 1. Received: validation_split={validation_split!r}")
    checks.integer("fine_tune_epochs", fine_tune_epochs, minimum=0)
    if not 0 < confidence < 1:
        raise ValueError(f"Expected 0 < confidence < 1. Received: confidence={confidence!r}")


def _split(data, validation_data, fraction, batch_size):
    """``(training data, (x_held, y_held), sentence)``."""
    if validation_data is not None:
        return data, _materialize(validation_data, batch_size, "validation_data"), (
            "held-out data: validation_data")
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and data[1] is not None):
        raise ValueError(
            "Without validation_data the doctor holds out the last part of data, which must then "
            f"be an (x, y) tuple of NumPy arrays. Received: data of type {type(data).__name__}")
    x, y = data
    n = len(keras.tree.flatten(x)[0])
    k = max(1, int(round(n * fraction)))
    if k >= n:
        raise ValueError(f"Too few examples to hold {fraction:.0%} out. Received: {n} example(s)")
    cut = n - k
    head = keras.tree.map_structure(lambda a: a[:cut], x)
    tail = keras.tree.map_structure(lambda a: a[cut:], x)
    split = (f"held-out data: the last {k} of {n} examples of data ({fraction:.0%}, unshuffled, as "
             f"Keras' validation_split); the first {cut} calibrate")
    return (head, y[:cut]), (tail, np.asarray(y[cut:])), split


def _materialize(data, batch_size, what):
    """``(x, y)`` NumPy arrays from any labelled data."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[1], type(None)):
        return data[0], np.asarray(data[1])
    xs, ys = [], []
    for x, y in Batches(data, None, batch_size):
        if y is None:
            break
        xs.append(keras.tree.map_structure(np.asarray, x))
        ys.append(np.asarray(y))
    if not ys:
        raise ValueError(f"The doctor compares fixes on labelled data; {what} has no labels. "
                         f"Received: {what} of type {type(data).__name__}")
    x = keras.tree.map_structure(lambda *a: np.concatenate(a), *xs) if len(xs) > 1 else xs[0]
    return x, np.concatenate(ys)


def _predict(model, x, batch_size):
    """The first output on `x`; the model's state (stateful RNNs) as it was."""
    from keras_vs import runner
    from keras_vs.graph.snapshot import Snapshot

    with Snapshot(model):
        if not any(str(t.dtype) == "string" for t in model.inputs):
            pred = model.predict(x, batch_size=batch_size, verbose=0)
            return np.asarray(keras.tree.flatten(pred)[0])
        batches = Batches(x, None, batch_size)  # strings: as measuring feeds them
        run = runner.run_function(model, batches, compiled=False)
        outs = [keras.ops.convert_to_numpy(keras.tree.flatten(run(b))[0]) for b, _ in batches]
    return np.concatenate([np.asarray(o) for o in outs])


# ---------------------------------------------------------------------------
# The metric, per example.


def _accuracy(y, pred):
    from keras_vs import shift

    pred = np.asarray(pred)
    if pred.ndim >= 2 and pred.shape[-1] == 1:
        classes = (pred[..., 0] > (0.0 if pred.min() < 0 or pred.max() > 1 else 0.5)).astype(np.int64)
    else:
        classes = shift.predicted_classes(pred)
    correct = classes == shift.label_classes(y, pred)
    return correct.reshape(len(correct), -1).mean(axis=1).astype(np.float64)


def _first(spec):
    if isinstance(spec, dict) and "class_name" not in spec:
        spec = list(spec.values())
    if isinstance(spec, (list, tuple)):
        return next((f for f in map(_first, spec) if f is not None), None)
    return spec


def _metric(model):
    """``(name, score(y, pred) -> per-example values, higher_is_better)``."""
    config = model.get_compile_config() if getattr(model, "compiled", False) else None
    spec = _first((config or {}).get("metrics"))
    if spec is None or spec in ("accuracy", "acc"):
        return "accuracy", _accuracy, True
    try:
        metric = keras.metrics.get(spec)
    except (ValueError, TypeError):
        return "accuracy", _accuracy, True
    fn = getattr(metric, "_fn", None) if isinstance(metric, keras.metrics.Metric) else metric
    if not callable(fn):  # AUC, precision, ...: not a mean over examples
        return "accuracy", _accuracy, True
    kwargs = getattr(metric, "_fn_kwargs", None) or {}
    name = getattr(metric, "name", None) or getattr(fn, "__name__", "metric")
    direction = getattr(metric, "_direction", None)
    up = direction == "up" if direction else any(k in name for k in ("acc", "auc", "precision", "recall"))

    def score(y, pred):
        values = keras.ops.convert_to_numpy(fn(keras.ops.convert_to_tensor(y),
                                               keras.ops.convert_to_tensor(pred), **kwargs))
        values = np.asarray(values, dtype=np.float64)
        return values.reshape(len(values), -1).mean(axis=1)

    return name, score, up


# ---------------------------------------------------------------------------
# Candidate fixes.


def _fixes(model, train, epochs, batch_size):
    """``({fix: model, "_attribution": ShiftAttribution}, notes)``."""
    from keras_vs.recalibrate import recalibrate_bn

    fixes, notes = {KEEP: model}, []
    calibration = train[0] if isinstance(train, tuple) else train
    try:
        exact = recalibrate_bn(model, calibration, batch_size=batch_size, method="exact")
    except ValueError as e:  # no BN (or every BN hidden): nothing to re-estimate
        notes.append(f"not tried: re-estimation ({' '.join(str(e).split())})")
        fixes["_attribution"] = attribution_lib.ShiftAttribution({}, 0)
    else:
        fixes["recalibrate_precise"] = recalibrate_bn(model, calibration, batch_size=batch_size)
        fixes["recalibrate_exact"] = exact
        fixes["_attribution"] = attribution_lib.attribute(model, calibration, exact, batch_size=batch_size)
    if not epochs:
        return fixes, notes
    if getattr(model, "loss", None) is None:
        notes.append(f"not tried: fine-tuning (model {model.name!r} is not compiled with a loss)")
        return fixes, notes
    for policy in (None,) + _policies(model):
        fix = "fine_tune" if policy is None else f"rewrite_{policy}"
        fixes[fix] = _fine_tuned(model, policy, train, epochs, batch_size, "recalibrate_exact" in fixes)
    return fixes, notes


def _policies(model):
    """The rewrite policies that change something in `model`."""
    from keras_vs.rewrite import plan

    found = []
    for policy in vocab.POLICIES:
        try:
            if plan(model, policy).changes:
                found.append(policy)
        except (ValueError, graph_lib.GraphError):
            continue
    return tuple(found)


def _fine_tuned(model, policy, train, epochs, batch_size, recalibrate):
    from keras_vs.recalibrate import recalibrate_bn
    from keras_vs.rewrite import rewrite

    if policy is None:
        new = graph_lib.copy(model)
        graph_lib.compile_like(new, model)
    else:
        new = rewrite(model, policy)
    if isinstance(train, tuple):
        new.fit(train[0], train[1], batch_size=batch_size, epochs=epochs, verbose=0)
    else:
        new.fit(train, epochs=epochs, verbose=0)
    if recalibrate:
        calibration = train[0] if isinstance(train, tuple) else train
        recalibrate_bn(new, calibration, batch_size=batch_size, method="exact", inplace=True)
    return new


def _candidates(scores, name, confidence, seed):
    """`Candidate`s with paired bootstrap intervals (the same resamples for all)."""
    base = scores[KEEP]
    n = len(base)
    rng = np.random.default_rng(seed)
    means = {fix: [] for fix in scores}
    diffs = {fix: [] for fix in scores}
    for start in range(0, RESAMPLES, _CHUNK):
        idx = rng.integers(0, n, size=(min(_CHUNK, RESAMPLES - start), n))
        for fix, s in scores.items():
            means[fix].append(s[idx].mean(axis=1))
            diffs[fix].append((s - base)[idx].mean(axis=1))
    q = [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2]
    out = []
    for fix, s in scores.items():
        low, high = np.percentile(np.concatenate(means[fix]), q)
        d_low, d_high = np.percentile(np.concatenate(diffs[fix]), q) if fix != KEEP else (0.0, 0.0)
        out.append(Candidate(fix, name, float(np.mean(s)), float(low), float(high),
                             float(d_low), float(d_high)))
    return out


def _recommend(candidates, up):
    """``(fix, reason)``: the best fix beyond its interval over keeping, else keep."""
    keep = candidates[0]
    sign = 1.0 if up else -1.0
    better = [c for c in candidates[1:] if sign * (c.diff_low if up else c.diff_high) > 0]
    if not better:
        return KEEP, (f"keep the model: no fix changes {keep.metric} ({keep.value:.4g}) beyond "
                      "its interval on the held-out data")
    best = max(better, key=lambda c: sign * c.value)
    return best.fix, (f"{best.fix}: {keep.metric} {keep.value:.4g} -> {best.value:.4g} on the held-out "
                      f"data; the difference is in [{best.diff_low:+.4g}, {best.diff_high:+.4g}], "
                      "beyond 0")


def _findings(model, attribution, epochs):
    """Sentences: the attribution's, and what a rewrite could change."""
    from keras_vs.analysis import find_disharmony

    out = list(attribution.explain())
    if not len(attribution):
        out.append("The model has no BatchNormalization layer that keras-vs can measure: no variance shift.")
    elif not out:
        out.append("No BN is notably shifted: every part is below "
                   f"{attribution_lib.NOTABLE} at every BN.")
    try:
        pairs = find_disharmony(model)
    except (ValueError, graph_lib.GraphError):
        pairs = []
    if len(attribution) and not pairs:
        out.append("No dropout feeds a BN: a rewrite has nothing to change.")
    elif pairs:
        out.append(f"{len(pairs)} dropout -> BN pair(s). A rewrite changes nothing at inference: "
                   "without fine-tuning it equals re-estimation"
                   + (", so each policy was tried with fine-tuning." if epochs else
                      " (pass fine_tune_epochs to try each policy with fine-tuning)."))
    return out
