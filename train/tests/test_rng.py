"""NumPy RNG against values printed by the Rust implementation (docs/rng.md)."""

import numpy as np
import pytest
import torch

from pix2seqd_train import rng

RUST_U32 = {
    0: [40811527, 856866577, 3582223119, 3315424831],
    42: [4060075222, 1634618265, 2354711384, 603317532],
    4294967295: [713700720, 3359806211, 3823779793, 675476006],
}
RUST_NORMAL = {
    0: [0.9520318, 0.082755774, -0.008423085, 0.9763128],
    42: [-0.2453353, 0.69635755, -0.6600163, 1.3841887],
}


@pytest.mark.parametrize("seed", sorted(RUST_U32))
def test_random_u32_matches_rust_exactly(seed):
    values = rng.random_u32(seed, [0, 1, 2, 3])
    assert values.dtype == np.uint32
    assert values.tolist() == RUST_U32[seed]


@pytest.mark.parametrize("seed", sorted(RUST_NORMAL))
def test_normal_matches_rust(seed):
    values = rng.normal(seed, 4)
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, RUST_NORMAL[seed], atol=1e-6, rtol=0)


def test_counters_wrap_at_2_32_and_offsets_are_consistent():
    assert rng.random_u32(5, [2**32 + 3]).tolist() == rng.random_u32(5, [3]).tolist()
    np.testing.assert_array_equal(rng.normal(9, 6)[2:], rng.normal(9, 4, offset=2))


def test_uniforms_are_in_range():
    u = np.array([0, 255, 256, 2**32 - 1], dtype=np.uint32)
    assert rng.uniform_open(u).tolist() == [2**-24, 2**-24, 2 * 2**-24, 1.0]
    assert rng.uniform_closed(u).tolist() == [0.0, 0.0, 2**-24, 1.0 - 2**-24]


def test_noise_is_channels_last_storage_order():
    noise = rng.noise(42, (1, 2, 3, 4))
    assert noise.dtype == torch.float32 and noise.shape == (1, 2, 3, 4)
    np.testing.assert_array_equal(noise.reshape(-1).numpy(), rng.normal(42, 24))
    # element [0, h, w, c] is normal(seed, (h * W + w) * C + c)
    assert noise[0, 1, 2, 3].item() == rng.normal(42, 1, offset=(1 * 3 + 2) * 4 + 3)[0]


def test_normal_statistics():
    values = rng.normal(123, 200_000)
    assert abs(values.mean()) < 0.01
    assert abs(values.std() - 1.0) < 0.01
