"""Training: ``python -m pix2seqd_train.train --config EXPERIMENT.json [--resume] [--out DIR]
[--max-steps N] [--device cpu|cuda]``; multi-GPU: ``torchrun --nproc_per_node G -m pix2seqd_train.train ...``.

An experiment JSON names the model config (a path, an inline config, or ``{"base": PATH,
"overrides": {...}, "classes_from": DATASET}``), the training datasets with their sampling weights,
the validation dataset and the optimisation recipe (see :class:`Experiment` for every key). Paths
are relative to the experiment file (then to ``train/configs``).

Recipe (spec §5.1): AdamW (weight decay on all variables), linear warmup then linear decay to
``end_lr_factor``, global gradient clipping, EMA weights for evaluation and export, bf16 autocast on
CUDA. A run is reproducible from its seed: sample ``d`` of the training stream depends only on
``(seed, d)`` (see :class:`DrawBatchSampler`) and every step reseeds the model's random numbers
from ``(seed, step, rank)``, so a resumed run continues exactly where it stopped.

Outputs in the run folder: ``checkpoint/`` (sharded, resumable), ``log.jsonl`` (one JSON object per
log or eval event), ``metrics.json`` (final), ``model_config.json``, ``experiment.json`` and
``export/`` (fp16 and fp32 models of the EMA weights).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from . import CONFIGS_DIR, TRAIN_DIR
from .augment import AugmentConfig
from .config import ModelConfig, default_backbone, load_config
from .data import MixtureDataset, PanopticDataset, build_dataset, dataset_classes
from .data.common import stack_prev_masks
from .diffusion import training_loss
from .export import export, load_checkpoint, save_checkpoint
from .evaluate import evaluate_images
from .model import build_model
from .model.layers import fold_all_batchnorm_

# ------------------------------------------------------------------------------------------------
# Experiment config


@dataclass
class DatasetSpec:
    name: str
    split: str
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)  # passed to the dataset reader


@dataclass
class Experiment:
    name: str
    model: ModelConfig
    train_datasets: list[DatasetSpec]
    val_dataset: DatasetSpec | None = None
    val_images: int = 8  # validation uses the first N images (or clips) of the val split
    augment: dict[str, Any] = field(default_factory=dict)  # see augment.AugmentConfig
    batch_size: int = 8  # global batch (divided over the DDP ranks)
    lr: float = 1e-4
    warmup_steps: int = 0
    end_lr_factor: float = 0.1  # linear decay from lr to lr * end_lr_factor at the last step
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True  # decay_t = min(decay, (1 + t) / (10 + t)), as TF's EMA with num_updates
    steps: int = 10000
    eval_interval: int = 1000
    checkpoint_interval: int = 1000
    log_interval: int = 10
    seed: int = 0
    num_workers: int = 2
    cpu_threads: int = 0  # torch threads on the CPU; 0: the cores left over by the data workers
    val_sampler: dict[str, float] = field(default_factory=dict)  # {"steps", "td"}; default: model's
    min_pixels: int = 40  # majority-vote post-processing (spec §1.6)
    frame_dropout: float = 0.2  # video: each conditioning mask is replaced by zeros with this prob.
    export_dtypes: list[str] = field(default_factory=lambda: ["fp16", "fp32"])
    cross_dataset_paste: bool = False  # copy-paste instances from any training dataset (varied backgrounds)
    init_from: str | None = None  # a checkpoint folder whose EMA weights start the model (fine-tuning)
    # Copy only the init_from tensors whose shape fits, keep the rest as built: with
    # init_keep ["backbone."] a new backbone keeps its pretrained weights, the layers reading it
    # whose shapes changed start fresh, the encoder and decoder carry over.
    init_partial: bool = False
    init_keep: list[str] = field(default_factory=list)  # name prefixes never copied from init_from
    # Parameter name prefixes that do not train (e.g. ["backbone."]: keep pretrained features as
    # they are, and skip their backward pass). BatchNorm statistics of an unfolded frozen part still
    # follow the batches; freeze folded models (init_from a shipped one) to keep them fixed too.
    freeze: list[str] = field(default_factory=list)


def _find(path: str, base_dir: Path) -> Path:
    p = Path(path)
    for candidate in (p, base_dir / p, CONFIGS_DIR / p):
        if candidate.is_absolute() and candidate.exists():
            return candidate
        if candidate.exists():
            return candidate.resolve()
    raise FileNotFoundError(f"config {path!r} not found (relative to {base_dir} or {CONFIGS_DIR})")


def _deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in overrides.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def resolve_model_config(spec: Any, base_dir: Path) -> ModelConfig:
    """A model config from a path, an inline dict, or {"base", "overrides", "classes_from"}."""
    if isinstance(spec, str):
        return load_config(_find(spec, base_dir))
    if "base" not in spec:
        return ModelConfig.from_dict(spec)
    data = json.loads(_find(spec["base"], base_dir).read_text())
    data = data.get("config", data)
    overrides = dict(spec.get("overrides", {}))
    if "classes_from" in spec:
        classes = dataset_classes(spec["classes_from"])
        overrides["classes"] = [{"name": "void", "isthing": False, "color": [0, 0, 0]}] + [
            {"name": c.name, "isthing": c.isthing, "color": list(c.color)} for c in classes]
        overrides["num_classes"] = len(classes) + 1
        overrides.setdefault("class_bits", 0)  # 0: derived from num_classes
    if "max_instances" in overrides:
        overrides.setdefault("instance_bits", 0)
    backbone_type = overrides.get("backbone", {}).get("type")
    if backbone_type and backbone_type != data.get("backbone", {}).get("type"):
        # Another backbone: its own stages and input normalisation, not the base's.
        data = {**data, "backbone": asdict(default_backbone(backbone_type))}
    return ModelConfig.from_dict(_deep_merge(data, overrides))


def load_experiment(path: str | Path | Mapping[str, Any], base_dir: Path | None = None) -> Experiment:
    """An Experiment from a JSON file (or an already parsed dict)."""
    if isinstance(path, Mapping):
        raw, base_dir = dict(path), base_dir or CONFIGS_DIR
    else:
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read experiment config {path}: {e}") from e
        base_dir = Path(path).resolve().parent
    known = {f.name for f in fields(Experiment)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"experiment config: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    raw["model"] = resolve_model_config(raw["model"], base_dir)
    raw["train_datasets"] = [DatasetSpec(**d) for d in raw["train_datasets"]]
    if raw.get("val_dataset"):
        raw["val_dataset"] = DatasetSpec(**raw["val_dataset"])
    if "betas" in raw:
        raw["betas"] = tuple(raw["betas"])
    exp = Experiment(**raw)
    AugmentConfig.from_dict(exp.augment)  # validate the keys early
    return exp


def experiment_to_dict(exp: Experiment) -> dict[str, Any]:
    d = asdict(exp)
    d["model"] = exp.model.to_dict()
    return d


# ------------------------------------------------------------------------------------------------
# Data


class DrawBatchSampler:
    """Endless batches of draw numbers: global step s, rank r gets draws s*B + r*b .. + b - 1.

    B is the global batch and b = B / world, so the global batch of every step is the same for any
    number of ranks, and a resumed run starts at ``start_step`` with the draws it would have made.
    This replaces ``DistributedSampler`` for the weighted, endless training mixture.
    """

    def __init__(self, global_batch: int, rank: int = 0, world: int = 1, start_step: int = 0) -> None:
        if global_batch % world:
            raise ValueError(f"batch_size {global_batch} is not divisible by the {world} ranks")
        self.global_batch, self.local_batch = global_batch, global_batch // world
        self.rank, self.start_step = rank, start_step

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            first = step * self.global_batch + self.rank * self.local_batch
            yield list(range(first, first + self.local_batch))
            step += 1


def collate(items: Sequence[Any], prev_masks: int = 0) -> dict[str, Any]:
    """Stack samples; for video, the last frame is the target and the earlier frames' labels become
    ``prev`` [B, k, Hm, Wm, 2] (oldest first), zero maps where a clip is shorter than k + 1."""
    clips = [item if isinstance(item, list) else [item] for item in items]
    targets = [clip[-1] for clip in clips]
    batch: dict[str, Any] = {
        "image": torch.stack([t["image"] for t in targets]),
        "cls": torch.stack([t["cls"] for t in targets]),
        "inst": torch.stack([t["inst"] for t in targets]),
        "ignore": torch.stack([t["ignore"] for t in targets]),
        "name": [t["name"] for t in targets],
        "orig_size": torch.stack([t["orig_size"] for t in targets]),
        "content_size": torch.stack([t["content_size"] for t in targets]),
        "prev": None,
    }
    if prev_masks:
        batch["prev"] = stack_prev_masks(items, prev_masks)
    return batch


def frame_dropout(prev: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Replace each conditioning mask by an all-zero map with probability p (spec §4)."""
    if p <= 0:
        return prev
    keep = torch.rand(prev.shape[:2], generator=generator, device=generator.device) >= p
    return prev * keep.to(prev.device)[:, :, None, None, None].to(prev.dtype)


