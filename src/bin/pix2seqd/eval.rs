//! `pix2seqd eval pq | camvid | davis`: metrics with the reference tools' semantics.

use std::path::Path;

use pix2seqd::data::coco128::{coco_group, Coco128, COCO80};
use pix2seqd::data::{camvid::CamVid, davis::Davis, Example};
use pix2seqd::panoptic::{self, ConfusionMatrix, DavisEvaluator, Mask, PanopticMap, PqStat};
use pix2seqd::{Image, Postprocess, SegmentOptions};

use crate::common::{load_model, progress, LoadedModel, DEFAULT_MODEL, STREET_MODEL};

/// panopticapi's `pq_compute` on COCO panoptic files.
pub fn pq(
    gt_json: &Path,
    gt_dir: &Path,
    pred_json: &Path,
    pred_dir: &Path,
    json: bool,
) -> Result<(), String> {
    let r = panoptic::pq_compute_coco(gt_json, gt_dir, pred_json, pred_dir).map_err(|e| e.to_string())?;
    if json {
        println!("{:#}", serde_json::to_value(&r).map_err(|e| e.to_string())?);
    } else {
        println!("{:<8} {:>7} {:>7} {:>7} {:>5}", "", "PQ", "SQ", "RQ", "N");
        for (name, s) in [("All", &r.all), ("Things", &r.things), ("Stuff", &r.stuff)] {
            println!(
                "{name:<8} {:>7.3} {:>7.3} {:>7.3} {:>5}",
                100.0 * s.pq,
                100.0 * s.sq,
                100.0 * s.rq,
                s.n
            );
        }
        println!("({} images)", r.images);
    }
    Ok(())
}

pub struct ModelArgs<'a> {
    pub model: Option<&'a Path>,
    /// Step counts to evaluate, each reported (empty: the model's default).
    pub steps: Vec<usize>,
    pub td: Option<f64>,
    pub seed: u32,
    pub min_area: u64,
    /// None: the model card's.
    pub postprocess: Option<Postprocess>,
    pub cpu: bool,
}

/// The model and one set of sampler options per requested step count.
pub fn open(m: &ModelArgs, default_model: &str) -> Result<(LoadedModel, Vec<SegmentOptions>), String> {
    let loaded = load_model(m.model, default_model, m.cpu)?;
    if let Some(note) = &loaded.note {
        eprintln!("note: {note}");
    }
    let opts = open_options(&loaded, m);
    Ok((loaded, opts))
}

/// One set of sampler options per requested step count (the model's default when none).
pub fn open_options(loaded: &LoadedModel, m: &ModelArgs) -> Vec<SegmentOptions> {
    let d = loaded.segmenter.default_options();
    let steps = if m.steps.is_empty() { vec![d.steps] } else { m.steps.clone() };
    let postprocess = m.postprocess.unwrap_or(d.postprocess);
    steps
        .iter()
        // Metrics are computed at the ground truth's resolution: the readout's output is the
        // image's own size, whatever its size.
        .map(|&steps| SegmentOptions {
            steps,
            td: m.td.unwrap_or(d.td),
            seed: m.seed,
            min_area: m.min_area,
            postprocess,
            max_output_side: usize::MAX,
            ..d
        })
        .collect()
}

fn header(loaded: &LoadedModel, opts: &[SegmentOptions]) -> serde_json::Value {
    let first = opts.first().copied().unwrap_or_else(|| loaded.segmenter.default_options());
    serde_json::json!({
        "model": loaded.path.display().to_string(),
        "note": loaded.note,
        "backend": loaded.segmenter.backend().name(),
        "sampler": {"td": first.td, "seed": first.seed, "min_area": first.min_area, "postprocess": first.postprocess.name()},
    })
}

/// The post-processing reported beside the chosen one.
fn other_postprocess(chosen: Postprocess) -> Postprocess {
    match chosen {
        Postprocess::MajorityVote => Postprocess::ThingVote,
        Postprocess::ThingVote => Postprocess::MajorityVote,
    }
}

