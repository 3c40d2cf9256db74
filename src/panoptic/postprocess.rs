//! Post-processing of sampled label maps (spec §1.6) and the letterbox geometry that maps a
//! mask-resolution prediction back to the original image.
//!
//! Mirrors `panoptic.py` (`majority_vote_postprocess`, `merge_stuff`, `segment_id_map`),
//! `data/common.py` (`nearest_resize`, `Geometry.resized_hw`, `unletterbox`) and `evaluate.py`
//! (`postprocess_to_original`), ties included.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{PanopticMap, VOID};

/// How the ids of the last step become segments (the model card's `postprocess`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Postprocess {
    /// The official `majority_vote_postprocess` (spec §1.6): every instance id takes the
    /// majority class of all its pixels.
    #[default]
    MajorityVote,
    /// Stuff keeps the class the class bits give it (one segment per stuff class); each instance
    /// id votes among its thing pixels only. The class map survives ids that are not yet
    /// consistent over a segment (a model trained briefly), as in Panoptic-DeepLab's merge.
    ThingVote,
}

impl Postprocess {
    pub const ALL: [Postprocess; 2] = [Postprocess::MajorityVote, Postprocess::ThingVote];

    /// The name used in model cards, the CLI and the page.
    pub fn name(self) -> &'static str {
        match self {
            Postprocess::MajorityVote => "majority_vote",
            Postprocess::ThingVote => "thing_vote",
        }
    }

    pub fn from_name(name: &str) -> Option<Postprocess> {
        Postprocess::ALL.into_iter().find(|p| p.name() == name.replace('-', "_"))
    }
}

/// Sorted distinct values of `values` and, for every element, the index of its value in that list.
///
/// Ids are arbitrary `u32` values (a map read from a PNG may hold any of them), so counting tables
/// are indexed by these compact ranks rather than by the ids themselves.
fn compact(values: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut distinct = values.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let rank: HashMap<u32, u32> = distinct.iter().enumerate().map(|(i, &v)| (v, i as u32)).collect();
    let index = values.iter().map(|v| rank[v]).collect();
    (distinct, index)
}

/// The official `majority_vote_postprocess` on one map:
///
/// 1. every pixel of an instance id takes the id's majority class (void pixels vote too; ties go
///    to the smaller class id);
/// 2. ids with fewer than `min_pixels` pixels become void;
/// 3. id 0 is void whatever its class says, and pixels whose class ends up void get id 0.
///
/// Run it at the original image resolution (see [`postprocess`]).
pub fn majority_vote(map: &PanopticMap, min_pixels: u64) -> PanopticMap {
    let (ids, id_index) = compact(&map.instance);
    let (classes, class_index) = compact(&map.class);
    let num_classes = classes.len();
    // counts[id rank * num_classes + class rank]: the votes, like the bincount in panoptic.py.
    let mut counts = vec![0u64; ids.len() * num_classes];
    for (&i, &c) in id_index.iter().zip(&class_index) {
        counts[i as usize * num_classes + c as usize] += 1;
    }
    let majority: Vec<u32> = ids
        .iter()
        .enumerate()
        .map(|(rank, &id)| {
            let row = &counts[rank * num_classes..(rank + 1) * num_classes];
            // Strictly greater keeps the first maximum: classes are sorted, so a tie goes to the
            // smaller class id, as torch's argmax does.
            let mut best = 0;
            for (c, &n) in row.iter().enumerate() {
                if n > row[best] {
                    best = c;
                }
            }
            let total: u64 = row.iter().sum();
            if id == VOID || total < min_pixels {
                VOID
            } else {
                classes[best]
            }
        })
        .collect();
    let class: Vec<u32> = id_index.iter().map(|&i| majority[i as usize]).collect();
    let instance =
        class.iter().zip(&map.instance).map(|(&c, &id)| if c == VOID { VOID } else { id }).collect();
    PanopticMap { height: map.height, width: map.width, class, instance }
}

/// Fills `region` with the 4-connected region of an `h`×`w` grid that grows from `start` (already
/// claimed) into the pixels `claim` accepts; `claim` marks a pixel it accepts, so none joins twice.
fn flood(start: usize, h: usize, w: usize, region: &mut Vec<usize>, mut claim: impl FnMut(usize) -> bool) {
    region.clear();
    region.push(start);
    let mut next = 0;
    while next < region.len() {
        let p = region[next];
        next += 1;
        for q in grid_neighbours(p, h, w) {
            if claim(q) {
                region.push(q);
            }
        }
    }
}

