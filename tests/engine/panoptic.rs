//! Post-processing (majority vote, minimum area, stuff merge), letterbox geometry, segment
//! numbering and COCO panoptic I/O, on hand-computed cases that follow panoptic.py and
//! data/common.py.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pix2seqd::panoptic::{
    id2rgb, load_panoptic_json, majority_vote, merge_stuff, postprocess, read_panoptic_png, resize_nearest,
    rgb2id, segments, thing_vote, to_coco_panoptic, unletterbox, write_panoptic_png, ImageId, Letterbox,
    PanopticError, PanopticJsonWriter, PanopticMap, Postprocess, Segment,
};

/// A map from rows of class ids and rows of instance ids.
fn map(class: &[&[u32]], instance: &[&[u32]]) -> PanopticMap {
    let h = class.len();
    let w = class.first().map_or(0, |r| r.len());
    PanopticMap::new(h, w, class.concat(), instance.concat()).unwrap()
}

/// An `h x w` map filled by `f(row, col) -> (class, instance)`.
fn map_fn(h: usize, w: usize, f: impl Fn(usize, usize) -> (u32, u32)) -> PanopticMap {
    let (class, instance) = (0..h * w).map(|i| f(i / w, i % w)).unzip();
    PanopticMap::new(h, w, class, instance).unwrap()
}

fn rows(values: &[u32], w: usize) -> Vec<Vec<u32>> {
    values.chunks(w).map(|r| r.to_vec()).collect()
}

/// A fresh, empty directory under the system temp dir, unique to this process and call.
fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pix2seqd-test-panoptic-{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// splitmix64: a tiny deterministic PRNG for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u32 {
        (self.next() % n) as u32
    }
}

// ---- PanopticMap ------------------------------------------------------------------------------

#[test]
fn map_constructor_checks_sizes_and_names_the_buffer() {
    let err = PanopticMap::new(2, 3, vec![0; 6], vec![0; 5]).unwrap_err();
    assert!(matches!(err, PanopticError::Shape(_)));
    assert!(
        err.to_string().contains("instance map has 5 values") && err.to_string().contains("2x3"),
        "{err}"
    );
    let err = PanopticMap::new(2, 3, vec![0; 7], vec![0; 6]).unwrap_err();
    assert!(err.to_string().contains("class map has 7 values"), "{err}");
    let m = PanopticMap::new(2, 3, (0..6).collect(), vec![1; 6]).unwrap();
    assert_eq!(m.get(1, 2), Some((5, 1)));
    assert_eq!(m.get(2, 0), None);
}

// ---- majority vote and minimum area -----------------------------------------------------------

#[test]
fn majority_vote_and_min_area() {
    // panoptic.py's test: id 1 on rows 0-4 (50 px: 30 of class 2, 20 of class 3) -> all class 2;
    // id 2 on rows 5-7 (30 px < 40) -> void; rows 8-9 have id 0 with class 5 -> void.
    let m = map_fn(10, 10, |r, _| match r {
        0..=2 => (2, 1),
        3..=4 => (3, 1),
        5..=7 => (4, 2),
        _ => (5, 0),
    });
    let out = majority_vote(&m, 40);
    let expected = map_fn(10, 10, |r, _| if r < 5 { (2, 1) } else { (0, 0) });
    assert_eq!(out, expected);
}

#[test]
fn majority_vote_ties_go_to_the_smaller_class_and_void_votes() {
    // id 1: two votes for class 1, two for class 2 -> class 1 (the smaller id).
    let out = majority_vote(&map(&[&[1, 1, 2, 2]], &[&[1, 1, 1, 1]]), 1);
    assert_eq!(out.class, vec![1, 1, 1, 1]);
    assert_eq!(out.instance, vec![1, 1, 1, 1]);
    // id 1: three votes for class 3, one void vote -> class 3 everywhere, the void pixel included.
    let out = majority_vote(&map(&[&[3, 3, 3, 0]], &[&[1, 1, 1, 1]]), 1);
    assert_eq!(out.class, vec![3, 3, 3, 3]);
    // id 7: two void votes, two for class 5 -> tie -> void (class 0 < 5), so the id becomes 0.
    let out = majority_vote(&map(&[&[0, 0, 5, 5]], &[&[7, 7, 7, 7]]), 1);
    assert_eq!(out.class, vec![0, 0, 0, 0]);
    assert_eq!(out.instance, vec![0, 0, 0, 0]);
}

