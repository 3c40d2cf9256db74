//! Evaluation metrics: panoptic quality with panopticapi's semantics, mIoU, DAVIS J and F.
//!
//! Mirrors `train/pix2seqd_train/metrics.py`. PQ follows `panopticapi/evaluation.py`
//! (`pq_compute_single_core` and `PQStat.pq_average`):
//!
//! * a ground-truth segment and a predicted segment of the same category match when IoU > 0.5,
//!   where the union leaves out the predicted pixels that fall on ground-truth void;
//! * crowd ground-truth segments never match; they are not false negatives;
//! * an unmatched predicted segment is not a false positive when more than half of it lies on
//!   ground-truth void or on the crowd region of its own category;
//! * PQ, SQ, RQ are averaged over the categories with tp + fp + fn > 0 (that count is `n`).
//!
//! J and F follow the davis2017-evaluation toolkit (`db_eval_iou`, `db_eval_boundary`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};

use super::coco::{load_panoptic_json, read_panoptic_png, Category, CocoSegment, ImageId};
use super::postprocess::segments;
use super::{PanopticError, PanopticMap, VOID};

// ------------------------------------------------------------------------------------------------
// Panoptic quality

/// One segment as PQ sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PqSegment {
    /// Its id in the segment-id map.
    pub id: u32,
    pub category_id: u32,
    /// Ground truth only.
    pub iscrowd: bool,
    /// The area to use for a ground-truth segment (panopticapi takes it from the JSON); `None`
    /// counts the pixels of the map. Predicted areas always come from the map.
    pub area: Option<u64>,
}

impl PqSegment {
    /// From a `segments_info` entry; `use_area` keeps its stated area (ground truth).
    pub fn from_info(info: &CocoSegment, use_area: bool) -> Self {
        PqSegment {
            id: info.id,
            category_id: info.category_id,
            iscrowd: info.iscrowd,
            area: if use_area { info.area } else { None },
        }
    }
}

/// Per-category PQ counts (panopticapi's `PQStatCat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PqCounts {
    /// Summed IoU of the matched pairs.
    pub iou: f64,
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl PqCounts {
    fn add(&mut self, other: &PqCounts) {
        self.iou += other.iou;
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
    }
}

/// Per-image pixel counts by label (`np.unique(..., return_counts=True)`).
fn areas(ids: &[u32]) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    for &id in ids {
        *out.entry(id).or_default() += 1;
    }
    out
}

/// A list of segments as the Python dict built from it holds them: a repeated id keeps its
/// first position and its last record. Order matters: it picks the crowd region of a category.
fn dict_order(list: &[PqSegment]) -> Vec<PqSegment> {
    let mut position: HashMap<u32, usize> = HashMap::new();
    let mut out: Vec<PqSegment> = Vec::with_capacity(list.len());
    for s in list {
        match position.get(&s.id) {
            Some(&i) => out[i] = *s,
            None => {
                position.insert(s.id, out.len());
                out.push(*s);
            }
        }
    }
    out
}

