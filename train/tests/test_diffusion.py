"""Schedule, step times, pixel weights, DDIM, sampler determinism and a tiny overfit."""

import math
import time

import pytest
import torch

from pix2seqd_train import CONFIGS_DIR
from pix2seqd_train.bits import expected_analog_bits
from pix2seqd_train.config import load_config
from pix2seqd_train.diffusion import ddim_step, gamma, pixel_weights, sample, step_times, training_loss
from pix2seqd_train.model import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_gamma_endpoints_and_monotone():
    assert gamma(0.0) == pytest.approx(1 - 1e-7, abs=5e-8)
    assert gamma(1.0) == pytest.approx(6.2e-9, rel=0.05)
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    g = gamma(t)
    assert torch.all(g[1:] < g[:-1])
    assert gamma(0.3) == pytest.approx(g[300].item(), abs=1e-12)


def test_step_times_without_td():
    times = step_times(4, 0.0)
    assert times == [(1.0, 0.75), (0.75, 0.5), (0.5, 0.25), (0.25, 0.0)]


@pytest.mark.parametrize("steps,td", [(10, 1.0), (10, 2.0), (20, 1.0), (5, 3.0)])
def test_step_times_with_integer_td_jump_to_zero_for_the_last_td_plus_one_steps(steps, td):
    times = step_times(steps, td)
    assert [t_now for t_now, _ in times] == [1 - i / steps for i in range(steps)]
    zero_steps = sum(1 for _, t_next in times if t_next == 0.0)
    assert zero_steps == math.ceil(td) + 1
    assert all(t_next == 0.0 for _, t_next in times[-(math.ceil(td) + 1):])
    assert all(t_next < t_now for t_now, t_next in times)


def test_step_times_with_fractional_td():
    # t_next = 0 once i + 1 + td >= T, i.e. for the last floor(td) + 1 steps
    assert sum(1 for _, t in step_times(10, 1.5) if t == 0.0) == 2
    assert step_times(10, 1.5)[0][1] == pytest.approx(1 - 2.5 / 10)


def test_ddim_step_with_exact_x0_recovers_the_clean_signal_at_t0():
    gen = torch.Generator().manual_seed(0)
    x0 = (torch.randint(0, 2, (1, 4, 4, 3), generator=gen) * 2 - 1) * 0.1
    eps = torch.randn(x0.shape, generator=gen)
    t_now = 0.6
    m = math.sqrt(gamma(t_now)) * x0 + math.sqrt(1 - gamma(t_now)) * eps
    m_next = ddim_step(m, x0.float(), t_now, 0.3)
    expected = math.sqrt(gamma(0.3)) * x0 + math.sqrt(1 - gamma(0.3)) * eps
    torch.testing.assert_close(m_next, expected.float(), atol=1e-5, rtol=1e-5)
    # at t = 0 only sqrt(1 - gamma(0)) ~ 3e-4 of the noise is left
    torch.testing.assert_close(ddim_step(m, x0.float(), t_now, 0.0), x0.float(), atol=5e-3, rtol=0)


def test_pixel_weights_mean_one_and_small_instances_weigh_more():
    inst = torch.zeros(2, 8, 8, dtype=torch.long)
    inst[0, :2, :2] = 1  # small instance (4 px)
    inst[0, 4:, :] = 2  # large instance (32 px)
    inst[1] = 3
    w = pixel_weights(inst, max_instances=10, p=0.2)
    assert w.shape == inst.shape
    torch.testing.assert_close(w.mean((1, 2)), torch.ones(2))
    assert w[0, 0, 0] > w[0, 7, 7] and w[0, 0, 0] > w[0, 2, 7]  # small > large, small > void (28 px)
    expected_ratio = ((4 + 1) / (32 + 1)) ** -0.2
    assert (w[0, 0, 0] / w[0, 7, 7]).item() == pytest.approx(expected_ratio, rel=1e-5)
    torch.testing.assert_close(w[1], torch.ones(8, 8))
    torch.testing.assert_close(pixel_weights(inst, 10, p=0.0), torch.ones(2, 8, 8))


def test_pixel_weights_ignore_ids_outside_the_one_hot():
    inst = torch.tensor([[[0, 1], [12, 1]]])
    w = pixel_weights(inst, max_instances=10, p=0.2)
    assert w[0, 1, 0] == 0
    assert w.sum().item() == pytest.approx(4.0)


