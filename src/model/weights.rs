//! The weights file: safetensors (`NAME.safetensors`) read without trusting it. The header is
//! length-checked and capped, every tensor's dtype, shape and byte range are validated, and the
//! model asks for each parameter by name with the shape its config implies, so a missing, extra
//! or misshapen tensor is an error naming it ([`ModelError`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::ModelError;

pub use crate::limits::MAX_HEADER_BYTES;

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

    fn from_name(name: &str) -> Option<StorageType> {
        Some(match name {
            "F32" => StorageType::F32,
            "F16" => StorageType::F16,
            "BF16" => StorageType::BF16,
            "I32" => StorageType::I32,
            "I64" => StorageType::I64,
            _ => return None,
        })
    }

    /// The float type of a card's or header's `dtype` label (`fp32`, `fp16`, `bf16`).
    pub fn from_label(label: &str) -> Option<StorageType> {
        Some(match label {
            "fp32" => StorageType::F32,
            "fp16" => StorageType::F16,
            "bf16" => StorageType::BF16,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            StorageType::F32 => "fp32",
            StorageType::F16 => "fp16",
            StorageType::BF16 => "bf16",
            StorageType::I32 => "i32",
            StorageType::I64 => "i64",
        }
    }

    fn is_float(self) -> bool {
        matches!(self, StorageType::F32 | StorageType::F16 | StorageType::BF16)
    }
}

