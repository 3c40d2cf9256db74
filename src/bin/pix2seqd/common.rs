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
    let segmenter = Segmenter::from_path(&path, backend).map_err(|e| model_error(&path, e))?;
    let note = card_note(&path);
    Ok(LoadedModel { segmenter, path, note })
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
    let text = std::fs::read_to_string(pix2seqd::model_paths(path).0).ok()?;
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

pub fn read_image(path: &Path) -> Result<Decoded, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| format!("{}: not a readable image ({e})", path.display()))?;
    let rgba = img.to_rgba8();
    Ok(Decoded { width: rgba.width() as usize, height: rgba.height() as usize, rgba: rgba.into_raw() })
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