/// PQ counts of one image from its segment-id maps (same pixel order, same length) and segment
/// descriptions, keyed by category id (`pq_single_image` in metrics.py). `image` names the image
/// in errors.
pub fn pq_single_image(
    image: &str,
    gt_ids: &[u32],
    gt_segments: &[PqSegment],
    pred_ids: &[u32],
    pred_segments: &[PqSegment],
) -> Result<BTreeMap<u32, PqCounts>, PanopticError> {
    if gt_ids.len() != pred_ids.len() {
        return Err(PanopticError::Shape(format!(
            "{image}: ground truth has {} pixels, prediction {}",
            gt_ids.len(),
            pred_ids.len()
        )));
    }
    let gt_segments = dict_order(gt_segments);
    let pred_segments = dict_order(pred_segments);
    let gt_by_id: HashMap<u32, &PqSegment> = gt_segments.iter().map(|s| (s.id, s)).collect();
    let pred_by_id: HashMap<u32, &PqSegment> = pred_segments.iter().map(|s| (s.id, s)).collect();

    let pred_area = areas(pred_ids);
    let mut in_png: Vec<u32> =
        pred_area.keys().copied().filter(|&l| l != VOID && !pred_by_id.contains_key(&l)).collect();
    in_png.sort_unstable();
    if let Some(label) = in_png.first() {
        return Err(PanopticError::Segments(format!(
            "{image}: segment {label} is in the prediction PNG but not in its segments_info"
        )));
    }
    let mut missing: Vec<u32> =
        pred_segments.iter().map(|s| s.id).filter(|id| !pred_area.contains_key(id)).collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(PanopticError::Segments(format!(
            "{image}: segments {missing:?} are in segments_info but not in the prediction PNG"
        )));
    }
    let gt_area = areas(gt_ids);
    let gt_area_of = |s: &PqSegment| s.area.unwrap_or_else(|| gt_area.get(&s.id).copied().unwrap_or(0));

    let mut overlap: HashMap<(u32, u32), u64> = HashMap::new();
    for (&g, &p) in gt_ids.iter().zip(pred_ids) {
        *overlap.entry((g, p)).or_default() += 1;
    }
    // panopticapi walks the pairs in np.unique order: sorted by (gt, pred).
    let mut pairs: Vec<((u32, u32), u64)> = overlap.iter().map(|(&k, &v)| (k, v)).collect();
    pairs.sort_unstable();
    let on_void = |pred: u32| overlap.get(&(VOID, pred)).copied().unwrap_or(0);

    let mut stat: BTreeMap<u32, PqCounts> = BTreeMap::new();
    let mut gt_matched: HashSet<u32> = HashSet::new();
    let mut pred_matched: HashSet<u32> = HashSet::new();
    for &((gt_label, pred_label), inter) in &pairs {
        let (Some(gt), Some(pred)) = (gt_by_id.get(&gt_label), pred_by_id.get(&pred_label)) else {
            continue;
        };
        if gt.iscrowd || gt.category_id != pred.category_id {
            continue;
        }
        let union = pred_area[&pred_label] as i128 + gt_area_of(gt) as i128
            - inter as i128
            - on_void(pred_label) as i128;
        if union == 0 {
            // Only a stated ground-truth area smaller than the pixels found can do this.
            return Err(PanopticError::Segments(format!(
                "{image}: ground-truth segment {gt_label} states area {} but overlaps predicted segment {pred_label} on {inter} pixels",
                gt_area_of(gt)
            )));
        }
        let iou = inter as f64 / union as f64;
        if iou > 0.5 {
            let s = stat.entry(gt.category_id).or_default();
            s.tp += 1;
            s.iou += iou;
            gt_matched.insert(gt_label);
            pred_matched.insert(pred_label);
        }
    }

    // panopticapi keeps one crowd segment per category: the last one in segments_info order.
    let mut crowd_of_category: HashMap<u32, u32> = HashMap::new();
    for gt in &gt_segments {
        if gt_matched.contains(&gt.id) {
            continue;
        }
        if gt.iscrowd {
            crowd_of_category.insert(gt.category_id, gt.id);
            continue;
        }
        stat.entry(gt.category_id).or_default().fn_ += 1;
    }

    for pred in &pred_segments {
        if pred_matched.contains(&pred.id) {
            continue;
        }
        let mut ignored = on_void(pred.id);
        if let Some(&crowd) = crowd_of_category.get(&pred.category_id) {
            ignored += overlap.get(&(crowd, pred.id)).copied().unwrap_or(0);
        }
        if ignored as f64 / pred_area[&pred.id] as f64 > 0.5 {
            continue;
        }
        stat.entry(pred.category_id).or_default().fp += 1;
    }
    Ok(stat)
}

/// PQ, SQ, RQ averaged over `n` categories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PqSummary {
    pub pq: f64,
    pub sq: f64,
    pub rq: f64,
    /// Categories averaged: those with tp + fp + fn > 0. With none, all three are 0 (panopticapi
    /// divides by zero there).
    pub n: usize,
}

/// One category's scores (all 0 when it was never seen) and the counts they came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassPq {
    pub id: u32,
    pub name: String,
    pub isthing: bool,
    pub pq: f64,
    pub sq: f64,
    pub rq: f64,
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

/// PQ over a set of images: all categories, things, stuff, and per category (in category order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PqResult {
    pub images: usize,
    pub all: PqSummary,
    pub things: PqSummary,
    pub stuff: PqSummary,
    pub per_class: Vec<ClassPq>,
}

/// Accumulates PQ counts over images (metrics.py `PanopticEvaluator` + `PQStat`).
#[derive(Clone, Debug)]
pub struct PqStat {
    /// The evaluated categories, as panopticapi's `{id: category}` dict holds them.
    categories: Vec<Category>,
    per_category: BTreeMap<u32, PqCounts>,
    images: usize,
}

