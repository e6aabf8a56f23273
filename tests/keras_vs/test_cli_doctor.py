"""The `keras-vs doctor MODEL --data=NAME` command: parts, candidates, -o, --report, --json."""

import json

import pytest


@pytest.fixture(scope="module")
def files(tmp_path_factory, trained):
    folder = tmp_path_factory.mktemp("doctor")
    under, no_bn = folder / "under.keras", folder / "no_bn.keras"
    trained.under_trained().save(under)
    trained.no_bn().save(no_bn)
    return under, no_bn


def test_prints_parts_candidates_and_recommendation(files, keras_vs_cli, tmp_path):
    under, _ = files
    code, out, err = keras_vs_cli("doctor", under, "--data=digits", "--batch_size=64")
    assert code == 0, err
    assert any(line.split()[:1] == ["bn1"] and len(line.split()) == 5 for line in out.splitlines())
    assert "- bn1: the statistics part dominates" in out
    assert "recommendation: recalibrate_" in out


def test_writes_the_recommended_model(files, keras_vs_cli, tmp_path, unchanged_files):
    under, _ = files
    unchanged_files(under)
    out_file = tmp_path / "fixed.keras"
    code, out, err = keras_vs_cli("doctor", under, "--data=digits", "--validation_data=digits:test",
                                  "--batch_size=64", "-o", out_file)
    assert code == 0, err
    assert out_file.exists() and f"wrote {out_file} (verified: accuracy" in out


def test_writes_nothing_when_the_recommendation_is_to_keep(files, keras_vs_cli, tmp_path):
    _, no_bn = files
    out_file = tmp_path / "fixed.keras"
    code, out, err = keras_vs_cli("doctor", no_bn, "--data=digits", "-o", out_file)
    assert code == 0, err
    assert not out_file.exists()
    assert f"nothing written to {out_file}: the recommendation is to keep the model" in out


def test_json_has_layers_candidates_and_recommendation(files, keras_vs_cli):
    under, _ = files
    code, out, err = keras_vs_cli("doctor", under, "--data=digits", "--batch_size=64", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert {"bn", "shift", "statistics_part", "dropout_part", "upstream_part"} <= set(report["layers"][0])
    assert {"fix", "metric", "value", "low", "high"} <= set(report["candidates"][0])
    assert report["recommendation"] in [c["fix"] for c in report["candidates"]]


def test_markdown_report_with_its_figure(files, keras_vs_cli, tmp_path):
    under, _ = files
    page = tmp_path / "doctor.md"
    code, _, err = keras_vs_cli("doctor", under, "--data=digits", "--batch_size=64", f"--report={page}")
    assert code == 0, err
    assert "![parts and candidates](doctor.svg)" in page.read_text()
    assert (tmp_path / "doctor.svg").read_text().lstrip().startswith("<?xml")


def test_html_report_holds_the_figure(files, keras_vs_cli, tmp_path):
    _, no_bn = files
    page = tmp_path / "doctor.html"
    code, _, err = keras_vs_cli("doctor", no_bn, "--data=digits", f"--report={page}")
    assert code == 0, err
    assert "<svg" in page.read_text()


def test_report_of_another_kind_is_refused_in_one_line(files, keras_vs_cli, tmp_path):
    under, _ = files
    code, _, err = keras_vs_cli("doctor", under, "--data=digits", f"--report={tmp_path / 'r.pdf'}")
    assert code == 1
    assert err.strip().endswith(f"--report must end in .html or .md. Received: --report={tmp_path / 'r.pdf'}")


def test_help_documents_the_parts_and_the_json_keys(keras_vs_cli):
    code, out, _ = keras_vs_cli("doctor", "--help")
    text = " ".join(out.split())
    assert code == 0
    for words in ("statistics = training-mode variance", "dropout = inference variance",
                  "upstream = inference variance", "statistics_part", "recommendation"):
        assert words in text
