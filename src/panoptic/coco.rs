//! The COCO panoptic format: a JSON file (`images`, `annotations` with `segments_info`,
//! `categories`) plus one PNG per image whose colours encode segment ids
//! (`id = R + 256 G + 256² B`).
//!
//! Reading is tolerant the way panopticapi is: flags may be `0`/`1` or `true`/`false`, optional
//! fields may be missing, `image_id` may be a number or a string, unknown keys are kept. Writing
//! produces what panopticapi and pycocotools write (flags and areas as integers).

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::postprocess::segments;
use super::{PanopticError, PanopticMap};

/// Segment ids must fit the 24 bits of an RGB colour.
pub const MAX_SEGMENT_ID: u32 = (1 << 24) - 1;

/// COCO panoptic PNG colour -> segment id (`R + 256 G + 256² B`).
pub fn rgb2id(rgb: [u8; 3]) -> u32 {
    u32::from(rgb[0]) | (u32::from(rgb[1]) << 8) | (u32::from(rgb[2]) << 16)
}

/// Segment id -> COCO panoptic PNG colour. Ids above 2^24 - 1 wrap, as panoptic.py's `id2rgb`
/// does; [`write_panoptic_png`] refuses them instead.
pub fn id2rgb(id: u32) -> [u8; 3] {
    [(id & 0xff) as u8, ((id >> 8) & 0xff) as u8, ((id >> 16) & 0xff) as u8]
}

/// Write a row-major segment-id map as a COCO panoptic PNG (8-bit RGB).
pub fn write_panoptic_png(
    path: &Path,
    seg_ids: &[u32],
    height: usize,
    width: usize,
) -> Result<(), PanopticError> {
    let png_error = |message: String| PanopticError::Png { path: path.to_path_buf(), message };
    if height.checked_mul(width) != Some(seg_ids.len()) {
        return Err(PanopticError::Shape(format!(
            "{}: segment-id map has {} values, a {height}x{width} image needs {}",
            path.display(),
            seg_ids.len(),
            height.saturating_mul(width)
        )));
    }
    if let Some(&bad) = seg_ids.iter().find(|&&id| id > MAX_SEGMENT_ID) {
        return Err(png_error(format!(
            "segment id {bad} does not fit in 24 bits (at most {MAX_SEGMENT_ID})"
        )));
    }
    let (w, h) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
        _ => {
            return Err(png_error(format!(
                "cannot encode a {height}x{width} image: PNG sizes are 1 to 2^31 - 1"
            )))
        }
    };
    let file = File::create(path).map_err(|e| PanopticError::io("create", path, e))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| png_error(e.to_string()))?;
    let bytes: Vec<u8> = seg_ids.iter().flat_map(|&id| id2rgb(id)).collect();
    writer.write_image_data(&bytes).map_err(|e| png_error(e.to_string()))?;
    writer.finish().map_err(|e| png_error(e.to_string()))
}

/// Read a COCO panoptic PNG: `(height, width, row-major segment ids)`.
///
/// The PNG must decode to 8-bit RGB or RGBA (palette and 16-bit files are reduced to that, as PIL
/// does); alpha is ignored. Anything else is an error naming the file. The file must be a regular
/// file within `limits::MAX_IMAGE_FILE_BYTES`, and the size its header declares within the decoding
/// limits (`limits::check_declared_size`) before anything is decoded.
pub fn read_panoptic_png(path: &Path) -> Result<(usize, usize, Vec<u32>), PanopticError> {
    let bytes = crate::limits::read_capped(path, crate::limits::MAX_IMAGE_FILE_BYTES)
        .map_err(|e| PanopticError::io("read", path, e))?;
    decode_panoptic_png(&bytes, path)
}

