//! The readout family (`src/ops/readout.rs`, `shaders/readout.wgsl`): the GPU kernels against
//! their CPU twins on random logits and x̂0 (odd sizes, letterboxed canvases, up- and
//! downsampling, ties),
//! the CPU twin against an f64 reading of the definition, and against the cases the Python twin
//! wrote (`tests/fixtures/readout_case.json`).

use crate::common;

use common::{gpu, Rand};
use pix2seqd::geometry::Letterbox;
use pix2seqd::ops::readout::{self, cpu, IdSpace, Resample};

/// The definition in f64 at one output pixel: the mixed class void probability, the mixed
/// scores of every valid class, the mixed x̂0 instance bits, and whether the corners agree per
/// group.
struct Reference {
    /// Per group, the id all four corners share (the definition's shortcut), if they do.
    corners_agree: [Option<u32>; 2],
    class_void: f64,
    class_scores: Vec<f64>,
    instance_bits: Vec<f64>,
    instance_count: usize,
}

fn reference(
    logits: &[f32],
    x0: &[f32],
    cells: &cpu::CellMaps,
    ids: &IdSpace,
    r: &Resample,
    y: usize,
    x: usize,
) -> Reference {
    let axis = |i: usize, scale: f32, len: usize| {
        let f = (i as f32 + 0.5) * scale - 0.5;
        let i0 = f.floor() as i64;
        let last = len as i64 - 1;
        (i0.clamp(0, last) as usize, (i0 + 1).clamp(0, last) as usize, (f - f.floor()) as f64)
    };
    let (y0, y1, ty) = axis(y, r.scale_y, r.mask_h);
    let (xa, xb, tx) = axis(x, r.scale_x, r.mask_w);
    let c = [y0 * r.mask_w + xa, y0 * r.mask_w + xb, y1 * r.mask_w + xa, y1 * r.mask_w + xb];
    let w = [(1.0 - ty) * (1.0 - tx), (1.0 - ty) * tx, ty * (1.0 - tx), ty * tx];
    let mix = |f: &dyn Fn(usize) -> f64| c.iter().zip(w).map(|(&cell, w)| w * f(cell)).sum::<f64>();
    let l = ids.cell_logits();
    let agree = |m: &[u32]| c.iter().all(|&k| m[k] == m[c[0]]).then_some(m[c[0]]);
    Reference {
        corners_agree: [agree(&cells.class), agree(&cells.instance)],
        class_void: mix(&|cell| cells.class_void[cell] as f64),
        class_scores: (0..ids.class_count()).map(|v| mix(&|cell| logits[cell * l + v] as f64)).collect(),
        instance_bits: (0..ids.instance_bits as usize)
            .map(|k| mix(&|cell| x0[cell * ids.n_bits() + ids.class_bits as usize + k] as f64))
            .collect(),
        instance_count: ids.instance_count(),
    }
}

/// Whether `id` is an acceptable answer at a pixel up to `tol` of f32 rounding: within `tol` of
/// the best score (for classes: on the same side of the void decision, or at its edge).
fn acceptable(reference: &Reference, group: usize, id: u32, tol: f64) -> bool {
    if let Some(shared) = reference.corners_agree[group] {
        return id == shared;
    }
    let best_of = |scores: &[f64]| scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if group == 0 {
        let non_void = &reference.class_scores[1..];
        let void_edge = (reference.class_void - 0.5).abs() <= tol;
        if id == 0 {
            return reference.class_void >= 0.5 || void_edge || non_void.is_empty();
        }
        return (reference.class_void < 0.5 || void_edge)
            && best_of(non_void) - reference.class_scores[id as usize] <= tol;
    }
    // Every bit far from 0 must be as the id says (then capped at the largest valid id).
    let bits_agree = |id: u32| {
        reference
            .instance_bits
            .iter()
            .enumerate()
            .all(|(k, &m)| m.abs() <= tol || (m > 0.0) == ((id >> k) & 1 == 1))
    };
    let largest = reference.instance_count as u32 - 1;
    (0..1u32 << reference.instance_bits.len()).any(|raw| raw.min(largest) == id && bits_agree(raw))
}

