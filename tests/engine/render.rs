use crate::common;

use common::{gpu, Rand};
use pix2seqd::geometry::Letterbox;
use pix2seqd::ops::render::{self, cpu, default_color, pack_palette};

const WHITE: u32 = 0xFFFF_FFFF;

fn rgba(px: u32) -> [u8; 4] {
    px.to_le_bytes()
}

fn pack(r: u8, g: u8, b: u8, a: u8) -> u32 {
    u32::from_le_bytes([r, g, b, a])
}

#[test]
fn default_colors_match_panoptic_py() {
    // python3 -c "from pix2seqd_train.panoptic import default_color
    // print([default_color(i) for i in [0, 1, 2, 3, 7, 80, 133, 255, 1000]])"
    let want: [(u32, [u8; 3]); 9] = [
        (0, [229, 80, 80]),
        (1, [80, 123, 229]),
        (2, [167, 229, 80]),
        (3, [229, 80, 210]),
        (7, [86, 229, 80]),
        (80, [80, 229, 178]),
        (133, [200, 229, 80]),
        (255, [80, 141, 229]),
        (1000, [229, 110, 80]),
    ];
    for (id, rgb) in want {
        assert_eq!(default_color(id), rgb, "class {id}");
    }
    assert_eq!(pack_palette(&[[1, 2, 3], [255, 0, 128]]), [0xFF03_0201, 0xFF80_00FF]);
}

#[test]
fn outlines_follow_instance_boundaries() {
    // Segments (class, instance), row-major 3x3:
    //   (1,1) (1,1) (2,1)
    //   (1,1) (0,7) (2,1)
    //   (1,2) (1,2) (2,1)
    // A pixel is an outline when it is not void and its right or lower neighbour differs; void
    // compares by class only (instance ids of void pixels do not matter).
    let class = [1, 1, 2, 1, 0, 2, 1, 1, 2];
    let instance = [1, 1, 1, 1, 7, 1, 2, 2, 1];
    let want = [
        false, true, false, // (0,0): right and below are (1,1); (0,1): right is class 2
        true, false, false, // (1,0): right void, below (1,2); (1,1) void; (1,2) same below
        false, true, false, // (2,0): right same, no below; (2,1): right class 2
    ];
    assert_eq!(cpu::outlines(&class, &instance, 3, 3), want);
    // Void pixels are never outlines, even next to segments, and two void pixels with different
    // instance ids are the same (void) segment; a segment pixel next to void is an outline.
    assert_eq!(cpu::outlines(&[0, 0, 3, 0], &[1, 2, 1, 0], 2, 2), [false, false, true, false]);
    // Same class, other instance: an edge; last row/column only look right/down.
    assert_eq!(cpu::outlines(&[4, 4, 4, 4], &[1, 2, 1, 2], 2, 2), [true, false, true, false]);
}

#[test]
fn overlay_colours_void_passthrough_and_shading() {
    // 2x2 identity mapping; opacity 0.5. Palette: void, stuff class 1 (red), thing class 2 (blue).
    let image = [pack(10, 20, 30, 0), pack(40, 50, 60, 7), pack(70, 80, 90, 100), pack(100, 110, 120, 255)];
    let palette = pack_palette(&[[0, 0, 0], [200, 0, 0], [0, 0, 100]]);
    let isthing = [0, 0, 1];
    let lb = Letterbox::identity(2, 2);
    // One stuff segment over the whole map: no outlines.
    let out = cpu::overlay(&image, &[1, 1, 1, 1], &[3, 3, 3, 3], 2, 2, &lb, &palette, &isthing, 0.5, true);
    // image·0.5 + (200, 0, 0)·0.5, rounded half up; alpha 255.
    assert_eq!(
        out.iter().map(|&p| rgba(p)).collect::<Vec<_>>(),
        [[105, 10, 15, 255], [120, 25, 30, 255], [135, 40, 45, 255], [150, 55, 60, 255]]
    );
    // All void: the image itself with alpha 255.
    let out = cpu::overlay(&image, &[0; 4], &[5, 0, 9, 1], 2, 2, &lb, &palette, &isthing, 0.5, true);
    assert_eq!(out, image.map(|p| p | 0xFF00_0000));
    // A thing instance: (3·class colour + 5·hue_color(id) + 4) / 8; opacity 1 shows it as is.
    let want = render::segment_color([0, 0, 100], true, 5);
    let out = cpu::overlay(&image, &[2; 4], &[5; 4], 2, 2, &lb, &palette, &isthing, 1.0, true);
    assert!(out.iter().all(|&p| rgba(p)[..3] == want), "{:x?} vs {want:?}", out);
    // Class ids past the palette use its last entry (as colorize clips), with its isthing flag.
    let out = cpu::overlay(&image, &[9; 4], &[5; 4], 2, 2, &lb, &palette, &isthing, 1.0, true);
    assert!(out.iter().all(|&p| rgba(p)[..3] == want), "{:x?}", out);
    // A thing pixel without an instance id keeps the class colour.
    let out = cpu::overlay(&image, &[2; 4], &[0; 4], 2, 2, &lb, &palette, &isthing, 1.0, true);
    assert!(out.iter().all(|&p| rgba(p) == [0, 0, 100, 255]), "{:x?}", out);
    // Outlines are white; the void pixel stays the image.
    //   (1,1) (2,5)
    //   (0,0) (2,5)
    let out = cpu::overlay(&image, &[1, 2, 0, 2], &[1, 5, 0, 5], 2, 2, &lb, &palette, &isthing, 0.0, true);
    assert_eq!(out, [WHITE, pack(40, 50, 60, 255), pack(70, 80, 90, 255), pack(100, 110, 120, 255)]);
}