/// [`read_panoptic_png`] of bytes already read (`path` names them in errors).
pub fn decode_panoptic_png(bytes: &[u8], path: &Path) -> Result<(usize, usize, Vec<u32>), PanopticError> {
    let png_error = |message: String| PanopticError::Png { path: path.to_path_buf(), message };
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| png_error(e.to_string()))?;
    let (width, height) = (reader.info().width, reader.info().height);
    crate::limits::check_declared_size(width, height).map_err(png_error)?;
    let size = reader.output_buffer_size().ok_or_else(|| png_error("too large to decode".into()))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| png_error(e.to_string()))?;
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => {
            return Err(png_error(format!("it is {other:?}; COCO panoptic PNGs encode segment ids as RGB")))
        }
    };
    let (h, w) = (info.height as usize, info.width as usize);
    let mut ids = Vec::with_capacity(h * w);
    for row in buf.chunks_exact(info.line_size).take(h) {
        ids.extend(row[..w * channels].chunks_exact(channels).map(|px| rgb2id([px[0], px[1], px[2]])));
    }
    if ids.len() != h * w {
        return Err(png_error(format!("decoded {} pixels, expected {h}x{w}", ids.len())));
    }
    Ok((h, w, ids))
}

// ------------------------------------------------------------------------------------------------
// JSON

/// An image id: COCO uses integers, other panoptic datasets (Cityscapes) strings. panopticapi
/// matches predictions to ground truth by this value, whatever its type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageId {
    Int(u64),
    Str(String),
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageId::Int(n) => write!(f, "{n}"),
            ImageId::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A flag written as `0`/`1` (COCO) or `true`/`false`; any non-zero number is true, as Python's
/// `bool()` reads it.
fn de_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Number(n) => Ok(n.as_f64().is_some_and(|x| x != 0.0)),
        Value::Null => Ok(false),
        other => Err(serde::de::Error::custom(format!("expected 0, 1, true or false, found {other}"))),
    }
}

fn ser_flag<S: Serializer>(flag: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(u8::from(*flag))
}

/// An area: an integer, or a number truncated to one (metrics.py reads it with `int()`).
fn de_area<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(a), _) => Ok(Some(a)),
            (None, Some(x)) if x >= 0.0 && x.is_finite() => Ok(Some(x as u64)),
            _ => Err(serde::de::Error::custom(format!("area must be a non-negative number, found {n}"))),
        },
        Some(other) => Err(serde::de::Error::custom(format!("area must be a number, found {other}"))),
    }
}

/// Whole-number box coordinates are written as integers, the way COCO files spell them.
fn ser_bbox<S: Serializer>(bbox: &Option<[f64; 4]>, s: S) -> Result<S::Ok, S::Error> {
    let as_json = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Value::from(v as i64)
        } else {
            Value::from(v)
        }
    };
    match bbox {
        Some(b) => b.map(as_json).serialize(s),
        None => s.serialize_none(),
    }
}

/// One segment of one image's PNG.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoSegment {
    /// The segment's colour in the PNG, `R + 256 G + 256² B`.
    pub id: u32,
    pub category_id: u32,
    /// Ground truth only: a crowd region is never matched and never a false negative.
    #[serde(default, deserialize_with = "de_flag", serialize_with = "ser_flag")]
    pub iscrowd: bool,
    /// Pixel count as the file states it (ground-truth areas are taken from here, as panopticapi does).
    #[serde(default, deserialize_with = "de_area", skip_serializing_if = "Option::is_none")]
    pub area: Option<u64>,
    /// `[x, y, width, height]`.
    #[serde(default, serialize_with = "ser_bbox", skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
}

/// One image's segments: its PNG and what each colour in it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub image_id: ImageId,
    /// The PNG, relative to the folder of PNGs.
    pub file_name: String,
    pub segments_info: Vec<CocoSegment>,
}

/// An entry of `images`. Keys beyond these (licence, URLs, ...) are kept in `extra`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub id: ImageId,
    #[serde(default)]
    pub file_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A category: things are countable objects, stuff amorphous regions (one segment per image).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub id: u32,
    #[serde(default)]
    pub name: String,
    /// Required, as in panopticapi: PQ is reported for things and stuff separately.
    #[serde(deserialize_with = "de_flag", serialize_with = "ser_flag")]
    pub isthing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<[u8; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supercategory: Option<String>,
}

