"""Every command a keras-vs command prints as advice is a valid command: it parses, and it runs.

A hint is ``keras-vs COMMAND ARGS`` inside a line; its arguments end at the first word holding
punctuation of the prose around it. Placeholders in capitals are filled in: DATA with the offline
digits set, any other (OUT, FIXED, NEW.keras) with a fresh .keras path.
"""

import os
import re

import keras
import pytest

from keras_vs import cli

L = keras.layers
HINT = re.compile(r"keras-vs ([a-z]+)")
STOP = re.compile(r"[,;()']|[.:]$")  # prose around a hint: a command ends at its first stop


def _hints(text):
    """``[argv after 'keras-vs']`` of every hint with arguments (a bare 'keras-vs measure' is a mention)."""
    found = []
    for line in text.splitlines():
        for match in HINT.finditer(line):
            args = []
            for token in line[match.end():].split():
                if token == "keras-vs":
                    break
                stop = STOP.search(token)
                if stop:
                    if token[: stop.start()]:
                        args.append(token[: stop.start()])
                    break
                args.append(token)
            if args:
                found.append([match.group(1), *args])
    return found


def _fill(argv, folder):
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if eq and value == "DATA":
            out.append(f"{name}=digits")
        elif re.fullmatch(r"[A-Z]+(\.keras)?", arg):
            out.append(str(folder / (arg.split(".")[0].lower() + ".keras")))  # one path per name
        else:
            out.append(arg)
    return out


@pytest.fixture
def model_file(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    h = L.Conv2D(4, 3, padding="same", name="conv")(inputs)
    h = L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(h))
    model = keras.Model(inputs, L.Dense(10, name="logits")(L.GlobalAveragePooling2D()(h)))
    model.save(tmp_path / "m.keras")
    return tmp_path / "m.keras"


def _check_hints(text, folder, keras_vs_cli):
    hints = _hints(text)
    assert hints, text  # the output gives advice at all
    for argv in hints:
        filled = _fill(argv, folder)
        cmd = cli.load_command(filled[0], cli.command_targets()[filled[0]])
        cli.parse(cmd, filled[1:])  # raises UsageError on a flag that does not exist or parse
        code, _, err = keras_vs_cli(*filled)
        assert code == 0, (argv, err)


def test_analyze_hints_are_commands_that_run(model_file, keras_vs_cli):
    code, out, _ = keras_vs_cli("analyze", model_file)
    assert code == 0
    _check_hints(out, model_file.parent, keras_vs_cli)


@pytest.mark.parametrize("out_name", ["new.keras", "new.weights.h5"])
def test_rewrite_hints_are_commands_that_run(model_file, keras_vs_cli, out_name):
    code, out, _ = keras_vs_cli("rewrite", model_file, "--policy=after_bn", "-o",
                                model_file.parent / out_name)
    assert code == 0
    _check_hints(out, model_file.parent, keras_vs_cli)


def test_measure_hints_are_commands_that_run(model_file, keras_vs_cli):
    code, out, _ = keras_vs_cli("measure", model_file, "--data=digits", "--steps=2")
    assert code == 0
    _check_hints(out, model_file.parent, keras_vs_cli)


def test_weights_output_never_hints_a_command_on_the_weights_file(model_file, keras_vs_cli):
    weights = model_file.parent / "new.weights.h5"
    code, out, _ = keras_vs_cli("rewrite", model_file, "--policy=after_bn", "-o", weights)
    assert code == 0
    assert all(str(weights) not in argv for argv in _hints(out)), out


def test_hints_parse_the_placeholders_of_prose():
    text = ("Re-estimate them: keras-vs recalibrate m.keras --data=DATA -o FIXED, or fine-tune; "
            "so 'keras-vs measure' still shows it. Then keras-vs analyze new.keras. Or: 'keras-vs "
            "analyze m.keras' lists them")
    assert _hints(text) == [["recalibrate", "m.keras", "--data=DATA", "-o", "FIXED"],
                            ["analyze", "new.keras"], ["analyze", "m.keras"]]


def test_recalibrate_hints_are_commands_that_run(model_file, keras_vs_cli):
    code, out, _ = keras_vs_cli("recalibrate", model_file, "--data=digits", "--steps=2", "-o",
                                model_file.parent / "re.keras")
    assert code == 0
    _check_hints(out, model_file.parent, keras_vs_cli)
