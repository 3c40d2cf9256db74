"""DAVIS J and F of an oracle that knows each mask cell's foreground fraction, read out by nearest
neighbour (cell > 0.5) and bilinearly (mixed fraction > 0.5), at the shipped models' 48×64 mask and
192×256 canvas: what the readout alone can change in J and F, whatever the model.

    python3 scripts/readout_oracle_davis.py      # from the repository root; needs ../shared/data

Measured (4 held-out sequences, every 6th frame, 44 frames): nearest J 0.790 F 0.759, bilinear
J 0.840 F 0.747. The boundary measure does not reward smooth contours at this mask resolution
(likely because they round off corners and thin parts that the staircase keeps within the
measure's 8-pixel tolerance): DAVIS F gains must come from the models, not from the readout.
"""
import glob

import sys

import numpy as np
from PIL import Image

sys.path.insert(0, "train")
from pix2seqd_train.metrics import db_eval_boundary, db_eval_iou  # noqa: E402

# An oracle at mask resolution: each cell's foreground fraction of the ground truth (a perfectly
# calibrated coarse model); read out by nearest (cell > 0.5) and bilinear (mixed fraction > 0.5).
Hm, Wm, canvas = 48, 64, (192, 256)
res = {"nearest": [], "bilinear": []}
for seq in ["motocross-jump", "paragliding-launch", "scooter-black", "soapbox"]:
    masks = sorted(glob.glob(f"../shared/data/davis2016/{seq}/masks/*.png"))[1:-1:6]
    for m in masks:
        gt = np.array(Image.open(m).convert("L")) > 127
        H, W = gt.shape
        scale = min(canvas[0] / H, canvas[1] / W)
        ch, cw = round(H * scale), round(W * scale)
        # content rows/cols in cells
        frac = np.zeros((Hm, Wm), np.float32)
        ry = np.minimum(((np.arange(H) + 0.5) * ch / H * Hm / canvas[0]).astype(int), Hm - 1)
        rx = np.minimum(((np.arange(W) + 0.5) * cw / W * Wm / canvas[1]).astype(int), Wm - 1)
        cnt = np.zeros((Hm, Wm)); np.add.at(cnt, (ry[:, None], rx[None, :]), 1); np.add.at(frac, (ry[:, None], rx[None, :]), gt)
        frac = np.where(cnt > 0, frac / np.maximum(cnt, 1), 0).astype(np.float32)
        near = (frac > 0.5)[ry[:, None], rx[None, :]]
        sy = np.float32(ch * Hm / (H * canvas[0])); sx = np.float32(cw * Wm / (W * canvas[1]))
        fy = (np.arange(H, dtype=np.float32) + 0.5) * sy - 0.5; fx = (np.arange(W, dtype=np.float32) + 0.5) * sx - 0.5
        y0 = np.floor(fy).astype(int); x0 = np.floor(fx).astype(int); ty = fy - y0; tx = fx - x0
        r0, r1 = np.clip(y0, 0, Hm - 1), np.clip(y0 + 1, 0, Hm - 1); c0, c1 = np.clip(x0, 0, Wm - 1), np.clip(x0 + 1, 0, Wm - 1)
        mix = ((1 - ty)[:, None] * (1 - tx)[None] * frac[r0][:, c0] + (1 - ty)[:, None] * tx[None] * frac[r0][:, c1]
               + ty[:, None] * (1 - tx)[None] * frac[r1][:, c0] + ty[:, None] * tx[None] * frac[r1][:, c1])
        bil = mix > 0.5
        for k, p in (("nearest", near), ("bilinear", bil)):
            res[k].append((db_eval_iou(gt, p), db_eval_boundary(gt, p)))
for k, v in res.items():
    v = np.array(v); print(k, "J %.3f F %.3f" % tuple(v.mean(0)), len(v))
