"""Model files: gradmeta's own checkpoint (``models/cnn.pt``) and a user's trained weights.

gradmeta's checkpoint is a torch zip of ``{"format", "config", "state_dict", "info"}``: the architecture
config (a :mod:`gradmeta.cnn.architectures` entry; the paper's CNN writes no ``kind``, so its file keeps
its bytes) and the weights. A user's weights (``train.checkpoint``) are a state_dict saved by
``torch.save`` (a mapping of names to tensors, optionally under ``"state_dict"`` or ``"model"``, or with
DataParallel's ``module.`` prefix), or a ``.safetensors`` file. Nothing in either is executed:
torch files are read with ``weights_only=True`` and safetensors by their JSON header and raw bytes.
Every name and shape is compared with the architecture's model laid out on torch's meta device
before a model is allocated, and the first mismatch is named.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gradmeta.cnn.architectures import DEFAULT_KIND, architecture_from_dict, model_of
from gradmeta.core.atomic import write_bytes
from gradmeta.core.errors import GradmetaError

CHECKPOINT_FORMAT = "gradmeta.cnn/1"
MAX_HEADER_BYTES = 100_000_000  # a safetensors header (JSON); a ResNet-50's is about 30 KB
SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64,
                      "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def save_model(path: str | os.PathLike[str], model: nn.Module, info: dict[str, Any] | None = None) -> None:
    """Write weights + architecture config (+ optional info) atomically; same model gives the same bytes."""
    buf = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"format": CHECKPOINT_FORMAT, "config": model.config.to_dict(), "state_dict": state,
                "info": info or {}}, buf)
    write_bytes(path, buf.getvalue())


def _torch_load(p: Path, what: str) -> Any:
    if not zipfile.is_zipfile(p):  # torch.save writes a zip; a bare pickle is never read (torch would warn first)
        raise GradmetaError(f"{p}: not a {what} (not a torch zip file)")
    try:
        with warnings.catch_warnings():  # torch's warnings about the pickle inside: our error says it better
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(p, map_location="cpu", weights_only=True)  # weights only: no code runs
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        # torch's text for an unpicklable file advises weights_only=False: never right for a model file
        raise GradmetaError(f"{p}: not a {what} (unreadable: {type(exc).__name__})") from None


def load_model(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> nn.Module:
    """Load a checkpoint written by :func:`save_model`, in eval mode, on ``device``; its ``info`` (source, train
    size, seed, and the user's checkpoint it was loaded from) is the model's ``checkpoint_info``."""
    p = Path(path)
    if not p.is_file():
        raise GradmetaError(f"{p}: model file not found (run the train stage first)")
    ckpt = _torch_load(p, "gradmeta model checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise GradmetaError(f"{p}: not a gradmeta model checkpoint (expected format {CHECKPOINT_FORMAT})")
    config, weights = ckpt.get("config"), ckpt.get("state_dict")
    if not isinstance(config, dict):
        raise GradmetaError(f"{p}: not a gradmeta model checkpoint (its config is not a mapping of architecture params)")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise GradmetaError(f"{p}: not a gradmeta model checkpoint (its state_dict is not a mapping of names to tensors)")
    cfg = architecture_from_dict(config, prefix="config", source=str(p))
    check_weights(weights, cfg, p)
    model = model_of(cfg)  # allocated only now that the weights are known to fit it
    model.load_state_dict(weights)
    info = ckpt.get("info")
    model.checkpoint_info = info if isinstance(info, dict) else {}  # where the weights came from (train.json's record)
    return model.to(device).eval()


def check_weights(weights: dict[str, torch.Tensor], cfg: Any, where: str | os.PathLike[str]) -> None:
    """Refuse ``weights`` unless they are exactly the tensors of ``cfg``'s model (names, shapes, finite
    floats); the model is laid out on torch's meta device for the comparison, so nothing is allocated."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in model_of(cfg).state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        what = (f"{len(missing)} missing (the first: {missing[0]})" if missing else "") + (
            "; " if missing and unexpected else "") + (
            f"{len(unexpected)} unexpected (the first: {unexpected[0]})" if unexpected else "")
        raise GradmetaError(f"{where}: its weights are not those of a {getattr(cfg, 'kind', DEFAULT_KIND)} of these "
                            f"params: {what}")
    for name, shape in expected.items():
        if found[name] != shape:
            raise GradmetaError(f"{where}: weights do not match the architecture of its config ({name}: "
                                f"{found[name]} where the config needs {shape})")
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise GradmetaError(f"{where}: weight {name} holds NaN, infinite or non-float values (a diverged or "
                                "damaged model); retrain it (train.learning_rate may be too large)")
        if not tensor.is_floating_point() and not name.endswith("num_batches_tracked"):
            raise GradmetaError(f"{where}: weight {name} is {tensor.dtype}, not floating point")


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A user's trained weights: a torch state_dict file or a ``.safetensors`` file (see the module
    docstring); floats as they are stored, names without DataParallel's ``module.`` prefix."""
    p = Path(path)
    if p.suffix == ".safetensors":
        weights = _read_safetensors(p)
    else:
        raw = _torch_load(p, "state_dict file")
        if isinstance(raw, dict):
            for key in ("state_dict", "model"):
                if isinstance(raw.get(key), dict):
                    raw = raw[key]
                    break
        if not isinstance(raw, dict) or not raw or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                           for k, v in raw.items()):
            raise GradmetaError(f"{p}: not a state_dict (a mapping of parameter names to tensors, as "
                                "torch.save(model.state_dict(), path) writes it)")
        weights = raw
    if all(k.startswith("module.") for k in weights):
        weights = {k.removeprefix("module."): v for k, v in weights.items()}
    return weights


def _read_safetensors(p: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file: an 8-byte little-endian header size, a JSON header naming each
    tensor's dtype, shape and byte range, then the raw bytes; every range is checked before it is read."""
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise GradmetaError(f"{p}: not a safetensors file (shorter than its header)")
        (header_size,) = struct.unpack("<Q", head)
        if header_size > min(MAX_HEADER_BYTES, size - 8):
            raise GradmetaError(f"{p}: not a safetensors file (a header of {header_size} bytes)")
        try:
            header = json.loads(f.read(header_size))
        except ValueError:
            raise GradmetaError(f"{p}: not a safetensors file (its header is not JSON)") from None
        if not isinstance(header, dict):
            raise GradmetaError(f"{p}: not a safetensors file (its header is not a JSON object)")
        data_size = size - 8 - header_size
        out = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            out[name] = _safetensor(p, f, 8 + header_size, data_size, name, entry)
    return out


def _safetensor(p: Path, f: Any, base: int, data_size: int, name: str, entry: Any) -> torch.Tensor:
    try:
        dtype = SAFETENSORS_DTYPES[entry["dtype"]]
        shape = tuple(int(d) for d in entry["shape"])
        start, end = (int(o) for o in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise GradmetaError(f"{p}: tensor {name!r}: not a safetensors entry (dtype, shape, data_offsets)") from None
    if dtype is None:
        raise GradmetaError(f"{p}: tensor {name!r} is {entry['dtype']}; store it as F32 or F16")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if any(d < 0 for d in shape) or not 0 <= start <= end <= data_size or end - start != count * np.dtype(dtype).itemsize:
        raise GradmetaError(f"{p}: tensor {name!r}: shape {shape} of {entry['dtype']} does not fit bytes {start}..{end}")
    f.seek(base + start)
    return torch.from_numpy(np.frombuffer(f.read(end - start), dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy())


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file (used to tie features to the model that made them)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