#[test]
fn instance_colours_are_distinct_and_class_tinted() {
    // hue_color(id): hue frac(id·0.618…) from the top 16 bits of id·0x9E3779B9, HSV in integers.
    // id 1: 0x9E37 → h6 = 0x9E37·6 = 0x3B54A, sector 3 (blue–cyan), f = 0xB54A → green falls to 112.
    assert_eq!(render::hue_color(1), [60, 112, 235]);
    assert_eq!(render::hue_color(0), [235, 60, 60]);
    // Every colour is saturated: one channel at 235, one at 60.
    for id in (0..5000u32).chain([65_535, 1 << 20, 123_456_789, u32::MAX]) {
        let c = render::hue_color(id);
        assert!(c.contains(&235) && c.contains(&60), "id {id}: {c:?}");
    }
    // Instances 1..=12 of one class (what a crowded photo gives): pairwise clearly different.
    let red = [229, 80, 80];
    let colours: Vec<[u8; 3]> = (1..=12).map(|id| render::segment_color(red, true, id)).collect();
    for (a, ca) in colours.iter().enumerate() {
        for (b, cb) in colours.iter().enumerate().skip(a + 1) {
            let d: i32 = ca.iter().zip(cb).map(|(x, y)| (*x as i32 - *y as i32).abs()).sum();
            assert!(d >= 24, "instances {} and {} look alike: {ca:?} {cb:?}", a + 1, b + 1);
        }
    }
    // Tinted by the class: the same id in two classes differs, 3/8 of the way to the class colour.
    let blue = [80, 123, 229];
    assert_ne!(render::segment_color(red, true, 3), render::segment_color(blue, true, 3));
    let hue = render::hue_color(3);
    for c in 0..3 {
        let want = (3 * red[c] as u32 + 5 * hue[c] as u32 + 4) / 8;
        assert_eq!(render::segment_color(red, true, 3)[c] as u32, want);
    }
    // Stuff, and things without an id, keep the class colour.
    assert_eq!(render::segment_color(red, false, 7), red);
    assert_eq!(render::segment_color(red, true, 0), red);
    // The overlay draws exactly segment_color at opacity 1 (what the page reports per segment).
    let lb = Letterbox::identity(1, 1);
    let palette = pack_palette(&[[0, 0, 0], red]);
    for id in [1u32, 2, 9, 1000, u32::MAX] {
        let out = rgba(cpu::overlay(&[0], &[1], &[id], 1, 1, &lb, &palette, &[0, 1], 1.0, true)[0]);
        assert_eq!(out[..3], render::segment_color(red, true, id), "id {id}");
    }
}

