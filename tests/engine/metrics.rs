//! PQ (panopticapi semantics), mIoU and DAVIS J&F on hand-computed cases, every PQ case also
//! checked against hotcoco's panoptic evaluation (a pure-Rust panopticapi port), and on the real
//! COCO panoptic sample in ../shared/data.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pix2seqd::panoptic::{
    db_eval_boundary, db_eval_iou, load_categories_json, load_panoptic_json, pq_compute_coco,
    pq_compute_coco_with_categories, read_panoptic_png, save_panoptic_json, seg2bmap, write_panoptic_png,
    Annotation, Category, CocoSegment, ConfusionMatrix, DavisEvaluator, ImageId, Mask, PanopticError,
    PanopticJson, PanopticJsonWriter, PanopticMap, PqResult, PqStat, PqSummary,
};

const TOL: f64 = 1e-6;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOL
}

/// A fresh, empty directory under the system temp dir, unique to this process and call.
fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pix2seqd-test-metrics-{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn coco_sample() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/coco-panoptic-sample");
    if dir.join("panoptic.json").exists() {
        Some(dir)
    } else {
        eprintln!("SKIPPING: shared data {} is missing (see ../shared/data/README.md)", dir.display());
        None
    }
}

// ---- PQ case builder --------------------------------------------------------------------------

const H: usize = 8;
const W: usize = 8;

/// Categories of the 8x8 cases: two things, two stuff.
fn categories() -> Vec<Category> {
    let cat = |id: u32, name: &str, isthing: bool| Category {
        id,
        name: name.into(),
        isthing,
        color: None,
        supercategory: None,
    };
    vec![cat(1, "person", true), cat(2, "car", true), cat(3, "sky", false), cat(4, "grass", false)]
}

/// One side of an image: a segment-id map painted from rectangles, and its segments.
struct Side {
    ids: Vec<u32>,
    segments: Vec<CocoSegment>,
}

/// `(segment id, category, iscrowd, rows, cols)`: one painted rectangle.
type Rect = (u32, u32, bool, Range<usize>, Range<usize>);

/// Paint `(segment id, category, iscrowd, rows, cols)` rectangles in order on a void 8x8 map;
/// areas are counted from the painted map.
fn side(rects: &[Rect]) -> Side {
    let mut ids = vec![0u32; H * W];
    for (id, _, _, rows, cols) in rects {
        for r in rows.clone() {
            for c in cols.clone() {
                ids[r * W + c] = *id;
            }
        }
    }
    let mut segments: Vec<CocoSegment> = Vec::new();
    for &(id, category_id, iscrowd, _, _) in rects {
        if segments.iter().all(|s| s.id != id) {
            let area = ids.iter().filter(|&&x| x == id).count() as u64;
            segments.push(CocoSegment { id, category_id, iscrowd, area: Some(area), bbox: None });
        }
    }
    Side { ids, segments }
}

/// Write ground truth and prediction (several images) as COCO panoptic JSON + PNG folders.
struct CocoCase {
    dir: PathBuf,
}

impl CocoCase {
    fn write(name: &str, images: &[(&Side, &Side)], categories: &[Category]) -> Self {
        let dir = temp_dir(name);
        for (which, pick) in [("gt", 0usize), ("pred", 1)] {
            std::fs::create_dir_all(dir.join(which)).unwrap();
            let mut json = PanopticJson { categories: categories.to_vec(), ..Default::default() };
            for (k, pair) in images.iter().enumerate() {
                let side = if pick == 0 { pair.0 } else { pair.1 };
                let file_name = format!("{k}.png");
                write_panoptic_png(&dir.join(which).join(&file_name), &side.ids, H, W).unwrap();
                json.annotations.push(Annotation {
                    image_id: ImageId::Int(k as u64 + 1),
                    file_name,
                    segments_info: side.segments.clone(),
                });
            }
            save_panoptic_json(&dir.join(format!("{which}.json")), &json).unwrap();
        }
        CocoCase { dir }
    }

    fn paths(&self) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        (self.dir.join("gt.json"), self.dir.join("gt"), self.dir.join("pred.json"), self.dir.join("pred"))
    }

    fn ours(&self) -> PqResult {
        let (gj, gd, pj, pd) = self.paths();
        pq_compute_coco(&gj, &gd, &pj, &pd).unwrap()
    }

    fn check_hotcoco(&self, ours: &PqResult) {
        let (gj, gd, pj, pd) = self.paths();
        check_against_hotcoco(ours, &gj, &gd, &pj, &pd);
    }
}

