//! Every size a user's input can set, bounded in one place before anything is allocated (issue
//! 19). docs/model-format.md ("Limits") lists each constant and why it has its value. Sizes are
//! multiplied with `checked_mul` in `u64`, never wrapping.
//!
//! Files are read only when they are regular files (a FIFO blocks forever, `/dev/zero` never
//! ends, a folder is no file) and never "until EOF": each reader knows its cap before it reads.

use std::io::Read;
use std::path::Path;

use crate::Error;

/// Longest side of a model's input (`image_size`): twice the `paper` model's 1024.
pub const MAX_MODEL_IMAGE_SIDE: usize = 2048;
/// Widest channel count of any layer a config sets (paper's widest is the encoder MLP, 2048).
pub const MAX_CHANNELS: usize = 8192;
/// Most elements of one activation tensor the config implies (2^28 f32 = 1 GiB; `paper`'s largest,
/// its 384 MiB of logits, is 2^26.6).
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 28;
/// Most layers or blocks in one stack (encoder layers, transformer layers, ResNet blocks per
/// stage, MBConv repeats per stage, ResBlocks per level); `paper` has 12.
pub const MAX_LAYERS: usize = 64;
/// Most MBConv stages (EfficientNet-Lite has 5 up to stride 16).
pub const MAX_STAGES: usize = 16;
/// Most classes and instance ids: a bit group has at most 12 bits (the readout's softmax groups).
pub const MAX_GROUP_BITS: u32 = 12;
pub const MAX_CLASSES: usize = 1 << MAX_GROUP_BITS;
pub const MAX_INSTANCES: usize = 1 << MAX_GROUP_BITS;
/// Most previous masks a video model conditions on.
pub const MAX_PREV_MASKS: usize = 16;
/// Most sampler steps (the paper's DDIM sweeps stop at 100; 1000 is the full DDPM chain).
pub const MAX_STEPS: usize = 1000;
/// Largest sampler time difference, in steps (beyond `steps` it changes nothing).
pub const MAX_TD: f64 = MAX_STEPS as f64;
/// Largest magnitude of the input affine (`input_scale`, `input_offset`), `b_scale` and
/// `time_scaling`: shipped models use at most 1000 (`web`'s time scaling).
pub const MAX_SCALE: f32 = 1.0e6;
/// Largest model card or config JSON (the shipped cards are ~10 KB).
pub const MAX_CARD_BYTES: u64 = 16 << 20;
/// Largest safetensors JSON header (the `paper` model's is ~60 KB).
pub const MAX_HEADER_BYTES: u64 = 16 << 20;
/// Largest weights file (`paper` in f32 is 378 MB); an f16 file this large is 2 GiB as f32.
pub const MAX_WEIGHTS_BYTES: u64 = 1 << 30;
/// Largest COCO panoptic JSON read (`eval pq`; COCO's val JSON is ~15 MB).
pub const MAX_JSON_BYTES: u64 = 1 << 30;
/// Largest polygon label file of coco128-seg (its largest is a few KB).
pub const MAX_LABEL_TEXT_BYTES: u64 = 16 << 20;
/// Largest image file read (a 100-megapixel JPEG is ~50 MB).
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;
/// Largest side and pixel count an image file may declare before it is decoded: 2^26 pixels is
/// 256 MiB as RGBA8 (a 64-megapixel phone photo fits; a 16000² PNG bomb does not).
pub const MAX_DECODED_SIDE: u32 = 16384;
pub const MAX_DECODED_PIXELS: u64 = 1 << 26;
/// The CLI scales photos larger than this on a side down to it, as the page does.
pub const MAX_PHOTO_SIDE: usize = 4096;
/// Widest panel of `pix2seqd figure`, and most pixels in its whole grid (RGBA8: 1 GiB).
pub const MAX_PANEL_WIDTH: u32 = 4096;
pub const MAX_FIGURE_PIXELS: u64 = 1 << 28;

/// `a · b · …` in u64, `None` on overflow.
pub fn product(sizes: &[usize]) -> Option<u64> {
    sizes.iter().try_fold(1u64, |acc, &s| acc.checked_mul(s as u64))
}

fn invalid_input(detail: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, detail)
}

fn invalid(path: &Path, detail: String) -> Error {
    Error::io(path, invalid_input(detail))
}

