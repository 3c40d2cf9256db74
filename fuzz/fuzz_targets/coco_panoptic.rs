//! `bodies::coco_panoptic` under libFuzzer, from `fuzz/`: `cargo +nightly fuzz run coco_panoptic corpus/coco_panoptic seeds/coco_panoptic` (see README.md).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::coco_panoptic(data));
