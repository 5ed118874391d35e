"""The report's tables, plot data and figures from a hand-made summary table: values checked cell by
cell against the summary they come from, and against scikit-learn for the ROC points."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_curve

from gradmeta.core.errors import GradmetaError
from gradmeta.evaluation.field import field_rows, field_section, field_table
from gradmeta.evaluation.plots import roc_points, write_auroc_bars, write_roc
from gradmeta.evaluation.report import main_table, readme_section, single_metric_table

MEASURES = ("accuracy", "auroc", "aupr_wrong_positive", "aupr_correct_positive", "fpr_at_95tpr_correct_positive",
            "fpr_at_95tpr_wrong_positive")


def row(scenario, test_set, inp, clf, auroc, std=0.01, group=""):
    """A summary row; every other measure is auroc - 0.1 (std 0.02) so cells can be told apart."""
    values = {f"{m}_mean": auroc - 0.1 for m in MEASURES} | {f"{m}_std": 0.02 for m in MEASURES}
    values |= {"auroc_mean": auroc, "auroc_std": std}
    return {"scenario": scenario, "test_set": test_set, "group": group, "input": inp, "classifier": clf, **values}


@pytest.fixture
def summary():
    return pd.DataFrame([
        row("misclassification", "digits", "softmax/entropy", "threshold", 0.91),
        row("misclassification", "digits", "grad/all/l2", "threshold", 0.93),
        row("misclassification", "digits", "detector/knn", "threshold", 0.88),
        row("misclassification", "digits", "gradient", "logistic", 0.95, 0.004),
        row("unknown", "noise", "softmax/entropy", "threshold", 0.97),
        row("unknown", "noise", "gradient", "logistic", 0.99),
        row("unknown", "pooled", "softmax/entropy", "threshold", 0.92),
        row("unknown", "pooled", "gradient", "logistic", 0.94),
        row("unknown", "pooled", "detector/knn", "threshold", 0.96),
        row("known_unknowns", "noise", "gradient", "logistic", 0.995, group="seen"),
        row("known_unknowns", "pooled", "gradient", "logistic", 0.97, group="seen"),
    ])


def table_cells(table, first_cell):
    line = next(line for line in table.splitlines() if line.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_main_table_cells_come_from_their_summary_rows(summary):
    table = main_table(summary, [("gradient", "logistic"), ("softmax", "logistic")], "digits", ["noise"])
    head = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    assert head == ["input", "classifier", "misclass. accuracy", "misclass. AUROC", "noise AUROC", "pooled AUROC",
                    "known unknowns: seen", "unseen"]
    assert table_cells(table, "`gradient`") == ["`gradient`", "logistic", "0.850 ± 0.020", "0.950 ± 0.004",
                                                "0.990 ± 0.010", "0.940 ± 0.010", "0.995", "–"]
    assert table_cells(table, "`softmax`")[2:] == ["–"] * 6  # a feature set with no rows: every cell missing


def test_single_metric_table_sorts_by_misclassification_auroc(summary):
    table = single_metric_table(summary, "digits", ["noise"])
    order = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert order == ["`grad/all/l2`", "`softmax/entropy`", "`detector/knn`"]  # 0.93, 0.91, 0.88
    assert table_cells(table, "`softmax/entropy`")[4:] == ["0.970 ± 0.010", "0.920 ± 0.010"]
    # each row says which sign convention it follows: a detector its own, a raw metric meta-train's
    assert table_cells(table, "`detector/knn`")[1] == "own"
    assert table_cells(table, "`softmax/entropy`")[1] == table_cells(table, "`grad/all/l2`")[1] == "meta-train"


def test_field_rows_table_and_section(summary):
    rows = field_rows(["softmax/entropy", "detector/knn", "grad/all/l2"], ["gradient", "softmax"], "logistic")
    assert rows == [("softmax/entropy", "threshold"), ("detector/knn", "threshold"), ("gradient", "logistic")]
    table = field_table(summary, rows, "digits", ["noise"])
    # input, classifier, misclass., noise, then the pooled measures: AUROC, two FPR@95, AUPR-In, AUPR-Out, seen
    assert table_cells(table, "`detector/knn`") == ["`detector/knn`", "threshold", "0.880 ± 0.010", "–",
                                                    "0.960 ± 0.010", "0.860 ± 0.020", "0.860 ± 0.020",
                                                    "0.860 ± 0.020", "0.860 ± 0.020", "–"]
    assert table_cells(table, "`gradient`")[-1] == "0.970 ± 0.010"
    assert field_section(summary, [("softmax/entropy", "threshold"), ("gradient", "logistic")], "digits", []) == []
    assert field_section(summary, rows, "digits", ["noise"])[0] == "## Gradient metrics vs the field"


def test_roc_points_are_points_of_scikit_learns_curve_thinned_with_both_ends():
    rng = np.random.default_rng(0)
    target = (rng.random(3000) < 0.7).astype(int)
    scores = target + rng.normal(0, 1, 3000)
    fpr, tpr, _ = roc_curve(target, scores)
    points = roc_points(scores, target, max_points=50)
    assert 2 < len(points) <= 50
    assert (points[0]["fpr"], points[0]["tpr"]) == (0.0, 0.0) and (points[-1]["fpr"], points[-1]["tpr"]) == (1.0, 1.0)
    full = set(zip(fpr.tolist(), tpr.tolist()))
    assert all((p["fpr"], p["tpr"]) in full for p in points)
    assert [p["fpr"] for p in points] == sorted(p["fpr"] for p in points)


def test_auroc_bars_and_roc_files(summary, tmp_path):
    write_auroc_bars(summary, [("gradient", "logistic"), ("softmax", "logistic"), ("softmax/entropy", "threshold")],
                     "digits", tmp_path / "plots", tmp_path / "figures")
    bars = json.loads((tmp_path / "plots" / "auroc_unknown.json").read_text())
    assert bars == [{"input": "gradient (logistic)", "auroc": 0.94, "std": 0.01},
                    {"input": "softmax/entropy (threshold)", "auroc": 0.92, "std": 0.01}]  # no row: no bar
    assert (tmp_path / "figures" / "auroc_misclassification.png").read_bytes()[:4] == b"\x89PNG"
    rng = np.random.default_rng(1)
    target = (rng.random(200) < 0.5).astype(int)
    roc = {("unknown", "pooled", "", "gradient", "logistic"): (target + rng.normal(0, 1, 200), target)}
    write_roc(roc, {"gradient": ("gradient", "logistic")}, "digits", tmp_path / "plots", tmp_path / "figures")
    points = json.loads((tmp_path / "plots" / "roc_unknown_gradient.json").read_text())
    assert points == [{k: round(v, 4) for k, v in p.items()} for p in roc_points(*roc[next(iter(roc))])]
    assert (tmp_path / "figures" / "roc_unknown.png").is_file()
    assert not (tmp_path / "figures" / "roc_misclassification.png").exists()  # nothing to draw: no figure


def test_readme_section_needs_the_report_markers():
    with pytest.raises(GradmetaError, match="main table or claims section not found"):
        readme_section("# a report without its markers\n")


def test_every_table_marks_an_unstable_auroc_cell_and_only_those(summary):
    shaky = pd.concat([summary, pd.DataFrame([row("unknown", "noise", "detector/knn", "threshold", 0.6, 0.3)])],
                      ignore_index=True)
    rows = [("detector/knn", "threshold")]
    field = table_cells(field_table(shaky, rows, "digits", ["noise"], unstable_std=0.05), "`detector/knn`")
    assert field[3] == "0.600 ± 0.300†" and field[2] == "0.880 ± 0.010"
    assert not any(c.endswith("†") for c in field[5:9])  # FPR and AUPR cells (std 0.02) are not marked
    single = table_cells(single_metric_table(shaky, "digits", ["noise"], unstable_std=0.05), "`detector/knn`")
    assert single[4] == "0.600 ± 0.300†" and single[2] == "0.780 ± 0.020"  # accuracy is never marked
    assert "†" not in field_table(shaky, rows, "digits", ["noise"])  # no threshold: no marks


def test_the_evaluate_stage_owns_only_its_own_file_names(tmp_path):
    from gradmeta.evaluation.run import own_files

    figures = tmp_path / "figures"
    figures.mkdir()
    for name in ("roc_unknown.png", "auroc_unknown.png", "risk_coverage.png", "notes.png", "roc.txt"):
        (figures / name).write_bytes(b"x")
    assert [p.name for p in own_files(figures)] == ["auroc_unknown.png", "risk_coverage.png", "roc_unknown.png"]
