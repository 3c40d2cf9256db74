//! Readers for the evaluation datasets in `../shared/data` (CamVid, coco128-seg, DAVIS 2016),
//! mirroring the Python readers in `train/pix2seqd_train/data/` (`common.py`, `camvid.py`,
//! `coco128.py`, `davis.py`) label for label.
//!
//! A reader yields an [`Example`] at the original resolution: an RGB image plus two row-major label
//! maps, `class` (class id = dataset label + 1, 0 = void) and `instance` (segment id, 0 = void; every
//! non-void segment, stuff included, has an id >= 1) — the `RawExample` convention of `common.py`.
//! Mapping classes to a model's class list, letterboxing and capping the number of segments happen
//! later (as in the Python registry), not here.
//!
//! Every failure is a [`DataError`] naming the file or directory involved; nothing here panics on
//! the contents of a file.

use std::path::{Path, PathBuf};

pub mod camvid;
pub mod coco128;
pub mod davis;

/// The void class / segment id.
pub const VOID: u32 = 0;

/// Environment variable overriding [`data_root`].
pub const DATA_ENV: &str = "PIX2SEQD_DATA";

/// Everything that can go wrong reading a dataset. Each message names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A dataset directory that should exist does not.
    #[error("{what} not found at {} (see ../shared/data/README.md)", path.display())]
    MissingDir { what: String, path: PathBuf },
    /// A directory exists but holds none of the files it should.
    #[error("no {what} in {}", path.display())]
    Empty { what: String, path: PathBuf },
    /// A split name the dataset does not have.
    #[error("{dataset} split must be one of {valid:?}, got {split:?}")]
    BadSplit { dataset: String, split: String, valid: Vec<String> },
    /// An I/O error on a file or directory (open, list, read).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file or directory name that is not valid UTF-8.
    #[error("{}: file name is not valid UTF-8", path.display())]
    BadName { path: PathBuf },
    /// An image the `image` crate cannot decode.
    #[error("cannot read image {}: {source}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// An image whose header declares more pixels than the decoding limits allow.
    #[error("image {}: {reason}", path.display())]
    TooLarge { path: PathBuf, reason: String },
    /// A label PNG that cannot be decoded or is not a single-channel image.
    #[error("cannot read label {}: {reason}", path.display())]
    LabelFormat { path: PathBuf, reason: String },
    /// A label map whose size differs from its image.
    #[error("{}: size {label_width}x{label_height} (WxH) differs from its image {image_width}x{image_height}", path.display())]
    SizeMismatch {
        path: PathBuf,
        label_width: usize,
        label_height: usize,
        image_width: usize,
        image_height: usize,
    },
    /// Label values outside the dataset's range.
    #[error("{}: label values {values:?} outside 0..={max}", path.display())]
    LabelValues { path: PathBuf, values: Vec<u32>, max: u32 },
    /// An item index past the end of a dataset.
    #[error("{dataset}: index {index} out of range (it has {len} items)")]
    Index { dataset: String, index: usize, len: usize },
    /// A line of a text label file that cannot be parsed.
    #[error("{}: line {line}: {reason}", path.display())]
    LabelText { path: PathBuf, line: usize, reason: String },
    /// A DAVIS sequence name that the folder does not hold.
    #[error("no sequence {seq:?} in {} (sequences: {known:?})", path.display())]
    UnknownSequence { path: PathBuf, seq: String, known: Vec<String> },
}

/// One non-void class; its class id is its index in the class list + 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetClass {
    pub name: &'static str,
    pub isthing: bool,
    pub color: [u8; 3],
}

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl RgbImage {
    /// The pixels as RGBA bytes (alpha 255), row-major.
    pub fn to_rgba(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rgb.len() / 3 * 4);
        for px in self.rgb.chunks_exact(3) {
            out.extend_from_slice(&[px[0], px[1], px[2], 255]);
        }
        out
    }
}

/// Read a JPEG or PNG (format guessed from the content, like PIL) as RGB, through the one checked
/// decoder of image files ([`crate::photo::decode_checked`]).
///
/// Like PIL's `Image.open(..).convert("RGB")`, EXIF orientation is not applied. JPEG decoding is
/// not bit-identical to PIL's libjpeg: pixel values can differ by a few levels.
///
/// The file must be a regular file within `limits::MAX_IMAGE_FILE_BYTES`, and the size its header
/// declares within the decoding limits (`limits::check_declared_size`).
pub fn read_rgb(path: &Path) -> Result<RgbImage, DataError> {
    use crate::photo::{decode_checked, DecodeError};
    let bytes = crate::limits::read_capped(path, crate::limits::MAX_IMAGE_FILE_BYTES)
        .map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    // A JPEG cut short is not refused here (as before): only photos are (`photo::decode_photo`).
    let image = decode_checked(&bytes).map_err(|e| match e {
        DecodeError::Format(source) | DecodeError::Image(source) => {
            DataError::Image { path: path.to_path_buf(), source }
        }
        DecodeError::TooLarge(reason) => DataError::TooLarge { path: path.to_path_buf(), reason },
    })?;
    let rgb = image.into_rgb8();
    Ok(RgbImage { width: rgb.width() as usize, height: rgb.height() as usize, rgb: rgb.into_raw() })
}

