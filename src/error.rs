//! The crate's error: one enum over every layer, each message one clear sentence naming what was
//! wrong (the CLI prints it as is; the page shows it).

use crate::data::DataError;
use crate::geometry::LetterboxError;
use crate::gpu::GpuError;
use crate::model::ModelError;
use crate::panoptic::PanopticError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Panoptic(#[from] PanopticError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Letterbox(#[from] LetterboxError),
    #[error("image {name}: {detail}")]
    Image { name: String, detail: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Error {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }
}
