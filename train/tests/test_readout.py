"""Bilinear readout (readout.py) against a plain-loop transcription of its normative definition,
its corner shortcut, hand cases, the shared JSON cases and fixture tensors, and its use by evaluate.
Class group: the last logits (void probability, then the best class); instance group: the final
x̂0's instance bits, thresholded per bit after mixing."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from pix2seqd_train import CONFIGS_DIR, REPO_ROOT
from pix2seqd_train.bits import analog_bits_to_ids, expected_analog_bits
from pix2seqd_train.config import ModelConfig, load_config
from pix2seqd_train.data import build_dataset
from pix2seqd_train.data.common import unletterbox
from pix2seqd_train.fixtures import FIXTURES, READOUT_CASE, readout_case
from pix2seqd_train.readout import cell_ids, class_void_probability, readout, readout_margin

COMMITTED = REPO_ROOT / "tests" / "fixtures"
f32 = np.float32


def config(class_bits=3, instance_bits=4, num_classes=8, max_instances=16):
    return ModelConfig(class_bits=class_bits, instance_bits=instance_bits, num_classes=num_classes,
                       max_instances=max_instances)


def void_probability(values):
    """p0 = 1 / sum_v exp(l[v] - l[0]) of one cell's valid class logits, summed in order from 0.0,
    each op rounded to float32 (exp: the correctly rounded float32 exp)."""
    total = f32(0.0)
    with np.errstate(over="ignore"):  # exp overflows to inf: p0 = 0
        for v in range(len(values)):
            total = f32(total + f32(math.exp(f32(values[v] - values[0]))))
    return f32(f32(1.0) / total)


def random_x0(rng, mask_hw, cfg, scale=0.05):
    """A final x̂0 [Hm, Wm, class_bits + instance_bits], float32."""
    return rng.normal(0.0, scale, size=(*mask_hw, cfg.class_bits + cfg.instance_bits)).astype(np.float32)


def threshold_ids(bits, max_id):
    """sum_k [bits[k] > 0] * 2^k (LSB first), clamped to max_id."""
    return min(sum(1 << k for k in range(len(bits)) if bits[k] > 0), max_id)


def brute_force(logits, x0, cfg, canvas_hw, content_hw, out_hw, corner_rule=True, with_margins=False,
                class_rule="void", rows=None):
    """The definition, pixel by pixel with float32 scalars (every op rounded to float32); with
    margins: where the corners disagree, the class group's min(|p - 0.5|, top-2 gap of s(v), v >= 1)
    (only |p - 0.5| for void or a single non-void id) and the instance group's min_k |m_k| of the
    mixed instance bits, +inf elsewhere. class_rule="argmax": the superseded class rule (plain
    argmax of the logits and of s(v)), for comparison. rows: only these output rows (others 0 / inf)."""
    mask_h, mask_w, _ = logits.shape
    assert x0.shape == (mask_h, mask_w, cfg.class_bits + cfg.instance_bits)
    groups = [(0, min(2**cfg.class_bits, cfg.num_classes)),
              (cfg.class_bits, cfg.instance_bits)]  # class: logits; instance: x0 bits
    max_id = min(2**cfg.instance_bits, cfg.max_instances) - 1

    def argmax(values):  # first index of the maximum: ties -> the smallest id
        best = 0
        for v in range(1, len(values)):
            if values[v] > values[best]:
                best = v
        return best

    def decide(values, p0, g):  # one group's id from its (interpolated) class logits and p0 / bits
        if g == 1:
            return threshold_ids(values, max_id)
        if class_rule == "argmax":
            return argmax(values)
        if len(values) == 1 or p0 >= f32(0.5):
            return 0
        return 1 + argmax(values[1:])

    def source(g):
        return logits if g == 0 else x0

    def cell(r, c, start, count, g):
        values = [source(g)[r, c, start + v] for v in range(count)]
        return decide(values, void_probability(values) if g == 0 else None, g)

    def axis(n, out_n, mask_n, content_n, canvas_n):
        scale = f32((content_n * mask_n) / (out_n * canvas_n))
        pos = f32(f32(f32(n) + f32(0.5)) * scale) - f32(0.5)
        first = math.floor(pos)
        frac = f32(pos - f32(first))
        return min(max(first, 0), mask_n - 1), min(max(first + 1, 0), mask_n - 1), f32(f32(1) - frac), frac

    def gap(values):
        ordered = sorted(values)
        return f32(ordered[-1] - ordered[-2])

    out_h, out_w = out_hw
    result = np.zeros((2, out_h, out_w), dtype=np.int64)
    margins = np.full((2, out_h, out_w), np.inf, dtype=np.float32)
    for y in range(out_h) if rows is None else rows:
        r0, r1, wy0, wy1 = axis(y, out_h, mask_h, content_hw[0], canvas_hw[0])
        for x in range(out_w):
            c0, c1, wx0, wx1 = axis(x, out_w, mask_w, content_hw[1], canvas_hw[1])
            w00, w01, w10, w11 = f32(wy0 * wx0), f32(wy0 * wx1), f32(wy1 * wx0), f32(wy1 * wx1)

            def mix(f00, f01, f10, f11):
                s = f32(f32(w00 * f00) + f32(w01 * f01))
                s = f32(s + f32(w10 * f10))
                return f32(s + f32(w11 * f11))

            for g, (start, count) in enumerate(groups):
                corner_cells = [(r0, c0), (r0, c1), (r1, c0), (r1, c1)]
                corners = {cell(r, c, start, count, g) for r, c in corner_cells}
                if corner_rule and len(corners) == 1:
                    result[g, y, x] = corners.pop()
                    continue
                scores = [mix(*(source(g)[r, c, start + v] for r, c in corner_cells)) for v in range(count)]
                p = None
                if g == 0:
                    p = mix(*(void_probability([logits[r, c, start + v] for v in range(count)])
                              for r, c in corner_cells))
                result[g, y, x] = decide(scores, p, g)
                if len(corners) == 1:
                    continue
                if g == 1:
                    margins[g, y, x] = min(abs(m) for m in scores)
                elif class_rule == "argmax":
                    margins[g, y, x] = gap(scores) if count > 1 else np.inf
                else:
                    margins[g, y, x] = abs(f32(p - f32(0.5)))
                    if result[g, y, x] != 0 and count > 2:
                        margins[g, y, x] = min(margins[g, y, x], gap(scores[1:]))
    return (result[0], result[1], margins) if with_margins else (result[0], result[1])


GEOMETRIES = [
    # mask_hw, canvas_hw, content_hw, out_hw
    ((7, 9), (28, 36), (28, 25), (31, 45)),   # letterboxed, upsampled by non-integer factors
    ((13, 11), (26, 22), (19, 22), (5, 7)),   # downsampled
    ((5, 6), (20, 24), (20, 24), (4, 37)),    # down on one axis, up on the other
    ((3, 4), (3, 4), (1, 1), (2, 3)),         # one cell of content
    ((6, 5), (6, 5), (6, 5), (1, 1)),         # a single output pixel
]


@pytest.mark.parametrize("mask_hw, canvas_hw, content_hw, out_hw", GEOMETRIES)
def test_matches_the_definition_and_the_corner_rule_changes_nothing(mask_hw, canvas_hw, content_hw, out_hw):
    cfg = config(class_bits=3, instance_bits=2, num_classes=6, max_instances=4)
    rng = np.random.default_rng(sum(mask_hw + out_hw))
    logits = rng.normal(0.0, 3.0, size=(*mask_hw, cfg.n_logits)).astype(np.float32)
    x0 = random_x0(rng, mask_hw, cfg)
    cls, inst = readout(logits, x0, cfg, canvas_hw, content_hw, out_hw)
    assert cls.shape == inst.shape == tuple(out_hw) and cls.dtype == inst.dtype == np.int64
    want_cls, want_inst, want_margins = brute_force(logits, x0, cfg, canvas_hw, content_hw, out_hw, with_margins=True)
    np.testing.assert_array_equal(cls, want_cls)
    np.testing.assert_array_equal(inst, want_inst)
    np.testing.assert_array_equal(readout_margin(logits, x0, cfg, canvas_hw, content_hw, out_hw), want_margins)
    void = class_void_probability(logits, cfg)
    assert void.dtype == np.float32 and void.shape == tuple(mask_hw)
    assert void.tolist() == [[void_probability(logits[r, c, :6]) for c in range(mask_hw[1])] for r in range(mask_hw[0])]
    # Random, untied logits and bits: interpolating everywhere gives the same ids as the corner shortcut.
    full_cls, full_inst = brute_force(logits, x0, cfg, canvas_hw, content_hw, out_hw, corner_rule=False)
    np.testing.assert_array_equal(cls, full_cls)
    np.testing.assert_array_equal(inst, full_inst)


def test_ties_go_to_the_smallest_id_as_in_the_definition():
    cfg = config(class_bits=2, instance_bits=3, num_classes=4, max_instances=8)
    rng = np.random.default_rng(3)
    logits = rng.integers(-1, 2, size=(6, 5, cfg.n_logits)).astype(np.float32)
    x0 = rng.integers(-1, 2, size=(6, 5, cfg.n_bits)).astype(np.float32) / f32(256)  # exact zeros
    cls, inst = readout(logits, x0, cfg, (12, 10), (12, 10), (17, 13))
    want_cls, want_inst, want_margins = brute_force(logits, x0, cfg, (12, 10), (12, 10), (17, 13), with_margins=True)
    np.testing.assert_array_equal(cls, want_cls)
    np.testing.assert_array_equal(inst, want_inst)
    assert (want_margins[1] == 0).any()  # mixed bits exactly 0 (-> bit 0) at some pixels
    np.testing.assert_array_equal(readout_margin(logits, x0, cfg, (12, 10), (12, 10), (17, 13)), want_margins)
    # all equal: p0 = 1/4 < 0.5, so class 1 (the smallest non-void id); bits exactly 0: instance 0
    flat = np.zeros((2, 2, cfg.n_logits), dtype=np.float32)
    cls, inst = readout(flat, np.zeros((2, 2, cfg.n_bits), np.float32), cfg, (2, 2), (2, 2), (7, 5))
    assert (cls == 1).all() and (inst == 0).all()
    assert (class_void_probability(flat, cfg) == f32(0.25)).all()


def test_identity_geometry_equals_the_cell_ids():
    cfg = config(class_bits=3, instance_bits=4, num_classes=5, max_instances=10)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 11, cfg.n_logits, generator=generator)  # torch tensors
    x0 = torch.randn(9, 11, cfg.n_bits, generator=generator) * 0.1
    cells = cell_ids(logits, x0, cfg)
    reads = readout(logits, x0, cfg, (9, 11), (9, 11), (9, 11))
    for cell, read in zip(cells, reads):
        np.testing.assert_array_equal(cell, read)
    # the instance ids are the sampler's thresholded ids (bits.analog_bits_to_ids), also at identity
    np.testing.assert_array_equal(cells[1], analog_bits_to_ids(x0, cfg)[1].numpy())
    assert (cells[1] == 9).any() and len(np.unique(cells[1])) == 10  # clamped to max_instances - 1
    # weights (1, 0, 0, 0): where neighbouring cells differ, the mixed bits are the cell's own
    margins = readout_margin(logits, x0, cfg, (9, 11), (9, 11), (9, 11))[1]
    mixed = np.isfinite(margins)
    assert mixed.any() and (~mixed).any()
    np.testing.assert_array_equal(margins[mixed], x0[..., cfg.class_bits :].abs().min(-1).values.numpy()[mixed])
    void = torch.softmax(logits[..., :5].double(), -1)[..., 0].numpy()
    np.testing.assert_allclose(class_void_probability(logits, cfg), void, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(cells[0], np.where(void >= 0.5, 0, 1 + logits[..., 1:5].argmax(-1).numpy()))
    assert 0 in cells[0] and len(np.unique(cells[0])) > 2
    # cell_ids accepts leading dims (a batch)
    batched = cell_ids(logits.unsqueeze(0).expand(2, -1, -1, -1), x0.unsqueeze(0).expand(2, -1, -1, -1), cfg)
    assert batched[0].shape == (2, 9, 11) and (batched[0] == cells[0]).all() and (batched[1] == cells[1]).all()
    with pytest.raises(ValueError):
        cell_ids(logits, x0[..., :-1], cfg)
    with pytest.raises(ValueError):
        readout(logits, x0[:-1], cfg, (9, 11), (9, 11), (9, 11))


@pytest.mark.parametrize("strip_logit, width", [(0.3125, 4), (3.0, 6)])
def test_a_one_cell_strip_becomes_a_straight_band_at_4x(strip_logit, width):
    """Class 1 on column 4 only: at 4x the band is the same in every row, centred on the strip's
    pixels 16..19, and its width follows the logits (interpolation, not nearest neighbour)."""
    cfg = config(class_bits=1, instance_bits=1, num_classes=2, max_instances=2)
    mask_h, mask_w = 8, 9
    logits = np.zeros((mask_h, mask_w, cfg.n_logits), dtype=np.float32)
    logits[..., 0], logits[..., 1] = 0.25, -0.25  # class 0 everywhere (p0 = 0.62) ...
    logits[:, 4, 0], logits[:, 4, 1] = -strip_logit, strip_logit  # ... but the strip
    x0 = np.full((mask_h, mask_w, cfg.n_bits), -0.1, dtype=np.float32)  # instance bit 0 everywhere
    cls, inst = readout(logits, x0, cfg, (mask_h, mask_w), (mask_h, mask_w), (4 * mask_h, 4 * mask_w))
    assert (inst == 0).all()
    assert (cls == cls[:1]).all()  # straight vertical edges, no staircase
    band = np.flatnonzero(cls[0])
    assert band.tolist() == list(range(18 - width // 2, 18 + width // 2))
    margins = readout_margin(logits, x0, cfg, (mask_h, mask_w), (mask_h, mask_w), (4 * mask_h, 4 * mask_w))
    assert np.isinf(margins[1]).all()  # instances: corners agree everywhere
    mixed = np.zeros(4 * mask_w, dtype=bool)
    mixed[14:22] = True  # pixels between a strip cell and a neighbour cell
    assert np.isfinite(margins[0][:, mixed]).all() and np.isinf(margins[0][:, ~mixed]).all()


def test_invalid_ids_never_appear():
    cfg = config(class_bits=3, instance_bits=4, num_classes=3, max_instances=5)
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(10, 12, cfg.n_logits)).astype(np.float32)
    logits[..., 3:8] += 100.0  # invalid class ids 3..7 would win everywhere
    logits[..., 8 + 5 :] += 100.0  # the instance logits are not read
    x0 = random_x0(rng, (10, 12), cfg)  # bits of ids 5..15 too: clamped to 4
    for ids, limit in zip(cell_ids(logits, x0, cfg), (3, 5)):
        assert ids.max() < limit and len(np.unique(ids)) == limit
    for out_hw in ((23, 29), (5, 4)):
        cls, inst = readout(logits, x0, cfg, (20, 24), (13, 24), out_hw)
        assert cls.max() < 3 and inst.max() < 5
        np.testing.assert_array_equal(inst, brute_force(logits, x0, cfg, (20, 24), (13, 24), out_hw)[1])


def test_a_single_valid_class_is_void_everywhere():
    cfg = config(class_bits=2, instance_bits=2, num_classes=1, max_instances=4)
    rng = np.random.default_rng(5)
    logits = rng.normal(0.0, 3.0, size=(4, 5, cfg.n_logits)).astype(np.float32)
    x0 = random_x0(rng, (4, 5), cfg)
    assert (class_void_probability(logits, cfg) == 1).all() and (cell_ids(logits, x0, cfg)[0] == 0).all()
    cls, inst = readout(logits, x0, cfg, (8, 10), (8, 9), (11, 7))
    assert (cls == 0).all() and len(np.unique(inst)) > 1
    margins = readout_margin(logits, x0, cfg, (8, 10), (8, 9), (11, 7))
    assert np.isinf(margins[0]).all() and np.isfinite(margins[1]).any()
    np.testing.assert_array_equal(margins, brute_force(logits, x0, cfg, (8, 10), (8, 9), (11, 7), with_margins=True)[2])


def test_margin_is_the_distance_to_flipping_where_corners_disagree():
    cfg = config(class_bits=2, instance_bits=2, num_classes=4, max_instances=3)
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 6, cfg.n_logits)).astype(np.float32)
    x0 = random_x0(rng, (5, 6), cfg)
    margins = readout_margin(logits, x0, cfg, (10, 12), (8, 12), (9, 14))
    assert margins.shape == (2, 9, 14) and margins.dtype == np.float32
    finite = np.isfinite(margins)
    assert finite.any() and (~finite).any() and (margins[finite] >= 0).all()
    _, _, want = brute_force(logits, x0, cfg, (10, 12), (8, 12), (9, 14), with_margins=True)
    np.testing.assert_array_equal(margins, want)
    assert np.isfinite(margins[1]).any() and np.isinf(margins[1]).any()


def test_readout_case_regenerates():
    """tests/fixtures/readout_case.json: the answers the Rust twins must give."""
    committed = json.loads((COMMITTED / READOUT_CASE).read_text())
    assert readout_case() == committed, "run: PYTHONPATH=train python -m pix2seqd_train.fixtures"
    assert (COMMITTED / READOUT_CASE).stat().st_size < 150 * 1024
    assert sum(case["x0"].count(0.0) for case in committed["cases"]) > 10  # exact zeros: bit 0
    for case in committed["cases"]:
        logits = np.asarray(case["logits"], dtype=np.float32)
        assert logits.astype(np.float64).tolist() == case["logits"]  # exactly representable
        cfg = config(case["class_bits"], case["instance_bits"], case["num_classes"], case["max_instances"])
        logits = logits.reshape(*case["mask_hw"], cfg.n_logits)
        x0 = np.asarray(case["x0"], dtype=np.float32)
        assert x0.astype(np.float64).tolist() == case["x0"] and np.abs(x0).max() <= 0.1
        assert (x0 * 256 == np.round(x0 * 256)).all()  # on the 1/256 grid
        x0 = x0.reshape(*case["mask_hw"], cfg.n_bits)
        cls, inst, margins = brute_force(logits, x0, cfg, case["canvas_hw"], case["content_hw"], case["out_hw"],
                                         with_margins=True)
        assert cls.ravel().tolist() == case["class"] and inst.ravel().tolist() == case["instance"], case["name"]
        assert np.isfinite(margins[1]).any(), case["name"]  # every case mixes instance bits somewhere
        if case["name"] == "identity":  # the readout is the threshold of the cells' bits
            assert inst.ravel().tolist() == analog_bits_to_ids(torch.from_numpy(x0), cfg)[1].ravel().tolist()
        assert max(case["class"]) < case["num_classes"] and max(case["instance"]) < case["max_instances"]
        count = min(2**cfg.class_bits, cfg.num_classes)
        want_void = [float(void_probability(cell[:count])) for cell in logits.reshape(-1, cfg.n_logits)]
        assert case["class_void"] == want_void, case["name"]
        assert np.asarray(case["class_void"], dtype=np.float32).astype(np.float64).tolist() == want_void  # f32 values


def test_mixed_bits_can_read_an_id_no_corner_has():
    """The case mixed_bits_new_id: instance id 1 (bits 1, 0) in the left cells, 2 (bits 0, 1) in the
    right ones. Bit 0 falls below 0 near the right cells, bit 1 rises above 0 near the left ones:
    between them both bits are set and the pixels read id 3, which none of their corners has."""
    case = next(c for c in json.loads((COMMITTED / READOUT_CASE).read_text())["cases"]
                if c["name"] == "mixed_bits_new_id")
    cfg = config(case["class_bits"], case["instance_bits"], case["num_classes"], case["max_instances"])
    logits = np.asarray(case["logits"], dtype=np.float32).reshape(*case["mask_hw"], cfg.n_logits)
    x0 = np.asarray(case["x0"], dtype=np.float32).reshape(*case["mask_hw"], cfg.n_bits)
    assert cell_ids(logits, x0, cfg)[1].tolist() == [[1, 2], [1, 2]]
    inst = np.asarray(case["instance"]).reshape(case["out_hw"])
    assert (inst == inst[:1]).all()  # the rows are alike
    assert inst[0].tolist() == [1] * 6 + [3] * 4 + [2] * 6
    np.testing.assert_array_equal(inst, readout(logits, x0, cfg, case["canvas_hw"], case["content_hw"], case["out_hw"])[1])


def test_void_runner_up_case_closes_the_gap_a_plain_argmax_opens():
    """The case built for the void-probability rule: object cells of class 1 (left) and 2 (right)
    with void their runner-up. Interpolating the logits and taking the arg-max lets void win along
    the seam inside the object; the readout keeps the object whole."""
    case = next(c for c in json.loads((COMMITTED / READOUT_CASE).read_text())["cases"] if c["name"] == "void_runner_up")
    cfg = config(case["class_bits"], case["instance_bits"], case["num_classes"], case["max_instances"])
    logits = np.asarray(case["logits"], dtype=np.float32).reshape(*case["mask_hw"], cfg.n_logits)
    x0 = np.asarray(case["x0"], dtype=np.float32).reshape(*case["mask_hw"], cfg.n_bits)
    cells = cell_ids(logits, x0, cfg)[0]
    assert cells.tolist() == [[0, 0, 0, 0], [1, 1, 2, 2], [1, 1, 2, 2]]
    classes = logits[1:, :, :4]
    assert (np.argsort(classes, -1)[..., -2] == 0).all()  # void is the runner-up of every object cell
    void = class_void_probability(logits, cfg)
    assert (void[0] >= 0.5).all() and (void[1:] < 0.5).all()
    out_h, out_w = case["out_hw"]
    new = np.asarray(case["class"]).reshape(out_h, out_w)
    old, _ = brute_force(logits, x0, cfg, case["canvas_hw"], case["content_hw"], case["out_hw"], class_rule="argmax")
    scale = case["content_hw"][0] * case["mask_hw"][0] / (out_h * case["canvas_hw"][0])
    inside = (np.arange(out_h) + 0.5) * scale - 0.5 >= 1.1  # rows whose four corners are all object cells
    assert inside.sum() >= 5
    assert (old[inside] == 0).any(axis=1).all()  # a void seam in every such row
    assert (new[inside] != 0).all() and {1, 2} == set(new[inside].ravel().tolist())
    assert (new[~inside][: 3] == 0).all()  # the void rows stay void
    seam = (old != new)
    assert seam.any() and (old[seam] == 0).all()  # the rules differ only where the plain argmax says void


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_readout_tensors_reproduce(name):
    acts = load_file(str(COMMITTED / name / "activations.safetensors"))
    cfg = load_config(CONFIGS_DIR / f"{name}.json")
    logits = acts["sampler.logits_last"]
    assert logits.shape == (1, *cfg.mask_size, cfg.n_logits)
    # The readout tensors were added later, on another CPU: the x̂0 of these logits is within the
    # cross-CPU slack of test_fixtures.py of the stored one, and thresholds to the same ids.
    x0 = expected_analog_bits(logits, cfg).clamp(-cfg.b_scale, cfg.b_scale)
    torch.testing.assert_close(x0, acts["output.x0"], atol=5e-5, rtol=0)
    assert all(torch.equal(a.int(), b) for a, b in zip(analog_bits_to_ids(x0, cfg),
                                                      (acts["output.class"], acts["output.instance"])))
    # The instance group reads the final x̂0, stored as sampler.x0_last (= output.x0 = sampler.x0[-1]).
    x0_last = acts["sampler.x0_last"]
    assert x0_last.dtype == torch.float32 and x0_last.shape == (1, *cfg.mask_size, cfg.n_bits)
    assert torch.equal(x0_last, acts["output.x0"]) and torch.equal(x0_last[0], acts["sampler.x0"][-1][0])
    cells = cell_ids(logits[0], x0_last[0], cfg)
    for key, ids in zip(("output.cell_class", "output.cell_instance"), cells):
        assert acts[key].dtype == acts["output.class"].dtype and acts[key].shape == acts["output.class"].shape
        np.testing.assert_array_equal(acts[key][0].numpy(), ids)
    # the cell instance ids are the sampler's thresholded instance ids
    assert torch.equal(acts["output.cell_instance"], acts["output.instance"])
    void = acts["output.cell_class_void"]
    assert void.dtype == torch.float32 and void.shape == acts["output.class"].shape
    np.testing.assert_array_equal(void[0].numpy(), class_void_probability(logits[0], cfg))
    assert ((void >= 0) & (void <= 1)).all() and (void >= 0.5).any() and (void < 0.5).any()  # 0: exp overflowed
    geometry = acts["readout.geometry"].tolist()
    canvas_hw, content_hw, out_hw = geometry[0:2], geometry[2:4], geometry[4:6]
    assert canvas_hw == cfg.image_size and content_hw != canvas_hw and out_hw[0] % 2 and out_hw[1] % 2
    cls, inst = readout(logits[0], x0_last[0], cfg, canvas_hw, content_hw, out_hw)
    np.testing.assert_array_equal(acts["readout.class"].numpy(), cls)
    np.testing.assert_array_equal(acts["readout.instance"].numpy(), inst)
    assert len(np.unique(cls)) > 2 and len(np.unique(inst)) > 2
    margins = acts["readout.margin"]
    assert margins.shape == (2, *out_hw) and margins.dtype == torch.float32
    with safe_open(str(COMMITTED / name / "activations.safetensors"), "pt") as f:
        assert f.metadata()["min_readout_margin"] == f"{float(margins.min()):.6g}"
    np.testing.assert_array_equal(margins.numpy(), readout_margin(logits[0], x0_last[0], cfg, canvas_hw, content_hw,
                                                                  out_hw))
    assert torch.isfinite(margins).any() and torch.isinf(margins).any()
    # the instance readout against the plain-loop definition, on a crop of the output (the loops are slow)
    crop = (slice(0, 9), slice(0, out_hw[1]))
    _, want_inst, want_margins = brute_force(logits[0].numpy(), x0_last[0].numpy(), cfg, canvas_hw, content_hw,
                                             out_hw, with_margins=True, rows=range(9))
    np.testing.assert_array_equal(inst[crop], want_inst[crop])
    np.testing.assert_array_equal(margins[1].numpy()[crop], want_margins[1][crop])
    assert np.isfinite(want_margins[1][crop]).any()


def test_evaluate_reads_ids_with_the_bilinear_readout(monkeypatch):
    from pix2seqd_train import evaluate
    from pix2seqd_train.model import build_model

    torch.manual_seed(0)
    cfg = load_config(CONFIGS_DIR / "tiny-resnet.json")
    model = build_model(cfg, load_pretrained=False).eval()
    dataset = build_dataset("synthetic", "val", cfg, size=[60, 90], length=2)
    calls = []

    def spy(logits, x0, cfg_, canvas_hw, content_hw, out_hw):
        calls.append((tuple(logits.shape), tuple(x0.shape), tuple(canvas_hw), tuple(content_hw), tuple(out_hw)))
        return readout(logits, x0, cfg_, canvas_hw, content_hw, out_hw)

    monkeypatch.setattr(evaluate, "bilinear_readout", spy)
    result = evaluate.evaluate_images(model, dataset, count=2, steps=1, min_pixels=4, batch_size=2)
    assert result["sampler"]["readout"] == "bilinear" and 0.0 <= result["miou"] <= 1.0
    gt_shapes = [dataset.raw(i)[-1].cls.shape for i in range(2)]
    assert [c[4] for c in calls] == gt_shapes
    content = [tuple(dataset[i]["content_size"].tolist()) for i in range(2)]
    assert calls[0] == ((*cfg.mask_size, cfg.n_logits), (*cfg.mask_size, cfg.n_bits), tuple(cfg.image_size),
                        content[0], gt_shapes[0])
    assert content[0] != tuple(cfg.image_size)  # letterboxed: 60x90 on an 80x112 canvas

    calls.clear()
    old = evaluate.evaluate_images(model, dataset, count=2, steps=1, min_pixels=4, batch_size=2, readout="nearest")
    assert not calls and old["sampler"]["readout"] == "nearest"


def test_ids_at_original_nearest_is_the_old_unletterbox():
    from pix2seqd_train.evaluate import ids_at_original

    cfg = load_config(CONFIGS_DIR / "tiny-efficientnet.json")
    logits = torch.randn(*cfg.mask_size, cfg.n_logits, generator=torch.Generator().manual_seed(4)) * 5
    x0 = expected_analog_bits(logits, cfg).clamp(-cfg.b_scale, cfg.b_scale)
    maps = [m.numpy() for m in analog_bits_to_ids(x0, cfg)]
    old = ids_at_original(logits, x0, cfg, (48, 61), (30, 41), "nearest")
    for got, m in zip(old, maps):
        np.testing.assert_array_equal(got, unletterbox(m, tuple(cfg.image_size), (48, 61), (30, 41)))
    new = ids_at_original(logits, x0, cfg, (48, 61), (30, 41))
    for got, want in zip(new, readout(logits, x0, cfg, cfg.image_size, (48, 61), (30, 41))):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        ids_at_original(logits, x0, cfg, (48, 61), (30, 41), "bicubic")