impl PqStat {
    /// An accumulator over `categories` (a repeated id keeps its first position and last record).
    pub fn new(categories: &[Category]) -> Self {
        let mut position: HashMap<u32, usize> = HashMap::new();
        let mut unique: Vec<Category> = Vec::with_capacity(categories.len());
        for c in categories {
            match position.get(&c.id) {
                Some(&i) => unique[i] = c.clone(),
                None => {
                    position.insert(c.id, unique.len());
                    unique.push(c.clone());
                }
            }
        }
        PqStat { categories: unique, per_category: BTreeMap::new(), images: 0 }
    }

    /// Categories = model classes `1..isthing.len()` (index 0 is void), named by their id, as
    /// `PanopticEvaluator.for_classes` numbers them.
    pub fn for_classes(isthing: &[bool]) -> Self {
        let categories: Vec<Category> = (1..isthing.len())
            .map(|c| Category {
                id: c as u32,
                name: c.to_string(),
                isthing: isthing[c],
                color: None,
                supercategory: None,
            })
            .collect();
        PqStat::new(&categories)
    }

    /// The categories being evaluated.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// Images added so far.
    pub fn images(&self) -> usize {
        self.images
    }

    /// Counts of one category so far (zeros if never seen).
    pub fn counts(&self, category_id: u32) -> PqCounts {
        self.per_category.get(&category_id).copied().unwrap_or_default()
    }

    /// Add one image given as label maps of the same size; class ids are the categories, and the
    /// ground truth has no crowd regions. Returns that image's counts.
    pub fn add_maps(
        &mut self,
        gt: &PanopticMap,
        pred: &PanopticMap,
    ) -> Result<BTreeMap<u32, PqCounts>, PanopticError> {
        let image = format!("image {}", self.images + 1);
        if (gt.height, gt.width) != (pred.height, pred.width) {
            return Err(PanopticError::Shape(format!(
                "{image}: ground truth is {}x{} but the prediction is {}x{}",
                gt.height, gt.width, pred.height, pred.width
            )));
        }
        let from_map = |map: &PanopticMap| {
            let (ids, list) = segments(map);
            let segs: Vec<PqSegment> = list
                .iter()
                .map(|s| PqSegment { id: s.id, category_id: s.class, iscrowd: false, area: None })
                .collect();
            (ids, segs)
        };
        let (gt_ids, gt_segments) = from_map(gt);
        let (pred_ids, pred_segments) = from_map(pred);
        self.add_segments(&image, &gt_ids, &gt_segments, &pred_ids, &pred_segments)
    }

    /// Add one image given as segment-id maps (same size, same pixel order) and their segments.
    /// Every predicted category must be one of the categories. Returns that image's counts.
    pub fn add_segments(
        &mut self,
        image: &str,
        gt_ids: &[u32],
        gt_segments: &[PqSegment],
        pred_ids: &[u32],
        pred_segments: &[PqSegment],
    ) -> Result<BTreeMap<u32, PqCounts>, PanopticError> {
        for s in pred_segments {
            if !self.categories.iter().any(|c| c.id == s.category_id) {
                return Err(PanopticError::UnknownCategory {
                    context: format!("{image}: predicted segment {}", s.id),
                    category: u64::from(s.category_id),
                });
            }
        }
        let stat = pq_single_image(image, gt_ids, gt_segments, pred_ids, pred_segments)?;
        for (cat, counts) in &stat {
            self.per_category.entry(*cat).or_default().add(counts);
        }
        self.images += 1;
        Ok(stat)
    }

    /// PQ/SQ/RQ over the categories (all, or things only, or stuff only) and per category.
    fn average(&self, which: Option<bool>) -> (PqSummary, Vec<ClassPq>) {
        let (mut pq, mut sq, mut rq, mut n) = (0.0, 0.0, 0.0, 0usize);
        let mut per_class = Vec::new();
        for cat in &self.categories {
            if which.is_some_and(|w| w != cat.isthing) {
                continue;
            }
            let s = self.counts(cat.id);
            let mut class = ClassPq {
                id: cat.id,
                name: cat.name.clone(),
                isthing: cat.isthing,
                pq: 0.0,
                sq: 0.0,
                rq: 0.0,
                tp: s.tp,
                fp: s.fp,
                fn_: s.fn_,
            };
            if s.tp + s.fp + s.fn_ > 0 {
                n += 1;
                let denom = s.tp as f64 + 0.5 * s.fp as f64 + 0.5 * s.fn_ as f64;
                class.pq = s.iou / denom;
                class.sq = if s.tp > 0 { s.iou / s.tp as f64 } else { 0.0 };
                class.rq = s.tp as f64 / denom;
                pq += class.pq;
                sq += class.sq;
                rq += class.rq;
            }
            per_class.push(class);
        }
        if n == 0 {
            return (PqSummary::default(), per_class);
        }
        let n_f = n as f64;
        (PqSummary { pq: pq / n_f, sq: sq / n_f, rq: rq / n_f, n }, per_class)
    }

