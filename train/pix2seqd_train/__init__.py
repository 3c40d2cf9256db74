"""pix2seqd_train: the PyTorch side of pix2seqd (Pix2Seq-D panoptic segmentation by bit diffusion).

Modules: `config` (model configs as JSON), `rng` (the shared counter-based noise), `bits`
(integer maps <-> analog bits), `diffusion` (schedule, loss, DDIM sampler), `readout` (ids at any
resolution from the last logits and x̂0), `model` (the network), `export` (safetensors export with
BatchNorm folded, checkpoints), `fixtures` (Rust parity fixtures).
"""

from pathlib import Path

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parent
TRAIN_DIR = PACKAGE_DIR.parent
REPO_ROOT = TRAIN_DIR.parent
CONFIGS_DIR = TRAIN_DIR / "configs"
# Shared read-only data lives beside the checkout (never copied into the repository).
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