/// The 4-connected neighbours of pixel `p` of an `h`×`w` grid.
fn grid_neighbours(p: usize, h: usize, w: usize) -> impl Iterator<Item = usize> {
    let (r, c) = (p / w, p % w);
    [(r > 0).then(|| p - w), (r + 1 < h).then(|| p + w), (c > 0).then(|| p - 1), (c + 1 < w).then(|| p + 1)]
        .into_iter()
        .flatten()
}

/// The `thing_vote` post-processing ([`Postprocess::ThingVote`]) on one map:
///
/// 1. a stuff pixel keeps the class its class bits give it; each stuff class is one segment
///    (fewer than `min_pixels` pixels: void);
/// 2. thing pixels with an id (id 0: none) group into fragments: 4-connected pixels with the same
///    instance id. Each fragment of at least `min_pixels` pixels takes the majority class of its
///    pixels (ties: the smaller class id) and keeps its id. Stuff and void pixels neither vote nor
///    change, so ids that are not yet consistent over an object cannot repaint the scene;
/// 3. the other thing pixels (small fragments, id 0) are loose: the kept fragments grow into
///    4-connected loose pixels of their own class, breadth first from all fragments at once (seeds
///    in pixel order), so the object keeps every pixel its class bits give it;
/// 4. loose pixels no fragment reached form 4-connected same-class components; one of at least
///    `min_pixels` pixels is a segment with a new id (the smallest unused, in pixel order of the
///    components), a smaller one is void;
/// 5. stuff classes, in class order, get the smallest ids ≥ 1 that no thing pixel keeps.
///
/// `isthing` is indexed by class id; a class beyond its end counts as stuff.
pub fn thing_vote(map: &PanopticMap, isthing: &[bool], min_pixels: u64) -> PanopticMap {
    let is_thing = |c: u32| c != VOID && isthing.get(c as usize).copied().unwrap_or(false);
    let (h, w) = (map.height, map.width);
    let mut class = vec![VOID; map.len()];
    let mut instance = vec![VOID; map.len()];
    // Whether a pixel is settled: kept by a fragment, visited as part of one, or not a thing.
    let mut seen: Vec<bool> = map.class.iter().map(|&c| !is_thing(c)).collect();
    let mut loose = vec![false; map.len()];
    let mut fragment = Vec::new();
    for start in 0..map.len() {
        if seen[start] || map.instance[start] == VOID {
            continue;
        }
        let id = map.instance[start];
        seen[start] = true;
        flood(start, h, w, &mut fragment, |q| {
            let joins = !seen[q] && map.instance[q] == id;
            seen[q] |= joins;
            joins
        });
        if (fragment.len() as u64) < min_pixels {
            fragment.iter().for_each(|&p| loose[p] = true);
            continue;
        }
        let mut votes: Vec<(u32, u64)> = Vec::new();
        for &p in &fragment {
            match votes.iter_mut().find(|(c, _)| *c == map.class[p]) {
                Some(v) => v.1 += 1,
                None => votes.push((map.class[p], 1)),
            }
        }
        let majority = votes.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map_or(VOID, |v| v.0);
        for &p in &fragment {
            class[p] = majority;
            instance[p] = id;
        }
    }
    for (p, l) in loose.iter_mut().enumerate() {
        *l |= is_thing(map.class[p]) && map.instance[p] == VOID;
    }
    // Kept fragments grow into loose pixels of their class.
    let mut queue: std::collections::VecDeque<usize> =
        (0..map.len()).filter(|&p| instance[p] != VOID).collect();
    while let Some(p) = queue.pop_front() {
        for q in grid_neighbours(p, h, w) {
            if loose[q] && map.class[q] == class[p] {
                loose[q] = false;
                class[q] = class[p];
                instance[q] = instance[p];
                queue.push_back(q);
            }
        }
    }
    // Loose components no fragment reached.
    let mut used: std::collections::HashSet<u32> = instance.iter().copied().collect();
    let mut next_free = 1u32;
    let mut component = Vec::new();
    for start in 0..map.len() {
        if !loose[start] {
            continue;
        }
        let c = map.class[start];
        loose[start] = false;
        flood(start, h, w, &mut component, |q| {
            let joins = loose[q] && map.class[q] == c;
            loose[q] &= !joins;
            joins
        });
        if (component.len() as u64) < min_pixels {
            continue;
        }
        while used.contains(&next_free) {
            next_free += 1;
        }
        used.insert(next_free);
        for &p in &component {
            class[p] = c;
            instance[p] = next_free;
        }
    }
    let mut stuff_area: HashMap<u32, u64> = HashMap::new();
    for &c in &map.class {
        if c != VOID && !is_thing(c) {
            *stuff_area.entry(c).or_default() += 1;
        }
    }
    let mut stuff: Vec<u32> = stuff_area.iter().filter(|(_, &n)| n >= min_pixels).map(|(&c, _)| c).collect();
    stuff.sort_unstable();
    let mut free = (1u32..).filter(|id| !used.contains(id));
    let stuff_id: HashMap<u32, u32> = stuff.into_iter().zip(&mut free).collect();
    for (p, &c) in map.class.iter().enumerate() {
        if let Some(&id) = stuff_id.get(&c) {
            class[p] = c;
            instance[p] = id;
        }
    }
    PanopticMap { height: h, width: w, class, instance }
}

