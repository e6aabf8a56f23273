"""experiments.cifar_tables: the paper's CIFAR tables laid out from the runs' CSV files."""

from experiments import cifar_tables, common


def _write(out, table, net, dataset, settings):
    rows = [
        {"dataset": dataset, "seed": seed, "position": p, "type": t, "rate": r,
         "test_accuracy": acc, "best_test_accuracy": acc + 0.01, "recalibrated_accuracy": acc + 0.02}
        for seed in (0, 1) for p, t, r, acc in settings
    ]
    (out / f"cifar-{table}-{net}-{dataset}.csv").write_text(common.csv_text(rows, cifar_tables.COLUMNS))


def test_positions_table_has_the_papers_layout(tmp_path):
    for dataset, acc in (("cifar10", 0.9), ("cifar100", 0.7)):
        _write(tmp_path, "positions", "preresnet-110", dataset,
               [("before_bn", "bernoulli", 0.5, acc), ("before_conv", "bernoulli", 0.5, acc + 0.05)])
    text = cifar_tables.paper_table(tmp_path, "positions", ["preresnet-110"])
    assert "| net | C10 (a) | C10 (b) | C100 (a) | C100 (b) |" in text
    assert "| PreResNet | 10.00 → 8.00 | 5.00 → 3.00 | 30.00 → 28.00 | 25.00 → 23.00 |" in text
    assert "| PreResNet | 8.42 → 6.42 | 5.85 → 5.77 | 32.45 → 26.57 | 25.50 → 25.20 |" in text  # the paper's
    assert "ResNeXt" not in text


def test_head_table_takes_its_zero_column_from_the_baseline(tmp_path):
    _write(tmp_path, "baseline", "wrn-28-10", "cifar10", [("none", "-", 0.0, 0.96)])
    _write(tmp_path, "head", "wrn-28-10", "cifar10",
           [("head", "bernoulli", r, 0.95) for r in (0.1, 0.2, 0.3, 0.5)])
    text = cifar_tables.paper_table(tmp_path, "head", ["wrn-28-10"])
    assert "| net | data set | 0.0 | 0.1 | 0.2 | 0.3 | 0.5 |" in text
    assert "| WRN | C10 | 4.00 (3.00) | 5.00 (4.00) | 5.00 (4.00) | 5.00 (4.00) | 5.00 (4.00) |" in text
    assert "| WRN | C100 | - | - | - | - | - |" in text  # not run yet
    assert "| WRN | C10 | 3.97 | 3.90 | 4.00 | 3.93 | 3.84 |" in text


def test_figure_has_a_pair_of_bars_per_setting():
    rows = [
        {"position": p, "type": "bernoulli", "rate": 0.5, "test_accuracy": 0.9, "recalibrated_accuracy": 0.92}
        for p in ("before_bn", "before_conv")
    ]
    fig = cifar_tables.figure(rows, "t")
    heights = [round(bar.get_height(), 6) for bar in fig.axes[0].patches]
    assert heights == [10.0, 10.0, 8.0, 8.0]
    common.pyplot().close(fig)


def test_report_gives_final_best_epoch_and_re_estimated_error_per_setting():
    rows = [
        {"position": "head", "type": "bernoulli", "rate": 0.5, "test_accuracy": acc, "best_test_accuracy": best,
         "recalibrated_accuracy": acc, "shift_max": 1.0, "train_gap": 0.0}
        for acc, best in ((0.90, 0.92), (0.92, 0.94))
    ]
    text = cifar_tables.report(rows, "head", "wrn-28-10", "cifar10", 200)
    assert "| head | bernoulli | 0.5 | 2 | 9.00 ± 1.41 | 7.00 ± 1.41 | 9.00 ± 1.41 |" in text


def test_a_row_not_run_reads_as_empty(tmp_path):
    assert cifar_tables.read_rows(tmp_path, "uout", "wrn-28-10", "cifar10") == []
    text = cifar_tables.paper_table(tmp_path, "uout", ["wrn-28-10"])
    assert "| WRN | C10 | - | - | - | - |" in text and "The paper" not in text


def test_baseline_table_gives_final_and_best_epoch_error_per_net(tmp_path):
    _write(tmp_path, "baseline", "densenet-bc-100-12", "cifar100", [("none", "-", 0.0, 0.75)])
    text = cifar_tables.paper_table(tmp_path, "baseline", ["densenet-bc-100-12"])
    assert "| net | C10 | C100 |" in text
    assert "| DenseNet | - | 25.00 (24.00) |" in text
    assert "| DenseNet | 4.72 | 22.58 |" in text  # the paper's


def test_uout_table_gives_final_and_re_estimated_error_per_beta(tmp_path):
    _write(tmp_path, "uout", "wrn-28-10", "cifar10",
           [("before_conv", "uout", b, 0.9) for b in (0.1, 0.2, 0.3, 0.5)])
    text = cifar_tables.paper_table(tmp_path, "uout", ["wrn-28-10"])
    assert "| net | data set | 0.1 | 0.2 | 0.3 | 0.5 |" in text
    assert "| WRN | C10 | " + " | ".join(["10.00 → 8.00"] * 4) + " |" in text