/// A COCO panoptic JSON file. Prediction files usually hold only `annotations`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PanopticJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<Value>,
    #[serde(default)]
    pub images: Vec<ImageInfo>,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    #[serde(default)]
    pub categories: Vec<Category>,
}

/// A JSON file: a regular file within `limits::MAX_JSON_BYTES`.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, PanopticError> {
    let bytes = crate::limits::read_capped(path, crate::limits::MAX_JSON_BYTES)
        .map_err(|e| PanopticError::io("read", path, e))?;
    parse_json(&bytes, path)
}

/// JSON bytes already read (`path` names them in errors).
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, PanopticError> {
    serde_json::from_slice(bytes).map_err(|source| PanopticError::Json { path: path.to_path_buf(), source })
}

/// A COCO panoptic JSON from bytes already read (`path` names them in errors).
pub fn parse_panoptic_json(bytes: &[u8], path: &Path) -> Result<PanopticJson, PanopticError> {
    parse_json(bytes, path)
}

/// Read a COCO panoptic JSON file.
pub fn load_panoptic_json(path: &Path) -> Result<PanopticJson, PanopticError> {
    read_json(path)
}

/// Read categories from a JSON file holding either a bare list of categories (like the COCO
/// sample's `categories.json`) or an object with a `categories` list (a panoptic JSON).
pub fn load_categories_json(path: &Path) -> Result<Vec<Category>, PanopticError> {
    let json_error = |source| PanopticError::Json { path: path.to_path_buf(), source };
    let value: Value = read_json(path)?;
    // Decide the shape first, so that a bad category is reported by its field, not as "no variant matched".
    let list = match value {
        Value::Object(mut object) => object.remove("categories").unwrap_or(Value::Null),
        other => other,
    };
    serde_json::from_value(list).map_err(json_error)
}

/// Write a COCO panoptic JSON file.
pub fn save_panoptic_json(path: &Path, json: &PanopticJson) -> Result<(), PanopticError> {
    let file = File::create(path).map_err(|e| PanopticError::io("create", path, e))?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer(&mut out, json)
        .map_err(|source| PanopticError::Json { path: path.to_path_buf(), source })?;
    out.flush().map_err(|e| PanopticError::io("write", path, e))
}

/// Encode a label map as a COCO panoptic segment-id map and its `segments_info`.
///
/// Segments are numbered 1..n in `(class, instance)` order ([`segments`]); void pixels are 0.
/// `category_ids[c - 1]` is the COCO category id of model class `c`; a class without one is an
/// error naming it.
pub fn to_coco_panoptic(
    map: &PanopticMap,
    category_ids: &[u32],
) -> Result<(Vec<u32>, Vec<CocoSegment>), PanopticError> {
    let (ids, list) = segments(map);
    let infos = list
        .iter()
        .map(|s| {
            let category_id = category_ids.get(s.class as usize - 1).copied().ok_or_else(|| {
                PanopticError::UnknownCategory {
                    context: format!(
                        "class {} of segment {} (only {} category ids given)",
                        s.class,
                        s.id,
                        category_ids.len()
                    ),
                    category: u64::from(s.class),
                }
            })?;
            Ok(CocoSegment {
                id: s.id,
                category_id,
                iscrowd: false,
                area: Some(s.area),
                bbox: Some(s.bbox.map(f64::from)),
            })
        })
        .collect::<Result<Vec<_>, PanopticError>>()?;
    Ok((ids, infos))
}

/// Writes a COCO panoptic prediction folder: one `NAME_panoptic.png` per image plus
/// `panoptic.json` ([`finish`](Self::finish)) listing the images, their segments and the
/// categories (design §9, `pix2seqd segment`).
#[derive(Debug)]
pub struct PanopticJsonWriter {
    dir: PathBuf,
    json: PanopticJson,
    names: HashSet<String>,
}

