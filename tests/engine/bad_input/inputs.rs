//! Hostile weights files, paths that are no regular file, images and flags.

use std::ffi::OsStr;

use serde_json::json;

use super::cases::{case, segment, weights_case, Case};
use super::files::{self, SafeTensors, Scratch};

/// The fixture's weights as `weights` beside its card saying dtype fp16.
fn card_and_weights(s: &Scratch, name: &str, weights: Vec<u8>, needles: &[&str]) -> Case {
    let mut card = files::fixture_card();
    card["dtype"] = json!("fp16");
    let stem = files::write_model(&s.0, &super::cases::sanitize(name), &card, &weights);
    segment(s, name, &stem, needles)
}

pub fn weights_cases(s: &Scratch) -> Vec<Case> {
    let st = SafeTensors::fixture();
    let names = st.names_by_offset();
    let (first, second) = (names[0].clone(), names[1].clone());
    let edited = |edit: &dyn Fn(&mut SafeTensors)| {
        let mut copy = st.clone();
        edit(&mut copy);
        copy.to_bytes()
    };
    let mut header_len = st.to_bytes();
    header_len[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut header_2_40 = st.to_bytes();
    header_2_40[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let full = st.to_bytes();
    // A same-sized pair of tensors, so one can point at the other's bytes.
    let (a, b) = names
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            let (s0, e0) = st.range(a);
            names[i + 1..]
                .iter()
                .find(|b| st.range(b).1 - st.range(b).0 == e0 - s0)
                .map(|b| (a.clone(), b.clone()))
        })
        .expect("two tensors of one size");
    vec![
        weights_case(s, "weights: NaN in a tensor", &edited(&|w| w.set_f32(&first, 0, f32::NAN)), &[&first]),
        weights_case(
            s,
            "weights: +Inf in a tensor",
            &edited(&|w| w.set_f32(&second, 1, f32::INFINITY)),
            &[&second],
        ),
        weights_case(
            s,
            "weights: -Inf in a tensor",
            &edited(&|w| w.set_f32(&second, 0, f32::NEG_INFINITY)),
            &[&second],
        ),
        weights_case(
            s,
            "weights: overlapping byte ranges",
            &edited(&|w| {
                let range = w.header[&a]["data_offsets"].clone();
                w.header[&b]["data_offsets"] = range;
            }),
            &["overlap"],
        ),
        weights_case(
            s,
            "weights: a gap between tensors",
            &edited(&|w| {
                let (_, end) = w.range(&first);
                w.data.splice(end..end, [0u8; 4]);
                for name in w.names_by_offset().into_iter().skip(1) {
                    let (s0, e0) = w.range(&name);
                    w.header[&name]["data_offsets"] = json!([s0 + 4, e0 + 4]);
                }
            }),
            &["gap"],
        ),
        weights_case(
            s,
            "weights: 64 bytes after the last tensor",
            &edited(&|w| w.data.extend([0u8; 64])),
            &["end"],
        ),
        weights_case(s, "weights: truncated to half", &full[..full.len() / 2], &["weights file"]),
        weights_case(s, "weights: header length 2^64-1", &header_len, &["header"]),
        weights_case(s, "weights: header length 2^40", &header_2_40, &["header"]),
        weights_case(
            s,
            "weights: shape [2^40, 2^40]",
            &edited(&|w| w.header[&first]["shape"] = json!([1u64 << 40, 1u64 << 40])),
            &[&first],
        ),
        weights_case(
            s,
            "weights: dtype F64",
            &edited(&|w| w.header[&first]["dtype"] = json!("F64")),
            &["F64"],
        ),
        weights_case(
            s,
            "weights: one F32 tensor labelled F16",
            &edited(&|w| w.header[&first]["dtype"] = json!("F16")),
            &[&first],
        ),
        weights_case(s, "weights: F16 bits labelled BF16", &st.to_f16("BF16", "fp16").to_bytes(), &["BF16"]),
        card_and_weights(
            s,
            "weights: F16 bits labelled BF16, header without dtype, card fp16",
            {
                let mut f16 = st.to_f16("BF16", "fp16");
                f16.header["__metadata__"].as_object_mut().unwrap().remove("dtype");
                f16.to_bytes()
            },
            &["BF16", "fp16"],
        ),
        weights_case(
            s,
            "weights: F16 file beside an fp32 card",
            &st.to_f16("F16", "fp16").to_bytes(),
            &["dtype"],
        ),
        weights_case(
            s,
            "weights: metadata format_version 99",
            &edited(&|w| w.header["__metadata__"]["format_version"] = json!("99")),
            &["format_version"],
        ),
    ]
}

