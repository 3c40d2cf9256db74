//! `bodies::safetensors` under libFuzzer: `cargo +nightly fuzz run safetensors fuzz/work/safetensors fuzz/seeds/safetensors`.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::safetensors(data));