impl PanopticJsonWriter {
    /// File name of the JSON written into the folder.
    pub const JSON_NAME: &'static str = "panoptic.json";

    /// A writer into `dir` (which must exist) for predictions over `categories`.
    pub fn new(dir: impl Into<PathBuf>, categories: Vec<Category>) -> Self {
        PanopticJsonWriter {
            dir: dir.into(),
            json: PanopticJson { categories, ..Default::default() },
            names: HashSet::new(),
        }
    }

    /// Write `NAME_panoptic.png` for image `name` (usually the input file's stem) and record it.
    ///
    /// The image id is the name read as a number when it is one (COCO names files by their
    /// zero-padded id, `000000139.jpg`), else the name itself as a string id.
    pub fn add(
        &mut self,
        name: &str,
        map: &PanopticMap,
        category_ids: &[u32],
    ) -> Result<&Annotation, PanopticError> {
        let id = name.parse::<u64>().map(ImageId::Int).unwrap_or_else(|_| ImageId::Str(name.to_string()));
        let image = ImageInfo {
            id,
            file_name: name.to_string(),
            height: u32::try_from(map.height).ok(),
            width: u32::try_from(map.width).ok(),
            extra: Map::new(),
        };
        self.add_image(name, image, map, category_ids)
    }

    /// [`add`](Self::add) with a caller-chosen `images` entry (its id is the annotation's `image_id`).
    pub fn add_image(
        &mut self,
        name: &str,
        image: ImageInfo,
        map: &PanopticMap,
        category_ids: &[u32],
    ) -> Result<&Annotation, PanopticError> {
        if !self.names.insert(name.to_string()) {
            return Err(PanopticError::Invalid(format!(
                "image {name:?} was already written to {}",
                self.dir.display()
            )));
        }
        if self.json.images.iter().any(|i| i.id == image.id) {
            return Err(PanopticError::Invalid(format!("image id {} of {name:?} is already used", image.id)));
        }
        let (ids, segments_info) = to_coco_panoptic(map, category_ids)?;
        let file_name = format!("{name}_panoptic.png");
        write_panoptic_png(&self.dir.join(&file_name), &ids, map.height, map.width)?;
        let annotation = Annotation { image_id: image.id.clone(), file_name, segments_info };
        self.json.images.push(image);
        self.json.annotations.push(annotation);
        Ok(&self.json.annotations[self.json.annotations.len() - 1])
    }

    /// What `panoptic.json` will hold.
    pub fn json(&self) -> &PanopticJson {
        &self.json
    }

    /// Write `panoptic.json` into the folder; returns its path.
    pub fn finish(self) -> Result<PathBuf, PanopticError> {
        let path = self.dir.join(Self::JSON_NAME);
        save_panoptic_json(&path, &self.json)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_coco_flags_and_string_ids() {
        let json = r#"{"annotations": [{"image_id": "frankfurt_000000", "file_name": "a.png",
            "segments_info": [{"id": 5, "category_id": 7, "iscrowd": 1, "area": 12.0, "bbox": [1, 2, 3, 4]}]}],
            "categories": [{"id": 7, "name": "car", "isthing": 1}, {"id": 8, "isthing": false}]}"#;
        let parsed: PanopticJson = serde_json::from_str(json).unwrap();
        let seg = &parsed.annotations[0].segments_info[0];
        assert_eq!(parsed.annotations[0].image_id, ImageId::Str("frankfurt_000000".into()));
        assert!(seg.iscrowd && parsed.categories[0].isthing && !parsed.categories[1].isthing);
        assert_eq!(seg.area, Some(12));
        let back = serde_json::to_string(seg).unwrap();
        assert_eq!(back, r#"{"id":5,"category_id":7,"iscrowd":1,"area":12,"bbox":[1,2,3,4]}"#);
    }
}
