//! `bodies::model` under libFuzzer, from `fuzz/`: `cargo +nightly fuzz run model corpus/model seeds/model` (see README.md).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::model(data));
