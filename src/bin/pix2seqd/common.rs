//! What the commands share: finding the model, decoding images, progress bars.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use pix2seqd::{BackendKind, Error, Segmenter};

/// Where the shipped models live (`NAME.json` + `NAME.safetensors`).
const SHIPPED_DIR: &str = "assets/models";
/// The default model of `segment` (and of the page).
pub const DEFAULT_MODEL: &str = "objects";
/// The default model of `eval camvid`.
pub const STREET_MODEL: &str = "street";
/// A loaded model and what its card says a user must know.
pub struct LoadedModel {
    pub segmenter: Segmenter,
    pub path: PathBuf,
    pub note: Option<String>,
}

/// `--model PATH` (a path, or the name of a shipped model: `street`, `objects`), or the shipped
/// `default` model.
pub fn load_model(model: Option<&Path>, default: &str, cpu: bool) -> Result<LoadedModel, String> {
    let backend = if cpu { BackendKind::Cpu } else { BackendKind::Gpu };
    let shipped = Path::new(SHIPPED_DIR).join(default);
    let path = match model {
        Some(p) => resolve_model(p),
        None if pix2seqd::model_paths(&shipped).0.exists() => shipped,
        None => {
            return Err(format!(
                "no model given and the shipped {default} model ({}.json) is not here: run from the repository root or pass --model PATH",
                shipped.display()
            ))
        }
    };
    let segmenter = open_segmenter(&path, backend).map_err(|e| model_error(&path, e))?;
    let note = card_note(&path);
    Ok(LoadedModel { segmenter, path, note })
}

/// The model at `path` (card and weights each read within its cap, see `pix2seqd::limits`).
pub fn open_segmenter(path: &Path, backend: BackendKind) -> Result<Segmenter, Error> {
    let (json, weights) = pix2seqd::limits::read_model_files(path)?;
    pollster::block_on(Segmenter::new(&json, weights, backend))
}

/// A bare name that is no file here (`street`) means the shipped model of that name.
fn resolve_model(p: &Path) -> PathBuf {
    let is_bare_name = p.components().count() == 1 && p.extension().is_none();
    let shipped = Path::new(SHIPPED_DIR).join(p);
    if is_bare_name && !pix2seqd::model_paths(p).0.exists() && pix2seqd::model_paths(&shipped).0.exists() {
        shipped
    } else {
        p.to_path_buf()
    }
}

fn model_error(path: &Path, e: Error) -> String {
    format!("model {}: {e}", path.display())
}

/// What the card says a user must know: `metadata.purpose` when the weights are not trained, or
/// `metadata.note` (e.g. a model still in training, below its target).
fn card_note(path: &Path) -> Option<String> {
    let text =
        pix2seqd::limits::read_text_file(&pix2seqd::model_paths(path).0, pix2seqd::limits::MAX_CARD_BYTES)
            .ok()?;
    let card: serde_json::Value = serde_json::from_str(&text).ok()?;
    let metadata = card.get("metadata")?;
    let purpose = metadata.get("purpose").and_then(|p| p.as_str()).filter(|p| p.contains("not trained"));
    let note = purpose.or_else(|| metadata.get("note").and_then(|n| n.as_str()))?;
    Some(format!("model {}: {note}", path.display()))
}

/// A decoded image file as RGBA8.
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    pub rgba: Vec<u8>,
}

/// Reads a photo within the decoding limits (`pix2seqd::photo`); one larger than
/// `MAX_PHOTO_SIDE` on a side is scaled down to it, as the page does, and stderr says so.
pub fn read_image(path: &Path) -> Result<Decoded, String> {
    use pix2seqd::limits::MAX_PHOTO_SIDE;
    let photo = pix2seqd::photo::read_photo(path).map_err(|e| e.to_string())?;
    let (width, height) = (photo.width, photo.height);
    let photo = pix2seqd::photo::fit_within(photo, MAX_PHOTO_SIDE);
    if (photo.width, photo.height) != (width, height) {
        eprintln!(
            "note: {}: {width}x{height} scaled down to {}x{} (photos are read at most {MAX_PHOTO_SIDE} pixels a side, as in the page)",
            path.display(),
            photo.width,
            photo.height
        );
    }
    Ok(Decoded { width: photo.width, height: photo.height, rgba: photo.rgba })
}

/// A progress bar on stderr for `len` items (hidden with --json or when stderr is no terminal).
pub fn progress(len: u64, json: bool, what: &str) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}