/// Paths that are no regular file: FIFOs (reading blocks forever), `/dev/zero` (endless), folders,
/// and a sparse 64 GiB weights file whose header describes 329 KB.
pub fn path_cases(s: &Scratch) -> Vec<Case> {
    let mut out = Vec::new();
    let card = files::fixture_card();
    let weights = SafeTensors::fixture().to_bytes();
    for (role, ext) in [("weights", "safetensors"), ("card", "json")] {
        for kind in ["fifo", "dev-zero", "folder"] {
            let stem = files::write_model(&s.0, &format!("{role}-{kind}"), &card, &weights);
            let path = stem.with_extension(ext);
            std::fs::remove_file(&path).unwrap();
            match kind {
                "fifo" => files::fifo(&path),
                "dev-zero" => std::os::unix::fs::symlink("/dev/zero", &path).unwrap(),
                _ => std::fs::create_dir(&path).unwrap(),
            }
            out.push(segment(s, &format!("{role} path: {kind}"), &stem, &["regular file"]));
        }
    }
    for (size, label, needle) in
        [(1u64 << 29, "512 MiB", "tensors end at byte"), (1 << 36, "64 GiB", "limit")]
    {
        let stem = files::write_model(&s.0, &format!("sparse-{size}"), &card, &weights);
        let file = std::fs::OpenOptions::new().write(true).open(stem.with_extension("safetensors")).unwrap();
        file.set_len(size).unwrap();
        out.push(segment(s, &format!("weights: sparse {label} file"), &stem, &[needle]));
    }
    out
}

pub fn image_cases(s: &Scratch) -> Vec<Case> {
    let model = std::path::Path::new(files::FIXTURE);
    let out_dir = s.path("out");
    let image = |name: &str, path: &std::path::Path, needles: &[&str]| {
        case(name, &[&"segment", &path, &"--model", &model, &"--out", &out_dir, &"--cpu"], needles)
    };
    let mut cases = Vec::new();
    for (w, h, full) in [(16000u32, 16000u32, true), (20000, 1, true), (1, 2_000_000_000, false)] {
        let path = s.path(&format!("huge-{w}x{h}.png"));
        let bytes = if full { files::huge_png(w, h) } else { files::huge_png_header(w, h) };
        std::fs::write(&path, bytes).unwrap();
        cases.push(image(&format!("image: PNG declaring {w}x{h}"), &path, &[&w.max(h).to_string()]));
    }
    let jpeg = s.path("truncated.jpg");
    std::fs::write(&jpeg, files::truncated_jpeg()).unwrap();
    cases.push(image("image: JPEG cut in half", &jpeg, &["truncated.jpg", "truncated"]));
    let empty = s.path("empty.png");
    std::fs::write(&empty, b"").unwrap();
    cases.push(image("image: empty file", &empty, &["empty.png"]));
    for kind in ["fifo", "dev-zero", "folder"] {
        let path = s.path(&format!("image-{kind}.png"));
        match kind {
            "fifo" => files::fifo(&path),
            "dev-zero" => std::os::unix::fs::symlink("/dev/zero", &path).unwrap(),
            _ => std::fs::create_dir(&path).unwrap(),
        }
        cases.push(image(&format!("image path: {kind}"), &path, &["regular file"]));
    }
    cases
}

pub fn flag_cases(s: &Scratch) -> Vec<Case> {
    let photo = s.path("photo.png");
    let out = s.path("out");
    let fig = s.path("figure.jpg");
    let model = std::path::Path::new(files::FIXTURE);
    let seg = |name: &str, flags: &[&str], needles: &[&str]| {
        let mut args: Vec<&dyn AsRef<OsStr>> =
            vec![&"segment", &photo, &"--model", &model, &"--out", &out, &"--cpu"];
        args.extend(flags.iter().map(|f| f as &dyn AsRef<OsStr>));
        case(name, &args, needles)
    };
    let cmd = |name: &str, args: &[&str], needles: &[&str]| {
        let args: Vec<&dyn AsRef<OsStr>> = args.iter().map(|a| a as &dyn AsRef<OsStr>).collect();
        case(name, &args, needles)
    };
    let figure = |name: &str, args: &[&str], needles: &[&str]| {
        let mut all: Vec<&dyn AsRef<OsStr>> = args.iter().map(|a| a as &dyn AsRef<OsStr>).collect();
        all.extend([&"--out" as &dyn AsRef<OsStr>, &fig, &"--cpu"]);
        case(name, &all, needles)
    };
    vec![
        seg("segment: --steps 0", &["--steps", "0"], &["--steps"]),
        seg("segment: --steps 1000000", &["--steps", "1000000"], &["--steps"]),
        seg("segment: --td -1", &["--td=-1"], &["--td"]),
        seg("segment: --td NaN", &["--td", "NaN"], &["--td"]),
        seg("segment: --td inf", &["--td", "inf"], &["--td"]),
        seg("segment: --max-output-side 0", &["--max-output-side", "0"], &["--max-output-side"]),
        seg("segment: --max-output-side 10^6", &["--max-output-side", "1000000"], &["--max-output-side"]),
        cmd(
            "eval davis: --max-frames 0",
            &["eval", "davis", "--max-frames", "0", "--cpu"],
            &["--max-frames"],
        ),
        cmd("eval camvid: --limit 0", &["eval", "camvid", "--limit", "0", "--cpu"], &["--limit"]),
        cmd("eval coco128: --limit 0", &["eval", "coco128", "--limit", "0", "--cpu"], &["--limit"]),
        cmd("eval camvid: --steps 0,1", &["eval", "camvid", "--steps", "0,1", "--cpu"], &["--steps"]),
        figure(
            "figure coco128: --panel-width 100000",
            &["figure", "coco128", "--panel-width", "100000"],
            &["--panel-width"],
        ),
        figure(
            "figure readout: --panel-width 0",
            &["figure", "readout", "x.jpg", "--panel-width", "0"],
            &["--panel-width"],
        ),
        figure(
            "figure davis: --frames 100000000",
            &["figure", "davis", "--frames", "100000000"],
            &["--frames"],
        ),
    ]
}