#[test]
fn majority_vote_min_pixels_is_inclusive_and_ids_are_kept() {
    // id 9: 3 px, id 4: 2 px. With min_pixels 3, id 9 stays (3 is not < 3) and id 4 goes void.
    let m = map(&[&[6, 6, 6, 2, 2]], &[&[9, 9, 9, 4, 4]]);
    let out = majority_vote(&m, 3);
    assert_eq!(out.class, vec![6, 6, 6, 0, 0]);
    assert_eq!(out.instance, vec![9, 9, 9, 0, 0]);
    // ids are not renumbered, and large ids (as read from a PNG) work.
    let m = map(&[&[1, 1, 2]], &[&[4_000_000_000, 4_000_000_000, 5]]);
    let out = majority_vote(&m, 1);
    assert_eq!(out.instance, vec![4_000_000_000, 4_000_000_000, 5]);
    assert_eq!(out.class, vec![1, 1, 2]);
}

// ---- stuff merge ------------------------------------------------------------------------------

#[test]
fn merge_stuff_gives_each_stuff_class_its_largest_segments_id() {
    // panoptic.py's test: class 1 is stuff (ids 4: 2 px, 7: 1 px -> 4), class 2 is a thing.
    let out = merge_stuff(&map(&[&[1, 1, 1, 2, 2, 2]], &[&[4, 4, 7, 8, 9, 9]]), &[false, false, true]);
    assert_eq!(out.instance, vec![4, 4, 4, 8, 9, 9]);
    assert_eq!(out.class, vec![1, 1, 1, 2, 2, 2]);
}

#[test]
fn merge_stuff_ties_take_the_smaller_id_and_unknown_classes_are_stuff() {
    // class 1 (stuff): ids 6 and 3 have 2 px each -> 3.
    let out = merge_stuff(&map(&[&[1, 1, 1, 1]], &[&[6, 6, 3, 3]]), &[false, false]);
    assert_eq!(out.instance, vec![3, 3, 3, 3]);
    // class 5 is beyond isthing (len 2): stuff, as in panoptic.py; id 1 has 2 px, id 2 has 1.
    // Void pixels keep their id.
    let out = merge_stuff(&map(&[&[5, 5, 5, 0]], &[&[2, 1, 1, 8]]), &[false, true]);
    assert_eq!(out.instance, vec![1, 1, 1, 8]);
}

// ---- resize, letterbox ------------------------------------------------------------------------

#[test]
fn resize_nearest_samples_pixel_centres() {
    // 2x3 -> 4x5: rows (i + 0.5) * 2/4 = 0.25, 0.75, 1.25, 1.75 -> 0, 0, 1, 1;
    // cols (j + 0.5) * 3/5 = 0.3, 0.9, 1.5, 2.1, 2.7 -> 0, 0, 1, 2, 2.
    let m = map(&[&[1, 2, 3], &[4, 5, 6]], &[&[11, 12, 13], &[14, 15, 16]]);
    let out = resize_nearest(&m, 4, 5);
    assert_eq!((out.height, out.width), (4, 5));
    assert_eq!(
        rows(&out.class, 5),
        vec![vec![1, 1, 2, 3, 3], vec![1, 1, 2, 3, 3], vec![4, 4, 5, 6, 6], vec![4, 4, 5, 6, 6]]
    );
    assert_eq!(out.instance[7], 12);
    // 5x5 -> 2x2: (i + 0.5) * 2.5 = 1.25, 3.75 -> rows and cols 1 and 3.
    let m = map_fn(5, 5, |r, c| ((r * 5 + c) as u32, 0));
    assert_eq!(resize_nearest(&m, 2, 2).class, vec![6, 8, 16, 18]);
}

