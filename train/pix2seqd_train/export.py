"""Export for the engine (safetensors + JSON, BatchNorm folded) and sharded training checkpoints.

    python -m pix2seqd_train.export --checkpoint DIR --out assets/web [--dtype fp16|fp32] [--weights ema|model] [--card card.json]

Exported model = NAME.safetensors (every parameter, fp16 or fp32, BatchNorm folded into the
preceding conv as `...conv.weight` / `...conv.bias`, no BN tensors) + NAME.json
({"format", "format_version", "dtype", "bn_folded", "config", "metadata"}), see docs/model-format.md.

Checkpoint = a directory with `index.json` (the state's structure, non-tensor values inline) and
`shard-NNNNN.safetensors` files of at most 16 MB; a tensor larger than a shard is split into flat
chunks. The state is any nesting of dicts / lists / tuples / tensors / JSON scalars, normally
{"config": cfg dict, "model": state_dict, "ema": state_dict, "optimizer": ..., "step": int}.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .config import ModelConfig, to_json, validate
from .model.layers import fold_all_batchnorm_
from .model.pix2seqd import Pix2SeqD, build_model

FORMAT_NAME = "pix2seqd"
FORMAT_VERSION = 1
DTYPES = {"fp16": torch.float16, "fp32": torch.float32}
SHARD_BYTES = 16 * 1024 * 1024


# ---- model export ---------------------------------------------------------------------------------
def folded_state_dict(model: Pix2SeqD) -> dict[str, torch.Tensor]:
    """The eval-mode parameters with every BatchNorm folded into its conv (a copy; `model` is untouched)."""
    folded = copy.deepcopy(model).eval()
    fold_all_batchnorm_(folded)
    return {name: tensor.detach().clone() for name, tensor in folded.state_dict().items()}


def _as_model(model_or_state: Pix2SeqD | dict[str, torch.Tensor], cfg: ModelConfig) -> Pix2SeqD:
    if isinstance(model_or_state, Pix2SeqD):
        return model_or_state
    model = build_model(cfg, load_pretrained=False)
    if not any(name.endswith(".running_mean") for name in model_or_state):
        model.prepare_folded_structure_()  # a model fine-tuned from a shipped (folded) one
    model.load_state_dict(model_or_state, strict=True)
    return model


def export(model_or_ema_state: Pix2SeqD | dict[str, torch.Tensor], cfg: ModelConfig, out_stem: str | Path,
           dtype: str = "fp16", card_extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Writes OUT.safetensors and OUT.json; returns their paths. `card_extra` (training data,
    metrics, ...) goes into the JSON's "metadata"."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}")
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    model = _as_model(model_or_ema_state, cfg).float().cpu()
    tensors = {name: t.to(DTYPES[dtype]).contiguous() for name, t in folded_state_dict(model).items()}
    weights_path = out_stem.with_name(out_stem.name + ".safetensors")
    json_path = out_stem.with_name(out_stem.name + ".json")
    save_file(tensors, str(weights_path), metadata={"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION),
                                                     "dtype": dtype})
    card = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "dtype": dtype,
        "bn_folded": True,
        "parameters": int(sum(t.numel() for t in tensors.values())),
        "config": cfg.to_dict(),
        "metadata": dict(card_extra or {}),
    }
    json_path.write_text(to_json(card) + "\n")
    return weights_path, json_path


def load_exported(stem: str | Path, device: str | torch.device = "cpu") -> Pix2SeqD:
    """Rebuilds the model from STEM.json + STEM.safetensors: BN-free (folded) structure, fp32, eval."""
    stem = Path(stem)
    if stem.suffix in (".json", ".safetensors"):
        stem = stem.with_suffix("")
    card = json.loads(stem.with_name(stem.name + ".json").read_text())
    if card.get("format") != FORMAT_NAME:
        raise ValueError(f"{stem}.json is not a {FORMAT_NAME} model card")
    cfg = ModelConfig.from_dict(card["config"])
    model = build_model(cfg, load_pretrained=False)
    model.prepare_folded_structure_()
    tensors = load_file(str(stem.with_name(stem.name + ".safetensors")))
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    return model.to(device).eval()


# ---- sharded checkpoints --------------------------------------------------------------------------
def _flatten(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors by {"__tensor__": key} references, collecting them in `tensors`."""
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().to("cpu", copy=True).contiguous()  # copy: no shared storage
        return {"__tensor__": path}
    if isinstance(value, dict):  # keys kept as they are (optimizer states use int keys)
        for key in value:
            if not isinstance(key, (str, int, float, bool)):
                raise TypeError(f"checkpoint: dict key {key!r} at {path} is not a JSON scalar")
        return {"__dict__": [[k, _flatten(v, f"{path}/{i}", tensors)] for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, (list, tuple)):
        items = [_flatten(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint: cannot store {type(value).__name__} at {path}")


def _unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__dict__" in value:
            return {k: _unflatten(v, tensors) for k, v in value["__dict__"]}
        if "__tuple__" in value:
            return tuple(_unflatten(v, tensors) for v in value["__tuple__"])
    if isinstance(value, list):
        return [_unflatten(v, tensors) for v in value]
    return value


def _pack_shards(tensors: dict[str, torch.Tensor], shard_bytes: int) -> tuple[list[dict[str, torch.Tensor]], dict[str, Any]]:
    """Greedy packing into shards; tensors above `shard_bytes` are split into flat chunks."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    sizes = [0]
    chunks: dict[str, Any] = {}
    for key, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        pieces = {key: tensor}
        if nbytes > shard_bytes:
            per_chunk = max(1, shard_bytes // tensor.element_size())
            flat = tensor.reshape(-1)
            pieces = {f"{key}#chunk{i}": flat[s:s + per_chunk].clone()
                      for i, s in enumerate(range(0, flat.numel(), per_chunk))}
            chunks[key] = {"shape": list(tensor.shape), "parts": list(pieces)}
        for piece_key, piece in pieces.items():
            piece_bytes = piece.numel() * piece.element_size()
            if sizes[-1] and sizes[-1] + piece_bytes > shard_bytes:
                shards.append({})
                sizes.append(0)
            shards[-1][piece_key] = piece
            sizes[-1] += piece_bytes
    return shards, chunks


def save_checkpoint(directory: str | Path, state: dict[str, Any], shard_bytes: int = SHARD_BYTES) -> Path:
    """Writes `state` to `directory` atomically (a fresh sibling directory renamed into place)."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors: dict[str, torch.Tensor] = {}
    structure = _flatten(state, "state", tensors)
    shards, chunks = _pack_shards(tensors, shard_bytes)
    files = []
    for i, shard in enumerate(shards):
        name = f"shard-{i:05d}.safetensors"
        save_file(shard, str(tmp / name))
        files.append(name)
    index = {"format": "pix2seqd-checkpoint", "version": 1, "shards": files, "chunks": chunks,
             "state": structure}
    (tmp / "index.json").write_text(json.dumps(index))
    old = directory.with_name(directory.name + f".old-{os.getpid()}")
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Reads a directory written by save_checkpoint (tensors on the CPU)."""
    directory = Path(directory)
    index = json.loads((directory / "index.json").read_text())
    tensors: dict[str, torch.Tensor] = {}
    for name in index["shards"]:
        tensors.update(load_file(str(directory / name)))
    for key, info in index["chunks"].items():
        tensors[key] = torch.cat([tensors.pop(p) for p in info["parts"]]).reshape(info["shape"])
    return _unflatten(index["state"], tensors)


# ---- CLI --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export a training checkpoint for the pix2seqd engine.")
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory (save_checkpoint)")
    parser.add_argument("--out", required=True, help="output stem: writes OUT.safetensors and OUT.json")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp16")
    parser.add_argument("--weights", choices=["ema", "model"], default="ema",
                        help="which weights to export (EMA by default, as evaluation uses them)")
    parser.add_argument("--card", help="JSON file merged into the card's metadata (training data, metrics)")
    args = parser.parse_args(argv)

    state = load_checkpoint(args.checkpoint)
    cfg = ModelConfig.from_dict(state["config"])
    weights = state.get(args.weights) or state["model"]
    extra = json.loads(Path(args.card).read_text()) if args.card else {}
    # The card file may set the shipped sampler defaults (steps, td, postprocess) measured best.
    for key, value in extra.pop("sampler", {}).items():
        if not hasattr(cfg.sampler, key):
            raise ValueError(f"{args.card}: sampler has no setting {key!r}")
        setattr(cfg.sampler, key, value)
    validate(cfg)
    extra.setdefault("weights", args.weights if state.get(args.weights) else "model")
    for key in ("step", "epoch"):
        if key in state:
            extra.setdefault(key, state[key])
    weights_path, json_path = export(weights, cfg, args.out, args.dtype, extra)
    print(f"wrote {weights_path} and {json_path}")


if __name__ == "__main__":
    main()
