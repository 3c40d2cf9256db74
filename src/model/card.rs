//! The model card's own fields (docs/model-format.md): a card is told from a bare config by them,
//! and each is checked before the config inside it is read, so a card from a newer exporter or
//! for another dtype is refused by name instead of being half understood.

use serde_json::Value;

use crate::model::weights::StorageType;
use crate::model::ModelError;

/// The card format versions this engine reads.
pub const SUPPORTED_FORMAT_VERSIONS: std::ops::RangeInclusive<u64> = 1..=1;

/// Fields only a card has (a config never does).
const CARD_FIELDS: [&str; 6] = ["format", "format_version", "dtype", "bn_folded", "parameters", "metadata"];

fn err(message: String) -> ModelError {
    ModelError::Config(message)
}

/// The config object of `value` (a card or a bare config) and the card's weights dtype (None for
/// a bare config or a card without `dtype`).
pub fn split_card(value: Value) -> Result<(Value, Option<StorageType>), ModelError> {
    let Value::Object(mut fields) = value else {
        return Err(err("expected a JSON object (a model card or a config)".into()));
    };
    let is_card = fields.contains_key("config") || CARD_FIELDS.iter().any(|f| fields.contains_key(*f));
    if !is_card {
        return Ok((Value::Object(fields), None));
    }
    if let Some(format) = fields.get("format") {
        if format.as_str() != Some("pix2seqd") {
            return Err(err(format!("the card's format is {format}, not \"pix2seqd\"")));
        }
    }
    if let Some(version) = fields.get("format_version") {
        check_format_version(version)?;
    }
    let dtype = match fields.get("dtype") {
        None => None,
        Some(d) => Some(d.as_str().and_then(StorageType::from_label).ok_or_else(|| {
            err(format!("the card's dtype {d} is not one of \"fp32\", \"fp16\", \"bf16\""))
        })?),
    };
    match fields.remove("config") {
        Some(config @ Value::Object(_)) => Ok((config, dtype)),
        Some(other) => Err(err(format!("the card's `config` is {}, not an object", kind(&other)))),
        None => Err(err(
            "the model card has no `config` object (exported cards hold the model config under \"config\")"
                .into(),
        )),
    }
}

/// A card's `format_version` (a number) or a safetensors header's (a string).
pub fn check_format_version(version: &Value) -> Result<(), ModelError> {
    let number = version.as_u64().or_else(|| version.as_str().and_then(|s| s.parse().ok()));
    match number {
        Some(v) if SUPPORTED_FORMAT_VERSIONS.contains(&v) => Ok(()),
        _ => Err(err(format!(
            "format_version {version} is not supported: this engine reads versions {}..={}",
            SUPPORTED_FORMAT_VERSIONS.start(),
            SUPPORTED_FORMAT_VERSIONS.end()
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
