"""OpenOOD's CIFAR-10 benchmark on this machine: the stand-in protocol end to end, ResNet-18's extraction
throughput, and the full protocol's projected time.

    python benchmarks/openood_protocol.py --protocol [--keep] --json benchmarks/results/openood_protocol.json
    python benchmarks/openood_protocol.py --throughput 512 --json benchmarks/results/openood_throughput.json
    python benchmarks/openood_protocol.py --throughput 512 --device cuda      # on a machine with a GPU

``--protocol``: a copy of the repository (git-tracked files, as a fresh clone has them) runs
``dvc repro openood/dvc.yaml`` as committed (the stand-ins, the small ResNet, the preset's sizes) and
prints each stage's wall time; ``--keep`` copies the run's openood/dvc.lock and openood/metrics back
into this checkout (the committed results of the preset).

``--throughput N``: a copy whose OpenOOD project loads a seeded, untrained ResNet-18 (32x32) as its
checkpoint (the throughput does not depend on the weights), fits the detectors on 500 stand-in training
images, then times the stage ``extract@cifar10-0`` on N images, a whole process per round, pinned and
native kernels alternating (``--rounds`` each, median). Images/s = N / the stage's seconds (start-up
included). The projection: the full protocol's images (:data:`FULL_PROTOCOL`) at that rate.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import click
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from repro_under_load import ROOT, copy_repo, timed_repro  # noqa: E402

# OpenOOD v1.5's CIFAR-10 sets at full size: the ID test set and every near- and far-OOD set (TIN as
# OpenOOD lists it), plus the 50,000 training images the detectors are fitted on (a forward pass each).
FULL_PROTOCOL = {"cifar10 test": 10_000, "cifar100": 10_000, "tin": 7_793, "mnist": 70_000, "svhn": 26_032,
                 "texture": 5_640, "places365": 35_195}
TRAIN_IMAGES = 50_000
STAGE = "openood/dvc.yaml:extract@cifar10-0"


def protocol(keep: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="gradmeta-openood-") as tmp:
        repo = Path(tmp)
        copy_repo(repo)
        sizes = yaml.safe_load((repo / "openood/params.yaml").read_text())["data"]["concepts"]
        total, stages = timed_repro(repo, force=False, echo=True, targets=("openood/dvc.yaml",))
        if keep:
            shutil.copy(repo / "openood/dvc.lock", ROOT / "openood/dvc.lock")
            shutil.rmtree(ROOT / "openood/metrics", ignore_errors=True)
            shutil.copytree(repo / "openood/metrics", ROOT / "openood/metrics")
    print(f"stand-in protocol: {total:.0f} s end to end")
    for name, seconds in stages.items():
        print(f"  {name:40s} {seconds:8.1f} s")
    return {"run": "stand-in protocol, openood/params.yaml as committed, pinned", "sizes": sizes,
            "total_s": round(total, 1), "stages_s": {k: round(v, 1) for k, v in stages.items()}}


def _throughput_copy(repo: Path, n: int, device: str) -> None:
    """The copy's OpenOOD project with a seeded ResNet-18 checkpoint and the sizes of the throughput run."""
    sys.path.insert(0, str(ROOT / "src"))
    import torch  # noqa: PLC0415

    from gradmeta.cnn.architectures import build_model, read_architecture  # noqa: PLC0415
    from gradmeta.core.params import ParamReader  # noqa: PLC0415

    architecture = {"kind": "resnet18_32x32", "in_channels": 3}
    model = build_model(read_architecture(ParamReader(architecture, "train.architecture")), seed=0)
    (repo / "openood/user_data/checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), repo / "openood/user_data/checkpoints/resnet18_seeded.pt")
    path = repo / "openood/params.yaml"
    params = yaml.safe_load(path.read_text())
    for name, spec in params["data"]["concepts"].items():
        spec.update({"train": 500, "test": n} if name == "cifar10" else {"test": 32})
    params["train"].update(checkpoint="user_data/checkpoints/resnet18_seeded.pt", device=device,
                           architecture=architecture)
    params["extract"]["device"] = params["detectors"]["device"] = device
    params["detectors"]["vim"] = {"dim": 256}
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def throughput(n: int, rounds: int, device: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="gradmeta-openood-") as tmp:
        repo = Path(tmp)
        copy_repo(repo)
        _throughput_copy(repo, n, device)
        start = time.perf_counter()
        _, stages = timed_repro(repo, force=False, echo=True, targets=(STAGE,))
        print(f"set-up (download, load, detectors on 500 train images, first extract): "
              f"{time.perf_counter() - start:.0f} s; stages {json.dumps({k: round(v) for k, v in stages.items()})}")
        seconds: dict[str, list[float]] = {"pinned": [], "native": []}
        for _ in range(rounds):
            for mode in ("pinned", "native"):
                env = {"GRADMETA_NATIVE_KERNELS": "1"} if mode == "native" else {"GRADMETA_NATIVE_KERNELS": ""}
                total, _ = timed_repro(repo, force=True, targets=("-s", STAGE), env=env)
                seconds[mode].append(total)
                print(f"  {mode}: {total:.1f} s for {n} images ({n / total:.1f} images/s)", flush=True)
    out = {"model": "resnet18_32x32 (seeded, untrained)", "device": device, "images": n, "rounds": rounds,
           "detectors_fitted_on": 500, "stage": STAGE, "stages_of_set_up_s": {k: round(v, 1) for k, v in stages.items()}}
    full = sum(FULL_PROTOCOL.values())
    for mode, values in seconds.items():
        rate = n / statistics.median(values)
        out[mode] = {"stage_s": [round(v, 1) for v in values], "images_per_s": round(rate, 2),
                     "full_protocol_extract_h": round(full / rate / 3600, 2)}
    out["full_protocol_images"] = {**FULL_PROTOCOL, "total": full, "plus train images for the detectors": TRAIN_IMAGES}
    for mode in seconds:
        print(f"{mode}: {out[mode]['images_per_s']} images/s; the full protocol's {full:,} evaluation images "
              f"would take {out[mode]['full_protocol_extract_h']} h to extract")
    return out


@click.command()
@click.option("--protocol", "run_protocol", is_flag=True, help="Time the stand-in protocol end to end.")
@click.option("--keep", is_flag=True, help="With --protocol: copy its openood/dvc.lock and metrics back here.")
@click.option("--throughput", "images", type=int, default=None, help="Time extract@cifar10-0 on this many images.")
@click.option("--rounds", default=2, show_default=True)
@click.option("--device", default="cpu", type=click.Choice(["cpu", "cuda"]), show_default=True)
@click.option("--json", "json_path", default=None, help="Also write the figures here.")
def main(run_protocol: bool, keep: bool, images: int | None, rounds: int, device: str, json_path: str | None) -> None:
    if not run_protocol and images is None:
        raise click.UsageError("give --protocol or --throughput N")
    figures = {"machine": machine()}
    if run_protocol:
        figures["protocol"] = protocol(keep)
    if images is not None:
        figures["throughput"] = throughput(images, rounds, device)
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=1) + "\n")


def machine() -> str:
    """The CPU model and core count (the figures are this machine's)."""
    import os  # noqa: PLC0415

    name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    return f"{name}, {os.cpu_count()} logical CPUs"


if __name__ == "__main__":
    main()
