//! `pix2seqd figure camvid|coco128|davis`: the before/after figure of a model (one row per image:
//! input, ground truth, prediction, each drawn with the model's class colours; DAVIS's ground
//! truth has no classes and is drawn in its own colour), for docs/. `figure readout`: photos read
//! out as before (x̂0 thresholded at mask resolution, nearest neighbour) and bilinearly.

use std::path::Path;

use image::{imageops, RgbaImage};
use pix2seqd::data::camvid::CamVid;
use pix2seqd::data::coco128::Coco128;
use pix2seqd::data::davis::{self, Davis};
use pix2seqd::data::Example;
use pix2seqd::panoptic::{self, PanopticMap};
use pix2seqd::{overlay_rgba_with, DrawStyle, Image, SegmentOptions};

use crate::common::{read_image, LoadedModel, DEFAULT_MODEL, STREET_MODEL};
use crate::eval::{coco_lut, open, truth_map, ModelArgs};

/// White space between panels, in pixels.
const GAP: u32 = 6;

/// How every panel is drawn.
const STYLE: DrawStyle = DrawStyle { opacity: 0.6, outline: true };

/// One row of the figure, each panel RGBA8 at the image's size.
struct Row {
    input: RgbaImage,
    truth: RgbaImage,
    prediction: RgbaImage,
}

const FIGURE_COLUMNS: [&str; 3] = ["input", "ground truth", "prediction"];

impl Row {
    /// The row of one example from its three RGBA8 panels at the image's size.
    fn new(ex: &Example, input: Vec<u8>, truth: Vec<u8>, prediction: Vec<u8>) -> Result<Row, String> {
        let (w, h) = (ex.image.width as u32, ex.image.height as u32);
        let panel = |bytes: Vec<u8>| {
            RgbaImage::from_raw(w, h, bytes).ok_or_else(|| format!("{}: bad panel size", ex.name))
        };
        Ok(Row { input: panel(input)?, truth: panel(truth)?, prediction: panel(prediction)? })
    }
}

/// The model (a note about it on stderr) and the sampler options of its one step count.
fn open_one(m: &ModelArgs, default_model: &str) -> Result<(LoadedModel, SegmentOptions), String> {
    let (loaded, opts) = open(m, default_model)?;
    let [opts] = opts[..] else {
        return Err("figure takes one --steps value".into());
    };
    Ok((loaded, opts))
}

/// Reads item i of a split.
type Loader = Box<dyn Fn(usize) -> Result<Example, String>>;

/// Which dataset a figure shows.
pub enum Dataset {
    Camvid,
    Coco128,
}

/// The figure of `images` (indices into the split) of a dataset, with the model's prediction.
pub fn figure(
    m: &ModelArgs,
    dataset: Dataset,
    split: &str,
    images: &[usize],
    panel_width: u32,
    out: &Path,
    json: bool,
) -> Result<(), String> {
    let root = pix2seqd::data::data_root();
    let (default_model, label) = match dataset {
        Dataset::Camvid => (STREET_MODEL, "camvid"),
        Dataset::Coco128 => (DEFAULT_MODEL, "coco128-seg"),
    };
    let (mut loaded, opts) = open_one(m, default_model)?;
    // Ground truth in the model's class ids.
    let (len, load, lut): (usize, Loader, Vec<u32>) = match dataset {
        Dataset::Camvid => {
            let data = CamVid::open(&root.join("camvid"), split).map_err(|e| e.to_string())?;
            if loaded.segmenter.config().num_classes != pix2seqd::data::camvid::CLASSES.len() + 1 {
                return Err(format!(
                    "model {} does not have CamVid's classes: use the `street` model",
                    loaded.path.display()
                ));
            }
            let identity = (0..=pix2seqd::data::camvid::CLASSES.len() as u32).collect();
            (data.len(), Box::new(move |i| data.load(i).map_err(|e| e.to_string())), identity)
        }
        Dataset::Coco128 => {
            let data = Coco128::open(&root.join("coco128-seg"), split).map_err(|e| e.to_string())?;
            (data.len(), Box::new(move |i| data.load(i).map_err(|e| e.to_string())), coco_lut(&loaded)?)
        }
    };
    let mut rows = Vec::new();
    let mut names = Vec::new();
    for &i in images {
        if i >= len {
            return Err(format!(
                "--images: image index {i} is out of range: {label}/{split} has {len} images"
            ));
        }
        let ex = load(i)?;
        let (w, h) = (ex.image.width, ex.image.height);
        let rgba = ex.image.to_rgba();
        let image = Image::new(w, h, &rgba).map_err(|e| e.to_string())?;
        let truth = truth_map(&ex, &lut)?;
        let seg = loaded.segmenter.segment_blocking(image, &opts).map_err(|e| format!("{}: {e}", ex.name))?;
        let truth = loaded.segmenter.overlay_map_rgba(image, &truth, STYLE).map_err(|e| e.to_string())?;
        let prediction = loaded.segmenter.overlay_rgba(image, &seg, STYLE).map_err(|e| e.to_string())?;
        rows.push(Row::new(&ex, rgba, truth, prediction)?);
        names.push(ex.name);
    }
    write_grid(&rows, panel_width, out)?;
    report(out, &loaded.path, &format!("{label}/{split}"), &names, &opts, &FIGURE_COLUMNS, json);
    Ok(())
}

