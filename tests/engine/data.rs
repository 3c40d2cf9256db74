//! Dataset readers (`pix2seqd::data`) against the real files in `../shared/data` and the Python
//! readers in `train/pix2seqd_train/data/`. Tests that need the data skip loudly when it is absent.
//!
//! Checks per item: segment count, per-class pixel counts and the hash-free weighted sums
//! `sum_p id[p] * (p % 7919)` over row-major pixel indices p, for the instance and the class map.

use std::io::Write;
use std::path::{Path, PathBuf};

use pix2seqd::data::camvid::{self, CamVid};
use pix2seqd::data::davis::Davis;
use pix2seqd::data::{data_root, read_label_png, DataError, LabelMap};

/// The shared data folder, or None (after a loud note) when it is absent.
fn shared(test: &str) -> Option<PathBuf> {
    let root = data_root();
    if root.is_dir() {
        Some(root)
    } else {
        // Straight to stderr, past the test harness's capture of eprintln!, so the skip shows.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPING {test}: shared data folder {} not found (set PIX2SEQD_DATA)",
            root.display()
        );
        None
    }
}

fn weighted_sum(ids: &[u32]) -> u64 {
    ids.iter().enumerate().map(|(p, &v)| u64::from(v) * (p % 7919) as u64).sum()
}

fn segment_count(instance: &[u32]) -> usize {
    let mut ids: Vec<u32> = instance.iter().copied().filter(|&v| v > 0).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

fn class_counts(class: &[u32], n: usize) -> Vec<u64> {
    let mut counts = vec![0u64; n];
    for &c in class {
        counts[c as usize] += 1;
    }
    counts
}

/// A scratch folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("pix2seqd-data-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn save_gray(path: &Path, w: u32, h: u32, values: &[u8]) {
    image::GrayImage::from_raw(w, h, values.to_vec()).unwrap().save(path).unwrap();
}

// ------------------------------------------------------------------------------------------------
// CamVid

#[test]
fn camvid_classes_match_the_python_reader() {
    // Parse `ClassInfo("name", isthing, (r, g, b))` lines of camvid.py (the list camvid_web.json uses).
    let py = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("train/pix2seqd_train/data/camvid.py"),
    )
    .unwrap();
    let parsed: Vec<(String, bool, [u8; 3])> = py
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ClassInfo(\""))
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let isthing = rest.contains("True");
            let rgb: Vec<u8> = rest
                .split(['(', ')'])
                .nth(1)
                .unwrap()
                .split(',')
                .map(|v| v.trim().parse().unwrap())
                .collect();
            (name.to_string(), isthing, [rgb[0], rgb[1], rgb[2]])
        })
        .collect();
    let ours: Vec<(String, bool, [u8; 3])> =
        camvid::CLASSES.iter().map(|c| (c.name.to_string(), c.isthing, c.color)).collect();
    assert_eq!(ours, parsed);
    let things: Vec<&str> = camvid::CLASSES.iter().filter(|c| c.isthing).map(|c| c.name).collect();
    assert_eq!(things, ["car", "pedestrian", "bicyclist"]);
    assert_eq!(camvid::VOID_LABEL, 11);
}

