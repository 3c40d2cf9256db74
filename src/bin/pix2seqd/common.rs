//! What the commands share: finding the model, decoding images, progress bars.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use pix2seqd::{BackendKind, Error, Segmenter};

/// The shipped web model, when present.
const SHIPPED_MODEL: &str = "assets/web";
/// Until trained weights land: the parity fixture's tiny random model.
const FIXTURE_MODEL: &str = "tests/fixtures/tiny-efficientnet/model";

/// A loaded model and what it is (printed so nobody mistakes random weights for a trained model).
pub struct LoadedModel {
    pub segmenter: Segmenter,
    pub path: PathBuf,
    pub note: Option<String>,
}

/// `--model PATH`, or the shipped model, or (with a note) the untrained parity fixture.
pub fn load_model(model: Option<&Path>, cpu: bool) -> Result<LoadedModel, String> {
    let backend = if cpu { BackendKind::Cpu } else { BackendKind::Gpu };
    let (path, note) = match model {
        Some(p) => (p.to_path_buf(), None),
        None if pix2seqd::model_paths(Path::new(SHIPPED_MODEL)).0.exists() => (PathBuf::from(SHIPPED_MODEL), None),
        None => (
            PathBuf::from(FIXTURE_MODEL),
            Some(format!(
                "no trained model in {SHIPPED_MODEL}.json: using the parity fixture {FIXTURE_MODEL} (random, untrained weights; the masks are meaningless)"
            )),
        ),
    };
    let segmenter = Segmenter::from_path(&path, backend).map_err(|e| model_error(&path, e))?;
    let note = note.or_else(|| card_note(&path));
    Ok(LoadedModel { segmenter, path, note })
}

fn model_error(path: &Path, e: Error) -> String {
    format!("model {}: {e}", path.display())
}

/// The card's `metadata.purpose` when it says the weights are not trained.
fn card_note(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(pix2seqd::model_paths(path).0).ok()?;
    let card: serde_json::Value = serde_json::from_str(&text).ok()?;
    let purpose = card.get("metadata")?.get("purpose")?.as_str()?;
    purpose.contains("not trained").then(|| format!("model {}: {purpose}", path.display()))
}

/// A decoded image file as RGBA8.
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    pub rgba: Vec<u8>,
}

pub fn read_image(path: &Path) -> Result<Decoded, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let img = image::load_from_memory(&bytes).map_err(|e| format!("{}: not a readable image ({e})", path.display()))?;
    let rgba = img.to_rgba8();
    Ok(Decoded { width: rgba.width() as usize, height: rgba.height() as usize, rgba: rgba.into_raw() })
}

/// A progress bar on stderr for `len` items (hidden with --json or when stderr is no terminal).
pub fn progress(len: u64, json: bool, what: &str) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}
