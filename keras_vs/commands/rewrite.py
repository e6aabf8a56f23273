"""``keras-vs rewrite MODEL --policy=... -o OUT``: fix dropout-before-BN in a saved model."""

import dataclasses
import json

from absl import flags

from keras_vs import vocab
from keras_vs.cli import PROG, CliError, Command, UsageError
from keras_vs.commands import common

__all__ = ["COMMAND"]


def _define_flags(fv):
    flags.DEFINE_enum("policy", None, list(vocab.POLICIES), "How to fix each dropout that feeds a BN.",
                      flag_values=fv)
    common.define_output(fv, "the new model")
    flags.DEFINE_float("rate", None, "Rate of the moved or inserted dropouts (after_bn, head; "
                       "default: the old dropout's). A Uout layer's noise is its --beta.",
                       flag_values=fv)
    flags.DEFINE_float("beta", None, "Beta of the Uout layers (uout, default 0.1; after_bn: of "
                       "moved Uout layers; head: of a Uout head, default the old beta).",
                       flag_values=fv)
    flags.DEFINE_bool("dry_run", False, "Print the plan and write nothing.", flag_values=fv)
    common.define_unsafe(fv)
    common.define_json(fv)


def _next_steps(path, out, plan, options, remaining):
    """What the rewrite did not change, and what to do next."""
    lines = []
    for c in plan.kept:
        lines.append(f"not changed: {c.layer} (fed {', '.join(c.feeds) or 'no BN'}): {c.note}")
    if remaining:
        kinds = sorted({f.kind for f in remaining})
        lines.append(
            f"{out} still has {len(remaining)} dropout -> BN pair(s) ({', '.join(kinds)}; "
            f"'{PROG} analyze {out}' lists them)"
            + (": dropouts after a BN feed the next BN through a conv/dense layer, the paper's "
               "case b, usually a smaller shift; policy head or remove leaves none"
               if plan.policy == vocab.AFTER_BN else "")
        )
    if plan.changes:
        target = out or "OUT"
        how = f"{PROG} recalibrate {target} --data=DATA -o FIXED"
        if out and common.is_weights_file(out):  # recalibrate reads a model, not weights
            flags_ = "".join(f" --{k}={v:g}" for k, v in options.items())
            how = (f"write the model, {PROG} rewrite {path} --policy={plan.policy}{flags_} -o "
                   f"NEW.keras, then {PROG} recalibrate NEW.keras --data=DATA -o FIXED")
        lines.append(
            f"next: the BN layers of {target} keep the moving statistics measured with the old "
            f"dropouts in front of them, so '{PROG} measure' still shows the shift. Re-estimate "
            f"them: {how}. A rewrite changes nothing at inference until the model is fine-tuned: "
            f"{PROG} doctor {path} --data=DATA --fine_tune_epochs=2 (scores each policy with "
            "fine-tuning against re-estimation alone on held-out data)"
        )
    if out and common.is_weights_file(out):
        extra = "".join(f", {k}={v!r}" for k, v in options.items())
        lines.append(
            f"{out} holds weights only: load them into the rewritten architecture, "
            f"model = keras_vs.rewrite(keras.saving.load_model({path!r}), {plan.policy!r}{extra}); "
            f"model.load_weights({out!r})"
        )
    return lines


def _run(args, fv):
    if len(args) != 1:
        raise UsageError(f"'rewrite' takes one MODEL path (.keras or .h5). Received: {args}")
    path = args[0]
    if fv.policy is None:
        raise UsageError(f"--policy is required: {', '.join(vocab.POLICIES)}. Received: no --policy")
    out = fv.output
    if not fv.dry_run:
        if not out:
            raise UsageError("-o/--output is required (or pass --dry_run to only print the plan). "
                           "Received: no -o")
        common.check_output(out, path, fv.overwrite)
    model = common.load_model_file(path, fv.unsafe)
    common.quiet_tensorflow()
    import keras_vs as kvs
    from keras_vs.rewrite import rewrite_with_plan

    options = {k: getattr(fv, k) for k in ("rate", "beta") if getattr(fv, k) is not None}
    try:  # one match: the plan printed is the report of the model written
        if fv.dry_run:
            plan = kvs.plan(model, fv.policy, **options)
        else:
            new, plan = rewrite_with_plan(model, fv.policy, **options)
    except ValueError as e:  # bad options, or a layer keras-vs cannot rebuild
        raise CliError(common.flat(e)) from None
    remaining = []
    if not fv.dry_run:
        common.save_model_file(new, out)
        remaining = kvs.find_disharmony(new)
    if fv.json:
        report = {
            "model": path,
            "policy": fv.policy,
            "changes": [dataclasses.asdict(c) for c in plan.changes],
            "kept": [dataclasses.asdict(c) for c in plan.kept],
            "output": None if fv.dry_run else out,
            "compiled": False,
            "remaining_pairs": [dataclasses.asdict(f) for f in remaining],
        }
        print(json.dumps(report, indent=2))
        return 0
    print(plan)
    if fv.dry_run:
        print("dry run: nothing written")
    else:
        print(f"wrote {out} (not compiled)")
        note = common.load_note(new, out)
        if note:
            print(note)
    for line in _next_steps(path, None if fv.dry_run else out, plan, options, remaining):
        print(line)
    return 0


COMMAND = Command(
    name="rewrite",
    summary="Fix dropout-before-BN in a saved model and write the new model.",
    define_flags=_define_flags,
    run=_run,
    usage_args="MODEL -o OUT",
    description=(
        "Policies: after_bn moves each dropout that feeds a BN directly to just after that BN "
        "(pairs through a conv/dense layer are kept and listed); head removes every dropout that "
        "feeds a BN and puts one before the classifier; uout swaps them for Uout; remove deletes "
        "them. Inference outputs stay the same. The BN statistics stay those measured with the "
        f"old dropouts: follow with '{PROG} recalibrate' or fine-tune. OUT ending in "
        ".weights.h5 gets the weights only."
    ),
)
