//! `bodies::coco_panoptic` under libFuzzer: `cargo +nightly fuzz run coco_panoptic fuzz/work/coco_panoptic fuzz/seeds/coco_panoptic`.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::coco_panoptic(data));
