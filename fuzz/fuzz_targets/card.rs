//! `bodies::card` under libFuzzer: `cargo +nightly fuzz run card fuzz/work/card fuzz/seeds/card`.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::card(data));