/// `eval pq` reads COCO panoptic JSON and PNGs: the same rules as photos and model files.
pub fn pq_cases(s: &Scratch) -> Vec<Case> {
    let dir = s.path("pq");
    std::fs::create_dir_all(&dir).unwrap();
    let json = |name: &str, png: &str| {
        let path = dir.join(name);
        let ann = json!({"image_id": 1, "file_name": png, "segments_info": []});
        std::fs::write(&path, serde_json::to_vec(&json!({"annotations": [ann], "categories": []})).unwrap())
            .unwrap();
        path
    };
    std::fs::write(dir.join("bomb.png"), files::huge_png(16000, 16000)).unwrap();
    let bomb = json("bomb.json", "bomb.png");
    let fifo = dir.join("fifo.json");
    files::fifo(&fifo);
    let zero = dir.join("zero.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let pq = |name: &str, gt: &std::path::Path, needles: &[&str]| {
        let args: [&dyn AsRef<OsStr>; 10] = [
            &"eval",
            &"pq",
            &"--gt-json",
            &gt,
            &"--gt-dir",
            &dir,
            &"--pred-json",
            &bomb,
            &"--pred-dir",
            &dir,
        ];
        case(name, &args, needles)
    };
    vec![
        pq("eval pq: panoptic PNG declaring 16000x16000", &bomb, &["bomb.png", "16000"]),
        pq("eval pq: JSON path is a FIFO", &fifo, &["fifo.json", "regular file"]),
        pq("eval pq: JSON path is /dev/zero", &zero, &["zero.json", "regular file"]),
    ]
}

/// `eval davis --dir`: dataset files are read by the same rules (a FIFO frame, a mask that is a
/// PNG bomb, a frame that is one: dataset images go through the photos' checked decoder).
pub fn dataset_cases(s: &Scratch) -> Vec<Case> {
    let mut cases = Vec::new();
    for kind in ["fifo-frame", "bomb-mask", "bomb-frame"] {
        let dir = s.path(&format!("davis-{kind}"));
        let seq = dir.join("seq");
        std::fs::create_dir_all(seq.join("images")).unwrap();
        std::fs::create_dir_all(seq.join("masks")).unwrap();
        let (image, mask) = (seq.join("images/00000.jpg"), seq.join("masks/00000.png"));
        if kind == "fifo-frame" {
            files::fifo(&image);
            image::GrayImage::new(4, 3).save(&mask).unwrap();
        } else if kind == "bomb-mask" {
            image::RgbImage::new(4, 3).save_with_format(&image, image::ImageFormat::Jpeg).unwrap();
            std::fs::write(&mask, files::huge_png(16000, 16000)).unwrap();
        } else {
            // A PNG named .jpg: the format is told from the content, as PIL does.
            std::fs::write(&image, files::huge_png(16000, 16000)).unwrap();
            image::GrayImage::new(4, 3).save(&mask).unwrap();
        }
        let model = std::path::Path::new(files::FIXTURE);
        let args: [&dyn AsRef<OsStr>; 9] =
            [&"eval", &"davis", &"--dir", &dir, &"--split", &"all", &"--model", &model, &"--cpu"];
        let needle = if kind == "fifo-frame" { "regular file" } else { "16000" };
        cases.push(case(&format!("eval davis: {kind}"), &args, &["00000", needle]));
    }
    cases
}