#[test]
fn unletterbox_maps_original_pixels_through_content_and_canvas() {
    // Orig 2x4 on a 4x4 canvas (content 2x4, two padding rows), maps 2x2: original rows 0 and 1
    // both sample map row 0 ((2y + 1)·2 / 8 < 1), columns 0,1 -> 0 and 2,3 -> 1; map row 1 is
    // padding and never shows.
    let lb = Letterbox { orig_h: 2, orig_w: 4, canvas_h: 4, canvas_w: 4, content_h: 2, content_w: 4 };
    let (c, i) = cpu::unletterbox(&[1, 2, 3, 4], &[5, 6, 7, 8], 2, 2, &lb);
    assert_eq!(c, [1, 1, 2, 2, 1, 1, 2, 2]);
    assert_eq!(i, [5, 5, 6, 6, 5, 5, 6, 6]);
    // Downscale to the original: 37x53 on a 32x32 canvas (content 22x32), maps 8x8. Row y maps to
    // content row ⌊(2y + 1)·22 / 74⌋, then map row ⌊(2r + 1)·8 / 64⌋ ≤ 5 (rows 6, 7 are padding).
    let lb = Letterbox::fit(37, 53, 32, 32).unwrap();
    let class: Vec<u32> = (0..64).collect();
    let (c, _) = cpu::unletterbox(&class, &class, 8, 8, &lb);
    assert_eq!(c[0], 0);
    assert_eq!(c[36 * 53 + 52], 5 * 8 + 7);
    assert!(c.iter().all(|&v| v < 48));
    // Identity.
    let lb = Letterbox::identity(3, 2);
    assert_eq!(cpu::unletterbox(&[1, 2, 3, 4, 5, 6], &[0; 6], 3, 2, &lb).0, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn overlay_matches_cpu() {
    let gpu = gpu();
    let mut r = Rand::new("overlay");
    let (oh, ow) = (r.range(1, 90), r.range(1, 90));
    let cases = [
        (Letterbox::fit(37, 53, 32, 32).unwrap(), 8usize, 8usize, 0.6f32),
        (Letterbox::identity(29, 31), 29, 31, 0.5),
        (Letterbox::fit(480, 640, 512, 512).unwrap(), 128, 128, 1.0),
        (Letterbox::fit(1, 1, 4, 4).unwrap(), 1, 1, 0.3),
        (Letterbox::fit(7, 300, 64, 64).unwrap(), 16, 16, 0.0),
        (
            Letterbox::fit(oh, ow, r.range(1, 64), r.range(1, 64)).unwrap(),
            r.range(1, 40),
            r.range(1, 40),
            r.uniform(0.0, 1.0),
        ),
    ];
    let classes = 6usize;
    // Palette channels ≤ 150 and image channels ≤ 200 keep coloured pixels off pure white, so the
    // white pixels are exactly the outlines.
    let mut colors: Vec<[u8; 3]> =
        (0..classes as u32).map(|k| default_color(k).map(|v| v.min(150))).collect();
    colors[0] = [0, 0, 0];
    let palette_words = pack_palette(&colors);
    let isthing_words: Vec<u32> = vec![0, 0, 1, 1, 0, 1];
    let palette = gpu.upload_u32(&[classes], &palette_words).unwrap();
    let isthing = gpu.upload_u32(&[classes], &isthing_words).unwrap();
    let mut worst = 0i32;
    for (case, (lb, mh, mw, opacity)) in cases.into_iter().enumerate() {
        // Every other case without outlines: the flag must switch them off on both paths.
        let outline = case % 2 == 0;
        let image_words: Vec<u32> = (0..lb.orig_h * lb.orig_w)
            .map(|_| {
                pack(
                    r.range(0, 200) as u8,
                    r.range(0, 200) as u8,
                    r.range(0, 200) as u8,
                    r.range(0, 255) as u8,
                )
            })
            .collect();
        // Classes up to 7 (past the palette's 6), instance ids small so neighbours often agree.
        let class_words: Vec<u32> = (0..mh * mw).map(|_| r.range(0, 7) as u32).collect();
        let instance_words: Vec<u32> = (0..mh * mw)
            .map(|_| if r.range(0, 9) == 0 { r.next_u64() as u32 } else { r.range(0, 3) as u32 })
            .collect();
        let image = gpu.upload_u32(&[lb.orig_h, lb.orig_w], &image_words).unwrap();
        let class = gpu.upload_u32(&[mh, mw], &class_words).unwrap();
        let instance = gpu.upload_u32(&[mh, mw], &instance_words).unwrap();
        let mut f = gpu.frame();
        let out =
            render::overlay(&mut f, &image, &class, &instance, &lb, &palette, &isthing, opacity, outline)
                .unwrap();
        f.submit();
        assert_eq!(out.shape(), [lb.orig_h, lb.orig_w]);
        let got = gpu.read_u32_blocking(&out).unwrap();
        let want = cpu::overlay(
            &image_words,
            &class_words,
            &instance_words,
            mh,
            mw,
            &lb,
            &palette_words,
            &isthing_words,
            opacity,
            outline,
        );
        let name = format!(
            "{}x{} via {}x{} canvas {}x{}, maps {mh}x{mw}, opacity {opacity}, outline {outline}",
            lb.orig_h, lb.orig_w, lb.content_h, lb.content_w, lb.canvas_h, lb.canvas_w
        );
        let mut case_worst = 0;
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            let d =
                rgba(*g).iter().zip(rgba(*w)).map(|(a, b)| (*a as i32 - b as i32).abs()).max().unwrap_or(0);
            assert!(d <= 1, "{name}: pixel {k} is {:?}, cpu {:?}", rgba(*g), rgba(*w));
            assert_eq!(rgba(*g)[3], 255, "{name}: alpha of pixel {k}");
            case_worst = case_worst.max(d);
        }
        let (mc, mi) = cpu::unletterbox(&class_words, &instance_words, mh, mw, &lb);
        let outline_count = if outline {
            cpu::outlines(&mc, &mi, lb.orig_h, lb.orig_w).iter().filter(|&&e| e).count()
        } else {
            0
        };
        let white = |v: &[u32]| v.iter().filter(|&&p| p == WHITE).count();
        eprintln!("{name}: max channel diff {case_worst}, {outline_count} outline pixels");
        assert_eq!(white(&got), outline_count, "{name}: GPU outline pixels");
        assert_eq!(white(&want), outline_count, "{name}: CPU outline pixels");
        worst = worst.max(case_worst);
    }
    eprintln!("overlay GPU vs CPU: worst channel difference {worst}");
}

#[test]
fn bad_inputs_are_errors_naming_the_op() {
    let gpu = gpu();
    let image = gpu.upload_u32(&[2, 3], &[0; 6]).unwrap();
    let maps = gpu.upload_u32(&[2, 2], &[0; 4]).unwrap();
    let maps3 = gpu.upload_u32(&[2, 3], &[0; 6]).unwrap();
    let palette = gpu.upload_u32(&[3], &[0; 3]).unwrap();
    let isthing = gpu.upload_u32(&[3], &[0; 3]).unwrap();
    let isthing2 = gpu.upload_u32(&[2], &[0; 2]).unwrap();
    let empty = gpu.upload_u32(&[0], &[]).unwrap();
    let floats = gpu.upload(&[2, 2], &[0.0; 4]).unwrap();
    let lb = Letterbox::identity(2, 3);
    let mut f = gpu.frame();
    let cases = [
        render::overlay(
            &mut f,
            &image,
            &maps,
            &maps,
            &Letterbox::identity(3, 2),
            &palette,
            &isthing,
            0.5,
            true,
        ), // image shape
        render::overlay(&mut f, &image, &maps, &maps3, &lb, &palette, &isthing, 0.5, true), // maps differ
        render::overlay(&mut f, &image, &floats, &floats, &lb, &palette, &isthing, 0.5, true), // f32 maps
        render::overlay(&mut f, &image, &maps, &maps, &lb, &palette, &isthing2, 0.5, true), // isthing length
        render::overlay(&mut f, &image, &maps, &maps, &lb, &empty, &empty, 0.5, true),      // no classes
        render::overlay(&mut f, &image, &maps, &maps, &lb, &palette, &isthing, 1.5, true),  // opacity
        render::overlay(&mut f, &image, &maps, &maps, &lb, &palette, &isthing, f32::NAN, true),
        render::overlay(
            &mut f,
            &image,
            &maps.reshape(&[4]),
            &maps.reshape(&[4]),
            &lb,
            &palette,
            &isthing,
            0.5,
            true,
        ),
        render::overlay(
            &mut f,
            &image,
            &maps,
            &maps,
            &Letterbox { orig_h: 2, orig_w: 3, canvas_h: 2, canvas_w: 3, content_h: 2, content_w: 4 },
            &palette,
            &isthing,
            0.5,
            true,
        ),
    ];
    for (k, c) in cases.into_iter().enumerate() {
        let err = c.unwrap_err().to_string();
        assert!(err.starts_with("overlay:"), "case {k}: {err}");
    }
    assert!(f.is_empty());
    assert!(render::overlay(&mut f, &image, &maps, &maps, &lb, &palette, &isthing, 0.5, true).is_ok());
}
