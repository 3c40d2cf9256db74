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