impl Drop for CocoCase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// hotcoco's PanopticEval on the same files must give the same splits (n, and PQ/SQ/RQ where n > 0;
/// hotcoco reports -1 for an empty split where we report 0) and the same per-category counts.
fn check_against_hotcoco(ours: &PqResult, gt_json: &Path, gt_dir: &Path, pred_json: &Path, pred_dir: &Path) {
    use hotcoco::panoptic::{PanopticDataset, PanopticEval, PqSplit};
    let gt = PanopticDataset::from_file(gt_json).unwrap().with_folder(gt_dir);
    let pred = PanopticDataset::from_file(pred_json).unwrap().with_folder(pred_dir);
    let mut ev = PanopticEval::new(gt, pred);
    ev.run().unwrap();
    let theirs = ev.result().unwrap();
    let same = |name: &str, a: &PqSummary, b: &PqSplit| {
        assert_eq!(a.n, b.n, "{name}: n {} vs hotcoco {}", a.n, b.n);
        if a.n > 0 {
            let (s, t) = (b.scores, (a.pq, a.sq, a.rq));
            assert!(
                close(t.0, s.pq) && close(t.1, s.sq) && close(t.2, s.rq),
                "{name}: ours {a:?} vs hotcoco {b:?}"
            );
        }
    };
    same("all", &ours.all, &theirs.all);
    same("things", &ours.things, &theirs.things);
    same("stuff", &ours.stuff, &theirs.stuff);
    for class in &ours.per_class {
        let c = theirs.per_category.get(&u64::from(class.id)).copied().unwrap_or_default();
        assert_eq!(
            (class.tp, class.fp, class.fn_),
            (c.tp, c.fp, c.fn_),
            "category {} counts vs hotcoco",
            class.id
        );
        let iou = if class.tp > 0 { class.sq * class.tp as f64 } else { 0.0 };
        assert!(close(iou, c.iou), "category {}: summed IoU {iou} vs hotcoco {}", class.id, c.iou);
    }
}

/// Expected (pq, sq, rq, n).
fn expect(name: &str, got: &PqSummary, pq: f64, sq: f64, rq: f64, n: usize) {
    assert!(
        close(got.pq, pq) && close(got.sq, sq) && close(got.rq, rq) && got.n == n,
        "{name}: got {got:?}, expected pq {pq} sq {sq} rq {rq} n {n}"
    );
}

// ---- The 8x8 hand cases -----------------------------------------------------------------------

/// Ground truth: sky rows 0-3 (32 px), grass rows 4-7 cols 0-3 (16), person rows 4-7 cols 4-7 (16).
fn gt_sky_grass_person() -> Side {
    side(&[(10, 3, false, 0..4, 0..8), (20, 4, false, 4..8, 0..4), (30, 1, false, 4..8, 4..8)])
}

/// The sky split in two: rows 0-2 (24 px, id 1) and row 3 (8 px, id 2); grass and person exact.
fn pred_split_stuff() -> Side {
    side(&[
        (1, 3, false, 0..3, 0..8),
        (2, 3, false, 3..4, 0..8),
        (3, 4, false, 4..8, 0..4),
        (4, 1, false, 4..8, 4..8),
    ])
}

/// Ground truth: person rows 0-3 cols 0-3 (16 px), car rows 0-3 cols 4-7 (16 px), rows 4-7 void.
fn gt_person_car_void() -> Side {
    side(&[(1, 1, false, 0..4, 0..4), (2, 2, false, 0..4, 4..8)])
}

/// Predictions partly on void (see `pq_void_overlapping_predictions`).
fn pred_on_void() -> Side {
    side(&[
        (1, 1, false, 0..6, 0..4), // person: the gt person (16 px) + 8 px of void
        (2, 2, false, 0..4, 6..8), // car: 8 of the gt car's 16 px
        (4, 1, false, 2..6, 4..6), // person: 4 px on the gt car, 4 px on void
        (3, 2, false, 6..8, 0..8), // car: 16 px, all on void
    ])
}

/// Ground truth: person rows 0-3 cols 0-3, a person crowd on cols 4-7 (32 px), grass rows 4-7 cols 0-3.
fn gt_crowd() -> Side {
    side(&[(1, 1, false, 0..4, 0..4), (2, 1, true, 0..8, 4..8), (3, 4, false, 4..8, 0..4)])
}

fn pred_crowd() -> Side {
    side(&[
        (1, 1, false, 0..4, 0..4), // person = gt person
        (2, 1, false, 0..4, 4..8), // person on the person crowd: ignored
        (3, 2, false, 4..8, 4..8), // car on the person crowd: not its own category -> FP
        (4, 4, false, 4..8, 0..4), // grass = gt grass
    ])
}

/// Ground truth: sky rows 0-3, car rows 4-7 cols 0-3, person rows 4-7 cols 4-7.
fn gt_wrong_class() -> Side {
    side(&[(1, 3, false, 0..4, 0..8), (2, 2, false, 4..8, 0..4), (3, 1, false, 4..8, 4..8)])
}

fn pred_wrong_class() -> Side {
    side(&[
        (1, 3, false, 0..4, 0..8), // sky exact
        (2, 1, false, 4..8, 0..4), // the car's pixels, called person
        (3, 1, false, 5..8, 4..8), // person rows 5-7 (12 of its 16 px); row 4 cols 4-7 void
    ])
}

#[test]
fn pq_identical_prediction_is_one() {
    let gt = gt_sky_grass_person();
    let case = CocoCase::write("identical", &[(&gt, &gt)], &categories());
    let out = case.ours();
    // person, grass, sky each tp 1 with IoU 1.
    expect("all", &out.all, 1.0, 1.0, 1.0, 3);
    expect("things", &out.things, 1.0, 1.0, 1.0, 1);
    expect("stuff", &out.stuff, 1.0, 1.0, 1.0, 2);
    assert_eq!(out.images, 1);
    case.check_hotcoco(&out);
}

