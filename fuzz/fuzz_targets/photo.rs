//! `bodies::photo` under libFuzzer: `cargo +nightly fuzz run photo fuzz/work/photo fuzz/seeds/photo`.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::photo(data));