def dataset_options(d: "DatasetSpec", out_dir: Path) -> dict[str, Any]:
    """The reader options of a training dataset; a teacher's labels are cached in the run folder."""
    options = dict(d.options)
    if options.get("teacher"):
        options.setdefault("teacher_cache", str(out_dir / "teachers" / f"{d.name}_{options['teacher']}.json"))
    return options


def build_train_data(exp: Experiment, rank: int, world: int, start_step: int,
                     out_dir: Path) -> torch.utils.data.DataLoader:
    augment = AugmentConfig.from_dict(exp.augment)
    datasets = [build_dataset(d.name, d.split, exp.model, augment=augment, seed=exp.seed, **dataset_options(d, out_dir))
                for d in exp.train_datasets]
    mixture = MixtureDataset(datasets, [d.weight for d in exp.train_datasets], seed=exp.seed,
                             cross_paste=exp.cross_dataset_paste)
    return torch.utils.data.DataLoader(
        mixture,
        batch_sampler=DrawBatchSampler(exp.batch_size, rank, world, start_step),
        num_workers=exp.num_workers,
        collate_fn=functools.partial(collate, prev_masks=exp.model.video_prev_masks),
        pin_memory=torch.cuda.is_available(),
    )


# ------------------------------------------------------------------------------------------------
# Optimisation