#[test]
fn pq_split_stuff_region() {
    let case = CocoCase::write("split", &[(&gt_sky_grass_person(), &pred_split_stuff())], &categories());
    let out = case.ours();
    // sky: id 1 vs gt: inter 24, union 24 + 32 - 24 = 32 -> IoU 0.75 > 0.5: tp.
    //      id 2 vs gt: inter 8, union 8 + 32 - 8 = 32 -> 0.25: no match, not on void -> fp.
    //      PQ = 0.75 / (1 + 0.5) = 0.5, SQ = 0.75, RQ = 1 / 1.5 = 2/3.
    // grass, person: PQ = SQ = RQ = 1.
    // all (n 3): PQ (0.5 + 1 + 1) / 3 = 5/6, SQ (0.75 + 2) / 3 = 11/12, RQ (2/3 + 2) / 3 = 8/9.
    expect("all", &out.all, 5.0 / 6.0, 11.0 / 12.0, 8.0 / 9.0, 3);
    expect("things", &out.things, 1.0, 1.0, 1.0, 1);
    // stuff (sky, grass): PQ (0.5 + 1) / 2 = 0.75, SQ (0.75 + 1) / 2 = 0.875, RQ (2/3 + 1) / 2 = 5/6.
    expect("stuff", &out.stuff, 0.75, 0.875, 5.0 / 6.0, 2);
    let sky = out.per_class.iter().find(|c| c.name == "sky").unwrap();
    assert_eq!((sky.tp, sky.fp, sky.fn_), (1, 1, 0));
    case.check_hotcoco(&out);
}

#[test]
fn pq_void_overlapping_predictions() {
    let case = CocoCase::write("void", &[(&gt_person_car_void(), &pred_on_void())], &categories());
    let out = case.ours();
    // person id 1: inter 16, union = 24 + 16 - 16 - 8 (its pixels on void) = 16 -> IoU 1: tp.
    // car id 2: inter 8, union 8 + 16 - 8 = 16 -> IoU 0.5, not > 0.5: fp; the gt car: fn.
    // person id 4: 4 of 8 px on void = 0.5, not > 0.5: fp.
    // car id 3: 16 of 16 px on void: ignored.
    // person: tp 1, fp 1 -> PQ = 1 / 1.5 = 2/3, SQ 1, RQ 2/3. car: tp 0, fp 1, fn 1 -> 0, 0, 0.
    // all = things (n 2): PQ 1/3, SQ 1/2, RQ 1/3; no stuff category seen: n 0.
    expect("all", &out.all, 1.0 / 3.0, 0.5, 1.0 / 3.0, 2);
    expect("things", &out.things, 1.0 / 3.0, 0.5, 1.0 / 3.0, 2);
    expect("stuff", &out.stuff, 0.0, 0.0, 0.0, 0);
    let car = out.per_class.iter().find(|c| c.name == "car").unwrap();
    assert_eq!((car.tp, car.fp, car.fn_), (0, 1, 1));
    case.check_hotcoco(&out);
}

#[test]
fn pq_crowd_region() {
    let case = CocoCase::write("crowd", &[(&gt_crowd(), &pred_crowd())], &categories());
    let out = case.ours();
    // person: tp 1 (IoU 1); the crowd is neither matched nor fn; pred id 2 lies wholly on the
    // person crowd: ignored. car: pred id 3 on the person crowd is not its own category: fp.
    // grass: tp 1.
    // all (n 3): PQ = SQ = RQ = (1 + 0 + 1) / 3; things (person, car): 1/2; stuff (grass): 1.
    expect("all", &out.all, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 3);
    expect("things", &out.things, 0.5, 0.5, 0.5, 2);
    expect("stuff", &out.stuff, 1.0, 1.0, 1.0, 1);
    let person = out.per_class.iter().find(|c| c.name == "person").unwrap();
    assert_eq!((person.tp, person.fp, person.fn_), (1, 0, 0));
    case.check_hotcoco(&out);
}

#[test]
fn pq_wrong_class() {
    let case = CocoCase::write("wrong-class", &[(&gt_wrong_class(), &pred_wrong_class())], &categories());
    let out = case.ours();
    // sky: 1. car: the gt car is fn -> 0. person: id 3 inter 12, union 12 + 16 - 12 = 16 -> 0.75: tp;
    // id 2 (on the car, category person) -> fp. PQ = 0.75 / 1.5 = 0.5, SQ 0.75, RQ 2/3.
    // all (n 3): PQ (1 + 0 + 0.5) / 3 = 0.5, SQ (1 + 0 + 0.75) / 3 = 7/12, RQ (1 + 0 + 2/3) / 3 = 5/9.
    expect("all", &out.all, 0.5, 7.0 / 12.0, 5.0 / 9.0, 3);
    // things (person, car): PQ 0.25, SQ 0.375, RQ 1/3. stuff (sky): 1.
    expect("things", &out.things, 0.25, 0.375, 1.0 / 3.0, 2);
    expect("stuff", &out.stuff, 1.0, 1.0, 1.0, 1);
    case.check_hotcoco(&out);
}

