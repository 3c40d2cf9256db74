//! CamVid, 11-class SegNet split (`../shared/data/camvid/{train,val,test}/{images,labels}`), as
//! `train/pix2seqd_train/data/camvid.py` reads it.
//!
//! Labels are uint8 class indices 0..=10 with 11 = void; class id = label + 1, void -> 0. CamVid has
//! no instance annotations, so segment ids are made like the Python reader makes them:
//!
//! * stuff (the 8 classes before `car`): one segment per class present, however fragmented, ids
//!   1, 2, ... in increasing class id;
//! * things (car, pedestrian, bicyclist): one instance per 8-connected component of the class
//!   (`scipy.ndimage.label` with a 3x3 structure), ids continuing after the stuff ids, class by class
//!   in increasing class id and, within a class, in raster order of each component's first pixel.
//!
//! No minimum size and no cap on the number of segments at this stage (the Python registry caps them
//! later, at mask resolution).

use std::path::{Path, PathBuf};

use super::{
    check_size, read_label_png, read_rgb, sorted_stems, DataError, DatasetClass, Example, LabelMap, VOID,
};

/// The 11 classes (class id = index + 1), as `camvid.py` lists them (the order `camvid_web.json`
/// takes with `"classes_from": "camvid"`).
pub const CLASSES: [DatasetClass; 11] = [
    DatasetClass { name: "sky", isthing: false, color: [128, 128, 128] },
    DatasetClass { name: "building", isthing: false, color: [128, 0, 0] },
    DatasetClass { name: "pole", isthing: false, color: [192, 192, 128] },
    DatasetClass { name: "road", isthing: false, color: [128, 64, 128] },
    DatasetClass { name: "pavement", isthing: false, color: [60, 40, 222] },
    DatasetClass { name: "tree", isthing: false, color: [128, 128, 0] },
    DatasetClass { name: "sign-symbol", isthing: false, color: [192, 128, 128] },
    DatasetClass { name: "fence", isthing: false, color: [64, 64, 128] },
    DatasetClass { name: "car", isthing: true, color: [64, 0, 128] },
    DatasetClass { name: "pedestrian", isthing: true, color: [64, 64, 0] },
    DatasetClass { name: "bicyclist", isthing: true, color: [0, 128, 192] },
];

/// The label value of void pixels.
pub const VOID_LABEL: u32 = 11;

/// The splits, each a folder of the CamVid directory.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// One split of CamVid.
#[derive(Clone, Debug)]
pub struct CamVid {
    dir: PathBuf,
    split: String,
    names: Vec<String>,
}

impl CamVid {
    /// Open `root/split`, where `root` is the CamVid folder (normally `data_root().join("camvid")`)
    /// and `split` one of [`SPLITS`]. The items are the `images/*.jpg` files sorted by name.
    pub fn open(root: &Path, split: &str) -> Result<CamVid, DataError> {
        if !SPLITS.contains(&split) {
            return Err(DataError::BadSplit {
                dataset: "CamVid".into(),
                split: split.into(),
                valid: SPLITS.iter().map(|s| s.to_string()).collect(),
            });
        }
        let dir = root.join(split);
        let image_dir = dir.join("images");
        if !image_dir.is_dir() {
            return Err(DataError::MissingDir { what: format!("CamVid {split} images"), path: image_dir });
        }
        let names = sorted_stems(&image_dir, "jpg")?;
        if names.is_empty() {
            return Err(DataError::Empty { what: ".jpg images".into(), path: image_dir });
        }
        Ok(CamVid { dir, split: split.into(), names })
    }

    /// The split's folder (`root/split`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn split(&self) -> &str {
        &self.split
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The item names (image file stems), sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The name of item `index`. Panics when `index >= len()`, like slice indexing.
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// Path of the image of item `index` (panics when out of range).
    pub fn image_path(&self, index: usize) -> PathBuf {
        self.dir.join("images").join(format!("{}.jpg", self.names[index]))
    }

    /// Path of the label PNG of item `index` (panics when out of range).
    pub fn label_path(&self, index: usize) -> PathBuf {
        self.dir.join("labels").join(format!("{}.png", self.names[index]))
    }

    /// Item `index` at its original resolution, with class and segment ids as `camvid.py` makes them.
    pub fn load(&self, index: usize) -> Result<Example, DataError> {
        if index >= self.names.len() {
            return Err(DataError::Index {
                dataset: format!("CamVid {}", self.split),
                index,
                len: self.names.len(),
            });
        }
        let image = read_rgb(&self.image_path(index))?;
        let label_path = self.label_path(index);
        let labels = read_label_png(&label_path)?;
        check_size(&label_path, &labels, &image)?;
        let (class, instance) = labels_to_panoptic(&labels, &label_path)?;
        Ok(Example { name: self.names[index].clone(), image, class, instance })
    }
}

/// CamVid label indices -> (class ids, segment ids), `camvid.labels_to_panoptic`: stuff one id per
/// class present, things one id per 8-connected component. `path` only names the file in errors.
pub fn labels_to_panoptic(labels: &LabelMap, path: &Path) -> Result<(Vec<u32>, Vec<u32>), DataError> {
    let (w, h) = (labels.width, labels.height);
    let mut bad: Vec<u32> = labels.values.iter().copied().filter(|&v| v > VOID_LABEL).collect();
    if !bad.is_empty() {
        bad.sort_unstable();
        bad.dedup();
        return Err(DataError::LabelValues { path: path.to_path_buf(), values: bad, max: VOID_LABEL });
    }
    let class: Vec<u32> = labels.values.iter().map(|&v| if v == VOID_LABEL { VOID } else { v + 1 }).collect();
    let is_thing = |c: u32| c != VOID && CLASSES[c as usize - 1].isthing;

    // Stuff: one id per stuff class present, in increasing class id.
    let mut present = [false; CLASSES.len() + 1];
    for &c in &class {
        present[c as usize] = true;
    }
    let mut stuff_id = [0u32; CLASSES.len() + 1];
    let mut next_id = 1u32;
    for c in 1..=CLASSES.len() as u32 {
        if present[c as usize] && !is_thing(c) {
            stuff_id[c as usize] = next_id;
            next_id += 1;
        }
    }
    let mut instance: Vec<u32> = class.iter().map(|&c| stuff_id[c as usize]).collect();

    // Things: 8-connected components, class by class, each in raster order of its first pixel
    // (the numbering of scipy.ndimage.label).
    let mut stack = Vec::new();
    for c in (1..=CLASSES.len() as u32).filter(|&c| present[c as usize] && is_thing(c)) {
        for start in 0..class.len() {
            if class[start] != c || instance[start] != 0 {
                continue;
            }
            instance[start] = next_id;
            stack.push(start);
            while let Some(p) = stack.pop() {
                let (x, y) = (p % w, p / w);
                for ny in y.saturating_sub(1)..(y + 2).min(h) {
                    for nx in x.saturating_sub(1)..(x + 2).min(w) {
                        let q = ny * w + nx;
                        if class[q] == c && instance[q] == 0 {
                            instance[q] = next_id;
                            stack.push(q);
                        }
                    }
                }
            }
            next_id += 1;
        }
    }
    Ok((class, instance))
}