#[test]
fn camvid_ids_follow_scipy_label_semantics() {
    // 6x4 labels: 3 = road (stuff, class 4), 0 = sky (class 1), 8 = car (thing, class 9),
    // 9 = pedestrian (class 10), 11 = void. Cars at (0,4)-(1,5) diagonal-touch -> one component;
    // car at (5,0) alone; pedestrian at (3,2).
    #[rustfmt::skip]
    let values = vec![
        3, 3, 3, 3, 8, 3,
        3, 3, 3, 3, 3, 8,
        0, 0, 0, 9, 11, 3,
        8, 3, 3, 3, 3, 3,
    ];
    let labels = LabelMap { width: 6, height: 4, values };
    let (class, instance) = camvid::labels_to_panoptic(&labels, Path::new("synthetic.png")).unwrap();
    #[rustfmt::skip]
    assert_eq!(class, [
        4, 4, 4, 4, 9, 4,
        4, 4, 4, 4, 4, 9,
        1, 1, 1, 10, 0, 4,
        9, 4, 4, 4, 4, 4,
    ]);
    // Stuff ids by class id (sky 1, road 2); then car components in raster order of their first
    // pixel (the diagonal pair 3, the lone car 4), then pedestrian 5; void 0.
    #[rustfmt::skip]
    assert_eq!(instance, [
        2, 2, 2, 2, 3, 2,
        2, 2, 2, 2, 2, 3,
        1, 1, 1, 5, 0, 2,
        4, 2, 2, 2, 2, 2,
    ]);
    // A component is numbered by its first raster pixel: the left arm at (0,0) joins the arm at
    // (2,0) through the diagonals at (1,2), so (2,0) gets no id of its own; the lone cars at (4,0)
    // and (4,2) follow.
    #[rustfmt::skip]
    let values = vec![
        8, 3, 8, 3, 8,
        8, 3, 8, 3, 3,
        3, 8, 3, 3, 8,
    ];
    let (_, instance) =
        camvid::labels_to_panoptic(&LabelMap { width: 5, height: 3, values }, Path::new("u.png")).unwrap();
    #[rustfmt::skip]
    assert_eq!(instance, [
        2, 1, 2, 1, 3,
        2, 1, 2, 1, 1,
        1, 2, 1, 1, 4,
    ]);
    let err = camvid::labels_to_panoptic(
        &LabelMap { width: 2, height: 1, values: vec![12, 255] },
        Path::new("bad.png"),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bad.png") && msg.contains("[12, 255]"), "{msg}");
}

/// Expected values from the Python reader, for items of the CamVid test split. Regenerate with
/// (from the repository root):
///
/// ```text
/// PYTHONPATH=train python3 -c "
/// import numpy as np
/// from pix2seqd_train.data.camvid import CamVid
/// ds = CamVid('test')
/// for i in (0, 1, 34, 100, 153, 228, 232):
///     ex = ds.load(i)[0]; h, w = ex.cls.shape
///     wgt = (np.arange(h * w, dtype=np.int64) % 7919).reshape(h, w)
///     print(i, ex.name, len(np.unique(ex.inst[ex.inst > 0])), np.bincount(ex.cls.ravel(), minlength=12).tolist(),
///           int((ex.inst * wgt).sum()), int((ex.cls * wgt).sum()), int(ex.inst.max()))"
/// ```
/// Columns: index, name, segments, pixels per class id 0..=11, instance sum, class sum, max id.
#[allow(clippy::type_complexity)]
const CAMVID_TEST: [(usize, &str, usize, [u64; 12], u64, u64, u32); 7] = [
    (
        0,
        "0001TP_008550",
        18,
        [9872, 36078, 52889, 1001, 35990, 6027, 17410, 2030, 0, 8247, 1379, 1877],
        2209149602,
        2157125709,
        18,
    ),
    (
        1,
        "0001TP_008580",
        20,
        [9776, 41880, 41091, 1330, 33770, 9135, 24132, 2506, 0, 5869, 1078, 2233],
        2315131243,
        2211728641,
        20,
    ),
    (
        34,
        "0001TP_009570",
        75,
        [12503, 41419, 15103, 1167, 29337, 10593, 47175, 748, 210, 10587, 3530, 428],
        3178062391,
        2636623288,
        75,
    ),
    (
        100,
        "Seq05VD_f01140",
        15,
        [404, 18322, 51101, 3628, 47238, 17583, 28467, 1461, 0, 274, 3285, 1037],
        2534488944,
        2502845867,
        15,
    ),
    (
        153,
        "Seq05VD_f02730",
        41,
        [2219, 20526, 54317, 3462, 50121, 25822, 5812, 5722, 0, 4264, 333, 202],
        2369205690,
        2324163438,
        41,
    ),
    (
        228,
        "Seq05VD_f04980",
        49,
        [9683, 38246, 44909, 2217, 51288, 16303, 3628, 3165, 1502, 920, 939, 0],
        2025340823,
        1949272625,
        49,
    ),
    (
        232,
        "Seq05VD_f05100",
        16,
        [6308, 36294, 51157, 1260, 44686, 15528, 794, 2883, 0, 13876, 14, 0],
        2132831627,
        2176028571,
        16,
    ),
];

#[test]
fn camvid_test_items_match_python() {
    let Some(root) = shared("camvid_test_items_match_python") else { return };
    let ds = CamVid::open(&root.join("camvid"), "test").unwrap();
    assert_eq!(ds.len(), 233);
    for &(index, name, segments, counts, inst_sum, class_sum, max_id) in &CAMVID_TEST {
        let ex = ds.load(index).unwrap();
        assert_eq!(ex.name, name);
        assert_eq!(ds.name(index), name);
        assert_eq!((ex.width(), ex.height()), (480, 360), "{name}");
        assert_eq!(ex.image.rgb.len(), 480 * 360 * 3);
        assert_eq!(ex.class.len(), 480 * 360);
        assert_eq!(segment_count(&ex.instance), segments, "{name}: segments");
        assert_eq!(class_counts(&ex.class, 12), counts, "{name}: pixels per class");
        assert_eq!(weighted_sum(&ex.instance), inst_sum, "{name}: instance sum");
        assert_eq!(weighted_sum(&ex.class), class_sum, "{name}: class sum");
        assert_eq!(ex.instance.iter().max().copied(), Some(max_id), "{name}: max id");
        // Void class <=> void id.
        assert!(
            ex.class.iter().zip(&ex.instance).all(|(&c, &i)| (c == 0) == (i == 0)),
            "{name}: void mismatch"
        );
    }
}

/// Whole test split, from the labels: items, total segments and total instance weighted sum.
/// Regenerate: as above over `range(len(ds))`, summing the segment counts and instance sums.
#[test]
fn camvid_test_split_totals_match_python() {
    let Some(root) = shared("camvid_test_split_totals_match_python") else { return };
    let ds = CamVid::open(&root.join("camvid"), "test").unwrap();
    let (mut segments, mut sum) = (0usize, 0u64);
    for i in 0..ds.len() {
        let labels = read_label_png(&ds.label_path(i)).unwrap();
        let (_, instance) = camvid::labels_to_panoptic(&labels, &ds.label_path(i)).unwrap();
        segments += segment_count(&instance);
        sum += weighted_sum(&instance);
    }
    assert_eq!((ds.len(), segments, sum), (233, 3633, 555122522810));
}

#[test]
fn camvid_splits_and_images() {
    let Some(root) = shared("camvid_splits_and_images") else { return };
    let sizes: Vec<usize> = ["train", "val", "test"]
        .iter()
        .map(|s| CamVid::open(&root.join("camvid"), s).unwrap().len())
        .collect();
    assert_eq!(sizes, [367, 101, 233]);
    // JPEG decoding is not bit-identical to PIL's; compare the pixel sums PIL gives, loosely:
    // PYTHONPATH=train python3 -c "from pix2seqd_train.data.camvid import CamVid; ds = CamVid('test');
    //   print([int(ds.load(i)[0].image.astype('int64').sum()) for i in (0, 34, 228)])"
    let ds = CamVid::open(&root.join("camvid"), "test").unwrap();
    for (index, pil_sum) in [(0, 30819489u64), (34, 32026820), (228, 73871013)] {
        let image = pix2seqd::data::read_rgb(&ds.image_path(index)).unwrap();
        let sum: u64 = image.rgb.iter().map(|&v| u64::from(v)).sum();
        let mean_diff = (sum as f64 - pil_sum as f64).abs() / image.rgb.len() as f64;
        assert!(mean_diff < 0.5, "item {index}: sum {sum} vs PIL {pil_sum}");
        let rgba = image.to_rgba();
        assert_eq!(rgba.len(), image.width * image.height * 4);
        assert_eq!(
            &rgba[..8],
            &[image.rgb[0], image.rgb[1], image.rgb[2], 255, image.rgb[3], image.rgb[4], image.rgb[5], 255]
        );
    }
}

#[test]
fn camvid_errors_name_what_is_wrong() {
    let Some(root) = shared("camvid_errors_name_what_is_wrong") else { return };
    let err = CamVid::open(&root.join("camvid"), "validation").unwrap_err();
    assert!(matches!(err, DataError::BadSplit { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("\"validation\"")
            && msg.contains("train")
            && msg.contains("val")
            && msg.contains("test"),
        "{msg}"
    );

    let missing = root.join("no-such-camvid");
    let msg = CamVid::open(&missing, "test").unwrap_err().to_string();
    assert!(msg.contains(&missing.join("test").join("images").display().to_string()), "{msg}");

    let ds = CamVid::open(&root.join("camvid"), "val").unwrap();
    let msg = ds.load(101).unwrap_err().to_string();
    assert!(msg.contains("101") && msg.contains("val"), "{msg}");
}

#[test]
fn camvid_bad_files_are_reported() {
    // A scratch CamVid with broken items; needs no shared data.
    let scratch = Scratch::new("camvid");
    let dir = scratch.0.join("train");
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::create_dir_all(dir.join("labels")).unwrap();
    let msg = CamVid::open(&scratch.0, "train").unwrap_err().to_string();
    assert!(
        msg.contains("no .jpg images") && msg.contains(&dir.join("images").display().to_string()),
        "{msg}"
    );

    // a: fine; b: label 3x2 for a 4x3 image; c: RGB label; d: no label; e: not an image; f: value 12.
    for name in ["a", "b", "c", "d", "f"] {
        image::RgbImage::from_pixel(4, 3, image::Rgb([10, 20, 30]))
            .save_with_format(dir.join(format!("images/{name}.jpg")), image::ImageFormat::Jpeg)
            .unwrap();
    }
    std::fs::write(dir.join("images/e.jpg"), b"not a jpeg").unwrap();
    save_gray(&dir.join("labels/a.png"), 4, 3, &[0, 1, 8, 8, 11, 11, 8, 3, 9, 10, 2, 2]);
    save_gray(&dir.join("labels/b.png"), 3, 2, &[0; 6]);
    image::RgbImage::new(4, 3).save(dir.join("labels/c.png")).unwrap();
    save_gray(&dir.join("labels/e.png"), 4, 3, &[0; 12]);
    save_gray(&dir.join("labels/f.png"), 4, 3, &[12; 12]);
    std::fs::write(dir.join("images/notes.txt"), b"ignored").unwrap();

    let ds = CamVid::open(&scratch.0, "train").unwrap();
    assert_eq!(ds.names(), ["a", "b", "c", "d", "e", "f"]);
    let a = ds.load(0).unwrap();
    assert_eq!(a.class, [1, 2, 9, 9, 0, 0, 9, 4, 10, 11, 3, 3]);
    // stuff: sky 1, building 2, pole 3, road 4; car components: {(2,0),(3,0),(2,1)} 5; pedestrian 6; bicyclist 7.
    assert_eq!(a.instance, [1, 2, 5, 5, 0, 0, 5, 4, 6, 7, 3, 3]);

    let expect = |i: usize, file: &str, what: &str| {
        let msg = ds.load(i).unwrap_err().to_string();
        assert!(msg.contains(&dir.join(file).display().to_string()) && msg.contains(what), "{file}: {msg}");
    };
    expect(1, "labels/b.png", "size 3x2");
    expect(2, "labels/c.png", "single-channel");
    expect(3, "labels/d.png", "cannot read");
    expect(4, "images/e.jpg", "cannot read image");
    expect(5, "labels/f.png", "[12]");
}

// ------------------------------------------------------------------------------------------------
// DAVIS

/// Regenerate (from the repository root):
///
/// ```text
/// PYTHONPATH=train python3 -c "
/// import numpy as np
/// from pix2seqd_train.data.davis import Davis
/// ds = Davis('all'); print(ds.sequences, {s: len(f) for s, f in ds.frames.items()})
/// print(sum(int((ds.load_frame(s, t).inst > 0).sum()) for s in ds.sequences for t in range(len(ds.frames[s]))))
/// for seq, t in (('blackswan', 0), ('soapbox', 98), ('bmx-trees', 40)):
///     ex = ds.load_frame(seq, t); h, w = ex.cls.shape
///     wgt = (np.arange(h * w, dtype=np.int64) % 7919).reshape(h, w)
///     print(ex.name, np.bincount(ex.cls.ravel(), minlength=2).tolist(), int((ex.inst * wgt).sum()))"
/// ```
const DAVIS_SEQUENCES: [(&str, usize); 16] = [
    ("blackswan", 50),
    ("bmx-trees", 80),
    ("breakdance", 84),
    ("camel", 90),
    ("car-roundabout", 75),
    ("cows", 104),
    ("dance-twirl", 90),
    ("drift-chicane", 52),
    ("drift-straight", 50),
    ("horsejump-high", 50),
    ("kite-surf", 50),
    ("libby", 49),
    ("motocross-jump", 40),
    ("paragliding-launch", 80),
    ("scooter-black", 43),
    ("soapbox", 99),
];

const DAVIS_FRAMES: [(&str, usize, &str, [u64; 2], u64); 3] = [
    ("blackswan", 0, "blackswan/00000", [92137, 10343], 41308285),
    ("soapbox", 98, "soapbox/00098", [93246, 9234], 36463055),
    ("bmx-trees", 40, "bmx-trees/00040", [100561, 1919], 7170588),
];

#[test]
fn davis_frames_match_python() {
    let Some(root) = shared("davis_frames_match_python") else { return };
    let ds = Davis::open(&root.join("davis2016")).unwrap();
    let listed: Vec<(&str, usize)> = ds.sequences().iter().map(|s| (s.as_str(), ds.frames(s))).collect();
    assert_eq!(listed, DAVIS_SEQUENCES);
    assert_eq!(
        ds.split("val").unwrap(),
        ["motocross-jump", "paragliding-launch", "scooter-black", "soapbox"]
    );
    assert_eq!(ds.split("train").unwrap().len(), 12);
    assert_eq!(ds.split("all").unwrap().len(), 16);
    for &(seq, t, name, counts, sum) in &DAVIS_FRAMES {
        let ex = ds.load(seq, t).unwrap();
        assert_eq!(ex.name, name);
        assert_eq!((ex.width(), ex.height()), (427, 240));
        assert_eq!(class_counts(&ex.class, 2), counts, "{name}");
        assert_eq!(ex.instance, ex.class, "{name}");
        assert_eq!(weighted_sum(&ex.instance), sum, "{name}");
        let mask = ds.load_mask(seq, t).unwrap();
        assert_eq!(mask, ex.class.iter().map(|&c| c == 1).collect::<Vec<bool>>());
    }
}

#[test]
fn davis_foreground_total_matches_python() {
    let Some(root) = shared("davis_foreground_total_matches_python") else { return };
    let ds = Davis::open(&root.join("davis2016")).unwrap();
    let (mut frames, mut foreground) = (0usize, 0usize);
    for seq in ds.sequences() {
        for t in 0..ds.frames(seq) {
            foreground += ds.load_mask(seq, t).unwrap().iter().filter(|&&m| m).count();
            frames += 1;
        }
    }
    assert_eq!((frames, foreground), (1086, 9588165));
}

#[test]
fn davis_errors_name_what_is_wrong() {
    let scratch = Scratch::new("davis");
    let missing = scratch.0.join("no-such-davis");
    let msg = Davis::open(&missing).unwrap_err().to_string();
    assert!(msg.contains(&missing.display().to_string()) && msg.contains("not found"), "{msg}");
    let msg = Davis::open(&scratch.0).unwrap_err().to_string();
    assert!(msg.contains(&scratch.0.display().to_string()) && msg.contains("no sequences"), "{msg}");

    let seq = scratch.0.join("seq");
    std::fs::create_dir_all(seq.join("images")).unwrap();
    std::fs::create_dir_all(seq.join("masks")).unwrap();
    std::fs::create_dir_all(scratch.0.join("stray")).unwrap(); // no images/: not a sequence
    image::RgbImage::new(4, 3)
        .save_with_format(seq.join("images/00000.jpg"), image::ImageFormat::Jpeg)
        .unwrap();
    image::RgbImage::new(4, 3)
        .save_with_format(seq.join("images/00001.jpg"), image::ImageFormat::Jpeg)
        .unwrap();
    // Frame 0: an 8-bit 0/255 mask (DAVIS's own are 1-bit, see label_pngs_read_like_pil); frame 1: wrong size.
    save_gray(&seq.join("masks/00000.png"), 4, 3, &[0, 255, 255, 0, 0, 0, 0, 255, 255, 255, 0, 0]);
    save_gray(&seq.join("masks/00001.png"), 3, 3, &[0; 9]);

    let ds = Davis::open(&scratch.0).unwrap();
    assert_eq!(ds.sequences(), ["seq"]);
    assert_eq!(ds.frames("seq"), 2);
    assert_eq!(ds.frames("other"), 0);
    let ex = ds.load("seq", 0).unwrap();
    assert_eq!(ex.name, "seq/00000");
    assert_eq!(ex.class, [0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0]);
    let msg = ds.load("seq", 1).unwrap_err().to_string();
    assert!(
        msg.contains(&seq.join("masks/00001.png").display().to_string()) && msg.contains("size 3x3"),
        "{msg}"
    );
    let msg = ds.load("seq", 2).unwrap_err().to_string();
    assert!(msg.contains("index 2") && msg.contains("seq"), "{msg}");
    let msg = ds.load("other", 0).unwrap_err().to_string();
    assert!(msg.contains("\"other\"") && msg.contains(&scratch.0.display().to_string()), "{msg}");
    assert!(matches!(ds.split("test"), Err(DataError::BadSplit { .. })));
}

#[test]
fn label_pngs_read_like_pil() {
    // 1-bit gray -> 0/1 (PIL mode "1"); 8-bit gray raw; palette -> indices; 16-bit gray raw.
    let Some(root) = shared("label_pngs_read_like_pil") else { return };
    let mask = read_label_png(&root.join("davis2016/blackswan/masks/00000.png")).unwrap();
    assert_eq!((mask.width, mask.height), (427, 240));
    assert_eq!(mask.values.iter().filter(|&&v| v == 1).count(), 10343);
    assert!(mask.values.iter().all(|&v| v <= 1));

    let scratch = Scratch::new("png");
    let path = scratch.0.join("wide.png");
    image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(3, 1, vec![0, 300, 65535])
        .unwrap()
        .save(&path)
        .unwrap();
    assert_eq!(read_label_png(&path).unwrap().values, [0, 300, 65535]);
    let path = scratch.0.join("rgba.png");
    image::RgbaImage::new(2, 2).save(&path).unwrap();
    let msg = read_label_png(&path).unwrap_err().to_string();
    assert!(msg.contains("rgba.png") && msg.contains("single-channel"), "{msg}");
    let path = scratch.0.join("text.png");
    std::fs::write(&path, b"hello").unwrap();
    let msg = read_label_png(&path).unwrap_err().to_string();
    assert!(msg.contains("text.png") && msg.contains("not a readable PNG"), "{msg}");
}

/// coco128-seg held-out images as `coco128.py` (PIL) rasterises them: object pixels and visible
/// instances. Regenerate: `d = Coco128("val")`; per item `((ex.inst > 0).sum(),
/// len(np.unique(ex.inst)) - 1)`. The Rust fill follows PIL's but is not bit-identical.
const COCO128_VAL: [(&str, u64, usize); 16] = [
    ("000000000590", 1875, 2),
    ("000000000595", 14492, 1),
    ("000000000597", 9961, 7),
    ("000000000599", 226942, 5),
    ("000000000605", 293143, 4),
    ("000000000612", 89606, 11),
    ("000000000620", 105893, 2),
    ("000000000623", 157009, 4),
    ("000000000625", 32092, 4),
    ("000000000626", 2044, 2),
    ("000000000629", 16692, 1),
    ("000000000634", 28992, 6),
    ("000000000636", 99230, 1),
    ("000000000641", 75889, 12),
    ("000000000643", 55918, 20),
    ("000000000650", 119998, 2),
];

#[test]
fn coco128_held_out_images_match_the_python_rasterisation() {
    use pix2seqd::data::coco128::{Coco128, COCO80};
    let Some(root) = shared("coco128_held_out_images_match_the_python_rasterisation") else { return };
    let dir = root.join("coco128-seg");
    let (train, val, all) = (
        Coco128::open(&dir, "train").unwrap(),
        Coco128::open(&dir, "val").unwrap(),
        Coco128::open(&dir, "all").unwrap(),
    );
    assert_eq!((train.len(), val.len(), all.len()), (112, 16, 128));
    assert_eq!(val.names(), &all.names()[112..]);
    let mut differing = 0u64;
    let mut total = 0u64;
    for (i, &(name, pixels, instances)) in COCO128_VAL.iter().enumerate() {
        let ex = val.load(i).unwrap();
        assert_eq!(ex.name, name);
        let object_pixels = ex.instance.iter().filter(|&&v| v != 0).count() as u64;
        differing += object_pixels.abs_diff(pixels);
        total += pixels;
        assert!(
            object_pixels.abs_diff(pixels) * 50 <= pixels,
            "{name}: {object_pixels} object pixels, PIL {pixels}"
        );
        let mut ids: Vec<u32> = ex.instance.iter().copied().filter(|&v| v != 0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), instances, "{name}: visible instances");
        assert!(ex
            .class
            .iter()
            .zip(&ex.instance)
            .all(|(&c, &i)| (c == 0) == (i == 0) && c as usize <= COCO80.len()));
    }
    assert!(differing * 200 <= total, "object pixels differ from PIL's by {differing} of {total}");
    assert!(matches!(Coco128::open(&dir, "test"), Err(DataError::BadSplit { .. })));
    assert!(matches!(val.load(16), Err(DataError::Index { .. })));
}

/// coco128-seg's two images without a label file show no object and load all void; its two label
/// files without an image belong to no split; any other image without labels is an error that
/// names the file.
#[test]
fn coco128_background_images_and_orphan_labels_are_handled_explicitly() {
    use pix2seqd::data::coco128::{Coco128, BACKGROUND_IMAGES};
    let Some(root) = shared("coco128_background_images_and_orphan_labels_are_handled_explicitly") else {
        return;
    };
    let dir = root.join("coco128-seg");
    let all = Coco128::open(&dir, "all").unwrap();
    assert_eq!(all.orphan_labels().unwrap(), ["000000000656", "000000000659"]);
    assert!(all.names().iter().all(|n| !n.ends_with("656") && !n.ends_with("659")));
    for name in BACKGROUND_IMAGES {
        let i = all.names().iter().position(|n| n == name).expect("a background image is in the split");
        let ex = all.load(i).unwrap();
        assert!(
            ex.class.iter().all(|&c| c == 0) && ex.instance.iter().all(|&v| v == 0),
            "{name} is not all void"
        );
    }
    // A copy with one labelled image whose label file is gone.
    let tmp = std::env::temp_dir().join(format!("pix2seqd-coco128-{}", std::process::id()));
    std::fs::create_dir_all(tmp.join("images")).unwrap();
    std::fs::create_dir_all(tmp.join("labels")).unwrap();
    for name in all.names().iter().take(VAL_PLUS_ONE) {
        std::fs::copy(
            dir.join("images").join(format!("{name}.jpg")),
            tmp.join("images").join(format!("{name}.jpg")),
        )
        .unwrap();
    }
    let copy = Coco128::open(&tmp, "all").unwrap();
    let err = copy.load(0).unwrap_err().to_string();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(err.contains(&format!("{}.txt", all.names()[0])), "{err}");
}

/// Enough images for a split to exist (more than the 16 held out).
const VAL_PLUS_ONE: usize = 17;