/// Opens `path` for reading if it is a regular file (links followed) of at most `cap` bytes;
/// returns the file and its length. FIFOs, devices and folders are refused before they are opened.
pub fn open_regular_file(path: &Path, cap: u64) -> std::io::Result<(std::fs::File, u64)> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let kind = if meta.is_dir() { "a folder" } else { "a FIFO, socket or device" };
        return Err(invalid_input(format!("is {kind}, not a regular file")));
    }
    let file = std::fs::File::open(path)?;
    // The opened file, not the name: it may have changed in between.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(invalid_input("is not a regular file".into()));
    }
    if meta.len() > cap {
        return Err(invalid_input(format!("is {} bytes, more than the {cap}-byte limit", meta.len())));
    }
    Ok((file, meta.len()))
}

/// Reads exactly `len` bytes (the length the file had when opened; a file that shrank meanwhile
/// is an error, one that grew is read only up to `len`).
fn read_exactly(file: &mut std::fs::File, len: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len as usize];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// The whole of a regular file of at most `cap` bytes, as an I/O result (for readers with their
/// own error types).
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let (mut file, len) = open_regular_file(path, cap)?;
    read_exactly(&mut file, len)
}

/// The whole of a regular file of at most `cap` bytes.
pub fn read_regular_file(path: &Path, cap: u64) -> Result<Vec<u8>, Error> {
    read_capped(path, cap).map_err(|e| Error::io(path, e))
}

/// Error unless an image header's declared size is within [`MAX_DECODED_SIDE`] and
/// [`MAX_DECODED_PIXELS`]: checked before a decoder allocates for it.
pub fn check_declared_size(width: u32, height: u32) -> Result<(), String> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0
        || height == 0
        || width > MAX_DECODED_SIDE
        || height > MAX_DECODED_SIDE
        || pixels > MAX_DECODED_PIXELS
    {
        return Err(format!(
            "declares {width}x{height} pixels; images are decoded up to {MAX_DECODED_SIDE} pixels a side and {MAX_DECODED_PIXELS} pixels in all"
        ));
    }
    Ok(())
}

/// A regular UTF-8 text file of at most `cap` bytes.
pub fn read_text_file(path: &Path, cap: u64) -> Result<String, Error> {
    String::from_utf8(read_regular_file(path, cap)?).map_err(|_| invalid(path, "is not UTF-8 text".into()))
}

/// A safetensors file, read only after its header says how long the file must be: a file longer
/// or shorter than its tensors is refused before its data is read.
pub fn read_safetensors_file(path: &Path) -> Result<Vec<u8>, Error> {
    let weights_error = |m: String| Error::from(crate::model::ModelError::Weights(m));
    let (mut file, len) = open_regular_file(path, MAX_WEIGHTS_BYTES).map_err(|e| Error::io(path, e))?;
    if len < 8 {
        return Err(weights_error(format!("{len} bytes is too short for a safetensors file")));
    }
    let mut len8 = [0u8; 8];
    file.read_exact(&mut len8).map_err(|e| Error::io(path, e))?;
    let header_len = u64::from_le_bytes(len8);
    if header_len > MAX_HEADER_BYTES || header_len > len - 8 {
        return Err(weights_error(format!(
            "header of {header_len} bytes exceeds the {MAX_HEADER_BYTES}-byte cap or the {len}-byte file"
        )));
    }
    let header = read_exactly(&mut file, header_len).map_err(|e| Error::io(path, e))?;
    let data_len = crate::model::weights::data_extent(&header)?;
    let expected = 8 + header_len + data_len;
    if expected != len {
        return Err(weights_error(format!(
            "the file has {len} bytes but its tensors end at byte {expected}"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    bytes.extend_from_slice(&len8);
    bytes.extend_from_slice(&header);
    bytes.resize(len as usize, 0);
    let start = 8 + header_len as usize;
    file.read_exact(&mut bytes[start..]).map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// `NAME.json` + `NAME.safetensors` of a model (`path` names either file or the stem), each read
/// within its cap: what `Segmenter::new` takes.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_model_files(path: &Path) -> Result<(String, Vec<u8>), Error> {
    let (json_path, weights_path) = crate::segmenter::model_paths(path);
    let json = read_text_file(&json_path, MAX_CARD_BYTES)?;
    let weights = read_safetensors_file(&weights_path).map_err(|e| match e {
        Error::Model(m) => Error::Invalid(format!("{}: {m}", weights_path.display())),
        other => other,
    })?;
    Ok((json, weights))
}