#[test]
fn pq_accumulates_over_images() {
    // The four cases as four images of one data set: counts add up per category before averaging.
    let sides = [
        (gt_sky_grass_person(), pred_split_stuff()),
        (gt_person_car_void(), pred_on_void()),
        (gt_crowd(), pred_crowd()),
        (gt_wrong_class(), pred_wrong_class()),
    ];
    let pairs: Vec<(&Side, &Side)> = sides.iter().map(|(g, p)| (g, p)).collect();
    let case = CocoCase::write("four-images", &pairs, &categories());
    let out = case.ours();
    // person: tp 4 (IoU 1 + 1 + 1 + 0.75 = 3.75), fp 2 (void case id 4, wrong-class id 2), fn 0
    //   -> PQ 3.75 / 5 = 0.75, SQ 3.75 / 4 = 0.9375, RQ 4 / 5 = 0.8.
    // car: fp 2 (void case id 2, crowd case id 3), fn 2 (void case, wrong-class case) -> 0.
    // sky: tp 2 (0.75 + 1), fp 1 -> PQ 1.75 / 2.5 = 0.7, SQ 0.875, RQ 0.8.
    // grass: tp 2 (IoU 1 each) -> 1.
    // all: PQ (0.75 + 0 + 0.7 + 1) / 4 = 0.6125, SQ (0.9375 + 0.875 + 1) / 4 = 0.703125, RQ (0.8 + 0.8 + 1) / 4 = 0.65.
    expect("all", &out.all, 0.6125, 0.703125, 0.65, 4);
    expect("things", &out.things, 0.375, 0.46875, 0.4, 2);
    expect("stuff", &out.stuff, 0.85, 0.9375, 0.9, 2);
    assert_eq!(out.images, 4);
    case.check_hotcoco(&out);
}

#[test]
fn pq_iou_of_exactly_half_does_not_match() {
    // metrics.py's case on 8x8: gt person rows 0-3 (32 px), sky rows 4-7; prediction person everywhere (64 px).
    let gt = side(&[(1, 1, false, 0..4, 0..8), (2, 3, false, 4..8, 0..8)]);
    let pred = side(&[(1, 1, false, 0..8, 0..8)]);
    let case = CocoCase::write("half", &[(&gt, &pred)], &categories());
    let out = case.ours();
    // IoU = 32 / (64 + 32 - 32) = 0.5, not > 0.5: person fp 1 + fn 1, sky fn 1 -> all 0 over n 2.
    expect("all", &out.all, 0.0, 0.0, 0.0, 2);
    case.check_hotcoco(&out);
}

// ---- In-memory maps ---------------------------------------------------------------------------

fn map_rows(class: &[&[u32]], instance: &[&[u32]]) -> PanopticMap {
    PanopticMap::new(class.len(), class[0].len(), class.concat(), instance.concat()).unwrap()
}

#[test]
fn pq_from_label_maps_and_category_mismatch() {
    // metrics.py's case: gt classes 1 | 2, prediction 1 | 3 with other id values.
    let row_gt: &[u32] = &[1, 1, 2, 2];
    let gt = map_rows(&[row_gt; 4], &[row_gt; 4]);
    let (row_cls, row_ids): (&[u32], &[u32]) = (&[1, 1, 3, 3], &[5, 5, 7, 7]);
    let pred = map_rows(&[row_cls; 4], &[row_ids; 4]);
    let mut stat = PqStat::for_classes(&[false, true, true, false]); // class 1, 2 things, 3 stuff
    stat.add_maps(&gt, &pred).unwrap();
    let out = stat.result();
    // class 1: PQ 1; class 2: fn -> 0; class 3: fp -> 0 => all 1/3 (n 3), things 1/2, stuff 0 (n 1).
    expect("all", &out.all, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 3);
    expect("things", &out.things, 0.5, 0.5, 0.5, 2);
    expect("stuff", &out.stuff, 0.0, 0.0, 0.0, 1);
    assert_eq!(out.per_class.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["1", "2", "3"]);
}

#[test]
fn pq_from_maps_agrees_with_coco_files_and_hotcoco() {
    // Two images as label maps; the same maps written with the COCO writer and scored from files.
    let gt_a = map_rows(
        &[&[1, 1, 2, 2], &[1, 1, 2, 2], &[3, 3, 3, 3]],
        &[&[1, 1, 2, 2], &[1, 1, 2, 2], &[9, 9, 9, 9]],
    );
    let pred_a = map_rows(
        &[&[1, 1, 1, 2], &[1, 1, 2, 2], &[3, 3, 0, 3]],
        &[&[4, 4, 4, 6], &[4, 4, 6, 6], &[2, 2, 0, 3]],
    );
    let gt_b = map_rows(&[&[2, 2, 2, 2], &[3, 3, 3, 3]], &[&[1, 1, 2, 2], &[5, 5, 5, 5]]);
    let pred_b = map_rows(&[&[2, 2, 2, 2], &[3, 3, 3, 3]], &[&[1, 1, 1, 2], &[5, 5, 5, 5]]);
    let isthing = [false, true, true, false];
    let mut stat = PqStat::for_classes(&isthing);
    stat.add_maps(&gt_a, &pred_a).unwrap();
    stat.add_maps(&gt_b, &pred_b).unwrap();
    let from_maps = stat.result();

    let dir = temp_dir("maps");
    let cats: Vec<Category> = (1..4)
        .map(|c| Category {
            id: c,
            name: c.to_string(),
            isthing: isthing[c as usize],
            color: None,
            supercategory: None,
        })
        .collect();
    for (which, maps) in [("gt", [&gt_a, &gt_b]), ("pred", [&pred_a, &pred_b])] {
        std::fs::create_dir_all(dir.join(which)).unwrap();
        let mut writer = PanopticJsonWriter::new(dir.join(which), cats.clone());
        writer.add("1", maps[0], &[1, 2, 3]).unwrap();
        writer.add("2", maps[1], &[1, 2, 3]).unwrap();
        writer.finish().unwrap();
    }
    let (gj, gd, pj, pd) =
        (dir.join("gt/panoptic.json"), dir.join("gt"), dir.join("pred/panoptic.json"), dir.join("pred"));
    let from_files = pq_compute_coco(&gj, &gd, &pj, &pd).unwrap();
    assert_eq!(from_maps, from_files);
    check_against_hotcoco(&from_files, &gj, &gd, &pj, &pd);
    std::fs::remove_dir_all(&dir).ok();
}