/// Random logits `[h·w, L]` and x̂0 `[h·w, n_bits]` (in ±0.1); with `grid`, values rounded to
/// multiples of it (of `grid / 20` for x̂0) so ties and zero bits are common.
fn random_last(
    r: &mut Rand,
    cells: usize,
    ids: &IdSpace,
    scale: f32,
    grid: Option<f32>,
) -> (Vec<f32>, Vec<f32>) {
    let mut logits = r.vec(cells * ids.cell_logits(), -scale, scale);
    let mut x0 = r.vec(cells * ids.n_bits(), -0.1, 0.1);
    if let Some(g) = grid {
        logits.iter_mut().for_each(|x| *x = (*x / g).round() * g);
        x0.iter_mut().for_each(|x| *x = (*x / (g / 20.0)).round() * (g / 20.0));
    }
    (logits, x0)
}

struct Case {
    name: &'static str,
    ids: IdSpace,
    mask: (usize, usize),
    lb: Letterbox,
    out: (usize, usize),
    scale: f32,
    grid: Option<f32>,
}

fn cases() -> Vec<Case> {
    let ids = |class_bits, instance_bits, num_classes, max_instances| IdSpace {
        class_bits,
        instance_bits,
        num_classes,
        max_instances,
    };
    vec![
        // Letterboxed (content 37 of 48 rows), non-integer upsampling, all ids valid.
        Case {
            name: "letterbox-up",
            ids: ids(3, 4, 8, 16),
            mask: (12, 16),
            lb: Letterbox::fit(111, 160, 48, 64).unwrap(),
            out: (111, 160),
            scale: 4.0,
            grid: None,
        },
        // Odd sizes, fewer valid ids than the bits allow (invalid ids must never appear).
        Case {
            name: "odd-invalid",
            ids: ids(4, 6, 7, 41),
            mask: (9, 13),
            lb: Letterbox::fit(53, 77, 36, 52).unwrap(),
            out: (53, 77),
            scale: 3.0,
            grid: None,
        },
        // Downsampling: fewer output pixels than cells.
        Case {
            name: "down",
            ids: ids(2, 3, 4, 8),
            mask: (17, 23),
            lb: Letterbox::identity(17, 23),
            out: (5, 9),
            scale: 2.0,
            grid: None,
        },
        // Ties: logits on a coarse grid.
        Case {
            name: "ties",
            ids: ids(2, 2, 4, 4),
            mask: (7, 11),
            lb: Letterbox::fit(29, 41, 28, 44).unwrap(),
            out: (29, 41),
            scale: 1.0,
            grid: Some(0.5),
        },
        // One valid class (always void) and a single row of cells.
        Case {
            name: "one-class",
            ids: ids(1, 5, 1, 30),
            mask: (1, 6),
            lb: Letterbox::identity(1, 6),
            out: (3, 19),
            scale: 2.0,
            grid: None,
        },
    ]
}

#[test]
fn gpu_readout_matches_cpu_twin() {
    let gpu = gpu();
    let mut r = Rand::new("readout-gpu");
    for case in cases() {
        let (hm, wm) = case.mask;
        let (logits, x0) = random_last(&mut r, hm * wm, &case.ids, case.scale, case.grid);
        let resample = Resample::new(&case.lb, hm, wm, case.out.0, case.out.1).unwrap();
        let t = gpu.upload(&[1, hm, wm, case.ids.cell_logits()], &logits).unwrap();
        let tx = gpu.upload(&[1, hm, wm, case.ids.n_bits()], &x0).unwrap();
        let mut f = gpu.frame();
        let cells = readout::cells(&mut f, &t, &tx, &case.ids).unwrap();
        let (class, instance) = readout::readout(&mut f, &t, &tx, &cells, &case.ids, &resample).unwrap();
        f.submit();
        let want_cells = cpu::cells(&logits, &x0, &case.ids);
        let got_cells = cpu::CellMaps {
            class: gpu.read_u32_blocking(&cells.class).unwrap(),
            instance: gpu.read_u32_blocking(&cells.instance).unwrap(),
            class_void: gpu.read_blocking(&cells.class_void).unwrap(),
        };
        for (k, (&g, &w)) in got_cells.class_void.iter().zip(&want_cells.class_void).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1e-3),
                "{} cell {k}: void probability {g} vs {w}",
                case.name
            );
            let edge = (w - 0.5).abs() <= 1e-5;
            assert!(
                edge || got_cells.class[k] == want_cells.class[k],
                "{} cell {k}: class {} vs {}",
                case.name,
                got_cells.class[k],
                want_cells.class[k]
            );
        }
        assert_eq!(got_cells.instance, want_cells.instance, "{}: cell instances", case.name);
        let (want_class, want_instance) = cpu::readout(&logits, &x0, want_cells.view(), &case.ids, &resample);
        let (got_class, got_instance) =
            (gpu.read_u32_blocking(&class).unwrap(), gpu.read_u32_blocking(&instance).unwrap());
        assert_eq!((got_class.len(), got_instance.len()), (case.out.0 * case.out.1, case.out.0 * case.out.1));
        let mut differ = 0;
        for p in 0..got_class.len() {
            if got_class[p] == want_class[p] && got_instance[p] == want_instance[p] {
                continue;
            }
            differ += 1;
            let reference =
                reference(&logits, &x0, &want_cells, &case.ids, &resample, p / case.out.1, p % case.out.1);
            let tol = 1e-5 * case.scale as f64;
            assert!(
                acceptable(&reference, 0, got_class[p], tol),
                "{} pixel {p}: GPU class {} vs CPU {}",
                case.name,
                got_class[p],
                want_class[p]
            );
            assert!(
                acceptable(&reference, 1, got_instance[p], tol),
                "{} pixel {p}: GPU instance {} vs {}",
                case.name,
                got_instance[p],
                want_instance[p]
            );
        }
        assert!(differ * 1000 <= got_class.len(), "{}: {differ} pixels differ", case.name);
        assert!(
            got_class.iter().all(|&c| (c as usize) < case.ids.class_count()),
            "{}: invalid class id",
            case.name
        );
        assert!(
            got_instance.iter().all(|&i| (i as usize) < case.ids.instance_count()),
            "{}: invalid instance id",
            case.name
        );
    }
}

