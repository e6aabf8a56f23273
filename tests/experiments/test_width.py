import keras
import numpy as np
import pytest

import zoo
from experiments import common, study
from experiments import width


def _with_ones_kernels(model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.kernel.assign(np.ones(layer.kernel.shape, "float32"))
    return model


def test_all_ones_kernels_have_d_cos2_equal_to_fan_in():
    model = _with_ones_kernels(zoo.get("wrn-10-1", input_shape=(8, 8, 1),
                                       dropout=zoo.DropoutPlan(rate=0.5, position="before_conv")))
    stats = width.kernel_statistics(model)
    # Each block's last conv is 3x3 over 16k, 32k, 64k channels (k = 1).
    assert stats["fan_in_after_dropout"] == pytest.approx(np.mean([144, 288, 576]))
    assert stats["d_cos2_after_dropout"] == pytest.approx(stats["fan_in_after_dropout"])


def test_without_dropout_only_the_overall_mean_is_reported():
    stats = width.kernel_statistics(zoo.get("wrn-10-1", input_shape=(8, 8, 1)))
    assert stats["d_cos2_after_dropout"] is None and stats["conv_layers"] == 9
    assert stats["d_cos2_convs"] > 0


def test_wider_network_has_wider_fan_in_after_dropout():
    narrow, wide = (
        width.kernel_statistics(zoo.get("wrn-10-1", input_shape=(8, 8, 1), width=k,
                                        dropout=zoo.DropoutPlan(rate=0.5, position="before_conv")))
        for k in (1, 2)
    )
    assert wide["fan_in_after_dropout"] == 2 * narrow["fan_in_after_dropout"]


def _row(width_k, position, shift):
    return {
        "width": width_k, "position": position, "test_accuracy": 0.9, "d_cos2_convs": 3.0,
        "shift_direct": shift if position == "before_bn" else None,
        "shift_through_linear": shift if position == "before_conv" else None,
        "d_cos2_after_dropout": 5.0 if position == "before_conv" else None,
        "fan_in_after_dropout": 144.0 if position == "before_conv" else None,
    }


def test_report_has_a_line_per_width_and_the_family_table():
    rows = [_row(k, p, 1.5) for k in (1, 2) for p in ("none", "before_bn", "before_conv")]
    cos2 = [{"model": "wrn-10-1", "family": "wide_resnet", "d_cos2_convs": 4.0, "conv_layers": 11,
             "test_accuracy": 0.9, "paper_c10": 52.7, "paper_c100": 44.3}]
    text = width.report(rows, cos2, "digits", 8, 0.5)
    assert len([line for line in text.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]) == 2
    assert "| wrn-10-1 | wide_resnet | 11 | 0.9000 | - | 4.00 | 52.7 / 44.3 |" in text


def test_figure_plots_shift_and_accuracy_against_width():
    rows = [_row(k, p, 1.0 + 1 / k) for k in (1, 2, 4) for p in ("none", "before_bn", "before_conv")]
    fig = width.figure(rows)
    shift_lines = fig.axes[0].get_lines()
    assert list(shift_lines[0].get_xdata()) == [1, 2, 4]
    common.pyplot().close(fig)


def test_unknown_family_fails_before_any_training(tmp_path):
    with pytest.raises(ValueError, match="Received: name='preresnet20'"):
        width.run([1], "digits", families=("preresnet20",), study=study.StudyConfig(directory=str(tmp_path)))
    assert not any(tmp_path.iterdir())


def test_family_statistics_add_the_initial_kernels_mean():
    model = _with_ones_kernels(zoo.get("wrn-10-1", input_shape=(8, 8, 1)))
    stats = width.family_statistics(model, {"seed": 0})
    # All-ones kernels have d·cos²θ = d; fresh He-normal kernels are near 1.
    assert stats["d_cos2_convs"] > 100 and 0.3 < stats["d_cos2_init"] < 3