/// Give all pixels of each stuff class one instance id: that of the class's largest segment (ties:
/// the smaller id, like `torch.unique` + `argmax`). Classes are unchanged.
///
/// `isthing` is indexed by class id (index 0 = void); a class beyond its end counts as stuff, as in
/// panoptic.py. Expects a majority-voted map, where each id carries a single class.
pub fn merge_stuff(map: &PanopticMap, isthing: &[bool]) -> PanopticMap {
    let is_stuff = |c: u32| c != VOID && !isthing.get(c as usize).copied().unwrap_or(false);
    let mut sizes: HashMap<(u32, u32), u64> = HashMap::new();
    for (&c, &id) in map.class.iter().zip(&map.instance) {
        if is_stuff(c) {
            *sizes.entry((c, id)).or_default() += 1;
        }
    }
    let mut winner: HashMap<u32, (u32, u64)> = HashMap::new();
    for (&(c, id), &n) in &sizes {
        let best = winner.entry(c).or_insert((id, n));
        if n > best.1 || (n == best.1 && id < best.0) {
            *best = (id, n);
        }
    }
    let instance = map
        .class
        .iter()
        .zip(&map.instance)
        .map(|(&c, &id)| winner.get(&c).map_or(id, |&(merged, _)| merged))
        .collect();
    PanopticMap { height: map.height, width: map.width, class: map.class.clone(), instance }
}

/// Source row (or column) of each of `out` output pixels when resizing `len` pixels to `out`:
/// `min(floor((i + 0.5) * (len / out)), len - 1)`, computed in f64 in the same order as numpy in
/// `nearest_resize`, so the same pixels are picked.
fn nearest_indices(len: usize, out: usize) -> Vec<usize> {
    let step = len as f64 / out as f64;
    (0..out).map(|i| (((i as f64 + 0.5) * step) as usize).min(len.saturating_sub(1))).collect()
}

/// Nearest-neighbour resize sampling each output pixel's centre (`data/common.py` `nearest_resize`).
///
/// Labels keep their values. An empty source (no pixels to sample) gives an all-void map.
pub fn resize_nearest(map: &PanopticMap, out_h: usize, out_w: usize) -> PanopticMap {
    if map.is_empty() {
        return PanopticMap::void(out_h, out_w);
    }
    let rows = nearest_indices(map.height, out_h);
    let cols = nearest_indices(map.width, out_w);
    let mut class = Vec::with_capacity(out_h * out_w);
    let mut instance = Vec::with_capacity(out_h * out_w);
    for &r in &rows {
        for &c in &cols {
            class.push(map.class[r * map.width + c]);
            instance.push(map.instance[r * map.width + c]);
        }
    }
    PanopticMap { height: out_h, width: out_w, class, instance }
}

