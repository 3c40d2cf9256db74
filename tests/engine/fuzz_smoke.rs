//! The fuzz targets' bodies (`fuzz/bodies.rs`) on stable Rust: deterministic mutations of the
//! committed seeds (`fuzz/seeds/TARGET`), a bounded number per target, in `cargo test`. The long
//! runs use cargo-fuzz on nightly (README of `fuzz/`); this keeps every target exercised in CI
//! without nightly. A panic names the target and the mutated input's hex prefix.

#[path = "../../fuzz/bodies.rs"]
mod bodies;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Mutated inputs per target (well under a second each).
const CASES: usize = 5000;

/// splitmix64: a small deterministic generator (no dependency, same cases on every machine).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Numbers that probe size arithmetic when they replace one in a JSON or a header.
const INTERESTING: [&str; 12] = [
    "0",
    "-1",
    "1e39",
    "-1e39",
    "1e308",
    "4096",
    "4097",
    "2048",
    "65536",
    "4294967295",
    "9223372036854775809",
    "18446744073709551615",
];

/// One mutation of `input` (other seeds are spliced in).
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let len = input.len();
    match rng.below(8) {
        0 if len > 0 => input[rng.below(len)] ^= 1 << rng.below(8),
        1 if len > 0 => input[rng.below(len)] = [0, 0xFF, 0x7F, 0x80, b'9', b'"'][rng.below(6)],
        2 if len > 0 => input.truncate(rng.below(len)),
        3 if len > 1 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(len);
            input.drain(start..end);
        }
        4 if len > 0 => {
            let start = rng.below(len);
            let chunk: Vec<u8> = input[start..(start + 1 + rng.below(32)).min(len)].to_vec();
            let at = rng.below(len);
            input.splice(at..at, chunk);
        }
        5 => {
            // Replace a run of digits with an interesting number.
            let digits: Vec<usize> = (0..len).filter(|&i| input[i].is_ascii_digit()).collect();
            if let Some(&start) = digits.get(rng.below(digits.len())) {
                let end = (start..len).find(|&i| !input[i].is_ascii_digit()).unwrap_or(len);
                let start = if start > 0 && input[start - 1] == b'-' { start - 1 } else { start };
                input.splice(start..end, INTERESTING[rng.below(INTERESTING.len())].bytes());
            }
        }
        6 if len >= 8 => {
            // A little-endian u64 (a safetensors header length) or u32 (a PNG size) at random.
            let at = rng.below(len - 7);
            let value = [0u64, 1, u32::MAX as u64, u64::MAX, 1 << 40, 16000][rng.below(6)];
            input[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        _ => {
            let other = &seeds[rng.below(seeds.len())];
            let cut = rng.below(input.len().min(other.len()).max(1));
            input.truncate(cut);
            input.extend_from_slice(&other[cut.min(other.len())..]);
        }
    }
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn smoke(target: &str, body: fn(&[u8])) {
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "no seeds for {target}");
    let mut rng = Rng(0x5EED ^ target.len() as u64);
    for case in 0..CASES {
        let mut input = seeds[case % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut input, &seeds);
        }
        if catch_unwind(AssertUnwindSafe(|| body(&input))).is_err() {
            let prefix: String = input.iter().take(64).map(|b| format!("{b:02x}")).collect();
            panic!("{target}: case {case} panicked ({} bytes, starting {prefix})", input.len());
        }
    }
}

#[test]
fn card_mutations() {
    smoke("card", bodies::card);
}

#[test]
fn safetensors_mutations() {
    smoke("safetensors", bodies::safetensors);
}

#[test]
fn coco_panoptic_mutations() {
    smoke("coco_panoptic", bodies::coco_panoptic);
}

#[test]
fn photo_mutations() {
    smoke("photo", bodies::photo);
}

#[test]
fn model_mutations() {
    smoke("model", bodies::model);
}

/// The `model` seeds: tiny models (a ResNet card with F16 weights, a bare EfficientNet config with
/// video masks and F32 weights) with every tensor they imply, made here from the loader's own errors (a missing tensor
/// is named, a wrong shape gives the expected one) so they follow the model code. Each is the
/// card, a NUL byte, then the safetensors file (`bodies::model`).
mod model_seeds {
    use pix2seqd::model::{ModelConfig, ModelError, Pix2SeqD, Weights};
    use serde_json::{json, Value};

    fn config(backbone: Value, video_prev_masks: usize, self_cond: bool) -> Value {
        json!({
            "name": "fuzz-seed",
            "image_size": [32, 32],
            "mask_size": [8, 8],
            "backbone": backbone,
            "encoder": {"layers": 1, "dim": 4, "heads": 1, "mlp_dim": 2, "dropout": 0.0, "drop_path": 0.0},
            "fusion": {"dim": 4},
            "decoder": {
                "dim": 4, "ch_mult": [1], "n_res_blocks": [1], "transformer_layers": 1,
                "transformer_dim": 4, "transformer_heads": 1, "transformer_mlp_dim": 2,
                "time_embed_dim": 2, "dropout": 0.0
            },
            "num_classes": 2,
            "max_instances": 2,
            "class_bits": 1,
            "instance_bits": 1,
            "b_scale": 0.1,
            "time_scaling": 1.0,
            "self_cond": self_cond,
            "video_prev_masks": video_prev_masks,
            "mask_weight_p": 0.2,
            "sampler": {"steps": 2, "td": 1.0},
            "classes": [
                {"name": "void", "isthing": false, "color": [0, 0, 0], "source_id": null},
                {"name": "thing", "isthing": true, "color": [220, 20, 60], "source_id": null}
            ]
        })
    }

