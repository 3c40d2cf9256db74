//! DAVIS 2016 (`../shared/data/davis2016/SEQ/{images,masks}/NNNNN.{jpg,png}`), one object per video,
//! as `train/pix2seqd_train/data/davis.py` reads it.
//!
//! The foreground (mask > 0) is class "object" (class id 1) with segment id 1; the background is void
//! (class 0, id 0). Sequences are the sub-folders that hold an `images` folder, sorted by name; the
//! frames of a sequence are its `images/*.jpg`, sorted by name.

use std::path::{Path, PathBuf};

use super::{
    check_size, read_label_png, read_rgb, sorted_entries, sorted_stems, DataError, DatasetClass, Example,
};

/// The one class (class id 1).
pub const CLASSES: [DatasetClass; 1] = [DatasetClass { name: "object", isthing: true, color: [220, 20, 60] }];

/// The Python splits: `val` is the last [`VAL_COUNT`] sequences by name, `train` the others, `all` every one.
pub const SPLITS: [&str; 3] = ["train", "val", "all"];

/// Number of sequences (the last ones by name) in the `val` split.
pub const VAL_COUNT: usize = 4;

/// A DAVIS 2016 folder.
#[derive(Clone, Debug)]
pub struct Davis {
    root: PathBuf,
    sequences: Vec<String>,
    frames: Vec<Vec<String>>,
}

impl Davis {
    /// Open a DAVIS 2016 folder (normally `data_root().join("davis2016")`) laid out as
    /// `SEQ/images/NNNNN.jpg` and `SEQ/masks/NNNNN.png`.
    ///
    /// Errors when the folder is missing or holds no sequence (the Python reader accepts an empty one).
    pub fn open(dir: &Path) -> Result<Davis, DataError> {
        if !dir.is_dir() {
            return Err(DataError::MissingDir { what: "DAVIS".into(), path: dir.to_path_buf() });
        }
        let sequences: Vec<String> =
            sorted_entries(dir)?.into_iter().filter(|s| dir.join(s).join("images").is_dir()).collect();
        if sequences.is_empty() {
            return Err(DataError::Empty {
                what: "sequences (SEQ/images/ folders)".into(),
                path: dir.to_path_buf(),
            });
        }
        let frames = sequences
            .iter()
            .map(|s| sorted_stems(&dir.join(s).join("images"), "jpg"))
            .collect::<Result<_, _>>()?;
        Ok(Davis { root: dir.to_path_buf(), sequences, frames })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All sequence names, sorted.
    pub fn sequences(&self) -> &[String] {
        &self.sequences
    }

    /// The sequences of a Python split (`train`, `val` or `all`; see [`SPLITS`]).
    pub fn split(&self, split: &str) -> Result<&[String], DataError> {
        let cut = self.sequences.len().saturating_sub(VAL_COUNT);
        match split {
            "train" => Ok(&self.sequences[..cut]),
            "val" => Ok(&self.sequences[cut..]),
            "all" => Ok(&self.sequences),
            _ => Err(DataError::BadSplit {
                dataset: "DAVIS".into(),
                split: split.into(),
                valid: SPLITS.iter().map(|s| s.to_string()).collect(),
            }),
        }
    }

    /// Number of frames of `seq` (0 for a sequence the folder does not hold).
    pub fn frames(&self, seq: &str) -> usize {
        self.seq_index(seq).map_or(0, |k| self.frames[k].len())
    }

    /// Image path of frame `t` of `seq`.
    pub fn image_path(&self, seq: &str, t: usize) -> Result<PathBuf, DataError> {
        Ok(self.root.join(seq).join("images").join(format!("{}.jpg", self.frame(seq, t)?)))
    }

    /// Mask path of frame `t` of `seq`.
    pub fn mask_path(&self, seq: &str, t: usize) -> Result<PathBuf, DataError> {
        Ok(self.root.join(seq).join("masks").join(format!("{}.png", self.frame(seq, t)?)))
    }

    /// Frame `t` of `seq` (name `SEQ/NNNNN`): class = segment id = 1 on the foreground, 0 elsewhere.
    pub fn load(&self, seq: &str, t: usize) -> Result<Example, DataError> {
        let image = read_rgb(&self.image_path(seq, t)?)?;
        let mask_path = self.mask_path(seq, t)?;
        let mask = read_label_png(&mask_path)?;
        check_size(&mask_path, &mask, &image)?;
        let class: Vec<u32> = mask.values.iter().map(|&v| u32::from(v > 0)).collect();
        let name = format!("{seq}/{}", self.frame(seq, t)?);
        Ok(Example { name, image, instance: class.clone(), class })
    }

    /// The foreground mask of frame `t` of `seq` (mask value > 0), row-major at the mask's size
    /// (which [`Davis::load`] checks equals the image size); for J&F.
    pub fn load_mask(&self, seq: &str, t: usize) -> Result<Vec<bool>, DataError> {
        let mask = read_label_png(&self.mask_path(seq, t)?)?;
        Ok(mask.values.iter().map(|&v| v > 0).collect())
    }

    fn seq_index(&self, seq: &str) -> Result<usize, DataError> {
        self.sequences.iter().position(|s| s == seq).ok_or_else(|| DataError::UnknownSequence {
            path: self.root.clone(),
            seq: seq.into(),
            known: self.sequences.clone(),
        })
    }

    fn frame(&self, seq: &str, t: usize) -> Result<&str, DataError> {
        let frames = &self.frames[self.seq_index(seq)?];
        frames.get(t).map(String::as_str).ok_or_else(|| DataError::Index {
            dataset: format!("DAVIS {}", self.root.join(seq).display()),
            index: t,
            len: frames.len(),
        })
    }
}