/// The metrics of one step count on a set of images.
struct ImageScore {
    confusion: ConfusionMatrix,
    /// The class output before the panoptic post-processing (majority vote per instance id).
    raw: ConfusionMatrix,
    pq: PqStat,
    /// The same samples under the other post-processing (cheap next to sampling).
    other: (Postprocess, ConfusionMatrix, PqStat),
    /// The same samples read out as before the bilinear readout (x̂0 thresholded at mask
    /// resolution, nearest neighbour to the image), with the chosen post-processing; and its
    /// class bits before post-processing.
    nearest: (ConfusionMatrix, PqStat, ConfusionMatrix),
    ms: f64,
}

/// mIoU and PQ on a CamVid split at the original resolution (post-processed predictions), for
/// every requested step count (each image is read once and sampled once per step count).
pub fn camvid(m: &ModelArgs, split: &str, limit: Option<usize>, json: bool) -> Result<(), String> {
    let data = CamVid::open(&pix2seqd::data::data_root().join("camvid"), split).map_err(|e| e.to_string())?;
    let (loaded, opts) = open(m, STREET_MODEL)?;
    let cfg = loaded.segmenter.config();
    let needed = pix2seqd::data::camvid::CLASSES.len() + 1;
    if cfg.num_classes != needed {
        return Err(format!(
            "model {} has {} classes; CamVid needs {needed} (void + 11): use the `street` model or train one with train/configs/experiments/camvid_web.json",
            loaded.path.display(),
            cfg.num_classes
        ));
    }
    let count = limit.unwrap_or(data.len()).min(data.len());
    let identity: Vec<u32> = (0..needed as u32).collect();
    let load = |i: usize| data.load(i).map_err(|e| e.to_string());
    evaluate_images(loaded, &opts, &format!("camvid/{split}"), count, &identity, load, json)
}

/// PQ (things; coco128-seg has no stuff) and mIoU on a coco128-seg split (`val`: the 16 held-out
/// images). Ground-truth COCO classes map to the model's classes by name, or to their group for
/// the `objects` model (person, vehicle, animal, furniture, food, other).
pub fn coco128(m: &ModelArgs, split: &str, limit: Option<usize>, json: bool) -> Result<(), String> {
    let data =
        Coco128::open(&pix2seqd::data::data_root().join("coco128-seg"), split).map_err(|e| e.to_string())?;
    let (loaded, opts) = open(m, DEFAULT_MODEL)?;
    let lut = coco_lut(&loaded)?;
    let count = limit.unwrap_or(data.len()).min(data.len());
    let load = |i: usize| data.load(i).map_err(|e| e.to_string());
    evaluate_images(loaded, &opts, &format!("coco128-seg/{split}"), count, &lut, load, json)
}

/// lut[COCO class id] = the model's class id: the class of the same name, else the class of the
/// COCO class's group (the `objects` model), else void.
pub fn coco_lut(loaded: &LoadedModel) -> Result<Vec<u32>, String> {
    let cfg = loaded.segmenter.config();
    let names: Vec<String> = (0..cfg.num_classes).map(|c| cfg.class_name(c)).collect();
    let model_id = |name: &str| names.iter().position(|n| n == name).map(|c| c as u32);
    let mut lut = vec![0u32];
    for name in COCO80 {
        lut.push(model_id(name).or_else(|| model_id(coco_group(name))).unwrap_or(0));
    }
    if lut.iter().all(|&c| c == 0) {
        return Err(format!(
            "model {} knows none of the COCO classes or object groups (its classes: {})",
            loaded.path.display(),
            names[1..].join(", ")
        ));
    }
    Ok(lut)
}

/// The ground truth of `ex` in the model's classes (`lut[dataset class id]`); segments of classes
/// the model does not know become void.
pub fn truth_map(ex: &Example, lut: &[u32]) -> Result<PanopticMap, String> {
    let class = ex
        .class
        .iter()
        .map(|&c| {
            lut.get(c as usize)
                .copied()
                .ok_or_else(|| format!("{}: class id {c} beyond the dataset's classes", ex.name))
        })
        .collect::<Result<Vec<u32>, String>>()?;
    let instance = ex.instance.iter().zip(&class).map(|(&id, &c)| if c == 0 { 0 } else { id }).collect();
    PanopticMap::new(ex.image.height, ex.image.width, class, instance).map_err(|e| e.to_string())
}

