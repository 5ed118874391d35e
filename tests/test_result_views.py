"""What a user sees of the results: a metrics file shaped for DVC's tables, every chart drawn once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MAX_HEADLINE_KEYS = 12  # dvc exp show draws one column per number: the headline file keeps to a few


def leaves(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def declared_metrics(dvc_yaml: dict) -> list[str]:
    return [next(iter(m)) if isinstance(m, dict) else m for stage in dvc_yaml["stages"].values()
            for m in stage.get("do", stage).get("metrics", [])]


def test_dvc_shows_only_the_headline_file_and_it_is_short_with_a_std_beside_every_auroc():
    """Both projects' evaluate stage declares one metrics file, metrics/headline.json: a few short keys, each AUROC
    with its std; scenarios.json (every scenario's AUROC, each with its std too) is an output, not a DVC metric."""
    keys = {}
    for folder, prefix in ((ROOT, ""), (ROOT / "openood", "oo_")):
        declared = declared_metrics(yaml.safe_load((folder / "dvc.yaml").read_text()))
        assert declared == ["metrics/train.json", "metrics/headline.json"], declared  # train's: the run-cache needs it
        names = list(leaves(json.loads((folder / "metrics" / "headline.json").read_text())))
        assert all(n.startswith(prefix) for n in names), names  # evaluate.headline_prefix of each project
        names = [n.removeprefix(prefix) for n in names]
        keys[folder.name] = set(names)
        assert len(names) <= MAX_HEADLINE_KEYS and max(map(len, names)) <= 16, names
        aurocs = [n for n in names if n.startswith(("mis_", "ood_")) and not n.endswith("_std")]
        assert aurocs and all(f"{n}_std" in names for n in aurocs), names
        detail = list(leaves(json.loads((folder / "metrics" / "scenarios.json").read_text())))
        assert all(f"{n}_std" in detail for n in detail if n.endswith(".auroc")), folder
        assert {"claims.a", "misclassification.digits.gradient.logistic.auroc_std"} <= set(detail) or folder.name == "openood"
    assert keys["openood"] == keys[ROOT.name]  # the same numbers, in columns of their own (DVC would prefix shared keys)


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
    singles = {name: entries[0]["content"] for name, entries in plots.items() if "AUROC per single score" in name}
    assert len(singles) == 4  # every detector and baseline: the same two scenarios, both projects
    for name, spec in singles.items():
        inputs = {row["input"] for row in spec["data"]["values"]}
        assert "detector/knn (threshold)" in inputs and "softmax/entropy (threshold)" in inputs, name
    bars.update(singles)
    for name, spec in bars.items():
        bar, errorbar = spec["layer"]
        assert bar["encoding"]["x"]["scale"] == {"domain": [0, 1], "zero": True}, name
        assert errorbar["mark"]["type"] == "errorbar" and errorbar["encoding"]["x2"]["field"] == "auroc_upper", name
        assert all("std" in row and "auroc" in row for row in spec["data"]["values"]), name
