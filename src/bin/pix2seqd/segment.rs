//! `pix2seqd segment IMAGE... --out DIR`: for each image NAME.png (colour overlay with outlines),
//! NAME_panoptic.png and one panoptic.json (COCO panoptic format) for them all.

use std::path::{Path, PathBuf};

use pix2seqd::panoptic::PanopticJsonWriter;
use pix2seqd::{DrawStyle, Image, Postprocess, SegmentOptions};

use crate::common::{load_model, progress, read_image, DEFAULT_MODEL};

pub struct Args<'a> {
    pub images: &'a [PathBuf],
    pub model: Option<&'a Path>,
    pub out: &'a Path,
    pub max_output_side: usize,
    pub steps: Option<usize>,
    pub td: Option<f64>,
    pub seed: u32,
    pub min_area: u64,
    pub postprocess: Option<Postprocess>,
    pub cpu: bool,
    pub json: bool,
}

pub fn run(a: Args) -> Result<(), String> {
    if a.images.is_empty() {
        return Err("segment needs at least one image".into());
    }
    std::fs::create_dir_all(a.out)
        .map_err(|e| format!("{}: cannot create the output folder ({e})", a.out.display()))?;
    let mut loaded = load_model(a.model, DEFAULT_MODEL, a.cpu)?;
    if let Some(note) = &loaded.note {
        eprintln!("note: {note}");
    }
    let cfg = loaded.segmenter.config().clone();
    let mut opts = loaded.segmenter.default_options();
    opts = SegmentOptions {
        steps: a.steps.unwrap_or(opts.steps),
        td: a.td.unwrap_or(opts.td),
        seed: a.seed,
        min_area: a.min_area,
        postprocess: a.postprocess.unwrap_or(opts.postprocess),
        max_output_side: a.max_output_side,
        ..opts
    };
    let categories = cfg.coco_categories();
    let category_ids = cfg.coco_category_ids();
    let mut writer = PanopticJsonWriter::new(a.out, categories);
    let bar = progress(a.images.len() as u64, a.json, "segment");
    let mut results = Vec::new();
    for path in a.images {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: no usable file name", path.display()))?
            .to_string();
        let decoded = read_image(path)?;
        let image = Image::new(decoded.width, decoded.height, &decoded.rgba)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let seg = loaded
            .segmenter
            .segment_blocking(image, &opts)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let style = DrawStyle { opacity: 0.6, outline: true };
        let bytes = loaded
            .segmenter
            .overlay_rgba(image, &seg, style)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let overlay_path = a.out.join(format!("{name}.png"));
        let (out_w, out_h) = (seg.panoptic.width as u32, seg.panoptic.height as u32);
        image::save_buffer(&overlay_path, &bytes, out_w, out_h, image::ExtendedColorType::Rgba8)
            .map_err(|e| format!("{}: cannot write ({e})", overlay_path.display()))?;
        writer.add(&name, &seg.panoptic, &category_ids).map_err(|e| e.to_string())?;
        results.push(serde_json::json!({
            "image": path.display().to_string(),
            "overlay": overlay_path.display().to_string(),
            "panoptic_png": a.out.join(format!("{name}_panoptic.png")).display().to_string(),
            "width": decoded.width, "height": decoded.height, "output_width": out_w, "output_height": out_h,
            "segments": seg.segments,
            "ms": seg.timings,
        }));
        if !a.json {
            bar.suspend(|| {
                println!(
                    "{}: {} segments in {:.0} ms ({}) -> {}",
                    path.display(),
                    seg.segments.len(),
                    seg.timings.total,
                    seg.backend.name(),
                    overlay_path.display()
                );
                for s in &seg.segments {
                    println!(
                        "  #{:<3} {:<24} {:>8} px{}",
                        s.id,
                        s.label,
                        s.area,
                        if s.is_thing { format!("  instance {}", s.instance) } else { String::new() }
                    );
                }
            });
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let json_path = writer.finish().map_err(|e| e.to_string())?;
    if a.json {
        let out = serde_json::json!({
            "model": loaded.path.display().to_string(),
            "note": loaded.note,
            "backend": loaded.segmenter.backend().name(),
            "sampler": {"steps": opts.steps, "td": opts.td, "seed": opts.seed},
            "panoptic_json": json_path.display().to_string(),
            "images": results,
        });
        println!("{out:#}");
    } else {
        println!("wrote {}", json_path.display());
    }
    Ok(())
}
