//! Pix2Seq-D, written once over a [`Backend`](crate::backend::Backend): each file mirrors the
//! PyTorch module of `train/pix2seqd_train/model/` with the same parameter names, so an exported
//! `NAME.safetensors` loads without a mapping table.
//!
//! Loading ([`Pix2SeqD::load`]) reads `NAME.json` (config + card) and `NAME.safetensors`, asks for
//! every parameter with the shape the config implies and rejects leftovers; errors name the
//! tensor. Weights are converted once to the engine's layouts (conv HWIO, linear `[in, out]`,
//! the attention's q/k/v packed) and uploaded through [`Upload`](crate::backend::Upload).

mod bounds;
pub mod card;
pub mod config;
mod efficientnet_lite;
mod fusion;
mod layers;
mod pix2seqd;
mod resnet;
mod transformer;
mod transunet;
pub mod weights;

pub use config::{BackboneType, ClassInfo, ModelConfig, Postprocess};
pub use pix2seqd::{Encoded, Pix2SeqD, StepInputs};
pub use transunet::Condition;
pub use weights::Weights;

use crate::gpu::GpuError;

/// Why a model could not be loaded or run. Every message names the file, field or tensor.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model config: {0}")]
    Config(String),
    #[error("sampler options: {0}")]
    Sampler(String),
    #[error("weights file: {0}")]
    Weights(String),
    #[error("weights file has no tensor '{0}' (a file for another config, or not exported by train/?)")]
    MissingTensor(String),
    #[error("tensor '{name}' has shape {found:?}, the config needs {expected:?}")]
    WrongShape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("weights file has a tensor '{0}' this config does not use (a file for another config?)")]
    UnexpectedTensor(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// Reads parameters by name out of [`Weights`] and uploads them.
pub(crate) struct Params<'a, U> {
    pub weights: &'a mut Weights,
    pub upload: &'a U,
}

impl<U> Params<'_, U> {
    /// Raw f32 values of `name`, which must have `shape` and hold only finite values (a NaN or
    /// an infinity in a weight turns every output into void without an error).
    pub fn raw(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let data = self.weights.take(name, shape)?;
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::Weights(format!(
                "tensor '{name}' holds {} at element {i}: weights must be finite",
                data[i]
            )));
        }
        Ok(data)
    }

    pub fn tensor<T>(&mut self, name: &str, shape: &[usize]) -> Result<T, ModelError>
    where
        U: crate::backend::Upload<T>,
    {
        let data = self.raw(name, shape)?;
        Ok(self.upload.upload(shape, &data)?)
    }
}