// ---- Errors -----------------------------------------------------------------------------------

#[test]
fn pq_errors_name_the_problem() {
    let gt = gt_sky_grass_person();
    // A prediction with a category the ground truth does not define.
    let mut pred = pred_split_stuff();
    pred.segments[0].category_id = 99;
    let case = CocoCase::write("unknown-category", &[(&gt, &pred)], &categories());
    let (gj, gd, pj, pd) = case.paths();
    let err = pq_compute_coco(&gj, &gd, &pj, &pd).unwrap_err();
    assert!(matches!(err, PanopticError::UnknownCategory { category: 99, .. }), "{err}");
    assert!(err.to_string().contains("0.png") && err.to_string().contains("99"), "{err}");

    // A segment in the PNG that segments_info does not list.
    let mut pred = pred_split_stuff();
    pred.segments.remove(1);
    let case = CocoCase::write("unlisted", &[(&gt, &pred)], &categories());
    let (gj, gd, pj, pd) = case.paths();
    let err = pq_compute_coco(&gj, &gd, &pj, &pd).unwrap_err();
    assert!(
        err.to_string().contains("segment 2 is in the prediction PNG but not in its segments_info"),
        "{err}"
    );

    // A segments_info entry with no pixels.
    let mut pred = pred_split_stuff();
    pred.segments.push(CocoSegment { id: 77, category_id: 1, iscrowd: false, area: None, bbox: None });
    let case = CocoCase::write("no-pixels", &[(&gt, &pred)], &categories());
    let (gj, gd, pj, pd) = case.paths();
    let err = pq_compute_coco(&gj, &gd, &pj, &pd).unwrap_err();
    assert!(
        err.to_string().contains("[77]") && err.to_string().contains("not in the prediction PNG"),
        "{err}"
    );

    // A ground-truth image without a prediction, and a missing PNG.
    let case = CocoCase::write("missing", &[(&gt, &gt)], &categories());
    let (gj, gd, pj, pd) = case.paths();
    let mut json = load_panoptic_json(&pj).unwrap();
    json.annotations[0].image_id = ImageId::Int(5);
    save_panoptic_json(&pj, &json).unwrap();
    let err = pq_compute_coco(&gj, &gd, &pj, &pd).unwrap_err();
    assert!(matches!(err, PanopticError::MissingPrediction { .. }), "{err}");
    assert!(err.to_string().contains("pred.json") && err.to_string().contains("image 1"), "{err}");
    json.annotations[0].image_id = ImageId::Int(1);
    json.annotations[0].file_name = "nowhere.png".into();
    save_panoptic_json(&pj, &json).unwrap();
    let err = pq_compute_coco(&gj, &gd, &pj, &pd).unwrap_err();
    assert!(err.to_string().contains("nowhere.png"), "{err}");

    // Maps of different sizes.
    let mut stat = PqStat::for_classes(&[false, true]);
    let err = stat.add_maps(&PanopticMap::void(2, 2), &PanopticMap::void(2, 3)).unwrap_err();
    assert!(matches!(err, PanopticError::Shape(_)) && err.to_string().contains("2x3"), "{err}");
}

// ---- The real COCO panoptic sample ------------------------------------------------------------

#[test]
fn pq_coco_sample_against_itself() {
    let Some(dir) = coco_sample() else { return };
    let (json, png) = (dir.join("panoptic.json"), dir.join("panoptic"));
    let out = pq_compute_coco(&json, &png, &json, &png).unwrap();
    // Categories present in the 2 images: things person, sports ball, truck, horse; stuff
    // tree-merged, sky-other-merged, grass-merged, gravel. The person and horse crowds are
    // neither matched nor false negatives.
    expect("all", &out.all, 1.0, 1.0, 1.0, 8);
    expect("things", &out.things, 1.0, 1.0, 1.0, 4);
    expect("stuff", &out.stuff, 1.0, 1.0, 1.0, 4);
    assert_eq!(out.images, 2);
    check_against_hotcoco(&out, &json, &png, &json, &png);
    // The same with the categories from categories.json.
    let categories = load_categories_json(&dir.join("categories.json")).unwrap();
    assert_eq!(categories.len(), 133);
    assert_eq!(categories.iter().filter(|c| c.isthing).count(), 80);
    let again = pq_compute_coco_with_categories(&json, &png, &json, &png, &categories).unwrap();
    assert_eq!(again.all, out.all);
}

