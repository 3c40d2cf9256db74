"""Training loop: a few steps on synthetic data end to end, exact resume, video batches, helpers."""

import json
import sys

import pytest
import torch

from pix2seqd_train.data import data_root
from pix2seqd_train.evaluate import evaluate_davis_streaming, load_model
from pix2seqd_train.evaluate import main as evaluate_main
from pix2seqd_train.export import load_checkpoint, load_exported
from pix2seqd_train.train import (
    DrawBatchSampler,
    collate,
    frame_dropout,
    load_experiment,
    lr_factor,
    run,
)


def tiny_experiment(**overrides):
    exp = {
        "name": "tiny",
        "model": "tiny-resnet.json",
        "train_datasets": [{"name": "synthetic", "split": "train", "options": {"size": [60, 90], "length": 16}}],
        "val_dataset": {"name": "synthetic", "split": "val", "options": {"size": [60, 90], "length": 4}},
        "val_images": 2,
        "augment": {"scale_min": 1.0, "scale_max": 1.5, "color_jitter": 0.3, "copy_paste_prob": 0.5},
        "batch_size": 2, "lr": 1e-3, "warmup_steps": 2, "steps": 4, "eval_interval": 4,
        "checkpoint_interval": 2, "log_interval": 1, "num_workers": 0, "cpu_threads": 1, "ema_decay": 0.9,
        "val_sampler": {"steps": 2, "td": 1.0}, "min_pixels": 4,
    }
    exp.update(overrides)
    return load_experiment(exp)


def assert_same_state(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys differ"
        for k in a:
            assert_same_state(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{path}/{i}")
    else:
        assert a == b, f"{path}: {a} != {b}"


def test_train_smoke_then_resume_gives_the_same_state(tmp_path):
    straight = run(tiny_experiment(), tmp_path / "straight", show_progress=False)
    run(tiny_experiment(), tmp_path / "resumed", max_steps=2, export=False, show_progress=False)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint")["step"] == 2
    resumed = run(tiny_experiment(), tmp_path / "resumed", resume=True, show_progress=False)
    assert resumed["started_at_step"] == 2 and resumed["steps"] == 4

    a = load_checkpoint(tmp_path / "straight" / "checkpoint")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint")
    assert a["step"] == 4
    for key in ("model", "ema", "optimizer", "scheduler"):
        assert_same_state(a[key], b[key], key)

    # outputs: JSON-lines log with train and eval events, final metrics, fp16 + fp32 exports
    events = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "train"] == [1, 2, 3, 4]
    evals = [e for e in events if e["event"] == "eval"]
    assert len(evals) == 1 and {"miou", "pq", "pq_things", "pq_stuff"} <= evals[0].keys()
    metrics = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert metrics["eval"] == straight["eval"] and len(metrics["exported"]) == 2
    assert metrics["final_train"]["loss"] > 0
    model = load_exported(tmp_path / "straight" / "export" / "tiny-resnet-fp16")
    assert model.cfg.name == "tiny-resnet"

    # the evaluation command on the exported model
    out = tmp_path / "eval.json"
    evaluate_main(["images", "--model", str(tmp_path / "straight" / "export" / "tiny-resnet-fp32"), "--dataset",
                   "synthetic", "--split", "val", "--images", "2", "--steps", "2", "--device", "cpu", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["images"] == 2 and 0.0 <= result["miou"] <= 1.0 and 0.0 <= result["pq"] <= 1.0


def test_video_training_on_davis_clips(tmp_path):
    if not (data_root() / "davis2016").exists():
        print("SKIPPING: ../shared/data/davis2016 is missing", file=sys.stderr)
        pytest.skip("../shared/data/davis2016 is missing")
    exp = tiny_experiment(
        name="tiny-video",
        model={"base": "tiny-efficientnet.json", "classes_from": "davis"},
        train_datasets=[{"name": "davis", "split": "train"}],
        val_dataset={"name": "davis", "split": "val"},
        steps=2, eval_interval=2, checkpoint_interval=2,
    )
    assert exp.model.video_prev_masks == 2 and exp.model.num_classes == 2
    metrics = run(exp, tmp_path / "video", export=False, show_progress=False)
    assert {"J", "F", "miou", "pq"} <= metrics["eval"].keys()

    model = load_model(None, str(tmp_path / "video" / "checkpoint"), "cpu")
    streamed = evaluate_davis_streaming(model, "val", steps=1, max_frames=3)
    assert set(streamed["per_sequence"]) == {"motocross-jump", "paragliding-launch", "scooter-black", "soapbox"}
    assert 0.0 <= streamed["J&F"] <= 1.0


def test_collate_builds_previous_masks():
    def frame(v):
        return {"image": torch.zeros(3, 4, 4), "cls": torch.full((2, 2), v), "inst": torch.full((2, 2), v + 10),
                "name": str(v), "orig_size": torch.tensor([4, 4]), "content_size": torch.tensor([4, 4]),
                "ignore": torch.zeros(2, 2, dtype=torch.bool)}

    batch = collate([[frame(1), frame(2), frame(3)], frame(5)], prev_masks=2)
    assert batch["prev"].shape == (2, 2, 2, 2, 2)
    assert batch["cls"][:, 0, 0].tolist() == [3, 5]  # the last frame is the target
    assert batch["prev"][0, :, 0, 0].tolist() == [[1, 11], [2, 12]]  # oldest first, (class, id)
    assert (batch["prev"][1] == 0).all()  # a single image: no previous frames
    assert collate([frame(1)])["prev"] is None


def test_frame_dropout_zeroes_whole_masks():
    prev = torch.ones(64, 2, 3, 3, 2, dtype=torch.long)
    out = frame_dropout(prev, 0.2, torch.Generator().manual_seed(0))
    per_mask = out.flatten(2).sum(-1)
    assert set(per_mask.unique().tolist()) <= {0, 18}
    assert 0.05 < (per_mask == 0).float().mean() < 0.4


def test_draw_sampler_splits_the_global_batch_over_ranks():
    single = iter(DrawBatchSampler(4, start_step=3))
    ranks = [iter(DrawBatchSampler(4, rank=r, world=2, start_step=3)) for r in range(2)]
    assert next(single) == next(ranks[0]) + next(ranks[1]) == [12, 13, 14, 15]
    with pytest.raises(ValueError):
        DrawBatchSampler(3, world=2)


def test_lr_schedule():
    assert lr_factor(0, warmup=10, total=110, end_factor=0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 110, 0.1) == pytest.approx(1.0)
    assert lr_factor(60, 10, 110, 0.1) == pytest.approx(0.55)
    assert lr_factor(110, 10, 110, 0.1) == pytest.approx(0.1)


def test_experiment_configs_load():
    from pix2seqd_train import CONFIGS_DIR

    for name in ("camvid_web", "camvid_smoke"):
        exp = load_experiment(CONFIGS_DIR / "experiments" / f"{name}.json")
        assert exp.model.num_classes == 12 and exp.model.classes[9].name == "car"
        assert exp.model.class_bits == 4 and exp.model.instance_bits == 6
    with pytest.raises(ValueError, match="unknown keys"):
        load_experiment({**json.loads((CONFIGS_DIR / "experiments" / "camvid_smoke.json").read_text()), "lr_typo": 1})
