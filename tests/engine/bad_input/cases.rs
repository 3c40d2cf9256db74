//! The hostile cases: each is a command line of the CLI and the words its error must contain.

use std::ffi::OsString;
use std::path::Path;

use serde_json::{json, Value};

use super::files::{self, SafeTensors, Scratch};

pub struct Case {
    pub name: String,
    pub args: Vec<OsString>,
    /// Each must appear in stderr (case-insensitive): the flag, field, tensor or file at fault.
    pub needles: Vec<String>,
}

pub fn case(name: &str, args: &[&dyn AsRef<std::ffi::OsStr>], needles: &[&str]) -> Case {
    Case {
        name: name.to_string(),
        args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
        needles: needles.iter().map(|n| n.to_string()).collect(),
    }
}

/// `segment PHOTO --model STEM --cpu`.
pub fn segment(s: &Scratch, name: &str, model: &Path, needles: &[&str]) -> Case {
    let (photo, out) = (s.path("photo.png"), s.path("out"));
    case(name, &[&"segment", &photo, &"--model", &model, &"--out", &out, &"--cpu"], needles)
}

/// `bench --config FILE --cpu`: synthetic weights, so nothing but the config bounds the sizes.
fn bench(s: &Scratch, name: &str, cfg: &Value, needles: &[&str]) -> Case {
    let path = s.path(&format!("bench-{}.json", sanitize(name)));
    std::fs::write(&path, serde_json::to_vec(cfg).unwrap()).unwrap();
    let args: [&dyn AsRef<std::ffi::OsStr>; 10] = [
        &"bench",
        &"--config",
        &path,
        &"--cpu",
        &"--steps",
        &"1",
        &"--iters",
        &"1",
        &"--no-warmup",
        &"--json",
    ];
    case(name, &args, needles)
}

pub fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        match c {
            '+' => out.push_str("plus"),
            '-' => out.push_str("minus"),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => out.push('_'),
        }
    }
    out
}

/// The fixture's card with `edit` applied, beside the fixture's weights.
fn card_case(s: &Scratch, name: &str, edit: impl FnOnce(&mut Value), needles: &[&str]) -> Case {
    let mut card = files::fixture_card();
    edit(&mut card);
    let stem = files::write_model(&s.0, &sanitize(name), &card, &SafeTensors::fixture().to_bytes());
    segment(s, name, &stem, needles)
}

/// The fixture's weights bytes `weights` beside its card.
pub fn weights_case(s: &Scratch, name: &str, weights: &[u8], needles: &[&str]) -> Case {
    let stem = files::write_model(&s.0, &sanitize(name), &files::fixture_card(), weights);
    segment(s, name, &stem, needles)
}

pub fn card_cases(s: &Scratch) -> Vec<Case> {
    let cfg = |card: &mut Value, key: &str, v: Value| card["config"][key] = v;
    let mut out = vec![
        card_case(
            s,
            "card: max_instances 2^64-1 with instance_bits 0",
            |c| {
                cfg(c, "max_instances", json!(u64::MAX));
                cfg(c, "instance_bits", json!(0));
            },
            &["max_instances"],
        ),
        card_case(
            s,
            "card: num_classes 2^63+1 with class_bits 0",
            |c| {
                cfg(c, "num_classes", json!((1u64 << 63) + 1));
                cfg(c, "class_bits", json!(0));
                cfg(c, "classes", json!([]));
            },
            &["num_classes"],
        ),
        card_case(s, "card: num_classes 5000", |c| cfg(c, "num_classes", json!(5000)), &["num_classes"]),
        card_case(s, "card: class_bits 64", |c| cfg(c, "class_bits", json!(64)), &["class_bits"]),
        card_case(s, "card: instance_bits u32::MAX", |c| cfg(c, "instance_bits", json!(u32::MAX)), &["bits"]),
        card_case(
            s,
            "card: image_size 999999936x1333333248",
            |c| {
                cfg(c, "image_size", json!([999_999_936u64, 1_333_333_248u64]));
                cfg(c, "mask_size", json!([249_999_984u64, 333_333_312u64]));
            },
            &["image_size"],
        ),
        card_case(
            s,
            "card: image_size 12288x16384",
            |c| {
                cfg(c, "image_size", json!([12288, 16384]));
                cfg(c, "mask_size", json!([3072, 4096]));
            },
            &["image_size"],
        ),
        card_case(
            s,
            "card: sampler.steps 10^12",
            |c| c["config"]["sampler"]["steps"] = json!(1u64 << 40),
            &["steps"],
        ),
        card_case(s, "card: sampler.td 1e300", |c| c["config"]["sampler"]["td"] = json!(1e300), &["td"]),
        card_case(
            s,
            "card: input_scale 1e39 (infinite as f32)",
            |c| c["config"]["backbone"]["input_scale"] = json!(1e39),
            &["input_scale"],
        ),
        card_case(
            s,
            "card: input_scale 1e30",
            |c| c["config"]["backbone"]["input_scale"] = json!(1e30),
            &["input_scale"],
        ),
        card_case(
            s,
            "card: input_offset -1e39",
            |c| c["config"]["backbone"]["input_offset"] = json!(-1e39),
            &["input_offset"],
        ),
        card_case(s, "card: b_scale 1e30", |c| cfg(c, "b_scale", json!(1e30)), &["b_scale"]),
        card_case(s, "card: time_scaling 1e39", |c| cfg(c, "time_scaling", json!(1e39)), &["time_scaling"]),
        card_case(
            s,
            "card: backbone.stem_channels 0",
            |c| c["config"]["backbone"]["stem_channels"] = json!(0),
            &["stem_channels"],
        ),
        card_case(
            s,
            "card: encoder.mlp_dim 0",
            |c| c["config"]["encoder"]["mlp_dim"] = json!(0),
            &["mlp_dim"],
        ),
        card_case(s, "card: fusion.dim 0", |c| c["config"]["fusion"]["dim"] = json!(0), &["fusion.dim"]),
        card_case(
            s,
            "card: video_prev_masks 10^9",
            |c| cfg(c, "video_prev_masks", json!(1_000_000_000)),
            &["video_prev_masks"],
        ),
        card_case(
            s,
            "card: format_version 99",
            |c| c["format_version"] = json!(99),
            &["format_version", "1"],
        ),
        card_case(s, "card: format \"onnx\"", |c| c["format"] = json!("onnx"), &["format"]),
        card_case(
            s,
            "card: no config",
            |c| {
                c.as_object_mut().unwrap().remove("config");
            },
            &["config"],
        ),
        card_case(s, "card: config is a number", |c| c["config"] = json!(5), &["config"]),
        card_case(s, "card: dtype fp16 beside fp32 weights", |c| c["dtype"] = json!("fp16"), &["dtype"]),
        card_case(s, "card: dtype int8", |c| c["dtype"] = json!("int8"), &["dtype"]),
    ];
    let empty = files::write_model(&s.0, "empty-card", &json!(null), &SafeTensors::fixture().to_bytes());
    std::fs::write(empty.with_extension("json"), b"").unwrap();
    out.push(segment(s, "card: empty file", &empty, &["JSON"]));
    out
}

