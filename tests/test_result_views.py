"""What a user sees of the results: a metrics file shaped for DVC's tables, every chart drawn once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MAX_HEADLINE_METRICS = 41  # dvc exp show draws one column per number; measures.csv and the report hold the rest
# (41: the 37 of before and the rejection scenario's four, pooled AURC / AUGRC of the meta classifier and best baseline)


def leaves(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_the_metrics_file_holds_only_the_headline_numbers():
    names = list(leaves(json.loads((ROOT / "metrics" / "scenarios.json").read_text())))
    assert len(names) <= MAX_HEADLINE_METRICS, len(names)
    assert not [n for n in names if n.endswith(".accuracy") and not n.startswith("cnn.")]  # AUROC is the headline
    assert {"claims.a", "cnn.digits.errors", "misclassification.digits.gradient.logistic.auroc",
            "unknown.pooled.softmax/entropy.threshold.auroc"} <= set(names)


def test_no_chart_is_drawn_twice_by_dvc_plots():
    """A PNG under an image folder declared as a top-level plot must not be the picture of a Vega plot
    (plot data ``<chart>_<input>.json`` or ``<chart>.json``) that DVC draws anyway."""
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    vega, images = [], []
    for entry in dvc_yaml["plots"]:
        if isinstance(entry, str):
            images += sorted((ROOT / entry).glob("*.png")) if (ROOT / entry).is_dir() else [ROOT / entry]
        else:
            (definition,) = entry.values()
            y = definition["y"]
            vega += [Path(f).stem for f in (y if isinstance(y, dict) else {})]
    assert vega and images
    drawn_twice = [p.name for p in images for chart in vega if chart == p.stem or chart.startswith(f"{p.stem}_")]
    assert not drawn_twice, drawn_twice


def test_the_auroc_bars_start_at_zero_and_carry_the_std_as_error_bars(tmp_path):
    """DVC draws both AUROC bar plots (of both projects) with .dvc/plots/auroc_bars.json: an x axis from 0 to 1
    and an error bar of mean ± std per input (the built-in bar_horizontal starts its axis near the smallest bar
    and has no error bar)."""
    out = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json", "-o", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, check=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    plots = json.loads(out.stdout)["data"]
    bars = {name: entries[0]["content"] for name, entries in plots.items() if "AUROC per input" in name}
    assert len(bars) == 4  # misclassification and unknown pooled, in dvc.yaml and openood/dvc.yaml
    for name, spec in bars.items():
        bar, errorbar = spec["layer"]
        assert bar["encoding"]["x"]["scale"] == {"domain": [0, 1], "zero": True}, name
        assert errorbar["mark"]["type"] == "errorbar" and errorbar["encoding"]["x2"]["field"] == "auroc_upper", name
        assert all("std" in row and "auroc" in row for row in spec["data"]["values"]), name