    /// The averages so far.
    pub fn result(&self) -> PqResult {
        let (all, per_class) = self.average(None);
        PqResult {
            images: self.images,
            all,
            things: self.average(Some(true)).0,
            stuff: self.average(Some(false)).0,
            per_class,
        }
    }
}

/// `panopticapi.evaluation.pq_compute` on COCO panoptic files, over the ground truth's categories.
/// Ground-truth areas come from its JSON; images are matched by `image_id`.
pub fn pq_compute_coco(
    gt_json: &Path,
    gt_dir: &Path,
    pred_json: &Path,
    pred_dir: &Path,
) -> Result<PqResult, PanopticError> {
    pq_compute_inner(gt_json, gt_dir, pred_json, pred_dir, None)
}

/// [`pq_compute_coco`] over the given categories instead of the ground truth's.
pub fn pq_compute_coco_with_categories(
    gt_json: &Path,
    gt_dir: &Path,
    pred_json: &Path,
    pred_dir: &Path,
    categories: &[Category],
) -> Result<PqResult, PanopticError> {
    pq_compute_inner(gt_json, gt_dir, pred_json, pred_dir, Some(categories))
}

fn pq_compute_inner(
    gt_json: &Path,
    gt_dir: &Path,
    pred_json: &Path,
    pred_dir: &Path,
    categories: Option<&[Category]>,
) -> Result<PqResult, PanopticError> {
    let gt = load_panoptic_json(gt_json)?;
    let pred = load_panoptic_json(pred_json)?;
    let mut stat = PqStat::new(categories.unwrap_or(&gt.categories));
    // A dict built from the list, as panopticapi does: the last annotation of an image wins.
    let pred_by_image: HashMap<&ImageId, _> = pred.annotations.iter().map(|a| (&a.image_id, a)).collect();
    for gt_ann in &gt.annotations {
        let pred_ann =
            pred_by_image.get(&gt_ann.image_id).ok_or_else(|| PanopticError::MissingPrediction {
                pred_json: pred_json.to_path_buf(),
                image_id: gt_ann.image_id.to_string(),
            })?;
        let gt_png = gt_dir.join(&gt_ann.file_name);
        let pred_png = pred_dir.join(&pred_ann.file_name);
        let (gh, gw, gt_ids) = read_panoptic_png(&gt_png)?;
        let (ph, pw, pred_ids) = read_panoptic_png(&pred_png)?;
        if (gh, gw) != (ph, pw) {
            return Err(PanopticError::Shape(format!(
                "image {}: ground truth {} is {gh}x{gw} but prediction {} is {ph}x{pw}",
                gt_ann.image_id,
                gt_png.display(),
                pred_png.display()
            )));
        }
        let gt_segments: Vec<PqSegment> =
            gt_ann.segments_info.iter().map(|s| PqSegment::from_info(s, true)).collect();
        let pred_segments: Vec<PqSegment> =
            pred_ann.segments_info.iter().map(|s| PqSegment::from_info(s, false)).collect();
        stat.add_segments(&gt_ann.file_name, &gt_ids, &gt_segments, &pred_ids, &pred_segments)?;
    }
    Ok(stat.result())
}

// ------------------------------------------------------------------------------------------------
// Semantic segmentation: confusion matrix and mIoU

/// Rows: ground truth, columns: prediction, over class ids `0..num_classes`.
///
/// Ground-truth pixels equal to `ignore_index` (or outside the classes) are skipped. Predictions
/// of the ignore class on real pixels stay in the matrix and count as misses of the true class;
/// predictions beyond the last class are clipped to it, as metrics.py does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    num_classes: usize,
    ignore_index: Option<u32>,
    matrix: Vec<u64>,
}