/// A single-channel label map, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelMap {
    pub width: usize,
    pub height: usize,
    pub values: Vec<u32>,
}

/// Read a single-channel label PNG the way `common.read_label_png` (PIL + NumPy) sees it.
///
/// Palette images give their palette indices (any bit depth); grayscale gives the stored value at 8
/// and 16 bits, 0/1 at 1 bit (PIL mode `1`) and the value scaled to 0..255 at 2 and 4 bits (PIL
/// modes `L;2`/`L;4`). Images with more than one channel (RGB, gray+alpha, RGBA) are an error.
pub fn read_label_png(path: &Path) -> Result<LabelMap, DataError> {
    let format_err = |reason: String| DataError::LabelFormat { path: path.to_path_buf(), reason };
    let bytes = crate::limits::read_capped(path, crate::limits::MAX_IMAGE_FILE_BYTES)
        .map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| format_err(format!("not a readable PNG: {e}")))?;
    crate::limits::check_declared_size(reader.info().width, reader.info().height).map_err(format_err)?;
    let size = reader.output_buffer_size().ok_or_else(|| format_err("image too large".into()))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| format_err(format!("corrupt PNG data: {e}")))?;
    let (width, height) = (info.width as usize, info.height as usize);
    let bits = info.bit_depth as u8 as usize;
    let (scale, wide) = match info.color_type {
        png::ColorType::Indexed => (1, false),
        png::ColorType::Grayscale => (
            match bits {
                2 => 85,
                4 => 17,
                _ => 1,
            },
            bits == 16,
        ),
        other => {
            return Err(format_err(format!(
                "expected a single-channel label PNG, got {other:?} at {bits} bits"
            )))
        }
    };
    let line = info.line_size;
    if buf.len() < line * height || line * 8 < width * bits {
        return Err(format_err("decoded data shorter than the image".into()));
    }
    let mut values = Vec::with_capacity(width * height);
    for row in buf.chunks_exact(line.max(1)).take(height) {
        for x in 0..width {
            let v = if wide {
                u32::from(u16::from_be_bytes([row[2 * x], row[2 * x + 1]]))
            } else if bits == 8 {
                u32::from(row[x])
            } else {
                let bit = x * bits;
                let shift = 8 - bits - bit % 8;
                u32::from((row[bit / 8] >> shift) & ((1u8 << bits) - 1))
            };
            values.push(v * scale);
        }
    }
    Ok(LabelMap { width, height, values })
}

/// One frame at its original resolution (the `RawExample` of `common.py`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// Item name (CamVid: file stem; DAVIS: `SEQ/NNNNN`).
    pub name: String,
    pub image: RgbImage,
    /// Class id per pixel, row-major, `image.width * image.height`: dataset label + 1, 0 = void.
    pub class: Vec<u32>,
    /// Segment id per pixel, row-major: 0 = void, every non-void segment (stuff too) >= 1.
    pub instance: Vec<u32>,
}

impl Example {
    pub fn width(&self) -> usize {
        self.image.width
    }

    pub fn height(&self) -> usize {
        self.image.height
    }
}

/// The shared data folder (the one `../shared/data/README.md` describes), found in this order:
///
/// 1. the environment variable `PIX2SEQD_DATA`, when set and not empty (as in the Python
///    `common.data_root`);
/// 2. `../shared/data` relative to the current directory, when that directory exists (running from
///    the repository root);
/// 3. otherwise `../shared/data` relative to this crate's manifest directory, fixed at compile time
///    (tests, and `cargo run` from elsewhere). The path may not exist: readers then report it.
pub fn data_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let local = Path::new("..").join("shared").join("data");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared").join("data")
}

/// Sorted stems of the entries of `dir` named `*.{ext}` (like `sorted(p.stem for p in dir.glob("*.ext"))`).
pub(crate) fn sorted_stems(dir: &Path, ext: &str) -> Result<Vec<String>, DataError> {
    let suffix = format!(".{ext}");
    let mut stems = Vec::new();
    for name in sorted_entries(dir)? {
        if let Some(stem) = name.strip_suffix(&suffix).filter(|s| !s.is_empty()) {
            stems.push(stem.to_string());
        }
    }
    Ok(stems)
}

/// Sorted names of the entries of `dir`.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<String>, DataError> {
    let io_err = |source| DataError::Io { path: dir.to_path_buf(), source };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name().into_string().map_err(|_| DataError::BadName { path: entry.path() })?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Error unless `label` has the size of `image`.
pub(crate) fn check_size(path: &Path, label: &LabelMap, image: &RgbImage) -> Result<(), DataError> {
    if label.width != image.width || label.height != image.height {
        return Err(DataError::SizeMismatch {
            path: path.to_path_buf(),
            label_width: label.width,
            label_height: label.height,
            image_width: image.width,
            image_height: image.height,
        });
    }
    Ok(())
}