/// Copy the sample into a prediction folder, letting `edit` change each image's ids and segments.
fn perturbed_sample(dir: &Path, name: &str, edit: impl Fn(&mut Annotation, &mut Vec<u32>, usize)) -> PathBuf {
    let out = temp_dir(name);
    std::fs::create_dir_all(out.join("pred")).unwrap();
    let mut json = load_panoptic_json(&dir.join("panoptic.json")).unwrap();
    for ann in &mut json.annotations {
        let (h, w, mut ids) = read_panoptic_png(&dir.join("panoptic").join(&ann.file_name)).unwrap();
        edit(ann, &mut ids, w);
        write_panoptic_png(&out.join("pred").join(&ann.file_name), &ids, h, w).unwrap();
    }
    // A prediction file: annotations only, as model outputs are.
    json.categories.clear();
    json.images.clear();
    save_panoptic_json(&out.join("pred.json"), &json).unwrap();
    out
}

#[test]
fn pq_coco_sample_missing_stuff_segment() {
    let Some(dir) = coco_sample() else { return };
    const GRAVEL: u32 = 11881084; // the only gravel segment (image 439180)
    let out_dir = perturbed_sample(&dir, "gravel", |ann, ids, _| {
        ids.iter_mut().filter(|id| **id == GRAVEL).for_each(|id| *id = 0);
        ann.segments_info.retain(|s| s.id != GRAVEL);
    });
    let (gj, gd, pj, pd) =
        (dir.join("panoptic.json"), dir.join("panoptic"), out_dir.join("pred.json"), out_dir.join("pred"));
    let out = pq_compute_coco(&gj, &gd, &pj, &pd).unwrap();
    // gravel becomes one fn (PQ 0); the 7 other categories stay at 1.
    expect("all", &out.all, 7.0 / 8.0, 7.0 / 8.0, 7.0 / 8.0, 8);
    expect("stuff", &out.stuff, 0.75, 0.75, 0.75, 4);
    expect("things", &out.things, 1.0, 1.0, 1.0, 4);
    check_against_hotcoco(&out, &gj, &gd, &pj, &pd);
    std::fs::remove_dir_all(&out_dir).ok();
}

#[test]
fn pq_coco_sample_relabelled_and_split_segments() {
    let Some(dir) = coco_sample() else { return };
    const PERSON: u32 = 3937500; // a person in image 142238 (the id also appears in 439180)
    const TREE: u32 = 2330219; // tree-merged, 130762 px in image 142238
    const NEW_ID: u32 = 7_777_777; // an id no segment uses
    let out_dir = perturbed_sample(&dir, "perturbed", |ann, ids, w| {
        if ann.image_id != ImageId::Int(142238) {
            return;
        }
        // The person becomes a bicycle (category 2).
        ann.segments_info.iter_mut().filter(|s| s.id == PERSON).for_each(|s| s.category_id = 2);
        // The tree's pixels left of x = 100 become a second tree segment.
        for (i, id) in ids.iter_mut().enumerate() {
            if *id == TREE && i % w < 100 {
                *id = NEW_ID;
            }
        }
        ann.segments_info.push(CocoSegment {
            id: NEW_ID,
            category_id: 184,
            iscrowd: false,
            area: None,
            bbox: None,
        });
    });
    let (gj, gd, pj, pd) =
        (dir.join("panoptic.json"), dir.join("panoptic"), out_dir.join("pred.json"), out_dir.join("pred"));
    let out = pq_compute_coco(&gj, &gd, &pj, &pd).unwrap();
    check_against_hotcoco(&out, &gj, &gd, &pj, &pd);

    // By hand, from pixel counts of the ground-truth PNG: the right part of the tree (R px of
    // A = 130762, the JSON area) matches with IoU R / A when R > A / 2; the left part is a fp.
    let (_, w, ids) = read_panoptic_png(&gd.join("000000142238.png")).unwrap();
    let right = ids.iter().enumerate().filter(|&(i, &id)| id == TREE && i % w >= 100).count() as f64;
    let area = 130762.0;
    assert!(2.0 * right > area, "precondition: the right part is the larger");
    // tree: tp 2 (IoU 1 in 439180, R / A here), fp 1 -> PQ (1 + R/A) / 2.5, SQ (1 + R/A) / 2, RQ 2 / 2.5.
    let tree_iou = 1.0 + right / area;
    let (tree_pq, tree_sq, tree_rq) = (tree_iou / 2.5, tree_iou / 2.0, 0.8);
    // person: 26 non-crowd persons (13 per image), one now a bicycle: tp 25 (IoU 1 each), fn 1
    // -> PQ = RQ = 25 / 25.5, SQ 1.
    let person = 25.0 / 25.5;
    // bicycle: fp 1 -> 0. Six other categories at 1. n = 9 (5 things, 4 stuff).
    let bicycle = out.per_class.iter().find(|c| c.id == 2).unwrap();
    assert_eq!((bicycle.tp, bicycle.fp, bicycle.fn_), (0, 1, 0));
    expect(
        "all",
        &out.all,
        (person + tree_pq + 6.0) / 9.0,
        (1.0 + tree_sq + 6.0) / 9.0,
        (person + tree_rq + 6.0) / 9.0,
        9,
    );
    expect("things", &out.things, (person + 3.0) / 5.0, 4.0 / 5.0, (person + 3.0) / 5.0, 5);
    expect("stuff", &out.stuff, (tree_pq + 3.0) / 4.0, (tree_sq + 3.0) / 4.0, (tree_rq + 3.0) / 4.0, 4);
    std::fs::remove_dir_all(&out_dir).ok();
}