#[test]
fn cpu_readout_follows_the_definition() {
    let mut r = Rand::new("readout-definition");
    for case in cases() {
        let (hm, wm) = case.mask;
        let (logits, x0) = random_last(&mut r, hm * wm, &case.ids, case.scale, case.grid);
        let resample = Resample::new(&case.lb, hm, wm, case.out.0, case.out.1).unwrap();
        let cells = cpu::cells(&logits, &x0, &case.ids);
        let (class, instance) = cpu::readout(&logits, &x0, cells.view(), &case.ids, &resample);
        let mut interpolated = 0;
        for p in 0..class.len() {
            let reference =
                reference(&logits, &x0, &cells, &case.ids, &resample, p / case.out.1, p % case.out.1);
            let tol = 1e-5 * case.scale as f64;
            assert!(acceptable(&reference, 0, class[p], tol), "{} pixel {p}: class {}", case.name, class[p]);
            // Where the corners agree on a class, the full computation gives it too (a convex
            // combination keeps what all corners share): the shortcut only saves work.
            let full = Reference { corners_agree: [None, reference.corners_agree[1]], ..reference };
            assert!(
                acceptable(&full, 0, class[p], tol),
                "{} pixel {p}: the shortcut's class {} is not the mixed one",
                case.name,
                class[p]
            );
            let reference = full;
            assert!(
                acceptable(&reference, 1, instance[p], tol),
                "{} pixel {p}: instance {}",
                case.name,
                instance[p]
            );
            interpolated += usize::from(reference.corners_agree[0].is_none());
        }
        assert!(
            case.name == "one-class" || interpolated > 0,
            "{}: no pixel needed the interpolation",
            case.name
        );
        // Identity geometry gives the cell ids; the cells' instance ids are the thresholded bits.
        let identity = Resample::identity(hm, wm).unwrap();
        assert_eq!(
            cpu::readout(&logits, &x0, cells.view(), &case.ids, &identity),
            (cells.class.clone(), cells.instance.clone()),
            "{}",
            case.name
        );
        let spec = pix2seqd::ops::bits::BitSpec {
            class_bits: case.ids.class_bits,
            instance_bits: case.ids.instance_bits,
            b_scale: 0.1,
        };
        let (_, thresholded) =
            pix2seqd::ops::bits::cpu::bits_to_ids(&x0, &spec, 1 << spec.class_bits, case.ids.max_instances);
        assert_eq!(cells.instance, thresholded, "{}: cell instances are x̂0 thresholded", case.name);
    }
}

