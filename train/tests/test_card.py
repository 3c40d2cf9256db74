"""Model cards: CLI metrics stored with their command, and the README table made from them."""

import json

import pytest

from pix2seqd_train import REPO_ROOT
from pix2seqd_train.card import add_metrics, table_rows


def _card(tmp_path):
    path = tmp_path / "street.json"
    path.write_text(json.dumps({"format": "pix2seqd", "format_version": 1, "config": {}, "metadata": {"step": 10}}))
    return path


CAMVID = {
    "dataset": "camvid/test", "images": 233, "backend": "cpu", "sampler": {"td": 1.0, "seed": 0},
    "results": [
        {"steps": 1, "postprocess": "thing_vote", "miou": 0.5123, "miou_before_postprocess": 0.6, "pixel_accuracy": 0.8,
         "pq": {"all": {"pq": 0.3}, "things": {"pq": 0.1}, "stuff": {"pq": 0.4}},
         "other_postprocess": {"postprocess": "majority_vote", "miou": 0.2, "pq": {"all": {"pq": 0.05}, "things": {"pq": 0.0}, "stuff": {"pq": 0.07}}}},
        {"steps": 4, "miou": 0.55, "pixel_accuracy": 0.82, "pq": {"all": {"pq": 0.31}, "things": {"pq": 0.12}, "stuff": {"pq": 0.41}}},
    ],
}
DAVIS = {
    "dataset": "davis2016/val", "frames": 300, "mode": "streaming",
    "results": [{"steps": 4, "metrics": {"J&F": 0.6, "J": {"mean": 0.65}, "F": {"mean": 0.55}}}],
}


def test_metrics_are_stored_with_their_command_and_replaced_by_name(tmp_path):
    path = _card(tmp_path)
    add_metrics(path, "camvid_test", [CAMVID], ["pix2seqd eval camvid --steps 1,4 --json"])
    four, one = {**CAMVID, "results": CAMVID["results"][1:]}, {**CAMVID, "results": CAMVID["results"][:1]}
    add_metrics(path, "camvid_test", [four, one], ["pix2seqd eval camvid --steps 4 --json", "pix2seqd eval camvid --steps 1 --json"])
    card = json.loads(path.read_text())
    stored = card["metadata"]["metrics"]["camvid_test"]
    assert stored["commands"][0].endswith("--steps 4 --json")
    assert stored["results"] == CAMVID["results"]  # merged, sorted by steps
    assert card["metadata"]["step"] == 10  # the rest of the card is kept


def test_table_has_one_row_per_step_count(tmp_path):
    path = _card(tmp_path)
    add_metrics(path, "camvid_test", [CAMVID], ["c1"])
    add_metrics(path, "davis_val", [DAVIS], ["c2"])
    rows = table_rows(path)
    assert rows == [
        "| `street` | camvid/test, 233 | 1 | thing_vote | mIoU 51.2 (class bits alone: 60.0) | PQ 30.0 (things 10.0, stuff 40.0) |",
        "| `street` | camvid/test, 233 | 1 | majority_vote | mIoU 20.0 | PQ 5.0 (things 0.0, stuff 7.0) |",
        "| `street` | camvid/test, 233 | 4 | majority_vote | mIoU 55.0 | PQ 31.0 (things 12.0, stuff 41.0) |",
        "| `street` | davis2016/val (streaming), 300 | 4 | — | J&F 60.0 | J 65.0, F 55.0 |",
    ]


def test_an_evaluation_without_results_is_refused(tmp_path):
    with pytest.raises(ValueError, match="results"):
        add_metrics(_card(tmp_path), "x", [{"miou": 0.5}], ["c"])
    with pytest.raises(ValueError, match="differ in dataset"):
        add_metrics(_card(tmp_path), "x", [CAMVID, {**CAMVID, "dataset": "camvid/val"}], ["c", "d"])
    other = tmp_path / "other.json"
    other.write_text("{}")
    with pytest.raises(ValueError, match="not a pix2seqd model card"):
        add_metrics(other, "x", [CAMVID], ["c"])


SHIPPED = sorted((REPO_ROOT / "assets" / "models").glob("*.json"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_cards_carry_their_card_file_and_name_a_video_model_that_exists(path):
    """What the page shows (purpose, webcam model) comes from train/cards; no placeholder is left."""
    exported = json.loads(path.read_text())
    meta, cfg = exported["metadata"], exported["config"]
    card = json.loads((REPO_ROOT / "train" / "cards" / f"{path.stem}.json").read_text())
    for key in ("model", "task", "purpose", "note", "licence", "video_model"):
        assert meta.get(key) == card.get(key), f"{path.name}: metadata.{key} differs from train/cards/{path.stem}.json"
    assert meta["purpose"].strip() and meta["purpose"] != meta["purpose"].upper(), f"{path.name}: purpose {meta['purpose']!r}"
    assert (path.with_suffix(".safetensors")).is_file()
    if "video_model" in meta:
        assert not cfg.get("video_prev_masks"), f"{path.name} streams itself and needs no video_model"
        video = json.loads((path.parent / meta["video_model"]).read_text())
        assert video["config"]["video_prev_masks"] > 0, f"{meta['video_model']} takes no previous masks"
        assert video["config"]["classes"] == cfg["classes"], "the webcam model must keep the photo model's classes"


def test_table_shows_the_nearest_readout_beside_the_bilinear_one(tmp_path):
    """For one release the CLI measures the previous readout on the same samples; the table shows it."""
    path = _card(tmp_path)
    nearest = {"postprocess": "thing_vote", "miou": 0.5, "miou_before_postprocess": 0.59,
               "pq": {"all": {"pq": 0.29}, "things": {"pq": 0.08}, "stuff": {"pq": 0.39}}}
    camvid = {**CAMVID, "results": [{**CAMVID["results"][0], "nearest_readout": nearest}]}
    davis = {**DAVIS, "results": [{**DAVIS["results"][0], "ids_kept": 0.9, "class_kept": 0.75,
                                   "nearest_readout": {"metrics": {"J&F": 0.5, "J": {"mean": 0.55}, "F": {"mean": 0.45}}, "ids_kept": 0.8}}]}
    add_metrics(path, "camvid_test", [camvid], ["c1"])
    add_metrics(path, "davis_val", [davis], ["c2"])
    rows = table_rows(path)
    assert rows[2] == "| `street` | camvid/test, 233 | 1 | thing_vote, nearest readout | mIoU 50.0 (class bits alone: 59.0) | PQ 29.0 (things 8.0, stuff 39.0) |"
    assert rows[3:] == [
        "| `street` | davis2016/val (streaming), 300 | 4 | — | J&F 60.0 | J 65.0, F 55.0, ids kept 90.0%, class kept 75.0% |",
        "| `street` | davis2016/val (streaming), 300 | 4 | —, nearest readout | J&F 50.0 | J 55.0, F 45.0, ids kept 80.0% |",
    ]
