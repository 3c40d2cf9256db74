//! Panoptic label maps after sampling: post-processing, COCO panoptic I/O and metrics (PQ, mIoU,
//! DAVIS J&F).
//!
//! Every function here mirrors its Python counterpart in `train/pix2seqd_train/` (`panoptic.py`,
//! `metrics.py`, `data/common.py`, `evaluate.py`) rule for rule, ties included, so that the CLI,
//! the page and the training code report the same segments and the same numbers.
//!
//! A [`PanopticMap`] is a pair of row-major maps of the same size: `class` (the model's class ids,
//! 0 = void) and `instance` (0 = void). A *segment* is the set of pixels with one
//! `(class, instance)` pair whose class is not void.
//!
//! Nothing here panics on the contents of a file: every failure is a [`PanopticError`] naming the
//! file, image or field involved.

use std::path::PathBuf;

pub mod coco;
pub mod metrics;
pub mod postprocess;

pub use coco::{
    decode_panoptic_png, id2rgb, load_categories_json, load_panoptic_json, parse_panoptic_json,
    read_panoptic_png, rgb2id, save_panoptic_json, to_coco_panoptic, write_panoptic_png, Annotation,
    Category, CocoSegment, ImageId, ImageInfo, PanopticJson, PanopticJsonWriter,
};
pub use metrics::{
    db_eval_boundary, db_eval_boundary_with_void, db_eval_iou, db_eval_iou_with_void, db_statistics,
    pq_compute_coco, pq_compute_coco_with_categories, pq_single_image, seg2bmap, ClassPq, ConfusionMatrix,
    DavisEvaluator, DavisSummary, DbStatistics, Mask, PqCounts, PqResult, PqSegment, PqStat, PqSummary,
    SequenceScore,
};
pub use postprocess::{
    majority_vote, merge_stuff, postprocess, postprocess_ids, resize_nearest, segments, thing_vote,
    unletterbox, Letterbox, Postprocess, Segment,
};

/// The void class and the void segment / instance id.
pub const VOID: u32 = 0;

/// Everything that can go wrong in this module. Each message names what was wrong: the file, the
/// image, the segment or the field.
#[derive(Debug, thiserror::Error)]
pub enum PanopticError {
    /// An I/O error on a file or directory; `action` says what was attempted ("read", "create", ...).
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A PNG that cannot be decoded or encoded, or that does not hold RGB segment ids.
    #[error("bad panoptic PNG {}: {message}", .path.display())]
    Png { path: PathBuf, message: String },
    /// A JSON file that cannot be parsed (or a value that cannot be written as JSON).
    #[error("bad JSON {}: {source}", .path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Two maps (or a map and its buffers) that should have the same size do not.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A category (or model class) id that the categories do not define.
    #[error("{context}: category {category} is not one of the categories")]
    UnknownCategory { context: String, category: u64 },
    /// A ground-truth image that has no prediction (matched by `image_id`, as panopticapi does).
    #[error("{}: no prediction for image {image_id}", .pred_json.display())]
    MissingPrediction { pred_json: PathBuf, image_id: String },
    /// A segment map and its `segments_info` that disagree (an id in one but not the other).
    #[error("{0}")]
    Segments(String),
    /// Any other invalid argument or value; the message names it.
    #[error("{0}")]
    Invalid(String),
}

impl PanopticError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PanopticError::Io { action, path: path.into(), source }
    }
}

/// A panoptic label map: row-major `class` and `instance` ids, `height * width` of each.
///
/// Class ids are the model's ids `0..num_classes` with 0 = void; instance id 0 is void too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanopticMap {
    pub height: usize,
    pub width: usize,
    pub class: Vec<u32>,
    pub instance: Vec<u32>,
}

impl PanopticMap {
    /// A map from its two buffers, checking that both hold `height * width` values.
    pub fn new(
        height: usize,
        width: usize,
        class: Vec<u32>,
        instance: Vec<u32>,
    ) -> Result<Self, PanopticError> {
        let pixels = height.checked_mul(width).ok_or_else(|| {
            PanopticError::Shape(format!("a {height}x{width} map has more pixels than memory can address"))
        })?;
        if class.len() != pixels {
            return Err(PanopticError::Shape(format!(
                "class map has {} values, a {height}x{width} map needs {pixels}",
                class.len()
            )));
        }
        if instance.len() != pixels {
            return Err(PanopticError::Shape(format!(
                "instance map has {} values, a {height}x{width} map needs {pixels}",
                instance.len()
            )));
        }
        Ok(PanopticMap { height, width, class, instance })
    }

    /// An all-void map.
    pub fn void(height: usize, width: usize) -> Self {
        let pixels = height * width;
        PanopticMap { height, width, class: vec![VOID; pixels], instance: vec![VOID; pixels] }
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.class.len()
    }

    /// Whether the map has no pixels.
    pub fn is_empty(&self) -> bool {
        self.class.is_empty()
    }

    /// `(class, instance)` at a pixel; `None` outside the map.
    pub fn get(&self, row: usize, col: usize) -> Option<(u32, u32)> {
        if row >= self.height || col >= self.width {
            return None;
        }
        let i = row * self.width + col;
        Some((self.class[i], self.instance[i]))
    }
}