#[derive(Clone, Debug)]
struct Entry {
    dtype: StorageType,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// Synthetic weights made up for one model at most: 2^27 parameters (512 MiB of f32; `paper` has
/// 94 M), and 2^24 in one tensor (`paper`'s largest has 1 M), so a config that asks for more fails
/// at its first oversized tensor instead of exhausting memory.
pub const MAX_SYNTHETIC_PARAMETERS: u64 = 1 << 27;
pub const MAX_SYNTHETIC_TENSOR: u64 = 1 << 24;

/// A parsed safetensors file; tensors are converted to f32 when asked for.
pub struct Weights {
    /// `Some(seed)`: no file; [`Weights::take`] makes up values (benchmarks of untrained configs).
    synthetic: Option<u64>,
    /// Parameters made up so far (synthetic weights).
    made_up: u64,
    bytes: Vec<u8>,
    entries: BTreeMap<String, Entry>,
    /// The one float type of every float tensor (None: the file has none).
    float_dtype: Option<StorageType>,
    used: BTreeSet<String>,
}

fn bad(message: String) -> ModelError {
    ModelError::Weights(message)
}

/// The tensors of a safetensors JSON header, offsets relative to the data, and the data's length.
struct Header {
    entries: BTreeMap<String, Entry>,
    float_dtype: Option<StorageType>,
    data_len: usize,
}

fn parse_entry(name: &str, info: &serde_json::Value) -> Result<Entry, ModelError> {
    let label = info.get("dtype").and_then(|d| d.as_str());
    let dtype = label.and_then(StorageType::from_name).ok_or_else(|| {
        let label = label.unwrap_or("(none)");
        bad(format!("tensor '{name}' has dtype {label}; expected F32, F16 or BF16"))
    })?;
    let numbers = |key: &str| -> Option<Vec<usize>> {
        let list = info.get(key)?.as_array()?;
        list.iter().map(|d| d.as_u64().and_then(|v| usize::try_from(v).ok())).collect()
    };
    let shape = numbers("shape").ok_or_else(|| bad(format!("tensor '{name}' has no valid shape")))?;
    let offsets =
        numbers("data_offsets").ok_or_else(|| bad(format!("tensor '{name}' has no valid data_offsets")))?;
    let [start, end] = offsets[..] else {
        return Err(bad(format!("tensor '{name}' needs two data_offsets")));
    };
    let bytes = crate::limits::product(&shape).and_then(|n| n.checked_mul(dtype.size() as u64));
    if start > end || bytes != Some((end - start) as u64) {
        return Err(bad(format!(
            "tensor '{name}' of shape {shape:?} and dtype {dtype:?} has byte range {start}..{end}, which does not fit its size"
        )));
    }
    Ok(Entry { dtype, shape, start, end })
}

/// The `__metadata__` a pix2seqd exporter writes: a supported `format_version` and a `dtype` that
/// every float tensor has.
fn check_metadata(meta: &serde_json::Value, float_dtype: Option<StorageType>) -> Result<(), ModelError> {
    if let Some(version) = meta.get("format_version") {
        crate::model::card::check_format_version(version).map_err(|e| match e {
            ModelError::Config(m) => bad(format!("header {m}")),
            other => other,
        })?;
    }
    if let Some(label) = meta.get("dtype") {
        let declared = label.as_str().and_then(StorageType::from_label);
        let Some(declared) = declared else {
            return Err(bad(format!("header dtype {label} is not one of \"fp32\", \"fp16\", \"bf16\"")));
        };
        if let Some(found) = float_dtype.filter(|&f| f != declared) {
            return Err(bad(format!(
                "the header says dtype {} but its tensors are {found:?}",
                declared.label()
            )));
        }
    }
    Ok(())
}

fn parse_header(json: &[u8]) -> Result<Header, ModelError> {
    let header: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
    let obj = header.as_object().ok_or_else(|| bad("header is not a JSON object".into()))?;
    let mut entries = BTreeMap::new();
    let mut float_dtype: Option<(StorageType, &str)> = None;
    for (name, info) in obj.iter().filter(|(name, _)| *name != "__metadata__") {
        let entry = parse_entry(name, info)?;
        if entry.dtype.is_float() {
            match float_dtype {
                Some((first, other)) if first != entry.dtype => {
                    return Err(bad(format!(
                        "tensor '{name}' is {:?} but '{other}' is {first:?}: a model is stored in one dtype",
                        entry.dtype
                    )))
                }
                None => float_dtype = Some((entry.dtype, name)),
                _ => {}
            }
        }
        entries.insert(name.clone(), entry);
    }
    let float_dtype = float_dtype.map(|(d, _)| d);
    if let Some(meta) = obj.get("__metadata__") {
        check_metadata(meta, float_dtype)?;
    }
    let data_len = check_contiguous(&entries)?;
    Ok(Header { entries, float_dtype, data_len })
}

/// The format's rule: the tensors' byte ranges tile the data from 0, without gaps or overlaps.
/// Returns the data's length.
fn check_contiguous(entries: &BTreeMap<String, Entry>) -> Result<usize, ModelError> {
    let mut ranges: Vec<(usize, usize, &str)> =
        entries.iter().map(|(name, e)| (e.start, e.end, name.as_str())).collect();
    ranges.sort_unstable();
    let (mut end, mut previous) = (0usize, None::<&str>);
    for (start, stop, name) in ranges {
        if start < end {
            let other = previous.unwrap_or("?");
            return Err(bad(format!(
                "tensor '{name}' (bytes {start}..{stop}) overlaps tensor '{other}' (ending at byte {end})"
            )));
        }
        if start > end {
            return Err(bad(format!(
                "a gap of {} bytes before tensor '{name}': tensor data must be contiguous",
                start - end
            )));
        }
        (end, previous) = (stop, Some(name));
    }
    Ok(end)
}

/// How many data bytes follow the header `json` (the end of its last tensor), validating the
/// header: what a reader needs to know before it reads the data.
pub fn data_extent(json: &[u8]) -> Result<u64, ModelError> {
    Ok(parse_header(json)?.data_len as u64)
}

impl Weights {
    /// Parses and validates the container (not yet the names: see [`Weights::take`]).
    pub fn parse(bytes: Vec<u8>) -> Result<Weights, ModelError> {
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
        let header = parse_header(&bytes[8..data_start])?;
        let data_len = bytes.len() - data_start;
        if header.data_len != data_len {
            return Err(bad(format!(
                "the file has {} bytes but its tensors end at byte {}",
                bytes.len(),
                data_start + header.data_len
            )));
        }
        let mut entries = header.entries;
        for e in entries.values_mut() {
            (e.start, e.end) = (data_start + e.start, data_start + e.end);
        }
        Ok(Weights {
            synthetic: None,
            made_up: 0,
            bytes,
            entries,
            float_dtype: header.float_dtype,
            used: BTreeSet::new(),
        })
    }

    /// The dtype of the file's float tensors (None for synthetic weights or a file without any).
    pub fn float_dtype(&self) -> Option<StorageType> {
        self.float_dtype
    }

    /// Random weights for any config (seeded): norm scales 1, biases 0, other tensors uniform in
    /// ±1/√fan_in. For benchmarking a config before it is trained; the output is meaningless.
    pub fn synthetic(seed: u64) -> Weights {
        Weights {
            synthetic: Some(seed),
            made_up: 0,
            bytes: Vec::new(),
            entries: BTreeMap::new(),
            float_dtype: None,
            used: BTreeSet::new(),
        }
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
            let n = crate::limits::product(shape).unwrap_or(u64::MAX);
            self.made_up = self.made_up.saturating_add(n);
            if n > MAX_SYNTHETIC_TENSOR || self.made_up > MAX_SYNTHETIC_PARAMETERS {
                return Err(ModelError::Config(format!(
                    "synthetic weights for this config exceed {MAX_SYNTHETIC_TENSOR} parameters in one tensor or {MAX_SYNTHETIC_PARAMETERS} in all (at '{name}' {shape:?})"
                )));
            }
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
