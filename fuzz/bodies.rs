//! What each fuzz target does with one input, shared by the cargo-fuzz targets
//! (`fuzz_targets/*.rs`) and the stable-Rust smoke run in `cargo test` (`tests/engine/fuzz_smoke.rs`).
//! An input may be refused with an error; it must never panic, abort, hang or allocate without
//! bound.

// Each target uses one of these.
#![allow(dead_code)]

use std::path::Path;

use pix2seqd::model::{ModelConfig, Weights};

/// A model card or config JSON: parsed, resolved and validated; a valid config's derived sizes.
pub fn card(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cfg) = ModelConfig::from_json(text) {
        let _ = (cfg.n_bits(), cfg.n_logits(), cfg.isthing(), cfg.palette(), cfg.coco_categories());
    }
}

/// A weights file: the header's validation, then every tensor taken at its own shape (the
/// conversion to f32), as a model load would.
pub fn safetensors(data: &[u8]) {
    if data.len() >= 8 {
        let header_len = u64::from_le_bytes(data[..8].try_into().unwrap());
        let end = usize::try_from(header_len).ok().and_then(|n| n.checked_add(8));
        if let Some(header) = end.and_then(|end| data.get(8..end)) {
            let _ = pix2seqd::model::weights::data_extent(header);
        }
    }
    let Ok(mut weights) = Weights::parse(data.to_vec()) else { return };
    let tensors: Vec<(String, Vec<usize>)> =
        weights.names().map(|n| (n.to_string(), weights.shape(n).unwrap_or(&[]).to_vec())).collect();
    for (name, shape) in tensors {
        if weights.take(&name, &shape).is_err() {
            let _ = weights.take_ints(&name);
        }
    }
    let _ = weights.finish();
}

/// The COCO panoptic reader (`eval pq`): the first byte chooses the JSON or the PNG reader.
pub fn coco_panoptic(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else { return };
    if which & 1 == 0 {
        let _ = pix2seqd::panoptic::parse_panoptic_json(bytes, Path::new("fuzz.json"));
    } else if let Ok((h, w, ids)) = pix2seqd::panoptic::decode_panoptic_png(bytes, Path::new("fuzz.png")) {
        assert_eq!(ids.len(), h * w);
    }
}

/// Photo ingestion: decoding a JPEG or PNG within the limits, the page-size scaling, and the
/// engine's own image check.
pub fn photo(data: &[u8]) {
    let _ = pix2seqd::photo::jpeg_has_end(data);
    let Ok(photo) = pix2seqd::photo::decode_photo(data, "fuzz") else { return };
    assert_eq!(photo.rgba.len(), photo.width * photo.height * 4);
    let small = pix2seqd::photo::fit_within(photo, 32);
    assert!(small.width <= 32 && small.height <= 32);
    let _ = pix2seqd::Image::new(small.width, small.height, &small.rgba);
}

/// A whole model as `segment --cpu` and the page's CPU worker load it: the card and the weights
/// together (`Segmenter::new`: card parsed and validated, weights parsed, every tensor the card
/// implies taken at its shape and dtype, leftovers refused), so that cards and weights that
/// disagree (shapes, dtypes, names, counts) are fuzzed, not only each alone. The input is the
/// card's JSON, a NUL byte (which JSON text cannot hold), then the safetensors bytes.
pub fn model(data: &[u8]) {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    let Some(split) = data.iter().position(|&b| b == 0) else { return };
    let Ok(json) = std::str::from_utf8(&data[..split]) else { return };
    let weights = data[split + 1..].to_vec();
    let load = pix2seqd::Segmenter::new(json, weights, pix2seqd::BackendKind::Cpu);
    // On the CPU nothing is awaited: the first poll finishes the load.
    let mut load = std::pin::pin!(load);
    match load.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(segmenter)) => {
            let cfg = segmenter.config();
            let _ = (cfg.n_bits(), cfg.n_logits(), cfg.isthing(), cfg.palette());
        }
        Poll::Ready(Err(_)) => {}
        Poll::Pending => panic!("loading a model on the CPU waited for something"),
    }
}
