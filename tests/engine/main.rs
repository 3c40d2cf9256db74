//! Every integration test in one binary: one module per kernel family or feature, one link of wgpu
//! instead of one per file (the 2-core CI spent most of `cargo test` linking 23 binaries).
//! `cargo test --test engine conv::` runs one family.

mod common;

mod attention;
#[cfg(target_os = "linux")]
mod bad_input;
mod bands;
mod bits;
mod cli;
mod conv;
mod data;
mod elementwise;
mod embed;
mod frame;
mod fuzz_smoke;
mod ingest;
mod layout;
mod matmul;
mod metrics;
mod norm;
mod panoptic;
mod parity;
mod readout;
mod render;
mod rng;
mod shaders;
mod texture_input;
mod video;