#[test]
fn letterbox_fit_rounds_like_python() {
    // 427x640 on 512x512: scale = min(512/427, 512/640) = 0.8; 427 * 0.8 = 341.6 -> 342; 640 * 0.8 = 512.
    let lb = Letterbox::fit(427, 640, 512, 512).unwrap();
    assert_eq!(
        (lb.content_h, lb.content_w, lb.canvas_h, lb.canvas_w, lb.orig_h, lb.orig_w),
        (342, 512, 512, 512, 427, 640)
    );
    // 5x10 on 5x5: scale 0.5; 5 * 0.5 = 2.5 -> 2 (half to even); 7 * 0.5 = 3.5 -> 4.
    assert_eq!(Letterbox::fit(5, 10, 5, 5).unwrap().content_h, 2);
    assert_eq!(Letterbox::fit(7, 10, 5, 5).unwrap().content_h, 4);
    // 1x1000 on 4x4: scale 0.004; round(0.004) = 0 -> at least 1.
    let lb = Letterbox::fit(1, 1000, 4, 4).unwrap();
    assert_eq!((lb.content_h, lb.content_w), (1, 4));
    assert!(Letterbox::fit(0, 10, 4, 4).is_err());
}

#[test]
fn unletterbox_upsamples_crops_and_resizes() {
    // A 6x8 image on a 4x4 canvas: scale = min(4/6, 4/8) = 0.5 -> content 3x4.
    let lb = Letterbox::fit(6, 8, 4, 4).unwrap();
    assert_eq!((lb.content_h, lb.content_w), (3, 4));
    // The mask is at canvas resolution, value r * 4 + c. Crop rows 0-2, then 3x4 -> 6x8:
    // rows (i + 0.5) * 0.5 -> 0,0,1,1,2,2; cols -> 0,0,1,1,2,2,3,3.
    let mask = map_fn(4, 4, |r, c| ((r * 4 + c) as u32, 1));
    let out = unletterbox(&mask, &lb);
    assert_eq!((out.height, out.width), (6, 8));
    let expected = map_fn(6, 8, |r, c| (((r / 2) * 4 + c / 2) as u32, 1));
    assert_eq!(out, expected);

    // A 3x4 image on a 4x4 canvas (scale 1, content 3x4) with a 2x2 mask: upsampling repeats each
    // mask pixel 2x2 (rows (i + 0.5) * 0.5 -> 0,0,1,1), the crop keeps rows 0-2, the last resize
    // is the identity.
    let lb = Letterbox::fit(3, 4, 4, 4).unwrap();
    let out = unletterbox(&map(&[&[1, 2], &[3, 4]], &[&[5, 6], &[7, 8]]), &lb);
    assert_eq!(rows(&out.class, 4), vec![vec![1, 1, 2, 2], vec![1, 1, 2, 2], vec![3, 3, 4, 4]]);
    assert_eq!(rows(&out.instance, 4), vec![vec![5, 5, 6, 6], vec![5, 5, 6, 6], vec![7, 7, 8, 8]]);
}

#[test]
fn postprocess_is_unletterbox_vote_then_merge() {
    // 2x2 mask on a 4x4 canvas for a 4x4 image: every mask pixel becomes a 2x2 block (4 px).
    // Class 1 is a thing, class 2 stuff. Ids 5 and 6 (class 2, 4 px each) merge into 5 (tie ->
    // smaller id); id 3 (class 1) stays; id 0 is void.
    let mask = map(&[&[2, 2], &[1, 1]], &[&[5, 6], &[3, 0]]);
    let lb = Letterbox::fit(4, 4, 4, 4).unwrap();
    let isthing = [false, true, false];
    let out = postprocess(&mask, &lb, &isthing, 4, Postprocess::MajorityVote);
    let expected = map_fn(4, 4, |r, c| match (r < 2, c < 2) {
        (true, _) => (2, 5),
        (false, true) => (1, 3),
        (false, false) => (0, 0),
    });
    assert_eq!(out, expected);
    // With min_pixels 5 every 4-pixel id is too small: all void.
    assert_eq!(postprocess(&mask, &lb, &isthing, 5, Postprocess::MajorityVote), PanopticMap::void(4, 4));
}