def synthetic_batch(cfg, count=4):
    """Simple images with rectangles, and their class / instance maps at mask resolution."""
    image_h, image_w = cfg.image_size
    mask_h, mask_w = cfg.mask_size
    scale = image_h // mask_h
    images = torch.full((count, 3, image_h, image_w), 0.3)
    cls = torch.zeros(count, mask_h, mask_w, dtype=torch.long)
    inst = torch.zeros(count, mask_h, mask_w, dtype=torch.long)
    colors = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9], [0.9, 0.9, 0.1]])
    for i in range(count):
        boxes = [(i % 3, 1 + i, mask_h // 2 + i % 2, mask_w // 2 + i), (mask_h // 2, mask_w // 2 - i, mask_h, mask_w)]
        for j, (y0, x0, y1, x1) in enumerate(boxes):
            cls[i, y0:y1, x0:x1] = 1 + (i + j) % (cfg.num_classes - 1)
            inst[i, y0:y1, x0:x1] = 1 + (2 * i + j) % (cfg.max_instances - 1)
            images[i, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = colors[(i + j) % 4].view(3, 1, 1)
    return images, cls, inst


def test_tiny_overfit_halves_the_loss():
    """4 synthetic rectangle images, tiny EfficientNet config: the loss must fall below half its
    initial value within 200 AdamW steps (about 15-50 s on one CPU core)."""
    torch.manual_seed(0)
    cfg = load_config(CONFIGS_DIR / "tiny-efficientnet.json")
    model = build_model(cfg)
    images, cls, inst = synthetic_batch(cfg)
    prev = torch.zeros(4, cfg.video_prev_masks, *cfg.mask_size, 2, dtype=torch.long)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    eval_gen_seed = 123

    def eval_loss():
        model.eval()
        with torch.no_grad():  # fixed t / noise draws so the comparison is fair
            losses = [training_loss(model, images, cls, inst, prev, torch.Generator().manual_seed(eval_gen_seed + k))[0]
                      for k in range(4)]
        model.train()
        return float(torch.stack(losses).mean())

    initial = eval_loss()
    start = time.time()
    for _ in range(200):
        loss, logs = training_loss(model, images, cls, inst, prev, gen)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if time.time() - start > 60:
            break
    final = eval_loss()
    print(f"tiny overfit: loss {initial:.3f} -> {final:.3f} in {time.time() - start:.1f}s")
    assert final < 0.5 * initial


@pytest.mark.parametrize("name", ["tiny-efficientnet", "tiny-resnet"])
def test_sampler_shapes_and_determinism(name):
    torch.manual_seed(0)
    cfg = load_config(CONFIGS_DIR / f"{name}.json")
    model = build_model(cfg).eval()
    images = torch.rand(2, 3, *cfg.image_size)
    x0, (cls, inst) = sample(model, images, steps=3, td=1.0, seed=11)
    mask_h, mask_w = cfg.mask_size
    assert x0.shape == (2, mask_h, mask_w, cfg.n_bits)
    assert cls.shape == inst.shape == (2, mask_h, mask_w)
    assert cls.max() < cfg.num_classes and inst.max() < cfg.max_instances
    assert x0.abs().max() <= cfg.b_scale + 1e-7
    x0_again, (cls_again, inst_again), trace = sample(model, images, steps=3, td=1.0, seed=11, return_trace=True)
    assert torch.equal(x0, x0_again) and torch.equal(cls, cls_again) and torch.equal(inst, inst_again)
    assert len(trace["x0_steps"]) == 3 and torch.equal(trace["x0_steps"][-1], x0)
    assert trace["logits_step0"].shape == trace["logits_last"].shape == (2, mask_h, mask_w, cfg.n_logits)
    # return_logits: the last step's logits (before the trace), whose expected bits are x̂0
    x0_l, _, logits, trace_l = sample(model, images, steps=3, td=1.0, seed=11, return_trace=True, return_logits=True)
    assert torch.equal(x0_l, x0) and torch.equal(logits, trace_l["logits_last"])
    assert torch.equal(expected_analog_bits(logits, cfg).clamp(-cfg.b_scale, cfg.b_scale), x0)
    assert len(sample(model, images, steps=1, td=1.0, seed=11, return_logits=True)) == 3
    x0_other, _ = sample(model, images, steps=3, td=1.0, seed=12)
    assert not torch.equal(x0, x0_other)


class Wrapper(torch.nn.Module):
    """Stands in for DistributedDataParallel: forwards calls, exposes `.module`."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@pytest.mark.parametrize("name", ["tiny-efficientnet", "tiny-resnet"])
def test_training_loss_runs_with_video_and_self_conditioning(name):
    torch.manual_seed(0)
    cfg = load_config(CONFIGS_DIR / f"{name}.json")
    model = build_model(cfg)
    images, cls, inst = synthetic_batch(cfg, count=3)
    prev = torch.randint(0, 3, (3, cfg.video_prev_masks, *cfg.mask_size, 2)) if cfg.video_prev_masks else None
    loss, logs = training_loss(Wrapper(model), images, cls, inst, prev, torch.Generator().manual_seed(1))
    loss.backward()
    assert math.isfinite(logs["loss"]) and logs["loss"] == pytest.approx(loss.item())
    # initial loss ~ mean of ln(2^bits) over the two groups (uniform softmax from the zero-ish head)
    assert loss.item() == pytest.approx((cfg.class_bits + cfg.instance_bits) * math.log(2) / 2, rel=0.05)
    assert model.decoder.conv_out.weight.grad.abs().sum() > 0
    assert model.backbone.stem.conv.weight.grad is not None