/// Segments `count` examples with every sampler setting in `opts`, scores them against the ground
/// truth (its class ids mapped through `lut` into the model's), prints the table or the JSON.
fn evaluate_images(
    mut loaded: LoadedModel,
    opts: &[SegmentOptions],
    dataset: &str,
    count: usize,
    lut: &[u32],
    load: impl Fn(usize) -> Result<Example, String>,
    json: bool,
) -> Result<(), String> {
    let cfg = loaded.segmenter.config().clone();
    let isthing = cfg.isthing();
    let mut scores: Vec<ImageScore> = opts
        .iter()
        .map(|o| ImageScore {
            confusion: ConfusionMatrix::new(cfg.num_classes, Some(0)),
            raw: ConfusionMatrix::new(cfg.num_classes, Some(0)),
            pq: PqStat::for_classes(&cfg.isthing()),
            other: (
                other_postprocess(o.postprocess),
                ConfusionMatrix::new(cfg.num_classes, Some(0)),
                PqStat::for_classes(&cfg.isthing()),
            ),
            nearest: (
                ConfusionMatrix::new(cfg.num_classes, Some(0)),
                PqStat::for_classes(&cfg.isthing()),
                ConfusionMatrix::new(cfg.num_classes, Some(0)),
            ),
            ms: 0.0,
        })
        .collect();
    let bar = progress((count * opts.len()) as u64, json, dataset.split('/').next().unwrap_or(dataset));
    for i in 0..count {
        let ex = load(i)?;
        let rgba = ex.image.to_rgba();
        let image = Image::new(ex.image.width, ex.image.height, &rgba).map_err(|e| e.to_string())?;
        let gt = truth_map(&ex, lut)?;
        for (o, score) in opts.iter().zip(&mut scores) {
            let seg = loaded.segmenter.segment_blocking(image, o).map_err(|e| format!("{}: {e}", ex.name))?;
            score.ms += seg.timings.total;
            score.confusion.update_maps(&gt, &seg.panoptic).map_err(|e| e.to_string())?;
            score.raw.update_maps(&gt, &seg.raw).map_err(|e| e.to_string())?;
            score.pq.add_maps(&gt, &seg.panoptic).map_err(|e| e.to_string())?;
            let (mode, confusion, pq) = &mut score.other;
            let other = panoptic::postprocess_ids(&seg.raw, &isthing, o.min_area, *mode);
            confusion.update_maps(&gt, &other).map_err(|e| e.to_string())?;
            pq.add_maps(&gt, &other).map_err(|e| e.to_string())?;
            let (confusion, pq, raw) = &mut score.nearest;
            let nearest = panoptic::postprocess(
                &seg.threshold_mask,
                &seg.letterbox,
                &isthing,
                o.min_area,
                o.postprocess,
            );
            confusion.update_maps(&gt, &nearest).map_err(|e| e.to_string())?;
            pq.add_maps(&gt, &nearest).map_err(|e| e.to_string())?;
            raw.update_maps(&gt, &panoptic::unletterbox(&seg.threshold_mask, &seg.letterbox))
                .map_err(|e| e.to_string())?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let results: Vec<serde_json::Value> = opts
        .iter()
        .zip(&scores)
        .map(|(o, s)| {
            let r = s.pq.result();
            let (mode, confusion, pq) = &s.other;
            let other = pq.result();
            let (nearest_confusion, nearest_pq, nearest_raw) = &s.nearest;
            let nearest = nearest_pq.result();
            let per_class: serde_json::Map<String, serde_json::Value> = s
                .confusion
                .iou()
                .iter()
                .enumerate()
                .skip(1)
                .map(|(c, v)| {
                    (
                        cfg.class_name(c),
                        if v.is_finite() { serde_json::json!(v) } else { serde_json::Value::Null },
                    )
                })
                .collect();
            serde_json::json!({
                "steps": o.steps,
                "postprocess": o.postprocess.name(),
                "readout": "bilinear",
                "miou": s.confusion.miou(),
                "pixel_accuracy": s.confusion.pixel_accuracy(),
                "iou": per_class,
                // Semantic scores of the class bits alone, before the majority vote per instance id.
                "miou_before_postprocess": s.raw.miou(),
                "pixel_accuracy_before_postprocess": s.raw.pixel_accuracy(),
                "pq": {"all": r.all, "things": r.things, "stuff": r.stuff},
                "other_postprocess": {
                    "postprocess": mode.name(),
                    "miou": confusion.miou(),
                    "pixel_accuracy": confusion.pixel_accuracy(),
                    "pq": {"all": other.all, "things": other.things, "stuff": other.stuff},
                },
                // The previous readout on the same samples, reported for one release.
                "nearest_readout": {
                    "postprocess": o.postprocess.name(),
                    "miou": nearest_confusion.miou(),
                    "pixel_accuracy": nearest_confusion.pixel_accuracy(),
                    "miou_before_postprocess": nearest_raw.miou(),
                    "pq": {"all": nearest.all, "things": nearest.things, "stuff": nearest.stuff},
                },
                "ms_per_image": if count > 0 { s.ms / count as f64 } else { 0.0 },
            })
        })
        .collect();
    let mut out = header(&loaded, opts);
    out["dataset"] = serde_json::json!(dataset);
    out["images"] = serde_json::json!(count);
    out["results"] = serde_json::json!(results);
    if json {
        println!("{out:#}");
    } else {
        print_header(&out);
        println!(
            "{:>5} {:<22} {:>7} {:>9} {:>7} {:>9} {:>8} {:>10} {:>11}",
            "steps",
            "postprocess",
            "mIoU",
            "pixel acc",
            "PQ",
            "PQ thing",
            "PQ stuff",
            "ms/image",
            "mIoU (raw)"
        );
        let pct = |v: &serde_json::Value| 100.0 * v.as_f64().unwrap_or(0.0);
        for r in &results {
            for (k, m) in [r, &r["other_postprocess"], &r["nearest_readout"]].into_iter().enumerate() {
                let (ms, raw) = match k {
                    0 => (
                        format!("{:.0}", r["ms_per_image"].as_f64().unwrap_or(0.0)),
                        format!("{:.1}", pct(&r["miou_before_postprocess"])),
                    ),
                    2 => (String::new(), format!("{:.1}", pct(&m["miou_before_postprocess"]))),
                    _ => (String::new(), String::new()),
                };
                let name = m["postprocess"].as_str().unwrap_or("");
                println!(
                    "{:>5} {:<22} {:>7.1} {:>9.1} {:>7.1} {:>9.1} {:>8.1} {:>10} {:>11}",
                    r["steps"].as_u64().unwrap_or(0),
                    if k == 2 { format!("{name} (nearest)") } else { name.to_string() },
                    pct(&m["miou"]),
                    pct(&m["pixel_accuracy"]),
                    pct(&m["pq"]["all"]["pq"]),
                    pct(&m["pq"]["things"]["pq"]),
                    pct(&m["pq"]["stuff"]["pq"]),
                    ms,
                    raw,
                );
            }
        }
        println!("first row per step count: the model's post-processing; mIoU (raw): the class bits alone, before any post-processing");
        println!("(nearest): the same samples read out as before the bilinear readout (x̂0 thresholded, nearest neighbour)");
    }
    Ok(())
}

/// DAVIS 2016 sequences: every frame conditioned on the model's own previous masks (a video
/// model streams; an image model segments frame by frame); J&F of the foreground (class ≠ void)
/// as the DAVIS toolkit computes them, for every requested step count.
pub fn davis(
    m: &ModelArgs,
    dir: Option<&Path>,
    split: &str,
    max_frames: Option<usize>,
    json: bool,
) -> Result<(), String> {
    let default_dir = pix2seqd::data::data_root().join("davis2016");
    let data = Davis::open(dir.unwrap_or(&default_dir)).map_err(|e| e.to_string())?;
    let sequences = data.split(split).map_err(|e| e.to_string())?.to_vec();
    let (mut loaded, opts) = open(m, DEFAULT_MODEL)?;
    let mode = if loaded.segmenter.config().video_prev_masks > 0 { "streaming" } else { "frame by frame" };
    let total: usize = sequences.iter().map(|s| max_frames.unwrap_or(usize::MAX).min(data.frames(s))).sum();
    let bar = progress((total * opts.len()) as u64, json, "davis");
    let mut results = Vec::new();
    for o in &opts {
        // [bilinear readout, the previous nearest readout of the same frames]
        let mut scores = [DavisScore::default(), DavisScore::default()];
        let mut ms = 0.0;
        for seq in &sequences {
            loaded.segmenter.reset();
            let frames = max_frames.unwrap_or(usize::MAX).min(data.frames(seq));
            let mut gts = Vec::new();
            for t in 0..frames {
                let ex = data.load(seq, t).map_err(|e| e.to_string())?;
                let (h, w) = (ex.image.height, ex.image.width);
                let rgba = ex.image.to_rgba();
                let image = Image::new(w, h, &rgba).map_err(|e| e.to_string())?;
                let seg = loaded
                    .segmenter
                    .segment_frame_blocking(image, o)
                    .map_err(|e| format!("{seq} frame {t}: {e}"))?;
                ms += seg.timings.total;
                let gt = data.load_mask(seq, t).map_err(|e| e.to_string())?;
                let nearest = panoptic::unletterbox(&seg.threshold_mask, &seg.letterbox);
                for (score, pred) in scores.iter_mut().zip([&seg.raw, &nearest]) {
                    score.add_frame(pred, &gt)?;
                }
                gts.push(Mask::new(h, w, gt).map_err(|e| e.to_string())?);
                bar.inc(1);
            }
            for score in &mut scores {
                score.end_sequence(seq, &gts)?;
            }
        }
        let [bilinear, nearest] = scores;
        let cfg = loaded.segmenter.config();
        let class_name = |c: u32| cfg.class_name(c as usize);
        let mut result = bilinear.json(&class_name);
        result["steps"] = serde_json::json!(o.steps);
        result["readout"] = serde_json::json!("bilinear");
        result["ms_per_frame"] = serde_json::json!(if total > 0 { ms / total as f64 } else { 0.0 });
        result["nearest_readout"] = nearest.json(&class_name);
        results.push(result);
    }
    bar.finish_and_clear();
    let mut out = header(&loaded, &opts);
    out["dataset"] = serde_json::json!(format!("davis2016/{split}"));
    out["mode"] = serde_json::json!(mode);
    out["sequences"] = serde_json::json!(sequences);
    out["frames"] = serde_json::json!(total);
    out["results"] = serde_json::json!(results);
    if json {
        println!("{out:#}");
    } else {
        print_header(&out);
        println!(
            "{:>5} {:<9} {:>7} {:>7} {:>7} {:>10} {:>9} {:>10}",
            "steps", "readout", "J&F", "J", "F", "ms/frame", "ids kept", "class kept"
        );
        for r in &results {
            for (name, m) in [("bilinear", r), ("nearest", &r["nearest_readout"])] {
                let metric = |k: &str| 100.0 * m["metrics"][k]["mean"].as_f64().unwrap_or(0.0);
                // DavisSummary serialises as the DAVIS toolkit names them: "J&F", "J", "F".
                let pct = |k: &str| m[k].as_f64().map_or("–".to_string(), |v| format!("{:.1}%", 100.0 * v));
                println!(
                    "{:>5} {:<9} {:>7.1} {:>7.1} {:>7.1} {:>10} {:>9} {:>10}",
                    r["steps"].as_u64().unwrap_or(0),
                    name,
                    100.0 * m["metrics"]["J&F"].as_f64().unwrap_or(0.0),
                    metric("J"),
                    metric("F"),
                    m["ms_per_frame"].as_f64().map_or(String::new(), |v| format!("{v:.0}")),
                    pct("ids_kept"),
                    pct("class_kept")
                );
            }
        }
        println!("nearest: the same frames read out as before the bilinear readout (x̂0 thresholded, nearest neighbour)");
    }
    Ok(())
}

/// J&F and ids kept of one readout over the frames of a DAVIS split.
#[derive(Default)]
struct DavisScore {
    evaluator: DavisEvaluator,
    /// The current sequence's predicted foreground per frame.
    preds: Vec<Mask>,
    previous_id: Option<u32>,
    /// Consecutive frames whose object keeps its instance id: streaming should keep it.
    id_pairs: usize,
    id_kept: usize,
    previous_class: Option<u32>,
    /// Consecutive frames whose object keeps its class: a tracked person stays a person.
    class_pairs: usize,
    class_kept: usize,
    /// Per sequence: how many frames the object was read as each class id.
    object_classes: Vec<(String, std::collections::BTreeMap<u32, usize>)>,
    current_classes: std::collections::BTreeMap<u32, usize>,
}

impl DavisScore {
    /// One frame's prediction (the ground truth's size) against the annotated object.
    fn add_frame(&mut self, pred: &PanopticMap, object: &[bool]) -> Result<(), String> {
        self.preds.push(
            Mask::new(pred.height, pred.width, pred.class.iter().map(|&c| c != 0).collect())
                .map_err(|e| e.to_string())?,
        );
        let id = object_id(pred, object);
        if let (Some(before), Some(now)) = (self.previous_id, id) {
            self.id_pairs += 1;
            self.id_kept += usize::from(before == now);
        }
        self.previous_id = id;
        let class = object_class(pred, object);
        if let (Some(before), Some(now)) = (self.previous_class, class) {
            self.class_pairs += 1;
            self.class_kept += usize::from(before == now);
        }
        if let Some(c) = class {
            *self.current_classes.entry(c).or_default() += 1;
        }
        self.previous_class = class;
        Ok(())
    }

    fn end_sequence(&mut self, seq: &str, gts: &[Mask]) -> Result<(), String> {
        self.previous_id = None;
        self.previous_class = None;
        self.object_classes.push((seq.to_string(), std::mem::take(&mut self.current_classes)));
        self.evaluator
            .add_sequence(seq, gts, &std::mem::take(&mut self.preds))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// `class_name` names a class id in the per-sequence histogram.
    fn json(&self, class_name: &dyn Fn(u32) -> String) -> serde_json::Value {
        let share = |kept: usize, pairs: usize| (pairs > 0).then(|| kept as f64 / pairs as f64);
        let object_classes: serde_json::Map<String, serde_json::Value> = self
            .object_classes
            .iter()
            .map(|(seq, counts)| {
                let named: serde_json::Map<String, serde_json::Value> =
                    counts.iter().map(|(&c, &n)| (class_name(c), serde_json::json!(n))).collect();
                (seq.clone(), serde_json::Value::Object(named))
            })
            .collect();
        serde_json::json!({
            "metrics": self.evaluator.summary(),
            "ids_kept": share(self.id_kept, self.id_pairs),
            "id_pairs": self.id_pairs,
            "class_kept": share(self.class_kept, self.class_pairs),
            "class_pairs": self.class_pairs,
            "object_classes": object_classes,
        })
    }
}

/// The instance id that covers most of the annotated object (predicted foreground with an id;
/// ties: the smaller id), or None where the prediction misses the object.
fn object_id(pred: &PanopticMap, object: &[bool]) -> Option<u32> {
    let mut counts: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
    for ((&c, &id), &inside) in pred.class.iter().zip(&pred.instance).zip(object) {
        if inside && c != 0 && id != 0 {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map(|(id, _)| id)
}

/// The class that covers most of the annotated object (ties: the smaller id), or None where the
/// prediction misses the object.
fn object_class(pred: &PanopticMap, object: &[bool]) -> Option<u32> {
    let mut counts: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
    for (&c, &inside) in pred.class.iter().zip(object) {
        if inside && c != 0 {
            *counts.entry(c).or_default() += 1;
        }
    }
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map(|(c, _)| c)
}

/// The human header: what was evaluated, with which model and sampler.
fn print_header(out: &serde_json::Value) {
    if let Some(note) = out["note"].as_str() {
        println!("note: {note}");
    }
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    println!("model    {} ({})", text(&out["model"]), text(&out["backend"]));
    let count = match (out["images"].as_u64(), out["frames"].as_u64()) {
        (Some(n), _) => format!("{n} images"),
        (None, Some(n)) => format!("{n} frames"),
        (None, None) => String::new(),
    };
    let mode = out["mode"].as_str().map(|m| format!(", {m}")).unwrap_or_default();
    println!("data     {} ({count}{mode})", text(&out["dataset"]));
    println!(
        "sampler  td {} seed {} min area {}",
        out["sampler"]["td"], out["sampler"]["seed"], out["sampler"]["min_area"]
    );
}