impl ConfusionMatrix {
    pub fn new(num_classes: usize, ignore_index: Option<u32>) -> Self {
        ConfusionMatrix { num_classes, ignore_index, matrix: vec![0; num_classes * num_classes] }
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Row-major `num_classes x num_classes` counts.
    pub fn matrix(&self) -> &[u64] {
        &self.matrix
    }

    /// Pixels of ground-truth class `gt` predicted as `pred`.
    pub fn get(&self, gt: usize, pred: usize) -> u64 {
        if gt < self.num_classes && pred < self.num_classes {
            self.matrix[gt * self.num_classes + pred]
        } else {
            0
        }
    }

    /// Add the pixels of one image (class ids, same length).
    pub fn update(&mut self, gt: &[u32], pred: &[u32]) -> Result<(), PanopticError> {
        if gt.len() != pred.len() {
            return Err(PanopticError::Shape(format!(
                "ground truth has {} pixels, prediction {}",
                gt.len(),
                pred.len()
            )));
        }
        let k = self.num_classes;
        for (&g, &p) in gt.iter().zip(pred) {
            if g as usize >= k || self.ignore_index == Some(g) {
                continue;
            }
            let p = (p as usize).min(k - 1);
            self.matrix[g as usize * k + p] += 1;
        }
        Ok(())
    }

    /// [`update`](Self::update) with the class maps of two label maps of the same size.
    pub fn update_maps(&mut self, gt: &PanopticMap, pred: &PanopticMap) -> Result<(), PanopticError> {
        if (gt.height, gt.width) != (pred.height, pred.width) {
            return Err(PanopticError::Shape(format!(
                "ground truth is {}x{} but the prediction is {}x{}",
                gt.height, gt.width, pred.height, pred.width
            )));
        }
        self.update(&gt.class, &pred.class)
    }

    /// Per-class IoU; NaN for classes absent from both ground truth and prediction, and for the
    /// ignore class.
    pub fn iou(&self) -> Vec<f64> {
        let k = self.num_classes;
        (0..k)
            .map(|c| {
                let tp = self.matrix[c * k + c];
                let predicted: u64 = (0..k).map(|r| self.matrix[r * k + c]).sum();
                let actual: u64 = self.matrix[c * k..(c + 1) * k].iter().sum();
                let union = predicted + actual - tp;
                if self.ignore_index == Some(c as u32) || union == 0 {
                    f64::NAN
                } else {
                    tp as f64 / union as f64
                }
            })
            .collect()
    }

    /// Mean IoU over the classes with a finite IoU; 0 when there are none.
    pub fn miou(&self) -> f64 {
        let finite: Vec<f64> = self.iou().into_iter().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            0.0
        } else {
            finite.iter().sum::<f64>() / finite.len() as f64
        }
    }

    /// Fraction of counted pixels predicted right; 0 when none were counted.
    pub fn pixel_accuracy(&self) -> f64 {
        let total: u64 = self.matrix.iter().sum();
        let right: u64 = (0..self.num_classes).map(|c| self.matrix[c * self.num_classes + c]).sum();
        if total == 0 {
            0.0
        } else {
            right as f64 / total as f64
        }
    }
}

// ------------------------------------------------------------------------------------------------
// DAVIS J (region similarity) and F (boundary accuracy)

/// A row-major binary mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    pub height: usize,
    pub width: usize,
    pub data: Vec<bool>,
}

impl Mask {
    /// A mask from its pixels, checking there are `height * width` of them.
    pub fn new(height: usize, width: usize, data: Vec<bool>) -> Result<Self, PanopticError> {
        if height.checked_mul(width) != Some(data.len()) {
            return Err(PanopticError::Shape(format!(
                "mask has {} values, a {height}x{width} mask needs {}",
                data.len(),
                height.saturating_mul(width)
            )));
        }
        Ok(Mask { height, width, data })
    }

    /// A mask with `f(row, col)` at each pixel.
    pub fn from_fn(height: usize, width: usize, mut f: impl FnMut(usize, usize) -> bool) -> Self {
        let data = (0..height * width).map(|i| f(i / width, i % width)).collect();
        Mask { height, width, data }
    }

    /// The foreground of a label map: every pixel whose class is not void.
    pub fn foreground(map: &PanopticMap) -> Self {
        Mask { height: map.height, width: map.width, data: map.class.iter().map(|&c| c != VOID).collect() }
    }

    /// Number of set pixels.
    pub fn count(&self) -> usize {
        self.data.iter().filter(|&&b| b).count()
    }