#[test]
fn thing_vote_postprocess_runs_at_the_original_resolution() {
    // The same 2x2 mask: stuff class 2 with ids 5 and 6 is one segment (id 1, the smallest id no
    // thing keeps); the thing with id 3 keeps it, and its class's pixels without an id join it.
    let mask = map(&[&[2, 2], &[1, 1]], &[&[5, 6], &[3, 0]]);
    let lb = Letterbox::fit(4, 4, 4, 4).unwrap();
    let isthing = [false, true, false];
    let out = postprocess(&mask, &lb, &isthing, 4, Postprocess::ThingVote);
    let expected = map_fn(4, 4, |r, _| if r < 2 { (2, 1) } else { (1, 3) });
    assert_eq!(out, expected);
    // min_pixels 5: the 4-pixel id-3 fragment is loose; with the id-0 pixels it is one 8-pixel
    // thing component, which takes the smallest free id; the stuff takes the next.
    let small = postprocess(&mask, &lb, &isthing, 5, Postprocess::ThingVote);
    let expected = map_fn(4, 4, |r, _| if r < 2 { (2, 2) } else { (1, 1) });
    assert_eq!(small, expected);
    // min_pixels 9: both are too small.
    let tiny = postprocess(&mask, &lb, &isthing, 9, Postprocess::ThingVote);
    assert!(tiny.class.iter().all(|&c| c == 0));
}

