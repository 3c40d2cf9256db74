//! `bodies::safetensors` under libFuzzer, from `fuzz/`: `cargo +nightly fuzz run safetensors corpus/safetensors seeds/safetensors` (see README.md).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::safetensors(data));
