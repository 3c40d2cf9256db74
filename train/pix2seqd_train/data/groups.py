"""The `objects` model's classes: six groups of COCO things, and the DAVIS objects' groups.

coco128-seg has 112 training images for 80 classes, about 1.4 images per class: too few to learn
80 classes, enough to learn what a person, a vehicle or an animal looks like. The `objects` model
therefore predicts groups (person, vehicle, animal, furniture, food, other). DAVIS 2016 has one
foreground object per sequence; each sequence's object gets the group of what dominates its mask
(a rider on a bike or a horse is annotated together with it: the larger part decides).
"""

from __future__ import annotations

from .common import ClassInfo

GROUP_CLASSES = [
    ClassInfo("person", True, (220, 20, 60)),
    ClassInfo("vehicle", True, (0, 80, 200)),
    ClassInfo("animal", True, (255, 140, 0)),
    ClassInfo("furniture", True, (150, 90, 40)),
    ClassInfo("food", True, (120, 200, 40)),
    ClassInfo("other", True, (0, 170, 170)),
]

_GROUP_MEMBERS = {
    "person": ["person"],
    "vehicle": ["bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"],
    "animal": ["bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "teddy bear"],
    "furniture": ["bench", "chair", "couch", "potted plant", "bed", "dining table", "toilet"],
    "food": ["banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"],
}
COCO_GROUP = {name: group for group, names in _GROUP_MEMBERS.items() for name in names}

# DAVIS 2016 sequences (../shared/data/davis2016) -> group of the annotated object.
DAVIS_GROUP = {
    "blackswan": "animal",
    "bmx-trees": "person",  # rider + BMX bike
    "breakdance": "person",
    "camel": "animal",
    "car-roundabout": "vehicle",
    "cows": "animal",
    "dance-twirl": "person",
    "drift-chicane": "vehicle",
    "drift-straight": "vehicle",
    "horsejump-high": "animal",  # horse + rider: the horse is most of the mask
    "kite-surf": "person",
    "libby": "animal",  # a dog
    "motocross-jump": "person",  # rider + motorbike
    "paragliding-launch": "person",
    "scooter-black": "person",  # rider + scooter
    "soapbox": "vehicle",  # a soapbox cart with its pushers
}


def coco_group(name: str) -> str:
    """The group of a COCO thing class (`other` for the rest: signs, tools, electronics, ...)."""
    return COCO_GROUP.get(name, "other")


def group_id(group: str) -> int:
    """1-based id of a group in GROUP_CLASSES (the source-dataset id convention)."""
    names = [c.name for c in GROUP_CLASSES]
    if group not in names:
        raise KeyError(f"unknown object group {group!r}; groups: {names}")
    return names.index(group) + 1


def davis_group(sequence: str) -> str:
    if sequence not in DAVIS_GROUP:
        raise KeyError(f"DAVIS sequence {sequence!r} has no object group: add it to data/groups.py DAVIS_GROUP")
    return DAVIS_GROUP[sequence]
