"""The shared counter-based noise generator of docs/rng.md, in NumPy.

The Rust CPU code and the WGSL kernels implement the same definition, so a seed gives the same
noise everywhere. Integer arithmetic is done in uint64 and masked back to 32 bits (wrap-around
without NumPy overflow warnings); the uniforms, ln, sqrt and cos are computed in float32 like the
engine does.
"""

from __future__ import annotations

import numpy as np
import torch

_MASK32 = np.uint64(0xFFFFFFFF)
_TWO_PI_F32 = np.float32(2.0 * np.pi)
_INV_2_24 = np.float32(2.0**-24)


def pcg_hash(x: np.ndarray) -> np.ndarray:
    """PCG-RXS-M-XS 32-bit output function; input and output are 32-bit values in uint64."""
    state = (x * np.uint64(747796405) + np.uint64(2891336453)) & _MASK32
    shift = (state >> np.uint64(28)) + np.uint64(4)
    word = (((state >> shift) ^ state) * np.uint64(277803737)) & _MASK32
    return (word >> np.uint64(22)) ^ word


def _key(seed: int) -> np.ndarray:
    return pcg_hash(np.uint64((int(seed) ^ 0x9E3779B9) & 0xFFFFFFFF))


def random_u32(seed: int, counters: np.ndarray | list[int] | int) -> np.ndarray:
    """random_u32(seed, c) = pcg_hash(pcg_hash(c) ^ key(seed)) for every counter c (mod 2^32)."""
    c = np.asarray(counters, dtype=np.int64).astype(np.uint64) & _MASK32
    return (pcg_hash(pcg_hash(c) ^ _key(seed))).astype(np.uint32)


def uniform_open(u: np.ndarray) -> np.ndarray:
    """f32((u >> 8) + 1) * 2^-24, in (0, 1], exact in float32."""
    return ((u.astype(np.uint32) >> np.uint32(8)) + np.uint32(1)).astype(np.float32) * _INV_2_24


def uniform_closed(u: np.ndarray) -> np.ndarray:
    """f32(u >> 8) * 2^-24, in [0, 1), exact in float32."""
    return (u.astype(np.uint32) >> np.uint32(8)).astype(np.float32) * _INV_2_24


def normal(seed: int, n: int, offset: int = 0) -> np.ndarray:
    """Standard normals normal(seed, offset + i), i = 0..n-1 (Box-Muller, cosine branch), float32."""
    index = np.arange(n, dtype=np.int64) + int(offset)
    u1 = uniform_open(random_u32(seed, 2 * index))
    u2 = uniform_closed(random_u32(seed, 2 * index + 1))
    radius = np.sqrt(np.float32(-2.0) * np.log(u1))
    return (radius * np.cos(_TWO_PI_F32 * u2)).astype(np.float32)


def noise(seed: int, shape_nhwc: tuple[int, ...] | list[int]) -> torch.Tensor:
    """A float32 noise tensor of the given shape, element i = normal(seed, i) in storage order.

    The sampler's noisy mask is [N, H, W, bits] (channels last), so the channel varies fastest;
    keep that shape and permute afterwards if a channels-first view is needed.
    """
    shape = tuple(int(s) for s in shape_nhwc)
    values = normal(seed, int(np.prod(shape)))
    return torch.from_numpy(values.reshape(shape))
