//! `bodies::card` under libFuzzer, from `fuzz/`: `cargo +nightly fuzz run card corpus/card seeds/card` (see README.md).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::card(data));
