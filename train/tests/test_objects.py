"""The `objects` model's data: COCO classes and DAVIS sequences in six groups, copy-paste across
datasets, and fine-tuning an image model into a video model (init_from)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pix2seqd_train.data import MixtureDataset, build_dataset, data_root, dataset_classes
from pix2seqd_train.data.coco128 import COCO80, Coco128
from pix2seqd_train.data.davis import Davis
from pix2seqd_train.data.groups import COCO_GROUP, DAVIS_GROUP, GROUP_CLASSES, coco_group, group_id
from pix2seqd_train.export import save_checkpoint
from pix2seqd_train.train import init_weights, load_experiment, run


def require(name):
    if not (data_root() / name).exists():
        print(f"SKIPPING: shared data {data_root() / name} is missing", file=sys.stderr)
        pytest.skip(f"{name} is missing")


def test_every_coco_class_has_a_group_and_the_groups_are_the_object_classes():
    names = [c.name for c in GROUP_CLASSES]
    assert names == ["person", "vehicle", "animal", "furniture", "food", "other"]
    assert set(COCO_GROUP) < set(COCO80)  # no typo: every listed class is a COCO class
    assert coco_group("person") == "person" and coco_group("cow") == "animal" and coco_group("laptop") == "other"
    assert [c.name for c in dataset_classes("objects")] == names
    with pytest.raises(KeyError, match="unknown object group"):
        group_id("plant")


def test_coco128_in_groups():
    require("coco128-seg")
    plain, grouped = Coco128("val"), Coco128("val", groups="objects")
    assert grouped.classes == GROUP_CLASSES
    for index in range(4):
        (a,), (b,) = plain.load(index), grouped.load(index)
        assert np.array_equal(a.inst, b.inst)
        for label in np.unique(a.cls[a.cls > 0]):
            expected = group_id(coco_group(COCO80[label - 1]))
            assert (b.cls[a.cls == label] == expected).all()
        assert (b.cls[a.cls == 0] == 0).all()
    with pytest.raises(ValueError, match="groups"):
        Coco128("val", groups="animals")


def test_davis_in_groups():
    require("davis2016")
    every = Davis("all", groups="objects")
    assert set(every.sequences) <= set(DAVIS_GROUP), "a DAVIS sequence without a group"
    for seq in ("cows", "car-roundabout", "breakdance"):
        t = every.items.index((seq, 0))
        (f,) = every.load(t)
        assert set(np.unique(f.cls)) == {0, group_id(DAVIS_GROUP[seq])}
        assert np.array_equal(f.cls > 0, f.inst > 0)


def test_cross_dataset_paste_puts_objects_on_other_backgrounds():
    require("coco128-seg")
    require("davis2016")
    cfg = load_experiment("train/configs/experiments/objects_web_cpu.json").model
    augment = {"scale_min": 1.0, "scale_max": 1.0, "copy_paste_prob": 1.0, "copy_paste_max_instances": 8}
    davis = build_dataset("davis", "train", cfg, augment=augment, groups="objects")
    coco = build_dataset("coco128", "train", cfg, augment=augment, groups="objects")
    davis_classes = {0} | {group_id(DAVIS_GROUP[s]) for s in davis.source.sequences}

    def davis_targets(mixture):
        """Class sets of the drawn samples whose target frame is a DAVIS frame (SEQ/NNNNN)."""
        return [{int(c) for c in s["cls"].unique()} for s in (mixture[d] for d in range(24)) if "/" in s["name"]]

    # Without cross paste, DAVIS frames only get DAVIS objects pasted on them.
    alone = davis_targets(MixtureDataset([davis, coco], [1.0, 1.0], seed=0))
    assert alone and all(c <= davis_classes for c in alone)
    # With it, the pasted objects come from either dataset: COCO's classes appear on DAVIS frames.
    mixed = davis_targets(MixtureDataset([davis, coco], [1.0, 1.0], seed=0, cross_paste=True))
    assert any(c - davis_classes for c in mixed), f"no COCO object pasted on a DAVIS frame: {mixed}"


def test_the_objects_configs_start_from_the_shipped_models():
    """The recipes that start from a shipped model must fit it: objects_web_cpu from street (same
    architecture), objects_coco_cpu from objects (partially: the backbone is its own),
    objects_video_coco_cpu from objects (the video model only gains input channels).
    objects_video_web_cpu made the shipped objects-video from the previous objects release
    (EfficientNet-Lite0, git 58f13b0), which the shipped objects no longer is."""
    from pix2seqd_train.model import build_model
    from pix2seqd_train.train import init_source

    for config in ("objects_web_cpu.json", "objects_coco_cpu.json", "objects_video_coco_cpu.json"):
        exp = load_experiment(f"train/configs/experiments/{config}")
        assert Path(exp.init_from).exists(), f"{exp.init_from} is missing"
        counts = init_weights(build_model(exp.model, load_pretrained=False), *init_source(exp.init_from),
                              partial=exp.init_partial, keep=exp.init_keep)
        assert counts["widened"] == (1 if exp.model.video_prev_masks else 0)
        assert counts["kept"] == 0 or exp.init_partial, config


def test_training_starts_from_a_shipped_model(tmp_path):
    """init_from a shipped NAME.json: the BatchNorms are folded there, so the new model trains the
    folded structure, starts with the shipped weights, and exports and resumes as such."""
    from pix2seqd_train.export import export, load_exported
    from pix2seqd_train.model import build_model

    torch.manual_seed(0)
    exp = _tiny(0)
    shipped = build_model(exp.model, load_pretrained=False).eval()
    export(shipped, exp.model, tmp_path / "shipped", dtype="fp32")
    exp.init_from = str(tmp_path / "shipped.json")
    exp.steps = 1
    run(exp, tmp_path / "run", export=True, show_progress=False)
    model = build_model(exp.model, load_pretrained=False)
    init_weights(model, load_exported(tmp_path / "shipped").state_dict(), "check")
    assert not any(name.endswith("running_mean") for name in model.state_dict())
    reloaded = load_exported(next((tmp_path / "run" / "export").glob("*.json")))
    assert set(reloaded.state_dict()) == set(model.state_dict())
    exp.steps = 2
    run(exp, tmp_path / "run", resume=True, export=False, show_progress=False)
    with pytest.raises(FileNotFoundError, match="no weights file"):
        exp.init_from = str(tmp_path / "missing.json")
        run(exp, tmp_path / "other", export=False, show_progress=False)


def _tiny(video: int):
    return load_experiment({
        "name": "t", "model": {"base": "tiny-efficientnet.json", "classes_from": "objects", "overrides": {"video_prev_masks": video}},
        "train_datasets": [{"name": "synthetic", "split": "train", "options": {"size": [48, 80], "length": 8}}],
        "batch_size": 2, "steps": 2, "num_workers": 0, "cpu_threads": 1,
    })


def test_init_from_widens_the_decoder_input_with_zeros():
    from pix2seqd_train.model import build_model

    torch.manual_seed(0)
    image_model = build_model(_tiny(0).model, load_pretrained=False).eval()
    video_cfg = _tiny(2).model
    video_model = build_model(video_cfg, load_pretrained=False).eval()
    counts = init_weights(video_model, image_model.state_dict(), "test")
    assert counts["widened"] == 1  # the decoder's first conv
    images = torch.rand(1, 3, *video_cfg.image_size)
    m = torch.randn(1, *video_cfg.mask_size, video_cfg.n_bits) * 0.1
    prev = torch.randn(1, *video_cfg.mask_size, 2 * video_cfg.n_bits)
    with torch.no_grad():
        f, tok, _ = image_model.encode(images)
        a = image_model.decode(m, f, tok, 0.5)
        f2, tok2, _ = video_model.encode(images)
        b = video_model.decode(m, f2, tok2, 0.5, prev=prev)
    assert torch.allclose(a, b, atol=1e-5), "the video model must start as the image model"

    other = build_model(load_experiment("train/configs/experiments/camvid_smoke.json").model, load_pretrained=False)
    with pytest.raises(ValueError, match="init_from test"):
        init_weights(video_model, other.state_dict(), "test")


def test_training_starts_from_init_from(tmp_path):
    torch.manual_seed(0)
    from pix2seqd_train.model import build_model

    image_model = build_model(_tiny(0).model, load_pretrained=False)
    save_checkpoint(tmp_path / "image", {"ema": image_model.state_dict(), "step": 5})
    exp = _tiny(2)
    exp.init_from = str(tmp_path / "image")
    exp.steps = 1
    run(exp, tmp_path / "video", export=False, show_progress=False)


def test_partial_init_keeps_a_new_backbone_and_copies_the_rest(tmp_path):
    """init_partial with init_keep ["backbone."]: a model whose backbone changed (other stages, so other tap widths) takes the
    shipped model's encoder and decoder, and its own backbone keeps what it computed (the folding
    of its BatchNorms preserves its function)."""
    from pix2seqd_train.export import export, load_exported
    from pix2seqd_train.model import build_model

    torch.manual_seed(0)
    shipped_exp = _tiny(0)
    shipped = build_model(shipped_exp.model, load_pretrained=False).eval()
    export(shipped, shipped_exp.model, tmp_path / "shipped", dtype="fp32")
    source = load_exported(tmp_path / "shipped").state_dict()

    new_cfg = _tiny(0).model
    stages = [list(s) for s in new_cfg.backbone.stages]
    stages[-1][-1] += 8  # the stride-16 tap gets wider: encoder input and backbone differ
    new_cfg.backbone.stages = stages
    model = build_model(new_cfg, load_pretrained=False).eval()
    images = torch.rand(1, 3, *new_cfg.image_size)
    with torch.no_grad():
        taps_before = model.backbone(images)
    with pytest.raises(ValueError, match="has shape"):
        init_weights(build_model(new_cfg, load_pretrained=False), source, "strict")
    counts = init_weights(model, source, "partial", partial=True, keep=["backbone."])
    assert counts["kept"] > 0 and counts["copied"] > counts["kept"]
    state = model.state_dict()
    decoder = [n for n in state if n.startswith("decoder.")]
    assert decoder and all(torch.equal(state[n], source[n]) for n in decoder)
    with torch.no_grad():
        taps_after = model.backbone(images)
    assert state["encoder.proj.weight"].shape != source["encoder.proj.weight"].shape
    for before, after in zip(taps_before, taps_after):
        assert torch.allclose(before, after, rtol=1e-4, atol=1e-5), "the new backbone must keep its function"


def test_freeze_keeps_the_backbone_and_trains_the_rest(tmp_path):
    from pix2seqd_train.train import build_state, Dist, train_step, collate

    torch.manual_seed(0)
    exp = _tiny(0)
    exp.freeze = ["backbone."]
    state = build_state(exp, torch.device("cpu"), Dist(rank=0, world=1, local_rank=0))
    before = {n: t.clone() for n, t in state.model.state_dict().items()}
    from pix2seqd_train.data import build_dataset

    ds = build_dataset("synthetic", "train", exp.model, size=[48, 80], length=8)
    batch = collate([ds[0], ds[1]])
    train_step(state, batch, exp, Dist(rank=0, world=1, local_rank=0), torch.device("cpu"),
               torch.autocast("cpu", enabled=False))
    after = state.model.state_dict()
    weights = [n for n in after if n.endswith(".weight")]
    assert all(torch.equal(before[n], after[n]) for n in weights if n.startswith("backbone."))
    assert any(not torch.equal(before[n], after[n]) for n in weights if n.startswith("decoder."))
    exp.freeze = ["nothing."]
    with pytest.raises(ValueError, match="no parameter name"):
        build_state(exp, torch.device("cpu"), Dist(rank=0, world=1, local_rank=0))