    fn at(&self, row: usize, col: usize) -> bool {
        self.data[row * self.width + col]
    }
}

fn check_same(what: &str, a: &Mask, b: &Mask) -> Result<(), PanopticError> {
    if (a.height, a.width) != (b.height, b.width) {
        return Err(PanopticError::Shape(format!(
            "{what} is {}x{} but the annotation is {}x{}",
            b.height, b.width, a.height, a.width
        )));
    }
    Ok(())
}

/// J: IoU of two binary masks; 1 when both are empty.
pub fn db_eval_iou(annotation: &Mask, segmentation: &Mask) -> Result<f64, PanopticError> {
    db_eval_iou_with_void(annotation, segmentation, None)
}

/// [`db_eval_iou`] counting only pixels outside `void`.
pub fn db_eval_iou_with_void(
    annotation: &Mask,
    segmentation: &Mask,
    void: Option<&Mask>,
) -> Result<f64, PanopticError> {
    check_same("segmentation", annotation, segmentation)?;
    if let Some(v) = void {
        check_same("void mask", annotation, v)?;
    }
    let (mut inter, mut union) = (0u64, 0u64);
    for i in 0..annotation.data.len() {
        if void.is_some_and(|v| v.data[i]) {
            continue;
        }
        let (a, s) = (annotation.data[i], segmentation.data[i]);
        inter += u64::from(a && s);
        union += u64::from(a || s);
    }
    Ok(if union == 0 { 1.0 } else { inter as f64 / union as f64 })
}

/// Boundary map of a binary mask (the toolkit's `_seg2bmap` at the mask's own size): a pixel is
/// on the boundary when it differs from its right, lower or lower-right neighbour; on the last
/// row only the right neighbour counts, on the last column only the lower one, and the corner is
/// never a boundary.
pub fn seg2bmap(seg: &Mask) -> Mask {
    let (h, w) = (seg.height, seg.width);
    Mask::from_fn(h, w, |r, c| {
        let s = seg.at(r, c);
        let east = c + 1 < w && seg.at(r, c + 1);
        let south = r + 1 < h && seg.at(r + 1, c);
        let south_east = r + 1 < h && c + 1 < w && seg.at(r + 1, c + 1);
        match (r + 1 == h, c + 1 == w) {
            (true, true) => false,
            (true, false) => s ^ east,
            (false, true) => s ^ south,
            (false, false) => (s ^ east) | (s ^ south) | (s ^ south_east),
        }
    })
}

/// Offsets of `skimage.morphology.disk(radius)`: x² + y² <= r².
fn disk(radius: usize) -> Vec<(isize, isize)> {
    let r = radius as isize;
    let mut out = Vec::new();
    for dy in -r..=r {
        for dx in -r..=r {
            if dx * dx + dy * dy <= r * r {
                out.push((dy, dx));
            }
        }
    }
    out
}

/// `scipy.ndimage.binary_dilation` with a symmetric structuring element, zero outside the mask.
fn dilate(mask: &Mask, structure: &[(isize, isize)]) -> Mask {
    let (h, w) = (mask.height as isize, mask.width as isize);
    let mut out = vec![false; mask.data.len()];
    for (i, _) in mask.data.iter().enumerate().filter(|(_, &b)| b) {
        let (r, c) = ((i / mask.width) as isize, (i % mask.width) as isize);
        for &(dy, dx) in structure {
            let (y, x) = (r + dy, c + dx);
            if (0..h).contains(&y) && (0..w).contains(&x) {
                out[(y * w + x) as usize] = true;
            }
        }
    }
    Mask { height: mask.height, width: mask.width, data: out }
}

/// F: boundary F-measure with a match tolerance of ceil(bound_th * image diagonal) pixels (or
/// `bound_th` pixels when it is >= 1), as the DAVIS toolkit computes it. The toolkit default is
/// `bound_th = 0.008`.
pub fn db_eval_boundary(annotation: &Mask, segmentation: &Mask, bound_th: f64) -> Result<f64, PanopticError> {
    db_eval_boundary_with_void(annotation, segmentation, None, bound_th)
}

