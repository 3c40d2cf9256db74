//! The weights file: safetensors (`NAME.safetensors`) read without trusting it. The header is
//! length-checked and capped, every tensor's dtype, shape and byte range are validated, and the
//! model asks for each parameter by name with the shape its config implies, so a missing, extra
//! or misshapen tensor is an error naming it ([`ModelError`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::ModelError;

/// Largest accepted JSON header (the `paper` model's header is ~60 KB).
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageType {
    F32,
    F16,
    BF16,
    /// Integer tensors appear in fixture files, never in a model.
    I32,
    I64,
}

impl StorageType {
    fn size(self) -> usize {
        match self {
            StorageType::F32 => 4,
            StorageType::F16 | StorageType::BF16 => 2,
            StorageType::I32 => 4,
            StorageType::I64 => 8,
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    dtype: StorageType,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// A parsed safetensors file; tensors are converted to f32 when asked for.
pub struct Weights {
    /// `Some(seed)`: no file; [`Weights::take`] makes up values (benchmarks of untrained configs).
    synthetic: Option<u64>,
    bytes: Vec<u8>,
    entries: BTreeMap<String, Entry>,
    used: BTreeSet<String>,
}

impl Weights {
    /// Parses and validates the container (not yet the names: see [`Weights::take`]).
    pub fn parse(bytes: Vec<u8>) -> Result<Weights, ModelError> {
        let bad = |m: String| ModelError::Weights(m);
        if bytes.len() < 8 {
            return Err(bad(format!("{} bytes is too short for a safetensors file", bytes.len())));
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&bytes[..8]);
        let header_len = u64::from_le_bytes(len8);
        if header_len > MAX_HEADER_BYTES {
            return Err(bad(format!(
                "header of {header_len} bytes exceeds the {MAX_HEADER_BYTES}-byte cap (not a model file?)"
            )));
        }
        let data_start = 8 + header_len as usize;
        if data_start > bytes.len() {
            return Err(bad(format!(
                "header of {header_len} bytes runs past the end of the {}-byte file",
                bytes.len()
            )));
        }
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..data_start])
            .map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
        let obj = header.as_object().ok_or_else(|| bad("header is not a JSON object".into()))?;
        let data_len = bytes.len() - data_start;
        let mut entries = BTreeMap::new();
        for (name, info) in obj {
            if name == "__metadata__" {
                continue;
            }
            let dtype = match info.get("dtype").and_then(|d| d.as_str()) {
                Some("F32") => StorageType::F32,
                Some("F16") => StorageType::F16,
                Some("BF16") => StorageType::BF16,
                Some("I32") => StorageType::I32,
                Some("I64") => StorageType::I64,
                other => {
                    return Err(bad(format!(
                        "tensor '{name}' has dtype {other:?}; expected F32, F16 or BF16"
                    )))
                }
            };
            let shape: Vec<usize> = info
                .get("shape")
                .and_then(|s| s.as_array())
                .and_then(|a| a.iter().map(|d| d.as_u64().map(|v| v as usize)).collect())
                .ok_or_else(|| bad(format!("tensor '{name}' has no valid shape")))?;
            let offsets: Vec<usize> = info
                .get("data_offsets")
                .and_then(|s| s.as_array())
                .and_then(|a| a.iter().map(|d| d.as_u64().map(|v| v as usize)).collect())
                .ok_or_else(|| bad(format!("tensor '{name}' has no valid data_offsets")))?;
            let [start, end] = offsets[..] else {
                return Err(bad(format!("tensor '{name}' needs two data_offsets")));
            };
            let elements = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let expected = elements.and_then(|n| n.checked_mul(dtype.size()));
            if start > end || end > data_len || expected != Some(end - start) {
                return Err(bad(format!(
                    "tensor '{name}' of shape {shape:?} has byte range {start}..{end}, which does not fit its size or the file"
                )));
            }
            entries.insert(
                name.clone(),
                Entry { dtype, shape, start: data_start + start, end: data_start + end },
            );
        }
        Ok(Weights { synthetic: None, bytes, entries, used: BTreeSet::new() })
    }

    /// Random weights for any config (seeded): norm scales 1, biases 0, other tensors uniform in
    /// ±1/√fan_in. For benchmarking a config before it is trained; the output is meaningless.
    pub fn synthetic(seed: u64) -> Weights {
        Weights { synthetic: Some(seed), bytes: Vec::new(), entries: BTreeMap::new(), used: BTreeSet::new() }
    }

    fn make_up(seed: u64, name: &str, shape: &[usize]) -> Vec<f32> {
        let n: usize = shape.iter().product();
        if shape.len() == 1 {
            let is_scale = name.ends_with(".weight");
            return vec![if is_scale { 1.0 } else { 0.0 }; n];
        }
        let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
        let bound = 1.0 / (fan_in as f32).sqrt();
        let mut state = name
            .bytes()
            .fold(seed ^ 0x9E37_79B9_7F4A_7C15, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01B3));
        (0..n)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                let u = ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32;
                (2.0 * u - 1.0) * bound
            })
            .collect()
    }

    /// Names of every tensor in the file.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|s| s.as_str())
    }

    /// The tensor `name`, which must have exactly `shape`, as f32; marks it used.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        if let Some(seed) = self.synthetic {
            return Ok(Self::make_up(seed, name, shape));
        }
        let e = self.entries.get(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
        if e.shape != shape {
            return Err(ModelError::WrongShape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: e.shape.clone(),
            });
        }
        let raw = &self.bytes[e.start..e.end];
        let out = match e.dtype {
            StorageType::F32 => {
                raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            StorageType::F16 => {
                raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            StorageType::BF16 => {
                raw.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            StorageType::I32 | StorageType::I64 => {
                return Err(ModelError::Weights(format!(
                    "tensor '{name}' holds integers ({:?}), not weights",
                    e.dtype
                )))
            }
        };
        self.used.insert(name.to_string());
        Ok(out)
    }

    /// Shape of tensor `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// An integer tensor (I32 or I64) as i64 values, whatever its shape; marks it used.
    pub fn take_ints(&mut self, name: &str) -> Result<Vec<i64>, ModelError> {
        let e = self.entries.get(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
        let raw = &self.bytes[e.start..e.end];
        let out = match e.dtype {
            StorageType::I32 => {
                raw.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect()
            }
            StorageType::I64 => raw
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
            other => {
                return Err(ModelError::Weights(format!(
                    "tensor '{name}' is {other:?}, not an integer tensor"
                )))
            }
        };
        self.used.insert(name.to_string());
        Ok(out)
    }

    /// Errors on the first tensor no module asked for (a file for another config).
    pub fn finish(&self) -> Result<(), ModelError> {
        match self.entries.keys().find(|k| !self.used.contains(*k)) {
            Some(name) => Err(ModelError::UnexpectedTensor(name.clone())),
            None => Ok(()),
        }
    }
}