/// Top-left rows `0..h` and columns `0..w` of a map (clamped to its size).
fn crop_top_left(map: &PanopticMap, h: usize, w: usize) -> PanopticMap {
    let (h, w) = (h.min(map.height), w.min(map.width));
    let mut class = Vec::with_capacity(h * w);
    let mut instance = Vec::with_capacity(h * w);
    for r in 0..h {
        let row = r * map.width;
        class.extend_from_slice(&map.class[row..row + w]);
        instance.extend_from_slice(&map.instance[row..row + w]);
    }
    PanopticMap { height: h, width: w, class, instance }
}

pub use crate::geometry::Letterbox;

/// Map a prediction at mask resolution back to the original image (`data/common.py` `unletterbox`):
/// nearest upsample to the canvas, crop the padding off, nearest resize to the original size.
pub fn unletterbox(map: &PanopticMap, letterbox: &Letterbox) -> PanopticMap {
    let full = resize_nearest(map, letterbox.canvas_h, letterbox.canvas_w);
    let content = crop_top_left(&full, letterbox.content_h, letterbox.content_w);
    resize_nearest(&content, letterbox.orig_h, letterbox.orig_w)
}

/// The previous readout's path: mask-resolution ids -> original resolution by nearest neighbour
/// ([`unletterbox`]), then [`postprocess_ids`]. `eval` reports it beside the bilinear readout.
pub fn postprocess(
    mask_map: &PanopticMap,
    letterbox: &Letterbox,
    isthing: &[bool],
    min_pixels: u64,
    mode: Postprocess,
) -> PanopticMap {
    postprocess_ids(&unletterbox(mask_map, letterbox), isthing, min_pixels, mode)
}

/// Ids at the output resolution (the readout's) -> segments by `mode`: majority vote with minimum
/// area and stuff merged, or [`thing_vote`] (`evaluate.py` `postprocess_to_original`).
pub fn postprocess_ids(
    map: &PanopticMap,
    isthing: &[bool],
    min_pixels: u64,
    mode: Postprocess,
) -> PanopticMap {
    match mode {
        Postprocess::MajorityVote => merge_stuff(&majority_vote(map, min_pixels), isthing),
        Postprocess::ThingVote => thing_vote(map, isthing, min_pixels),
    }
}

/// One segment of a map: a distinct non-void `(class, instance)` pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its id in the segment-id map, 1..=n.
    pub id: u32,
    pub class: u32,
    pub instance: u32,
    /// Pixel count.
    pub area: u64,
    /// `[x, y, width, height]` of the pixels, COCO style.
    pub bbox: [u32; 4],
}