/// [`db_eval_boundary`] with the `void` pixels taken out of both masks first.
pub fn db_eval_boundary_with_void(
    annotation: &Mask,
    segmentation: &Mask,
    void: Option<&Mask>,
    bound_th: f64,
) -> Result<f64, PanopticError> {
    check_same("segmentation", annotation, segmentation)?;
    if let Some(v) = void {
        check_same("void mask", annotation, v)?;
    }
    let keep = |m: &Mask| match void {
        Some(v) => Mask {
            height: m.height,
            width: m.width,
            data: m.data.iter().zip(&v.data).map(|(&a, &x)| a && !x).collect(),
        },
        None => m.clone(),
    };
    let (gt, fg) = (keep(annotation), keep(segmentation));
    let diagonal = ((fg.height * fg.height + fg.width * fg.width) as f64).sqrt();
    let bound_pix = if bound_th >= 1.0 { bound_th as usize } else { (bound_th * diagonal).ceil() as usize };
    let (fg_boundary, gt_boundary) = (seg2bmap(&fg), seg2bmap(&gt));
    let structure = disk(bound_pix);
    let (fg_dil, gt_dil) = (dilate(&fg_boundary, &structure), dilate(&gt_boundary, &structure));
    let (n_fg, n_gt) = (fg_boundary.count(), gt_boundary.count());
    let (precision, recall) = match (n_fg, n_gt) {
        (0, 0) => (1.0, 1.0),
        (0, _) => (1.0, 0.0),
        (_, 0) => (0.0, 1.0),
        _ => {
            let both = |a: &Mask, b: &Mask| a.data.iter().zip(&b.data).filter(|(&x, &y)| x && y).count();
            (
                both(&fg_boundary, &gt_dil) as f64 / n_fg as f64,
                both(&gt_boundary, &fg_dil) as f64 / n_gt as f64,
            )
        }
    };
    Ok(if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) })
}

/// Mean, recall (fraction > 0.5) and decay (first minus last quarter) of per-frame values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DbStatistics {
    pub mean: f64,
    pub recall: f64,
    pub decay: f64,
}

/// Mean of the non-NaN values (`np.nanmean`); NaN when there are none.
fn nan_mean(values: &[f64]) -> f64 {
    let kept: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    kept.iter().sum::<f64>() / kept.len() as f64
}

/// The toolkit's `db_statistics`: the quarters are `values[ids[i]..=ids[i + 1]]` with
/// `ids = round(linspace(1, n, 5) + 1e-10) - 1`. All NaN for no values.
pub fn db_statistics(values: &[f64]) -> DbStatistics {
    let n = values.len();
    if n == 0 {
        return DbStatistics { mean: f64::NAN, recall: f64::NAN, decay: f64::NAN };
    }
    // np.linspace(1, n, 5): start + k * step, the last point exactly n.
    let step = (n as f64 - 1.0) / 4.0;
    let ids: Vec<usize> = (0..5)
        .map(|k| {
            let x = if k == 4 { n as f64 } else { k as f64 * step + 1.0 };
            ((x + 1e-10).round_ties_even() - 1.0) as usize
        })
        .collect();
    let first = nan_mean(&values[ids[0]..=ids[1]]);
    let last = nan_mean(&values[ids[3]..=ids[4]]);
    DbStatistics {
        mean: nan_mean(values),
        recall: values.iter().filter(|&&v| v > 0.5).count() as f64 / n as f64,
        decay: first - last,
    }
}

/// Mean J and F of one sequence.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequenceScore {
    #[serde(rename = "J")]
    pub j: f64,
    #[serde(rename = "F")]
    pub f: f64,
}

/// J and F over all sequences: `J&F` = (J mean + F mean) / 2; `J` and `F` are `None` (and `J&F` 0)
/// when no sequence was added.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DavisSummary {
    #[serde(rename = "J&F")]
    pub jf: f64,
    #[serde(rename = "J")]
    pub j: Option<DbStatistics>,
    #[serde(rename = "F")]
    pub f: Option<DbStatistics>,
    /// In the order sequences were first added; written as a JSON object.
    #[serde(serialize_with = "ser_sequences")]
    pub per_sequence: Vec<(String, SequenceScore)>,
}

