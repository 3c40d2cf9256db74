"""Instance-id permutation, majority-vote post-processing, stuff merging, COCO panoptic encoding."""

import numpy as np
import pytest
import torch

from pix2seqd_train.panoptic import (
    colorize,
    id2rgb,
    majority_vote_postprocess,
    thing_vote_postprocess,
    merge_stuff,
    palette,
    permute_instance_ids,
    rgb2id,
    segment_id_map,
    to_coco_panoptic,
)


def same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Two id maps describe the same segments (a bijection between their values)."""
    pairs = torch.unique(torch.stack([a.flatten(), b.flatten()]), dim=1)
    return pairs.shape[1] == torch.unique(a).numel() == torch.unique(b).numel()


def test_permute_random_keeps_segments_and_void():
    inst = torch.tensor([[0, 1, 1, 2], [3, 3, 0, 2]])
    g = torch.Generator().manual_seed(0)
    out = permute_instance_ids(inst, max_instances=101, mode="random", generator=g)
    assert torch.equal(out == 0, inst == 0)
    assert same_partition(inst, out)
    assert out.max() <= 100 and out[inst > 0].min() >= 1


def test_permute_is_random_and_reproducible():
    inst = torch.arange(1, 11).view(2, 5)
    a = permute_instance_ids(inst, 101, "random", torch.Generator().manual_seed(1))
    b = permute_instance_ids(inst, 101, "random", torch.Generator().manual_seed(1))
    c = permute_instance_ids(inst, 101, "random", torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # over many draws every id value 1..100 shows up (ids are not just 1..n)
    seen = set()
    for s in range(60):
        seen |= set(permute_instance_ids(inst, 101, "random", torch.Generator().manual_seed(s)).flatten().tolist())
    assert len(seen) > 90


def test_permute_shuffle_uses_one_to_n():
    inst = torch.tensor([[0, 5, 5, 9], [7, 7, 0, 9]])
    out = permute_instance_ids(inst, 16, "shuffle", torch.Generator().manual_seed(3))
    assert set(out[inst > 0].tolist()) == {1, 2, 3}
    assert same_partition(inst, out)


def test_permute_shares_one_permutation_across_a_clip():
    clip = torch.stack([torch.tensor([[1, 2], [3, 0]]), torch.tensor([[2, 2], [1, 3]])])
    out = permute_instance_ids(clip, 16, "shuffle", torch.Generator().manual_seed(4))
    for old in (1, 2, 3):
        assert torch.unique(out[clip == old]).numel() == 1  # the same new id in both frames


def test_permute_rejects_too_many_segments():
    with pytest.raises(ValueError, match="do not fit"):
        permute_instance_ids(torch.arange(20).view(4, 5), max_instances=16)


def test_majority_vote_and_min_area():
    cls = torch.zeros(10, 10, dtype=torch.long)
    inst = torch.zeros(10, 10, dtype=torch.long)
    inst[:5] = 1  # id 1: 50 px, 30 of class 2 and 20 of class 3 -> all class 2
    cls[:3] = 2
    cls[3:5] = 3
    inst[5:8] = 2  # id 2: 30 px < 40 -> void
    cls[5:8] = 4
    cls[8:] = 5  # id 0 with a class -> void
    new_cls, new_inst = majority_vote_postprocess(cls, inst, min_pixels=40)
    assert (new_cls[:5] == 2).all() and (new_inst[:5] == 1).all()
    assert (new_cls[5:] == 0).all() and (new_inst[5:] == 0).all()


def test_majority_vote_batched_and_ties_go_to_smaller_class():
    cls = torch.tensor([[[1, 1, 2, 2]], [[3, 3, 3, 0]]])
    inst = torch.tensor([[[1, 1, 1, 1]], [[1, 1, 1, 1]]])
    new_cls, new_inst = majority_vote_postprocess(cls, inst, min_pixels=1)
    assert new_cls[0].tolist() == [[1, 1, 1, 1]]
    assert new_cls[1].tolist() == [[3, 3, 3, 3]]
    assert torch.equal(new_inst, inst)


def test_thing_vote_keeps_stuff_and_votes_per_fragment():
    # The same map and answer as thing_vote_keeps_stuff_and_votes_per_fragment in
    # src/panoptic/postprocess.rs. Classes: 0 void, 1 road, 2 sky (stuff), 3 car, 4 person (things).
    isthing = [False, False, False, True, True]
    cls = torch.tensor([[1, 1, 1, 3, 3, 3],
                        [1, 1, 4, 3, 3, 0],
                        [2, 2, 2, 2, 4, 4],
                        [4, 4, 2, 2, 4, 3]])
    inst = torch.tensor([[5, 5, 7, 7, 7, 7],
                         [5, 2, 7, 7, 0, 7],
                         [7, 7, 9, 1, 7, 7],
                         [7, 7, 1, 1, 7, 2]])
    new_cls, new_inst = thing_vote_postprocess(cls, inst, isthing, min_pixels=2)
    # id 7's fragments: top (car x4, person x1 -> car), right (person x3), bottom-left (person x2).
    # The id-0 car pixel joins the car fragment beside it; the lone car with id 2 touches only a
    # person fragment and is smaller than min_pixels on its own: void. Road gets id 1, sky id 2.
    assert new_cls.tolist() == [[1, 1, 1, 3, 3, 3],
                                [1, 1, 3, 3, 3, 0],
                                [2, 2, 2, 2, 4, 4],
                                [4, 4, 2, 2, 4, 0]]
    assert new_inst.tolist() == [[1, 1, 1, 7, 7, 7],
                                 [1, 1, 7, 7, 7, 0],
                                 [2, 2, 2, 2, 7, 7],
                                 [7, 7, 2, 2, 7, 0]]
    official_cls, _ = majority_vote_postprocess(cls, inst, min_pixels=2)
    assert official_cls[2, 0] != 2  # the official vote repaints id 7's sky pixels


def test_thing_vote_ties_and_small_stuff():
    isthing = [False, False, False, True, True]
    cls = torch.tensor([[3, 3, 4, 4, 1]])
    inst = torch.tensor([[1, 1, 1, 1, 1]])
    new_cls, new_inst = thing_vote_postprocess(cls, inst, isthing, min_pixels=2)
    assert new_cls.tolist() == [[3, 3, 3, 3, 0]]  # tie -> smaller class; 1 px of road < 2 -> void
    assert new_inst.tolist() == [[1, 1, 1, 1, 0]]


def test_thing_vote_gives_unreached_components_new_ids():
    # The same map and answer as thing_vote_gives_unreached_components_new_ids in
    # src/panoptic/postprocess.rs. Every car pixel has its own id (fragments of 1 pixel): the
    # car is one loose component and gets the smallest unused id; the person's id-0 pixel joins
    # its fragment; the road comes after them.
    isthing = [False, False, False, True, True]
    cls = torch.tensor([[3, 3, 3, 1, 4, 4],
                        [3, 3, 3, 1, 4, 4]])
    inst = torch.tensor([[1, 2, 3, 0, 9, 9],
                         [4, 5, 6, 0, 9, 0]])
    new_cls, new_inst = thing_vote_postprocess(cls, inst, isthing, min_pixels=2)
    assert new_cls.tolist() == cls.tolist()
    assert new_inst.tolist() == [[1, 1, 1, 2, 9, 9],
                                 [1, 1, 1, 2, 9, 9]]
    # the same map with min_pixels above the car: void car, road takes id 1
    new_cls, new_inst = thing_vote_postprocess(cls, inst, isthing, min_pixels=7)
    assert new_cls.tolist() == [[0] * 6, [0] * 6]  # person (4 px) and road (2 px) are small too


def test_merge_stuff_gives_each_stuff_class_one_id():
    cls = torch.tensor([[1, 1, 1, 2, 2, 2]])
    inst = torch.tensor([[4, 4, 7, 8, 9, 9]])
    out = merge_stuff(cls, inst, isthing=[False, False, True])  # class 1 stuff, class 2 thing
    assert out.tolist() == [[4, 4, 4, 8, 9, 9]]  # the largest stuff segment's id wins


def test_coco_panoptic_round_trip():
    cls = np.array([[0, 1, 1], [2, 2, 3]])
    inst = np.array([[0, 5, 5], [1, 2, 1]])
    png, infos = to_coco_panoptic(cls, inst, category_ids=[10, 20, 30])
    ids = rgb2id(png)
    assert len(infos) == 4 and (ids[0, 0] == 0)
    by_id = {s["id"]: s for s in infos}
    assert by_id[ids[0, 1]]["category_id"] == 10 and by_id[ids[0, 1]]["area"] == 2
    assert by_id[ids[0, 1]]["bbox"] == [1, 0, 2, 1]
    assert ids[1, 0] != ids[1, 1]  # same class, different instances
    assert by_id[ids[1, 2]]["category_id"] == 30
    np.testing.assert_array_equal(rgb2id(id2rgb(np.array([0, 1, 256, 70000]))), [0, 1, 256, 70000])


def test_segment_id_map_without_void():
    seg, segments = segment_id_map(np.array([[1, 2]]), np.array([[1, 1]]))
    assert seg.tolist() == [[1, 2]] and segments == {1: (1, 1), 2: (2, 1)}


def test_palette_and_colorize():
    colors = palette([{"name": "a", "color": [255, 0, 0]}, {"name": "b"}])
    assert colors.shape == (3, 3) and colors[0].tolist() == [0, 0, 0] and colors[1].tolist() == [255, 0, 0]
    rgb = colorize(np.array([[0, 1], [2, 2]]), np.array([[0, 1], [1, 2]]), colors, isthing=[False, False, True])
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0]