pub fn bench_cases(s: &Scratch) -> Vec<Case> {
    let base = files::fixture_card()["config"].clone();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        edit(&mut c);
        c
    };
    let tiny = s.path("bench-tiny.json");
    std::fs::write(&tiny, serde_json::to_vec(&base).unwrap()).unwrap();
    let bench_tiny = |name: &str, extra: &[&str], needles: &[&str]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"bench", &"--config", &tiny, &"--cpu", &"--json"];
        args.extend(extra.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
        case(name, &args, needles)
    };
    vec![
        bench(
            s,
            "bench config: decoder.dim 10^6",
            &with(&|c| c["decoder"]["dim"] = json!(1_000_000)),
            &["decoder.dim"],
        ),
        bench(
            s,
            "bench config: encoder.layers 10^9",
            &with(&|c| c["encoder"]["layers"] = json!(1_000_000_000)),
            &["encoder.layers"],
        ),
        bench(
            s,
            "bench config: backbone stage repeats 10^9",
            &with(&|c| c["backbone"]["stages"][0][0] = json!(1_000_000_000)),
            &["stages"],
        ),
        bench(
            s,
            "bench config: encoder.dim 2^20",
            &with(&|c| {
                c["encoder"]["dim"] = json!(1 << 20);
                c["encoder"]["heads"] = json!(1 << 14);
            }),
            &["encoder.dim"],
        ),
        bench(
            s,
            "bench config: decoder level 0 of 2048² × 8192 channels",
            &with(&|c| {
                c["image_size"] = json!([2048, 2048]);
                c["mask_size"] = json!([2048, 2048]);
                c["decoder"]["dim"] = json!(4096);
            }),
            &["decoder level 0", "element limit"],
        ),
        bench(
            s,
            "bench config: 64 encoder layers 8192 wide (synthetic weights)",
            &with(&|c| {
                c["encoder"]["layers"] = json!(64);
                c["encoder"]["dim"] = json!(8192);
                c["encoder"]["heads"] = json!(128);
                c["encoder"]["mlp_dim"] = json!(8192);
            }),
            &["synthetic weights"],
        ),
        bench(
            s,
            "bench config: decoder.transformer_dim 2^62, mlp dim derived",
            &with(&|c| {
                c["decoder"]["transformer_dim"] = json!(1u64 << 62);
                c["decoder"]["transformer_mlp_dim"] = json!(0);
            }),
            &["transformer_dim"],
        ),
        bench(
            s,
            "bench config: max_instances 2^64-1 with instance_bits 0",
            &with(&|c| {
                c["max_instances"] = json!(u64::MAX);
                c["instance_bits"] = json!(0);
            }),
            &["max_instances"],
        ),
        bench_tiny(
            "bench: --size 100000",
            &["--size", "100000", "--steps", "1", "--iters", "1", "--no-warmup"],
            &["--size"],
        ),
        bench_tiny("bench: --size 0", &["--size", "0"], &["--size"]),
        bench_tiny("bench: --size 40 (not a multiple of 16)", &["--size", "40"], &["--size"]),
        bench_tiny("bench: --iters 0", &["--iters", "0", "--steps", "1"], &["--iters"]),
        bench_tiny("bench: --steps 0", &["--steps", "0", "--iters", "1"], &["--steps"]),
        case("bench ops: --iters 0", &[&"bench", &"ops", &"--iters", &"0"], &["--iters"]),
    ]
}
