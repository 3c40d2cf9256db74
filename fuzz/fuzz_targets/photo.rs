//! `bodies::photo` under libFuzzer, from `fuzz/`: `cargo +nightly fuzz run photo corpus/photo seeds/photo` (see README.md).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::photo(data));