/// Number the segments (distinct `(class, instance)` pairs with a non-void class) 1..n in
/// `(class, instance)` order, like `segment_id_map` in panoptic.py; void pixels get 0.
///
/// A pixel with a class but instance 0 still belongs to a segment `(class, 0)`, as in
/// panoptic.py; after [`majority_vote`] there are none.
pub fn segments(map: &PanopticMap) -> (Vec<u32>, Vec<Segment>) {
    let mut pairs: Vec<(u32, u32)> =
        map.class.iter().zip(&map.instance).filter(|(&c, _)| c != VOID).map(|(&c, &i)| (c, i)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let id_of: HashMap<(u32, u32), u32> =
        pairs.iter().enumerate().map(|(k, &pair)| (pair, k as u32 + 1)).collect();
    let mut list: Vec<Segment> = pairs
        .iter()
        .enumerate()
        .map(|(k, &(class, instance))| Segment { id: k as u32 + 1, class, instance, area: 0, bbox: [0; 4] })
        .collect();
    // Running bounds per segment: [min x, min y, max x, max y].
    let mut bounds = vec![[u32::MAX, u32::MAX, 0, 0]; list.len()];
    let mut ids = vec![VOID; map.len()];
    for (p, (&c, &i)) in map.class.iter().zip(&map.instance).enumerate() {
        if c == VOID {
            continue;
        }
        let id = id_of[&(c, i)];
        ids[p] = id;
        let k = id as usize - 1;
        list[k].area += 1;
        let (x, y) = ((p % map.width) as u32, (p / map.width) as u32);
        let b = &mut bounds[k];
        *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
    }
    for (segment, b) in list.iter_mut().zip(&bounds) {
        segment.bbox = [b[0], b[1], b[2] - b[0] + 1, b[3] - b[1] + 1];
    }
    (ids, list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_indices_match_numpy() {
        // np.minimum(((np.arange(3) + 0.5) * (8 / 3)).astype(int), 7) = [1, 4, 6]
        assert_eq!(nearest_indices(8, 3), vec![1, 4, 6]);
        // upsampling 2 -> 5: (i + 0.5) * 0.4 = 0.2, 0.6, 1.0, 1.4, 1.8 -> [0, 0, 1, 1, 1]
        assert_eq!(nearest_indices(2, 5), vec![0, 0, 1, 1, 1]);
    }

    /// The same map and answer as `test_thing_vote_keeps_stuff_and_votes_per_fragment` in
    /// train/tests/test_panoptic.py.
    #[test]
    fn thing_vote_keeps_stuff_and_votes_per_fragment() {
        // classes: 0 void, 1 road (stuff), 2 sky (stuff), 3 car (thing), 4 person (thing)
        let isthing = [false, false, false, true, true];
        #[rustfmt::skip]
        let class = vec![
            1, 1, 1, 3, 3, 3,
            1, 1, 4, 3, 3, 0,
            2, 2, 2, 2, 4, 4,
            4, 4, 2, 2, 4, 3,
        ];
        #[rustfmt::skip]
        let instance = vec![
            5, 5, 7, 7, 7, 7,
            5, 2, 7, 7, 0, 7,
            7, 7, 9, 1, 7, 7,
            7, 7, 1, 1, 7, 2,
        ];
        let map = PanopticMap::new(4, 6, class, instance).unwrap();
        let out = thing_vote(&map, &isthing, 2);
        // id 7 has three fragments: top (car ×4, person ×1 -> car), right (person ×3) and
        // bottom-left (person ×2). The id-0 car pixel joins the car fragment beside it; the lone
        // car with id 2 touches only a person fragment and is below min_pixels on its own: void.
        // Stuff keeps its classes; road gets id 1, sky id 2.
        #[rustfmt::skip]
        assert_eq!(out.class, vec![
            1, 1, 1, 3, 3, 3,
            1, 1, 3, 3, 3, 0,
            2, 2, 2, 2, 4, 4,
            4, 4, 2, 2, 4, 0,
        ]);
        #[rustfmt::skip]
        assert_eq!(out.instance, vec![
            1, 1, 1, 7, 7, 7,
            1, 1, 7, 7, 7, 0,
            2, 2, 2, 2, 7, 7,
            7, 7, 2, 2, 7, 0,
        ]);
        // The official vote on the same map paints id 7's sky pixels with id 7's majority class.
        let official = majority_vote(&map, 2);
        assert_ne!(official.class[12], 2);
    }

    /// As `test_thing_vote_gives_unreached_components_new_ids` in train/tests/test_panoptic.py:
    /// every car pixel has its own id, so the car is one loose component with the smallest unused
    /// id; the person's id-0 pixel joins its fragment; the road comes after them.
    #[test]
    fn thing_vote_gives_unreached_components_new_ids() {
        let isthing = [false, false, false, true, true];
        let class = vec![3, 3, 3, 1, 4, 4, 3, 3, 3, 1, 4, 4];
        let map = PanopticMap::new(2, 6, class.clone(), vec![1, 2, 3, 0, 9, 9, 4, 5, 6, 0, 9, 0]).unwrap();
        let out = thing_vote(&map, &isthing, 2);
        assert_eq!(out.class, class);
        assert_eq!(out.instance, vec![1, 1, 1, 2, 9, 9, 1, 1, 1, 2, 9, 9]);
        let out = thing_vote(&map, &isthing, 7);
        assert_eq!(out.class, vec![0; 12]);
    }

    /// As `test_thing_vote_ties_and_small_stuff` in train/tests/test_panoptic.py.
    #[test]
    fn thing_vote_ties_and_small_stuff() {
        let isthing = [false, false, false, true, true];
        let map = PanopticMap::new(1, 5, vec![3, 3, 4, 4, 1], vec![1; 5]).unwrap();
        let out = thing_vote(&map, &isthing, 2);
        assert_eq!(out.class, vec![3, 3, 3, 3, 0]);
        assert_eq!(out.instance, vec![1, 1, 1, 1, 0]);
    }
}