#[test]
fn void_is_decided_against_all_classes_together() {
    // Two cells that both see an object (void 0.4) but disagree on its class: between them the
    // object stays, where a plain argmax of the mixed logits would pick void.
    let ids = IdSpace { class_bits: 2, instance_bits: 1, num_classes: 3, max_instances: 2 };
    let ln = |p: f32| p.ln();
    let logits = [ln(0.4), ln(0.55), ln(0.05), 0.0, 0.0, 0.0, ln(0.4), ln(0.05), ln(0.55), 0.0, 0.0, 0.0];
    let x0 = [0.0; 6];
    let cells = cpu::cells(&logits, &x0, &ids);
    assert_eq!(cells.class, vec![1, 2]);
    let resample = Resample::new(&Letterbox::identity(1, 2), 1, 2, 1, 8).unwrap();
    let (class, _) = cpu::readout(&logits, &x0, cells.view(), &ids, &resample);
    assert_eq!(class, vec![1, 1, 1, 1, 2, 2, 2, 2]);
    // The mixed logits alone: at the middle, void ln 0.4 beats both ln(0.55·0.05)/2.
    assert!(ln(0.4) > 0.5 * (ln(0.55) + ln(0.05)));
}

#[test]
fn readout_rejects_mismatched_shapes() {
    let gpu = gpu();
    let ids = IdSpace { class_bits: 2, instance_bits: 2, num_classes: 4, max_instances: 4 };
    let logits = gpu.upload(&[1, 3, 5, 8], &[0.0; 120]).unwrap();
    let x0 = gpu.upload(&[1, 3, 5, 4], &[0.0; 60]).unwrap();
    let wrong = gpu.upload(&[1, 3, 5, 7], &[0.0; 105]).unwrap();
    let mut f = gpu.frame();
    assert!(readout::cells(&mut f, &wrong, &x0, &ids).unwrap_err().to_string().contains("logits must be"));
    assert!(readout::cells(&mut f, &logits, &wrong, &ids).unwrap_err().to_string().contains("x̂0 must be"));
    let cells = readout::cells(&mut f, &logits, &x0, &ids).unwrap();
    let other = Resample::new(&Letterbox::identity(4, 5), 4, 5, 8, 10).unwrap();
    assert!(readout::readout(&mut f, &logits, &x0, &cells, &ids, &other)
        .unwrap_err()
        .to_string()
        .contains("cells"));
    let none = IdSpace { num_classes: 0, ..ids };
    assert!(readout::cells(&mut f, &logits, &x0, &none).is_err());
    assert!(Resample::new(&Letterbox::identity(4, 5), 3, 5, 0, 10).is_err());
}

/// The cases `train/pix2seqd_train/fixtures.py` wrote with the Python twin: the CPU twin must
/// give the same ids bit for bit.
#[test]
fn python_readout_cases_reproduce() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/readout_case.json"))
            .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = json["cases"].as_array().expect("readout_case.json has a `cases` list");
    assert!(cases.len() >= 6);
    let pair = |v: &serde_json::Value| (v[0].as_u64().unwrap() as usize, v[1].as_u64().unwrap() as usize);
    let u32s = |v: &serde_json::Value| {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<u32>>()
    };
    let f32s = |v: &serde_json::Value| {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<f32>>()
    };
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let ids = IdSpace {
            class_bits: case["class_bits"].as_u64().unwrap() as u32,
            instance_bits: case["instance_bits"].as_u64().unwrap() as u32,
            num_classes: case["num_classes"].as_u64().unwrap() as u32,
            max_instances: case["max_instances"].as_u64().unwrap() as u32,
        };
        let ((hm, wm), canvas, content, out) = (
            pair(&case["mask_hw"]),
            pair(&case["canvas_hw"]),
            pair(&case["content_hw"]),
            pair(&case["out_hw"]),
        );
        let lb = Letterbox {
            orig_h: out.0,
            orig_w: out.1,
            canvas_h: canvas.0,
            canvas_w: canvas.1,
            content_h: content.0,
            content_w: content.1,
        };
        let (logits, x0) = (f32s(&case["logits"]), f32s(&case["x0"]));
        let cells = cpu::cells(&logits, &x0, &ids);
        assert_eq!(cells.class_void, f32s(&case["class_void"]), "{name}: class void probabilities");
        let resample = Resample::new(&lb, hm, wm, out.0, out.1).unwrap();
        let (class, instance) = cpu::readout(&logits, &x0, cells.view(), &ids, &resample);
        assert_eq!(class, u32s(&case["class"]), "{name}: class");
        assert_eq!(instance, u32s(&case["instance"]), "{name}: instance");
    }
}