    fn card(config: Value, dtype: &str) -> Value {
        json!({"format": "pix2seqd", "format_version": 1, "dtype": dtype, "bn_folded": true, "config": config})
    }

    /// A safetensors file of `tensors` in `dtype` (F32, F16 or BF16), small finite values.
    fn safetensors(tensors: &[(String, Vec<usize>)], dtype: &str) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, shape) in tensors {
            let n: usize = shape.iter().product();
            let start = data.len();
            for i in 0..n {
                let v = ((i * 7 + name.len()) % 13) as f32 / 16.0 - 0.375;
                match dtype {
                    "F32" => data.extend_from_slice(&v.to_le_bytes()),
                    "F16" => data.extend_from_slice(&half::f16::from_f32(v).to_le_bytes()),
                    _ => data.extend_from_slice(&half::bf16::from_f32(v).to_le_bytes()),
                }
            }
            header.insert(
                name.clone(),
                json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let label = match dtype {
            "F32" => "fp32",
            "F16" => "fp16",
            _ => "bf16",
        };
        header.insert("__metadata__".into(), json!({"format_version": "1", "dtype": label}));
        let header = serde_json::to_vec(&Value::Object(header)).unwrap();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&data);
        out
    }

    /// Every tensor `json`'s model asks for, at its shape, as a safetensors file.
    fn weights_for(json: &str, dtype: &str) -> Vec<u8> {
        let mut tensors: Vec<(String, Vec<usize>)> = Vec::new();
        loop {
            let bytes = safetensors(&tensors, dtype);
            let cfg = ModelConfig::from_json(json).unwrap();
            let mut weights = Weights::parse(bytes.clone()).unwrap();
            match Pix2SeqD::load(cfg, &mut weights, &pix2seqd::backend::CpuBackend) {
                Ok(_) => return bytes,
                Err(ModelError::MissingTensor(name)) => tensors.push((name, vec![0])),
                Err(ModelError::WrongShape { name, expected, .. }) => {
                    tensors.iter_mut().find(|(n, _)| *n == name).unwrap().1 = expected;
                }
                Err(e) => panic!("seed model: {e}"),
            }
        }
    }

    /// (file name, seed bytes).
    pub fn all() -> Vec<(&'static str, Vec<u8>)> {
        let resnet = json!({
            "type": "resnet50_c4", "pretrained": false, "input_scale": 1.0, "input_offset": 0.0,
            "stem_channels": 1, "widths": [1, 1, 1], "blocks": [1, 1, 1]
        });
        let efficientnet = json!({
            "type": "efficientnet_lite0", "pretrained": false, "input_scale": 2.0, "input_offset": -1.0,
            "stem_channels": 1, "stages": [[1, 3, 2, 1, 4], [1, 3, 2, 1, 4], [1, 3, 2, 1, 4]]
        });
        let cases = [
            ("resnet-card-f16", card(config(resnet, 0, true), "fp16"), "F16"),
            ("efficientnet-video-config-f32", config(efficientnet, 1, false), "F32"),
        ];
        cases
            .into_iter()
            .map(|(name, card, dtype)| {
                let json = serde_json::to_string(&card).unwrap();
                let mut seed = json.clone().into_bytes();
                seed.push(0);
                seed.extend_from_slice(&weights_for(&json, dtype));
                (name, seed)
            })
            .collect()
    }
}

/// The committed `model` seeds are the generated ones, and each loads: the fuzzer starts from
/// models that work, so its mutations are near misses.
#[test]
fn model_seeds_are_current_and_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/model");
    for (name, seed) in model_seeds::all() {
        let committed = std::fs::read(dir.join(name)).unwrap_or_default();
        assert!(
            committed == seed,
            "fuzz/seeds/model/{name} is stale: `cargo test --test engine fuzz_smoke::write_model_seeds -- --ignored`"
        );
        let split = seed.iter().position(|&b| b == 0).unwrap();
        let json = std::str::from_utf8(&seed[..split]).unwrap();
        let load = pix2seqd::Segmenter::new(json, seed[split + 1..].to_vec(), pix2seqd::BackendKind::Cpu);
        if let Err(e) = pollster::block_on(load) {
            panic!("seed {name} does not load: {e}");
        }
    }
}

/// Writes the `model` seeds (run after a change to the model's parameters).
#[test]
#[ignore]
fn write_model_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/model");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, seed) in model_seeds::all() {
        std::fs::write(dir.join(name), seed).unwrap();
    }
}