/// tests/fixtures/thing_vote_case.json (written by train/pix2seqd_train/fixtures.py): a 24x32
/// map of class blocks with noisy ids and the answer of the Python twin.
#[test]
fn thing_vote_matches_the_python_twin() {
    #[derive(serde::Deserialize)]
    struct Case {
        height: usize,
        width: usize,
        min_pixels: u64,
        isthing: Vec<bool>,
        class: Vec<u32>,
        instance: Vec<u32>,
        out_class: Vec<u32>,
        out_instance: Vec<u32>,
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/thing_vote_case.json");
    let case: Case = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let input = PanopticMap::new(case.height, case.width, case.class, case.instance).unwrap();
    let out = thing_vote(&input, &case.isthing, case.min_pixels);
    assert_eq!(rows(&out.class, case.width), rows(&case.out_class, case.width));
    assert_eq!(rows(&out.instance, case.width), rows(&case.out_instance, case.width));
}

// ---- segments and COCO encoding ---------------------------------------------------------------

#[test]
fn segments_are_numbered_in_class_instance_order() {
    // pairs present: (2,1), (1,7), (1,3) -> sorted (1,3), (1,7), (2,1) -> ids 1, 2, 3.
    let m = map(&[&[0, 2, 2], &[1, 1, 2]], &[&[0, 1, 1], &[7, 3, 1]]);
    let (ids, list) = segments(&m);
    assert_eq!(ids, vec![0, 3, 3, 2, 1, 3]);
    assert_eq!(
        list,
        vec![
            Segment { id: 1, class: 1, instance: 3, area: 1, bbox: [1, 1, 1, 1] },
            Segment { id: 2, class: 1, instance: 7, area: 1, bbox: [0, 1, 1, 1] },
            // (2,1) covers (x,y) = (1,0), (2,0), (2,1): x 1..2, y 0..1.
            Segment { id: 3, class: 2, instance: 1, area: 3, bbox: [1, 0, 2, 2] },
        ]
    );
    // A class with instance 0 is still a segment (panoptic.py's segment_id_map); no void -> ids from 1.
    let (ids, list) = segments(&map(&[&[1, 2]], &[&[1, 1]]));
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(list.len(), 2);
    let (ids, list) = segments(&map(&[&[3]], &[&[0]]));
    assert_eq!((ids, list[0].class, list[0].instance), (vec![1], 3, 0));
}

#[test]
fn to_coco_panoptic_maps_classes_to_category_ids() {
    // panoptic.py's test: segments (1,5), (2,1), (2,2), (3,1) -> ids 1..4.
    let m = map(&[&[0, 1, 1], &[2, 2, 3]], &[&[0, 5, 5], &[1, 2, 1]]);
    let (ids, infos) = to_coco_panoptic(&m, &[10, 20, 30]).unwrap();
    assert_eq!(ids, vec![0, 1, 1, 2, 3, 4]);
    assert_eq!(infos.len(), 4);
    let first = &infos[0];
    assert_eq!(
        (first.id, first.category_id, first.area, first.bbox, first.iscrowd),
        (1, 10, Some(2), Some([1.0, 0.0, 2.0, 1.0]), false)
    );
    assert_eq!(infos.iter().map(|s| s.category_id).collect::<Vec<_>>(), vec![10, 20, 20, 30]);
    // Class 3 has no category id when only two are given.
    let err = to_coco_panoptic(&m, &[10, 20]).unwrap_err();
    assert!(matches!(err, PanopticError::UnknownCategory { category: 3, .. }), "{err}");
    assert!(err.to_string().contains("class 3"), "{err}");
}

#[test]
fn id2rgb_and_rgb2id() {
    assert_eq!(id2rgb(0), [0, 0, 0]);
    assert_eq!(id2rgb(1), [1, 0, 0]);
    assert_eq!(id2rgb(256), [0, 1, 0]);
    // 70000 = 1 * 65536 + 17 * 256 + 112
    assert_eq!(id2rgb(70000), [112, 17, 1]);
    assert_eq!(rgb2id([112, 17, 1]), 70000);
    assert_eq!(rgb2id([255, 255, 255]), (1 << 24) - 1);
    for id in [0u32, 1, 255, 256, 65535, 65536, 11881084, (1 << 24) - 1] {
        assert_eq!(rgb2id(id2rgb(id)), id);
    }
}

// ---- PNG I/O ----------------------------------------------------------------------------------

#[test]
fn panoptic_png_round_trip_of_a_random_map() {
    let dir = temp_dir("png");
    let mut rng = Rng(42);
    let (h, w) = (23, 37);
    // Few distinct ids, some void, over the whole 24-bit range.
    let palette: Vec<u32> = (0..6).map(|_| rng.below(1 << 24)).chain([0]).collect();
    let ids: Vec<u32> = (0..h * w).map(|_| palette[rng.below(palette.len() as u64) as usize]).collect();
    let path = dir.join("random.png");
    write_panoptic_png(&path, &ids, h, w).unwrap();
    let (rh, rw, back) = read_panoptic_png(&path).unwrap();
    assert_eq!((rh, rw), (h, w));
    assert_eq!(back, ids);
    std::fs::remove_dir_all(&dir).ok();
}

/// Write an 8-bit PNG of the given colour type straight from bytes.
fn write_raw_png(path: &Path, w: u32, h: u32, color: png::ColorType, bytes: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(bytes).unwrap();
    writer.finish().unwrap();
}

#[test]
fn panoptic_png_reads_rgba_and_rejects_grayscale_naming_the_file() {
    let dir = temp_dir("png-kinds");
    // RGBA: alpha is ignored. Pixels: id 1 (alpha 0), id 65536 + 2 (alpha 255).
    let rgba = dir.join("rgba.png");
    write_raw_png(&rgba, 2, 1, png::ColorType::Rgba, &[1, 0, 0, 0, 2, 0, 1, 255]);
    assert_eq!(read_panoptic_png(&rgba).unwrap(), (1, 2, vec![1, 65538]));

    let gray = dir.join("gray.png");
    write_raw_png(&gray, 2, 1, png::ColorType::Grayscale, &[1, 2]);
    let err = read_panoptic_png(&gray).unwrap_err();
    assert!(matches!(err, PanopticError::Png { .. }), "{err}");
    assert!(err.to_string().contains("gray.png") && err.to_string().contains("RGB"), "{err}");

    let missing = dir.join("missing.png");
    let err = read_panoptic_png(&missing).unwrap_err();
    assert!(matches!(err, PanopticError::Io { .. }) && err.to_string().contains("missing.png"), "{err}");

    let junk = dir.join("junk.png");
    std::fs::write(&junk, b"not a png").unwrap();
    let err = read_panoptic_png(&junk).unwrap_err();
    assert!(matches!(err, PanopticError::Png { .. }) && err.to_string().contains("junk.png"), "{err}");

    // Ids beyond 24 bits cannot be written.
    let err = write_panoptic_png(&dir.join("big.png"), &[1 << 24], 1, 1).unwrap_err();
    assert!(err.to_string().contains("16777216"), "{err}");
    let err = write_panoptic_png(&dir.join("short.png"), &[1, 2], 2, 2).unwrap_err();
    assert!(matches!(err, PanopticError::Shape(_)), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

// ---- panoptic.json writer and reader ----------------------------------------------------------

#[test]
fn json_writer_writes_pngs_and_annotations() {
    let dir = temp_dir("writer");
    let categories = pix2seqd::panoptic::load_categories_json(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/does-not-exist.json"),
    )
    .unwrap_err();
    assert!(categories.to_string().contains("does-not-exist.json"), "{categories}");

    let cats: Vec<pix2seqd::panoptic::Category> = serde_json::from_str(
        r#"[{"id": 1, "name": "person", "isthing": 1}, {"id": 184, "name": "tree-merged", "isthing": 0, "color": [0, 80, 0]}]"#,
    )
    .unwrap();
    let mut writer = PanopticJsonWriter::new(&dir, cats.clone());
    let a = map(&[&[1, 1, 0], &[2, 2, 2]], &[&[4, 4, 0], &[1, 1, 1]]);
    let b = map(&[&[2, 1]], &[&[1, 1]]);
    let ann = writer.add("000000000139", &a, &[1, 184]).unwrap().clone();
    assert_eq!(ann.image_id, ImageId::Int(139));
    assert_eq!(ann.file_name, "000000000139_panoptic.png");
    writer.add("street", &b, &[1, 184]).unwrap();
    let err = writer.add("street", &b, &[1, 184]).unwrap_err();
    assert!(err.to_string().contains("street"), "{err}");
    let json_path = writer.finish().unwrap();
    assert_eq!(json_path, dir.join("panoptic.json"));

    let json = load_panoptic_json(&json_path).unwrap();
    assert_eq!(json.categories, cats);
    assert_eq!(json.images.len(), 2);
    assert_eq!(json.annotations[1].image_id, ImageId::Str("street".into()));
    assert_eq!((json.images[0].height, json.images[0].width), (Some(2), Some(3)));
    // Image a: segments (1,4) -> 1 (person), (2,1) -> 2 (tree); areas 2 and 3.
    let infos = &json.annotations[0].segments_info;
    assert_eq!(
        infos.iter().map(|s| (s.id, s.category_id, s.area)).collect::<Vec<_>>(),
        vec![(1, 1, Some(2)), (2, 184, Some(3))]
    );
    let (h, w, ids) = read_panoptic_png(&dir.join("000000000139_panoptic.png")).unwrap();
    assert_eq!((h, w, ids), (2, 3, vec![1, 1, 0, 2, 2, 2]));
    // The JSON is COCO-style: flags and areas as integers.
    let text = std::fs::read_to_string(&json_path).unwrap();
    assert!(
        text.contains(r#""iscrowd":0"#)
            && text.contains(r#""isthing":1"#)
            && text.contains(r#""bbox":[0,0,2,1]"#),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn load_panoptic_json_errors_name_the_file() {
    let dir = temp_dir("bad-json");
    let path = dir.join("broken.json");
    std::fs::write(&path, r#"{"annotations": [{"image_id": 1, "segments_info": []}]}"#).unwrap();
    let err = load_panoptic_json(&path).unwrap_err();
    assert!(matches!(err, PanopticError::Json { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("broken.json") && text.contains("file_name"), "{text}");
    let err = load_panoptic_json(&dir.join("absent.json")).unwrap_err();
    assert!(err.to_string().contains("absent.json"), "{err}");

    // Categories: a bare list or an object's `categories`; a missing `isthing` is named.
    let cats = dir.join("cats.json");
    std::fs::write(&cats, r#"{"categories": [{"id": 3, "name": "sky", "isthing": 0}]}"#).unwrap();
    let list = pix2seqd::panoptic::load_categories_json(&cats).unwrap();
    assert_eq!((list[0].id, list[0].isthing), (3, false));
    std::fs::write(&cats, r#"[{"id": 3, "name": "sky"}]"#).unwrap();
    let err = pix2seqd::panoptic::load_categories_json(&cats).unwrap_err();
    assert!(err.to_string().contains("cats.json") && err.to_string().contains("isthing"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn model_cards_choose_the_postprocessing_by_name() {
    use pix2seqd::model::config::SamplerConfig;
    let default: SamplerConfig = serde_json::from_str(r#"{"steps": 1, "td": 1.0}"#).unwrap();
    assert_eq!(default.postprocess, Postprocess::MajorityVote);
    let chosen: SamplerConfig =
        serde_json::from_str(r#"{"steps": 1, "td": 1.0, "postprocess": "thing_vote"}"#).unwrap();
    assert_eq!(chosen.postprocess, Postprocess::ThingVote);
    let err = serde_json::from_str::<SamplerConfig>(r#"{"steps": 1, "td": 1.0, "postprocess": "vote"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("thing_vote"), "{err}");
    assert_eq!(Postprocess::from_name("thing-vote"), Some(Postprocess::ThingVote));
    assert_eq!(Postprocess::from_name("vote"), None);
}