/// The figure of frames of one DAVIS sequence: the model segments every frame from the first to
/// the last one shown, so a video model streams (each frame conditioned on its own previous
/// masks) and the rows show what it carries along; an image model segments frame by frame.
pub fn davis_figure(
    m: &ModelArgs,
    sequence: Option<&str>,
    frames: &[usize],
    panel_width: u32,
    out: &Path,
    json: bool,
) -> Result<(), String> {
    let data = Davis::open(&pix2seqd::data::data_root().join("davis2016")).map_err(|e| e.to_string())?;
    let seq = match sequence {
        Some(s) => s.to_string(),
        None => data
            .split("val")
            .map_err(|e| e.to_string())?
            .first()
            .cloned()
            .ok_or("davis2016 has no val sequence")?,
    };
    let count = data.frames(&seq);
    if count == 0 {
        return Err(format!(
            "davis2016 has no sequence {seq:?} (or it has no frames): its sequences are {}",
            data.sequences().join(", ")
        ));
    }
    let last = *frames.iter().max().ok_or("figure needs at least one frame")?;
    if last >= count {
        return Err(format!("--frames: frame {last} is out of range: {seq} has {count} frames"));
    }
    let (mut loaded, opts) = open_one(m, DEFAULT_MODEL)?;
    let truth_palette: Vec<[u8; 3]> =
        std::iter::once([0, 0, 0]).chain(davis::CLASSES.iter().map(|c| c.color)).collect();
    let truth_isthing: Vec<bool> =
        std::iter::once(false).chain(davis::CLASSES.iter().map(|c| c.isthing)).collect();
    loaded.segmenter.reset();
    let (mut rows, mut names) = (Vec::new(), Vec::new());
    for t in 0..=last {
        let ex = data.load(&seq, t).map_err(|e| e.to_string())?;
        let (w, h) = (ex.image.width, ex.image.height);
        let rgba = ex.image.to_rgba();
        let image = Image::new(w, h, &rgba).map_err(|e| e.to_string())?;
        let seg =
            loaded.segmenter.segment_frame_blocking(image, &opts).map_err(|e| format!("{}: {e}", ex.name))?;
        if !frames.contains(&t) {
            continue;
        }
        let truth =
            PanopticMap::new(h, w, ex.class.clone(), ex.instance.clone()).map_err(|e| e.to_string())?;
        let truth = overlay_rgba_with(image, &truth, &truth_palette, &truth_isthing, STYLE)
            .map_err(|e| e.to_string())?;
        let prediction = loaded.segmenter.overlay_rgba(image, &seg, STYLE).map_err(|e| e.to_string())?;
        rows.push(Row::new(&ex, rgba, truth, prediction)?);
        names.push(ex.name);
    }
    write_grid(&rows, panel_width, out)?;
    report(out, &loaded.path, &format!("davis2016/{seq}"), &names, &opts, &FIGURE_COLUMNS, json);
    Ok(())
}