#[test]
fn pq_result_serialises_like_the_cli_json() {
    let mut stat = PqStat::for_classes(&[false, true]);
    let m = map_rows(&[&[1, 1]], &[&[1, 1]]);
    stat.add_maps(&m, &m).unwrap();
    let json: serde_json::Value = serde_json::to_value(stat.result()).unwrap();
    assert_eq!(json["all"], serde_json::json!({"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 1}));
    assert_eq!(json["per_class"][0]["fn"], 0);
    assert_eq!(json["images"], 1);
}

// ---- mIoU -------------------------------------------------------------------------------------

#[test]
fn confusion_matrix_miou_with_ignore() {
    let mut cm = ConfusionMatrix::new(3, Some(0));
    cm.update(&[1, 1, 2, 0], &[1, 2, 2, 2]).unwrap();
    // gt 1 -> pred 1, gt 1 -> pred 2, gt 2 -> pred 2; the void pixel is skipped.
    // IoU1 = 1 / (2 + 1 - 1) = 0.5, IoU2 = 1 / (1 + 2 - 1) = 0.5; accuracy 2 / 3.
    let iou = cm.iou();
    assert!(iou[0].is_nan() && close(iou[1], 0.5) && close(iou[2], 0.5), "{iou:?}");
    assert!(close(cm.miou(), 0.5));
    assert!(close(cm.pixel_accuracy(), 2.0 / 3.0));
    assert_eq!((cm.get(1, 1), cm.get(1, 2), cm.get(2, 2), cm.get(0, 2)), (1, 1, 1, 0));
}

#[test]
fn miou_counts_void_predictions_as_misses_and_skips_absent_classes() {
    let mut cm = ConfusionMatrix::new(4, Some(0));
    cm.update(&[1, 1, 1, 1], &[1, 1, 1, 0]).unwrap();
    // class 1: tp 3, union 4 -> 0.75; classes 2, 3 absent -> NaN, left out of the mean.
    assert!(close(cm.miou(), 0.75));
    assert!(cm.iou()[2].is_nan());
    // Predictions beyond the classes are clipped to the last one; gt beyond them is skipped.
    let mut cm = ConfusionMatrix::new(3, None);
    cm.update(&[2, 7, 0], &[9, 1, 0]).unwrap();
    assert_eq!((cm.get(2, 2), cm.get(0, 0), cm.matrix().iter().sum::<u64>()), (1, 1, 2));
    assert!(close(cm.miou(), 1.0) && close(cm.pixel_accuracy(), 1.0));
    assert_eq!(ConfusionMatrix::new(3, Some(0)).miou(), 0.0);
    assert!(cm.update(&[1, 2], &[1]).is_err());
}

#[test]
fn confusion_matrix_from_maps() {
    let gt = map_rows(&[&[1, 2], &[0, 2]], &[&[1, 1], &[0, 2]]);
    let pred = map_rows(&[&[1, 1], &[2, 2]], &[&[3, 3], &[3, 3]]);
    let mut cm = ConfusionMatrix::new(3, Some(0));
    cm.update_maps(&gt, &pred).unwrap();
    // gt 1 -> 1, gt 2 -> 1, gt 2 -> 2 (void skipped): IoU1 = 1 / 2, IoU2 = 1 / 2; accuracy 2 / 3.
    assert!(close(cm.miou(), 0.5) && close(cm.pixel_accuracy(), 2.0 / 3.0));
}

// ---- DAVIS J and F ----------------------------------------------------------------------------

fn square(h: usize, w: usize, rows: Range<usize>, cols: Range<usize>) -> Mask {
    Mask::from_fn(h, w, |r, c| rows.contains(&r) && cols.contains(&c))
}

#[test]
fn seg2bmap_square() {
    let seg = square(5, 5, 1..4, 1..4);
    #[rustfmt::skip]
    let expected = [
        1, 1, 1, 1, 0,
        1, 0, 0, 1, 0,
        1, 0, 0, 1, 0,
        1, 1, 1, 1, 0,
        0, 0, 0, 0, 0,
    ];
    assert_eq!(seg2bmap(&seg).data, expected.iter().map(|&v| v == 1).collect::<Vec<_>>());
}

#[test]
fn j_and_f_hand_computed() {
    // metrics.py's case: gt = columns 0-9 of 20x20 (boundary: column 9, 20 px);
    // pred = gt + rows 10-19 cols 10-12 (boundary: col 9 rows 0-8, row 9 cols 9-12, col 12 rows 10-19 = 23 px).
    let gt = square(20, 20, 0..20, 0..10);
    let pred = Mask::from_fn(20, 20, |r, c| c < 10 || (r >= 10 && c < 13));
    // Tolerance ceil(0.008 * 28.3) = 1 px (a plus-shaped disk): precision = 11/23 (col 9 rows 0-9
    // and (9, 10)), recall = 11/20 (col 9 rows 0-10); F = 2 (11/23)(11/20) / (11/23 + 11/20) = 242/473.
    assert!(close(db_eval_boundary(&gt, &pred, 0.008).unwrap(), 242.0 / 473.0));
    // J = 200 / (200 + 30).
    assert!(close(db_eval_iou(&gt, &pred).unwrap(), 200.0 / 230.0));
}

#[test]
fn j_and_f_shifted_square() {
    // 10x10, a = rows 2-5 cols 2-5, b = a shifted right by 3 (cols 5-8). Tolerance ceil(0.008 * 14.1) = 1.
    let a = square(10, 10, 2..6, 2..6);
    let b = square(10, 10, 2..6, 5..9);
    // Boundaries are 5x5 rings: a's rows 1-5 cols 1-5, b's rows 1-5 cols 4-8 (16 px each).
    // b's pixels within the plus of a's ring: top (1,4) (1,5) (1,6), bottom (5,4) (5,5) (5,6),
    // left (2,4) (3,4) (4,4) -> precision 9/16; by symmetry recall 9/16; F = 9/16.
    assert!(close(db_eval_boundary(&a, &b, 0.008).unwrap(), 9.0 / 16.0));
    // J: intersection col 5 rows 2-5 = 4 px; union 16 + 16 - 4 = 28 -> 1/7.
    assert!(close(db_eval_iou(&a, &b).unwrap(), 1.0 / 7.0));
    // A tolerance of 3 px (bound_th >= 1 is in pixels) reaches b's right column: F = 1.
    assert!(close(db_eval_boundary(&a, &b, 3.0).unwrap(), 1.0));
}

#[test]
fn j_and_f_simple_cases() {
    let a = square(100, 100, 20..60, 20..60);
    let shifted = square(100, 100, 20..60, 21..61);
    assert_eq!(db_eval_boundary(&a, &a, 0.008).unwrap(), 1.0);
    assert_eq!(db_eval_iou(&a, &a).unwrap(), 1.0);
    // A one-pixel shift is within the ceil(0.008 * 141.4) = 2 px tolerance.
    assert_eq!(db_eval_boundary(&a, &shifted, 0.008).unwrap(), 1.0);
    // J = 39 * 40 / (41 * 40).
    assert!(close(db_eval_iou(&a, &shifted).unwrap(), 39.0 / 41.0));
    let empty = Mask::from_fn(100, 100, |_, _| false);
    // Both empty: J = 1 and F = 1. Empty prediction: precision 1, recall 0 -> F 0; J = 0.
    assert_eq!(db_eval_iou(&empty, &empty).unwrap(), 1.0);
    assert_eq!(db_eval_boundary(&empty, &empty, 0.008).unwrap(), 1.0);
    assert_eq!(db_eval_boundary(&a, &empty, 0.008).unwrap(), 0.0);
    assert_eq!(db_eval_boundary(&empty, &a, 0.008).unwrap(), 0.0);
    assert_eq!(db_eval_iou(&a, &empty).unwrap(), 0.0);
    assert!(matches!(db_eval_iou(&a, &square(10, 10, 0..1, 0..1)), Err(PanopticError::Shape(_))));
}

#[test]
fn davis_evaluator_skips_first_and_last_frame() {
    let a = square(30, 30, 5..20, 5..20);
    let bad = Mask::from_fn(30, 30, |_, _| false);
    let mut ev = DavisEvaluator::new();
    // 4 frames: the bad first and last are left out.
    let one = ev
        .add_sequence(
            "one",
            &[a.clone(), a.clone(), a.clone(), a.clone()],
            &[bad.clone(), a.clone(), a.clone(), bad.clone()],
        )
        .unwrap();
    assert_eq!((one.j, one.f), (1.0, 1.0));
    // 2 frames are all kept: J = F = mean(1, 0) = 0.5.
    let two = ev.add_sequence("two", &[a.clone(), a.clone()], &[a.clone(), bad.clone()]).unwrap();
    assert_eq!((two.j, two.f), (0.5, 0.5));
    let s = ev.summary();
    // Sequence "one": J = [1, 1]: mean 1, recall 1, decay 0. "two": J = [1, 0]: mean 0.5, recall 0.5,
    // decay (linspace(1, 2, 5) -> quarters [v0] and [v1]) 1 - 0 = 1. Averages: 0.75, 0.75, 0.5; F the same.
    let j = s.j.unwrap();
    assert!(close(j.mean, 0.75) && close(j.recall, 0.75) && close(j.decay, 0.5), "{j:?}");
    assert_eq!(s.f, Some(j));
    assert!(close(s.jf, 0.75));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(
        json["per_sequence"],
        serde_json::json!({"one": {"J": 1.0, "F": 1.0}, "two": {"J": 0.5, "F": 0.5}})
    );
    assert_eq!(json["J&F"], 0.75);
    assert!(ev.add_sequence("bad", std::slice::from_ref(&a), &[]).is_err());
    // A frame of another size is named by sequence and frame number (frame 1: the first is skipped).
    let small = square(10, 10, 0..5, 0..5);
    let err = ev
        .add_sequence("odd", &[a.clone(), a.clone(), a.clone()], &[a.clone(), small, a.clone()])
        .unwrap_err();
    assert!(err.to_string().contains("odd, frame 1") && err.to_string().contains("10x10"), "{err}");
    assert_eq!(DavisEvaluator::new().summary().jf, 0.0);
}

#[test]
fn mask_helpers() {
    let m = map_rows(&[&[0, 3], &[1, 0]], &[&[0, 1], &[1, 0]]);
    assert_eq!(Mask::foreground(&m).data, vec![false, true, true, false]);
    assert!(Mask::new(2, 2, vec![true; 3]).is_err());
}