fn ser_sequences<S: Serializer>(list: &[(String, SequenceScore)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(list.iter().map(|(name, score)| (name, score)))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// J and F per sequence, averaged over sequences (one foreground object: DAVIS 2016).
///
/// Like the davis2017 toolkit, the first and last frame of a sequence of more than two frames are
/// left out by default (the first is given in the semi-supervised task, the last often lacks
/// motion).
#[derive(Clone, Debug)]
pub struct DavisEvaluator {
    pub skip_first_last: bool,
    pub bound_th: f64,
    /// Per-frame J and F of each sequence, in the order sequences were first added.
    sequences: Vec<(String, Vec<f64>, Vec<f64>)>,
}

impl Default for DavisEvaluator {
    fn default() -> Self {
        DavisEvaluator::new()
    }
}

impl DavisEvaluator {
    /// Skipping the first and last frame, tolerance 0.008 of the diagonal.
    pub fn new() -> Self {
        DavisEvaluator { skip_first_last: true, bound_th: 0.008, sequences: Vec::new() }
    }

    /// Score one sequence (frames in order); adding a name again replaces its scores.
    pub fn add_sequence(
        &mut self,
        name: &str,
        gt_masks: &[Mask],
        pred_masks: &[Mask],
    ) -> Result<SequenceScore, PanopticError> {
        if gt_masks.len() != pred_masks.len() {
            return Err(PanopticError::Shape(format!(
                "{name}: {} ground-truth frames but {} predictions",
                gt_masks.len(),
                pred_masks.len()
            )));
        }
        let mut frames: Vec<(&Mask, &Mask)> = gt_masks.iter().zip(pred_masks).collect();
        // Frame numbers in messages count from the sequence's first frame, skipped or not.
        let mut first = 0;
        if self.skip_first_last && frames.len() > 2 {
            frames = frames[1..frames.len() - 1].to_vec();
            first = 1;
        }
        let mut j = Vec::with_capacity(frames.len());
        let mut f = Vec::with_capacity(frames.len());
        for (k, (g, p)) in frames.iter().enumerate() {
            let frame_error = |e: PanopticError| match e {
                PanopticError::Shape(m) => PanopticError::Shape(format!("{name}, frame {}: {m}", first + k)),
                other => other,
            };
            j.push(db_eval_iou(g, p).map_err(frame_error)?);
            f.push(db_eval_boundary(g, p, self.bound_th).map_err(frame_error)?);
        }
        let score = SequenceScore { j: mean(&j), f: mean(&f) };
        match self.sequences.iter_mut().find(|(n, _, _)| n == name) {
            Some(entry) => *entry = (name.to_string(), j, f),
            None => self.sequences.push((name.to_string(), j, f)),
        }
        Ok(score)
    }

    /// Statistics averaged over the sequences.
    pub fn summary(&self) -> DavisSummary {
        if self.sequences.is_empty() {
            return DavisSummary { jf: 0.0, j: None, f: None, per_sequence: Vec::new() };
        }
        let j_stats: Vec<DbStatistics> = self.sequences.iter().map(|(_, j, _)| db_statistics(j)).collect();
        let f_stats: Vec<DbStatistics> = self.sequences.iter().map(|(_, _, f)| db_statistics(f)).collect();
        let avg = |stats: &[DbStatistics]| DbStatistics {
            mean: mean(&stats.iter().map(|s| s.mean).collect::<Vec<_>>()),
            recall: mean(&stats.iter().map(|s| s.recall).collect::<Vec<_>>()),
            decay: mean(&stats.iter().map(|s| s.decay).collect::<Vec<_>>()),
        };
        let (j, f) = (avg(&j_stats), avg(&f_stats));
        DavisSummary {
            jf: (j.mean + f.mean) / 2.0,
            j: Some(j),
            f: Some(f),
            per_sequence: self
                .sequences
                .iter()
                .map(|(n, jv, fv)| (n.clone(), SequenceScore { j: mean(jv), f: mean(fv) }))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_quarters_match_numpy() {
        // n = 10: linspace(1, 10, 5) = [1, 3.25, 5.5, 7.75, 10] -> round -> [1, 3, 6, 8, 10] - 1
        // = [0, 2, 5, 7, 9]: first quarter values[0..=2], last values[7..=9].
        let values: Vec<f64> = (0..10).map(|v| v as f64 / 10.0).collect();
        let s = db_statistics(&values);
        assert!((s.decay - (0.1 - 0.8)).abs() < 1e-12, "{s:?}");
        assert!((s.mean - 0.45).abs() < 1e-12 && (s.recall - 0.4).abs() < 1e-12);
    }

    #[test]
    fn disk_matches_skimage() {
        // disk(1) is the plus shape, disk(2) the 13-pixel diamond-ish disk.
        assert_eq!(disk(1).len(), 5);
        assert_eq!(disk(2).len(), 13);
        assert_eq!(disk(0), vec![(0, 0)]);
    }
}