/// The readout figure: per photo, the input, the previous readout (the final x̂0 thresholded at
/// mask resolution, resized by nearest neighbour) and the bilinear readout, both post-processed
/// from the same sample.
pub fn readout_figure(
    m: &ModelArgs,
    images: &[std::path::PathBuf],
    panel_width: u32,
    out: &Path,
    json: bool,
) -> Result<(), String> {
    let (mut loaded, opts) = open_one(m, DEFAULT_MODEL)?;
    let isthing = loaded.segmenter.config().isthing();
    let (mut rows, mut names) = (Vec::new(), Vec::new());
    for path in images {
        let decoded = read_image(path)?;
        let image = Image::new(decoded.width, decoded.height, &decoded.rgba)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let seg = loaded
            .segmenter
            .segment_blocking(image, &opts)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let nearest = panoptic::postprocess(
            &seg.threshold_mask,
            &seg.letterbox,
            &isthing,
            opts.min_area,
            opts.postprocess,
        );
        let nearest = loaded.segmenter.overlay_map_rgba(image, &nearest, STYLE).map_err(|e| e.to_string())?;
        let bilinear = loaded.segmenter.overlay_rgba(image, &seg, STYLE).map_err(|e| e.to_string())?;
        let (w, h) = (decoded.width as u32, decoded.height as u32);
        let panel = |bytes: Vec<u8>| {
            RgbaImage::from_raw(w, h, bytes).ok_or_else(|| format!("{}: bad panel size", path.display()))
        };
        rows.push(Row {
            input: panel(decoded.rgba.clone())?,
            truth: panel(nearest)?,
            prediction: panel(bilinear)?,
        });
        names.push(path.display().to_string());
    }
    write_grid(&rows, panel_width, out)?;
    let columns = ["input", "nearest readout (before)", "bilinear readout"];
    report(out, &loaded.path, "photos", &names, &opts, &columns, json);
    Ok(())
}

/// What a figure command printed: the file, the model, the rows and the sampler.
fn report(
    out: &Path,
    model: &Path,
    dataset: &str,
    names: &[String],
    opts: &SegmentOptions,
    columns: &[&str; 3],
    json: bool,
) {
    let report = serde_json::json!({
        "figure": out.display().to_string(),
        "model": model.display().to_string(),
        "dataset": dataset,
        "images": names,
        "columns": columns,
        "sampler": {"steps": opts.steps, "td": opts.td, "seed": opts.seed},
    });
    if json {
        println!("{report:#}");
    } else {
        println!("wrote {} (columns: {}; rows: {})", out.display(), columns.join(", "), names.join(", "));
    }
}

/// Scales every panel to `panel_width` (each row keeps its image's aspect ratio) and writes the
/// rows as one JPEG or PNG (by extension).
fn write_grid(rows: &[Row], panel_width: u32, out: &Path) -> Result<(), String> {
    if rows.is_empty() {
        return Err("figure needs at least one image".into());
    }
    if panel_width == 0 {
        return Err("--panel-width must be positive".into());
    }
    let heights: Vec<u64> = rows
        .iter()
        .map(|r| (r.input.height() as u64 * panel_width as u64 / r.input.width().max(1) as u64).max(1))
        .collect();
    let width = 3 * panel_width as u64 + 2 * GAP as u64;
    let height = heights.iter().sum::<u64>() + (rows.len() as u64 - 1) * GAP as u64;
    // u64 products of u32 sides cannot wrap; the grid must stay within the documented bound.
    let max = pix2seqd::limits::MAX_FIGURE_PIXELS;
    if width * height > max {
        return Err(format!(
            "a {width}x{height} figure exceeds the {max}-pixel limit: lower --panel-width or show fewer images"
        ));
    }
    let (width, height) = (width as u32, height as u32);
    let mut grid = RgbaImage::from_pixel(width, height, image::Rgba([255, 255, 255, 255]));
    let mut y = 0;
    for (row, &panel_height) in rows.iter().zip(&heights) {
        let panel_height = panel_height as u32;
        for (c, panel) in [&row.input, &row.truth, &row.prediction].into_iter().enumerate() {
            let scaled = imageops::resize(panel, panel_width, panel_height, imageops::FilterType::Triangle);
            imageops::replace(&mut grid, &scaled, (c as u32 * (panel_width + GAP)) as i64, y as i64);
        }
        y += panel_height + GAP;
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create the folder ({e})", dir.display()))?;
    }
    let is_jpeg = out
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
    let result = if is_jpeg {
        let rgb = image::DynamicImage::ImageRgba8(grid).to_rgb8();
        std::fs::File::create(out).map_err(|e| e.to_string()).and_then(|file| {
            image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 88)
                .encode_image(&rgb)
                .map_err(|e| e.to_string())
        })
    } else {
        grid.save(out).map_err(|e| e.to_string())
    };
    result.map_err(|e| format!("{}: cannot write the figure ({e})", out.display()))
}
