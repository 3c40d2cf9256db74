//! `pix2seqd eval pq | camvid | davis`: metrics with the reference tools' semantics.

use std::path::Path;

use pix2seqd::data::{camvid::CamVid, davis::Davis};
use pix2seqd::panoptic::{self, ConfusionMatrix, DavisEvaluator, Mask, PanopticMap, PqStat};
use pix2seqd::{Image, SegmentOptions};

use crate::common::{load_model, progress, LoadedModel};

/// panopticapi's `pq_compute` on COCO panoptic files.
pub fn pq(gt_json: &Path, gt_dir: &Path, pred_json: &Path, pred_dir: &Path, json: bool) -> Result<(), String> {
    let r = panoptic::pq_compute_coco(gt_json, gt_dir, pred_json, pred_dir).map_err(|e| e.to_string())?;
    if json {
        println!("{:#}", serde_json::to_value(&r).map_err(|e| e.to_string())?);
    } else {
        println!("{:<8} {:>7} {:>7} {:>7} {:>5}", "", "PQ", "SQ", "RQ", "N");
        for (name, s) in [("All", &r.all), ("Things", &r.things), ("Stuff", &r.stuff)] {
            println!("{name:<8} {:>7.3} {:>7.3} {:>7.3} {:>5}", 100.0 * s.pq, 100.0 * s.sq, 100.0 * s.rq, s.n);
        }
        println!("({} images)", r.images);
    }
    Ok(())
}

pub struct ModelArgs<'a> {
    pub model: Option<&'a Path>,
    pub steps: Option<usize>,
    pub td: Option<f64>,
    pub seed: u32,
    pub min_area: u64,
    pub cpu: bool,
}

fn open(m: &ModelArgs) -> Result<(LoadedModel, SegmentOptions), String> {
    let loaded = load_model(m.model, m.cpu)?;
    if let Some(note) = &loaded.note {
        eprintln!("note: {note}");
    }
    let d = loaded.segmenter.default_options();
    let opts = SegmentOptions { steps: m.steps.unwrap_or(d.steps), td: m.td.unwrap_or(d.td), seed: m.seed, min_area: m.min_area, ..d };
    Ok((loaded, opts))
}

fn header(loaded: &LoadedModel, opts: &SegmentOptions) -> serde_json::Value {
    serde_json::json!({
        "model": loaded.path.display().to_string(),
        "note": loaded.note,
        "backend": loaded.segmenter.backend().name(),
        "sampler": {"steps": opts.steps, "td": opts.td, "seed": opts.seed},
    })
}

/// mIoU and PQ on a CamVid split at the original resolution (post-processed predictions).
pub fn camvid(m: &ModelArgs, split: &str, limit: Option<usize>, json: bool) -> Result<(), String> {
    let data = CamVid::open(&pix2seqd::data::data_root().join("camvid"), split).map_err(|e| e.to_string())?;
    let (mut loaded, opts) = open(m)?;
    let cfg = loaded.segmenter.config().clone();
    let needed = pix2seqd::data::camvid::CLASSES.len() + 1;
    if cfg.num_classes != needed {
        return Err(format!(
            "model {} has {} classes; CamVid needs {needed} (void + 11): train one with train/configs/experiments/camvid_web.json",
            loaded.path.display(),
            cfg.num_classes
        ));
    }
    let count = limit.unwrap_or(data.len()).min(data.len());
    let mut confusion = ConfusionMatrix::new(cfg.num_classes, Some(0));
    let mut pq = PqStat::for_classes(&cfg.isthing());
    let bar = progress(count as u64, json, "camvid");
    let mut ms = 0.0;
    for i in 0..count {
        let ex = data.load(i).map_err(|e| e.to_string())?;
        let rgba = ex.image.to_rgba();
        let image = Image::new(ex.image.width, ex.image.height, &rgba).map_err(|e| e.to_string())?;
        let seg = loaded.segmenter.segment_blocking(image, &opts).map_err(|e| format!("{}: {e}", ex.name))?;
        ms += seg.timings.total;
        let gt = PanopticMap::new(ex.image.height, ex.image.width, ex.class, ex.instance).map_err(|e| e.to_string())?;
        confusion.update_maps(&gt, &seg.panoptic).map_err(|e| e.to_string())?;
        pq.add_maps(&gt, &seg.panoptic).map_err(|e| e.to_string())?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let r = pq.result();
    let mut out = header(&loaded, &opts);
    out["dataset"] = serde_json::json!(format!("camvid/{split}"));
    out["images"] = serde_json::json!(count);
    out["miou"] = serde_json::json!(confusion.miou());
    out["pixel_accuracy"] = serde_json::json!(confusion.pixel_accuracy());
    out["pq"] = serde_json::json!({"all": r.all, "things": r.things, "stuff": r.stuff});
    out["ms_per_image"] = serde_json::json!(if count > 0 { ms / count as f64 } else { 0.0 });
    print_metrics(&out, json);
    Ok(())
}

/// Streaming video segmentation of DAVIS 2016 sequences: every frame conditioned on the model's
/// own previous masks; J&F of the foreground (class ≠ void) as the DAVIS toolkit computes them.
pub fn davis(m: &ModelArgs, dir: &Path, split: &str, max_frames: Option<usize>, json: bool) -> Result<(), String> {
    let data = Davis::open(dir).map_err(|e| e.to_string())?;
    let sequences = data.split(split).map_err(|e| e.to_string())?.to_vec();
    let (mut loaded, opts) = open(m)?;
    let total: usize = sequences.iter().map(|s| max_frames.unwrap_or(usize::MAX).min(data.frames(s))).sum();
    let bar = progress(total as u64, json, "davis");
    let mut evaluator = DavisEvaluator::new();
    let mut ms = 0.0;
    for seq in &sequences {
        loaded.segmenter.reset();
        let frames = max_frames.unwrap_or(usize::MAX).min(data.frames(seq));
        let (mut gts, mut preds) = (Vec::new(), Vec::new());
        for t in 0..frames {
            let ex = data.load(seq, t).map_err(|e| e.to_string())?;
            let (h, w) = (ex.image.height, ex.image.width);
            let rgba = ex.image.to_rgba();
            let image = Image::new(w, h, &rgba).map_err(|e| e.to_string())?;
            let seg = loaded.segmenter.segment_frame_blocking(image, &opts).map_err(|e| format!("{seq} frame {t}: {e}"))?;
            ms += seg.timings.total;
            let pred = panoptic::unletterbox(&seg.mask, &seg.letterbox);
            preds.push(Mask::new(h, w, pred.class.iter().map(|&c| c != 0).collect()).map_err(|e| e.to_string())?);
            gts.push(Mask::new(h, w, data.load_mask(seq, t).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?);
            bar.inc(1);
        }
        evaluator.add_sequence(seq, &gts, &preds).map_err(|e| e.to_string())?;
    }
    bar.finish_and_clear();
    let mut out = header(&loaded, &opts);
    out["dataset"] = serde_json::json!(format!("davis2016/{split}"));
    out["frames"] = serde_json::json!(total);
    out["metrics"] = serde_json::to_value(evaluator.summary()).map_err(|e| e.to_string())?;
    out["ms_per_frame"] = serde_json::json!(if total > 0 { ms / total as f64 } else { 0.0 });
    print_metrics(&out, json);
    Ok(())
}

fn print_metrics(out: &serde_json::Value, json: bool) {
    if json {
        println!("{out:#}");
        return;
    }
    if let Some(note) = out["note"].as_str() {
        println!("note: {note}");
    }
    // Human output: the same JSON, indented (it is short and self-describing).
    println!("{out:#}");
}
