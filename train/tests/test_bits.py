"""Integer maps <-> analog bits."""

import pytest
import torch

from pix2seqd_train.bits import (
    analog_bits_to_ids,
    bits2int,
    bits_matrix,
    expected_analog_bits,
    ids_to_analog_bits,
    int2bits,
    prev_maps_to_analog_bits,
)
from pix2seqd_train.config import load_config
from pix2seqd_train import CONFIGS_DIR

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_cfg():
    return load_config(CONFIGS_DIR / "tiny-resnet.json")


def test_int2bits_is_lsb_first_and_round_trips():
    x = torch.arange(256)
    bits = int2bits(x, 8)
    assert bits[5].tolist() == [1, 0, 1, 0, 0, 0, 0, 0]
    assert torch.equal(bits2int(bits), x)
    assert torch.equal(bits2int(bits.bool()), x)


def test_ids_round_trip_through_analog_bits():
    cfg = tiny_cfg()
    gen = torch.Generator().manual_seed(0)
    cls = torch.randint(0, cfg.num_classes, (2, 5, 7), generator=gen)
    inst = torch.randint(0, cfg.max_instances, (2, 5, 7), generator=gen)
    bits = ids_to_analog_bits(cls, inst, cfg)
    assert bits.shape == (2, 5, 7, cfg.class_bits + cfg.instance_bits)
    assert torch.equal(bits.abs(), torch.full_like(bits, cfg.b_scale))
    # class bits first, LSB first
    assert torch.equal(bits[..., 0] > 0, (cls & 1).bool())
    assert torch.equal(bits[..., cfg.class_bits] > 0, (inst & 1).bool())
    out_cls, out_inst = analog_bits_to_ids(bits, cfg)
    assert torch.equal(out_cls, cls) and torch.equal(out_inst, inst)


def test_decoding_clamps_to_num_classes_and_max_instances():
    cfg = tiny_cfg()  # 5 classes (3 bits), 10 instances (4 bits)
    all_ones = torch.full((1, 1, 1, cfg.n_bits), cfg.b_scale)
    cls, inst = analog_bits_to_ids(all_ones, cfg)
    assert cls.item() == cfg.num_classes - 1 and inst.item() == cfg.max_instances - 1


def test_expected_bits_of_one_hot_logits_are_the_bits():
    cfg = tiny_cfg()
    cls = torch.tensor([[[3]]])
    inst = torch.tensor([[[9]]])
    logits = torch.full((1, 1, 1, cfg.n_logits), -1e4)
    logits[..., 3] = 1e4
    logits[..., 2**cfg.class_bits + 9] = 1e4
    x0 = expected_analog_bits(logits, cfg)
    torch.testing.assert_close(x0, ids_to_analog_bits(cls, inst, cfg))


def test_expected_bits_are_per_bit_marginals():
    cfg = tiny_cfg()
    logits = torch.randn(1, 2, 2, cfg.n_logits)
    x0 = expected_analog_bits(logits, cfg)
    p_cls = torch.softmax(logits[..., : 2**cfg.class_bits], -1)
    marginal_bit0 = p_cls[..., 1::2].sum(-1)  # odd class ids have bit 0 set
    torch.testing.assert_close(x0[..., 0], (2 * marginal_bit0 - 1) * cfg.b_scale)
    assert x0.abs().max() <= cfg.b_scale + 1e-7
    assert bits_matrix(3).shape == (8, 3)


def test_prev_maps_encode_frame_after_frame():
    cfg = tiny_cfg()
    prev = torch.randint(0, 5, (2, 3, 4, 6, 2))
    bits = prev_maps_to_analog_bits(prev, cfg)
    assert bits.shape == (2, 4, 6, 3 * cfg.n_bits)
    torch.testing.assert_close(bits[..., cfg.n_bits : 2 * cfg.n_bits],
                               ids_to_analog_bits(prev[:, 1, ..., 0], prev[:, 1, ..., 1], cfg))