def lr_factor(step: int, warmup: int, total: int, end_factor: float) -> float:
    """Linear warmup from 0 to 1 over ``warmup`` steps, then linear decay to ``end_factor``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 1.0 + (end_factor - 1.0) * progress


class EMA:
    """Exponential moving average of every parameter and floating buffer (BN statistics too, as the
    official model does, spec §2)."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)
        self.decay, self.warmup = decay, warmup

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = self.decay_at(step)
        for ema_t, t in zip(self.model.state_dict().values(), model.state_dict().values()):
            if ema_t.dtype.is_floating_point:
                ema_t.lerp_(t.detach(), 1.0 - d)
            else:
                ema_t.copy_(t)


class LossModule(nn.Module):
    """Wraps training_loss in a forward() so DDP can synchronise the gradients."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, cls: torch.Tensor, inst: torch.Tensor, prev: torch.Tensor | None,
                generator: torch.Generator, ignore: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        return training_loss(self.model, images, cls, inst, prev_maps=prev, generator=generator, ignore=ignore)


def average_over_ranks(logs: dict[str, float], d: "Dist", device: torch.device) -> dict[str, float]:
    """Mean of the logged scalars over the DDP ranks (every rank must call this)."""
    if d.world == 1:
        return logs
    keys = sorted(logs)
    values = torch.tensor([logs[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return dict(zip(keys, (values / d.world).tolist()))


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.default_rng([seed, step, rank]).integers(2**62))


# ------------------------------------------------------------------------------------------------
# Validation


def validate(model: nn.Module, dataset: PanopticDataset, exp: Experiment, device: torch.device) -> dict[str, Any]:
    """mIoU and PQ (J, F for video) on the first ``val_images`` validation images, sampled with the
    validation sampler and post-processed at the original resolution (see evaluate.evaluate_images)."""
    return evaluate_images(model, dataset, exp.val_images, exp.val_sampler.get("steps"), exp.val_sampler.get("td"),
                           seed=exp.seed, min_pixels=exp.min_pixels, batch_size=max(1, min(exp.batch_size, 8)),
                           device=device)


# ------------------------------------------------------------------------------------------------
# Logging


class JsonLog:
    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def write(self, record: Mapping[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


# ------------------------------------------------------------------------------------------------
# The run


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return Dist(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(requested: str | None, d: Dist) -> torch.device:
    kind = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda requested but CUDA is not available")
        torch.cuda.set_device(d.local_rank)
        return torch.device("cuda", d.local_rank)
    return torch.device("cpu")


def configure_cpu_threads(exp: Experiment) -> None:
    """Avoid oversubscribing the cores: intra-op threads spinning against the data workers (or
    another busy process) made small convolutions ~10x slower in our measurements."""
    if exp.cpu_threads:
        torch.set_num_threads(exp.cpu_threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - exp.num_workers))


@dataclass
class TrainState:
    """Everything a step changes; ``train_module`` is the (DDP-wrapped) LossModule around ``model``."""

    model: nn.Module
    ema: EMA
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    train_module: nn.Module
    step: int = 0


def build_state(exp: Experiment, device: torch.device, d: Dist) -> TrainState:
    torch.manual_seed(exp.seed)  # identical initial weights on every rank
    model = build_model(exp.model).to(device)
    if exp.init_from:
        counts = init_weights(model, *init_source(exp.init_from), partial=exp.init_partial, keep=exp.init_keep)
        if d.is_main:
            print(f"init_from {exp.init_from}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    frozen = [p for name, p in model.named_parameters() if name.startswith(tuple(exp.freeze))]
    if exp.freeze and not frozen:
        raise ValueError(f"freeze {exp.freeze}: no parameter name starts with these prefixes")
    for p in frozen:
        p.requires_grad_(False)
    ema = EMA(model, exp.ema_decay, exp.ema_warmup)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=exp.lr, betas=exp.betas, eps=exp.eps,
                                  weight_decay=exp.weight_decay)  # decay on all variables (spec §5.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, exp.warmup_steps, exp.steps, exp.end_lr_factor))
    train_module: nn.Module = LossModule(model)
    if d.world > 1:
        if device.type == "cuda":
            train_module = nn.SyncBatchNorm.convert_sync_batchnorm(train_module)  # synchronised BN (spec §2.1)
        train_module = nn.parallel.DistributedDataParallel(
            train_module, device_ids=[device.index] if device.type == "cuda" else None)
    return TrainState(model, ema, optimizer, scheduler, train_module)


def _is_folded(source: Mapping[str, torch.Tensor]) -> bool:
    return not any(name.endswith(".running_mean") for name in source)


def init_source(where: str) -> tuple[dict[str, torch.Tensor], str]:
    """The weights ``init_from`` names: a checkpoint folder (its EMA weights) or a shipped model
    (``NAME.json`` / ``NAME.safetensors``, BatchNorm folded)."""
    path = Path(where)
    if path.suffix in (".json", ".safetensors"):
        weights = path.with_suffix(".safetensors")
        if not weights.is_file():
            raise FileNotFoundError(f"init_from {where}: no weights file {weights}")
        return {k: v.float() for k, v in load_file(str(weights)).items()}, where
    return load_checkpoint(where)["ema"], where


def init_weights(model: nn.Module, source: Mapping[str, torch.Tensor], where: str,
                 partial: bool = False, keep: Sequence[str] = ()) -> dict[str, int]:
    """Starts ``model`` from another model's weights (fine-tuning an image model into a video
    model). Tensors of equal shape are copied. A weight that gained input channels (the video
    model's conditioning on previous masks enters the decoder's first conv) gets the old weights
    in its first channels and zeros in the new ones, so the new model starts as the old one did.
    Any other difference is an error naming the tensor, unless ``partial``: then the tensors the
    source lacks or has in another shape keep the values ``model`` was built with. Tensors whose
    name starts with a prefix in ``keep`` are never copied (a new pretrained backbone)."""
    if _is_folded(source) and hasattr(model, "prepare_folded_structure_"):
        # A shipped model has its BatchNorms folded into conv biases: train that structure (the
        # folded convs keep their statistics; fine-tuning with batch 8 needs no BatchNorm). Folding
        # our own BatchNorms keeps what they compute, so tensors that are not copied (partial) keep
        # their pretrained function.
        fold_all_batchnorm_(model)
    target = model.state_dict()
    missing = sorted(n for n in set(target) - set(source) if not n.startswith(tuple(keep)))
    if missing and not partial:
        raise ValueError(f"init_from {where}: the checkpoint lacks {len(missing)} tensors, e.g. {missing[:3]}")
    widened = kept = 0
    with torch.no_grad():
        for name, tensor in target.items():
            if name not in source or name.startswith(tuple(keep)):
                kept += 1
                continue
            old = source[name].to(tensor.dtype)
            if old.shape == tensor.shape:
                tensor.copy_(old)
            elif (old.dim() == tensor.dim() >= 2 and old.shape[0] == tensor.shape[0] and old.shape[2:] == tensor.shape[2:]
                  and old.shape[1] < tensor.shape[1]):
                tensor.zero_()
                tensor[:, :old.shape[1]].copy_(old)
                widened += 1
            elif partial:
                kept += 1
            else:
                raise ValueError(f"init_from {where}: {name} has shape {tuple(old.shape)} there, "
                                 f"{tuple(tensor.shape)} in this model")
    model.load_state_dict(target)
    return {"copied": len(target) - widened - kept, "widened": widened, "kept": kept}


def save_state(out_dir: Path, state: TrainState, cfg: ModelConfig) -> None:
    """Sharded checkpoint (<= 16 MB files, written atomically) that `export` can also read."""
    save_checkpoint(out_dir / "checkpoint", {
        "config": cfg.to_dict(), "model": state.model.state_dict(), "ema": state.ema.model.state_dict(),
        "optimizer": state.optimizer.state_dict(), "scheduler": state.scheduler.state_dict(), "step": state.step})


def load_state(out_dir: Path, state: TrainState) -> None:
    saved = load_checkpoint(out_dir / "checkpoint")
    state.model.load_state_dict(saved["model"])
    state.ema.model.load_state_dict(saved["ema"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    state.step = int(saved["step"])


def train_step(state: TrainState, batch: dict[str, Any], exp: Experiment, d: Dist, device: torch.device,
               autocast: Any) -> dict[str, float]:
    seed = step_seed(exp.seed, state.step, d.rank)
    torch.manual_seed(seed)  # dropout / drop-path: reproducible per step, so resuming is exact
    generator = torch.Generator(device=device).manual_seed(seed)
    images = batch["image"].to(device, non_blocking=True)
    cls, inst = batch["cls"].to(device), batch["inst"].to(device)
    ignore = batch["ignore"].to(device) if batch["ignore"].any() else None
    prev = batch["prev"]
    if prev is not None:
        prev = frame_dropout(prev.to(device), exp.frame_dropout, generator)
    with autocast:
        loss, logs = state.train_module(images, cls, inst, prev, generator, ignore)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), exp.grad_clip)
    if not torch.isfinite(grad_norm):
        raise FloatingPointError(f"step {state.step}: gradient norm is {grad_norm.item()} (loss {logs['loss']})")
    state.optimizer.step()
    state.scheduler.step()
    state.ema.update(state.model, state.step)
    state.step += 1
    return {**logs, "grad_norm": float(grad_norm)}


def due(step: int, interval: int, last_step: int) -> bool:
    return step % interval == 0 or step == last_step


def run(exp: Experiment, out_dir: Path, resume: bool = False, max_steps: int | None = None,
        device_kind: str | None = None, export: bool = True, show_progress: bool = True) -> dict[str, Any]:
    """Train (or continue) ``exp`` in ``out_dir``; returns the final metrics (also metrics.json)."""
    kind = device_kind or ("cuda" if torch.cuda.is_available() else "cpu")
    d = init_distributed(kind)
    device = pick_device(kind, d)
    cfg = exp.model
    out_dir.mkdir(parents=True, exist_ok=True)
    if d.is_main:
        (out_dir / "experiment.json").write_text(json.dumps(experiment_to_dict(exp), indent=2) + "\n")
        (out_dir / "model_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    log = JsonLog(out_dir / "log.jsonl", d.is_main)
    if device.type == "cpu":
        configure_cpu_threads(exp)

    state = build_state(exp, device, d)
    if resume and (out_dir / "checkpoint").exists():
        load_state(out_dir, state)
        log.write({"event": "resume", "step": state.step})
    elif resume and d.is_main:
        print(f"--resume: no checkpoint in {out_dir}, starting from step 0")
    start_step = state.step
    last_step = min(exp.steps, max_steps) if max_steps is not None else exp.steps
    if start_step >= last_step and (out_dir / "metrics.json").exists():
        if d.is_main:
            print(f"{out_dir}: already trained to step {start_step}; nothing to do")
        return json.loads((out_dir / "metrics.json").read_text())
    val_ds = (build_dataset(exp.val_dataset.name, exp.val_dataset.split, cfg, seed=exp.seed, **exp.val_dataset.options)
              if exp.val_dataset else None)
    batches = iter(build_train_data(exp, d.rank, d.world, start_step, out_dir))
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))

    started = time.time()
    last_eval: dict[str, Any] | None = None
    logs: dict[str, float] = {}
    progress = tqdm(total=last_step, initial=start_step, disable=not (d.is_main and show_progress), desc=exp.name)
    state.model.train()
    while state.step < last_step:
        logs = train_step(state, next(batches), exp, d, device, autocast)
        done = state.step
        progress.update(1)
        progress.set_postfix(loss=f"{logs['loss']:.4f}")
        if due(done, exp.log_interval, last_step):
            logs = average_over_ranks(logs, d, device)
            log.write({"event": "train", "step": done, "lr": state.scheduler.get_last_lr()[0],
                       "elapsed_s": round(time.time() - started, 2), **logs})
        evaluate_now = val_ds is not None and due(done, exp.eval_interval, last_step)
        if evaluate_now and d.is_main:
            last_eval = validate(state.ema.model, val_ds, exp, device)
            log.write({"event": "eval", "step": done, **last_eval})
            progress.write(f"step {done}: " + ", ".join(f"{k} {v:.4f}" for k, v in last_eval.items()
                                                        if isinstance(v, float)))
        save_now = due(done, exp.checkpoint_interval, last_step)
        if save_now and d.is_main:
            save_state(out_dir, state, cfg)
        if d.world > 1 and (evaluate_now or save_now):
            dist.barrier()  # the other ranks wait while rank 0 evaluates and saves
    progress.close()

    metrics = {"experiment": exp.name, "steps": last_step, "started_at_step": start_step,
               "train_seconds": round(time.time() - started, 2), "final_train": logs, "eval": last_eval,
               "device": str(device), "world_size": d.world}
    if d.is_main:
        if export and last_step > start_step:
            metrics["exported"] = export_model(state.ema.model, cfg, out_dir / "export", exp, last_eval, last_step)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if d.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


def export_model(ema_model: nn.Module, cfg: ModelConfig, export_dir: Path, exp: Experiment,
                 metrics: dict[str, Any] | None, step: int) -> list[str]:
    """The EMA weights in every dtype of ``exp.export_dtypes`` (BatchNorm folded, via export.export)."""
    card = {"weights": "ema", "step": step, "experiment": exp.name,
            "datasets": [asdict(s) for s in exp.train_datasets], "metrics": metrics}
    written = []
    for dtype in exp.export_dtypes:
        weights_path, _ = export(ema_model, cfg, export_dir / f"{cfg.name}-{dtype}", dtype, card)
        written.append(str(weights_path))
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="experiment JSON (train/configs/experiments/...)")
    parser.add_argument("--out", type=Path, help="run folder (default: train/runs/<experiment name>)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    parser.add_argument("--max-steps", type=int, help="stop after this step (the LR schedule keeps the config's steps)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    parser.add_argument("--no-export", action="store_true", help="skip the export at the end")
    parser.add_argument("--init-from", help="checkpoint folder whose EMA weights start the model (overrides init_from)")
    args = parser.parse_args(argv)
    exp = load_experiment(args.config)
    if args.init_from:
        exp.init_from = args.init_from
    out_dir = args.out or TRAIN_DIR / "runs" / exp.name
    metrics = run(exp, out_dir, resume=args.resume, max_steps=args.max_steps, device_kind=args.device,
                  export=not args.no_export)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: metrics[k] for k in ("experiment", "steps", "train_seconds", "eval")}, indent=2))


if __name__ == "__main__":
    main()
