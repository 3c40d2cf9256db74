//! PyTorch parity: the fixtures' tiny models (tests/fixtures, written by train/) run through the
//! Rust CPU path and the GPU path (lavapipe in CI); every stored intermediate must match within
//! tolerance and the final class / instance maps exactly. The worst error per tensor is printed.

use crate::common;

use std::path::{Path, PathBuf};

use pix2seqd::backend::{Backend, GpuBackend};
use pix2seqd::backend::{CpuBackend, CpuTensor};
use pix2seqd::diffusion::{sample, SamplerOptions};
use pix2seqd::geometry::Letterbox;
use pix2seqd::gpu::{Gpu, Pending, Tensor};
use pix2seqd::model::{BackboneType, ModelConfig, Pix2SeqD, Weights};
use pix2seqd::ops::readout::{self, IdSpace, Resample};

/// f32 tensors: max |got − want| / max |want| must stay under this (the bar).
const REL_TOL: f32 = 1e-3;

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

struct Fixture {
    cfg: ModelConfig,
    weights: Vec<u8>,
    acts: Weights,
}

fn fixture(name: &str) -> Fixture {
    fixture_with(name, |json| json)
}

/// The fixture with its model.json text edited first (a config that must behave identically).
fn fixture_with(name: &str, edit: impl FnOnce(String) -> String) -> Fixture {
    let dir = fixture_dir(name);
    let cfg =
        ModelConfig::from_json(&edit(std::fs::read_to_string(dir.join("model.json")).unwrap())).unwrap();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let acts = Weights::parse(std::fs::read(dir.join("activations.safetensors")).unwrap()).unwrap();
    Fixture { cfg, weights, acts }
}

impl Fixture {
    fn f32(&mut self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let shape = self.acts.shape(name).unwrap_or_else(|| panic!("fixture has no {name}")).to_vec();
        let v = self.acts.take(name, &shape).unwrap();
        (shape, v)
    }

    fn ints(&mut self, name: &str) -> Vec<i64> {
        self.acts.take_ints(name).unwrap()
    }
}

/// NCHW → NHWC.
fn nchw_to_nhwc(shape: &[usize], v: &[f32]) -> Vec<f32> {
    let [n, c, h, w] = shape[..] else { panic!("not NCHW: {shape:?}") };
    let mut out = vec![0.0; v.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    out[((b * h + y) * w + x) * c + ch] = v[((b * c + ch) * h + y) * w + x];
                }
            }
        }
    }
    out
}

/// Relative error (max |got − want| / max |want|); asserts the tolerance and prints it.
fn check(path: &str, what: &str, got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "{path} {what}: length");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = got.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let rel = worst / scale;
    eprintln!("{path:>4} {what:<28} max|Δ| {worst:.3e}  rel {rel:.3e}  (scale {scale:.3e})");
    assert!(rel < REL_TOL && rel.is_finite(), "{path} {what}: relative error {rel:e} ≥ {REL_TOL:e}");
    rel
}

fn check_ids(path: &str, what: &str, got: &[u32], want: &[i64]) {
    let got: Vec<i64> = got.iter().map(|&v| v as i64).collect();
    let diff = got.iter().zip(want).filter(|(a, b)| a != b).count();
    eprintln!("{path:>4} {what:<28} {diff} of {} pixels differ", want.len());
    assert_eq!(diff, 0, "{path} {what}: {diff} pixels differ");
}

/// Everything the run produced, as host vectors, for comparison.
struct Outputs {
    taps: Vec<Vec<f32>>,
    tokens: Vec<f32>,
    features: Vec<f32>,
    prev_bits: Option<Vec<f32>>,
    noise: Vec<f32>,
    gammas: Vec<f32>,
    logits0: Vec<f32>,
    x0_steps: Vec<Vec<f32>>,
    m_steps: Vec<Vec<f32>>,
    class: Vec<u32>,
    instance: Vec<u32>,
    logits_last: Vec<f32>,
    /// Cell class, cell instance, readout class, readout instance.
    readout_ids: [Vec<u32>; 4],
    cell_class_void: Vec<f32>,
}

/// Indices (into the read-back list) of every tensor the run produced.
struct Handles {
    taps: Vec<usize>,
    tokens: usize,
    features: usize,
    prev_bits: Option<usize>,
    noise: usize,
    gammas: Vec<f32>,
    logits0: usize,
    x0_steps: Vec<usize>,
    m_steps: Vec<usize>,
    class: usize,
    instance: usize,
    logits_last: usize,
    readout_ids: [usize; 4],
    cell_class_void: usize,
}

/// The fixture's readout geometry `[canvas_h, canvas_w, content_h, content_w, out_h, out_w]` as a
/// resampling of the model's mask.
fn fixture_resample(fx: &mut Fixture, cfg: &ModelConfig) -> Resample {
    let g: Vec<usize> = fx.ints("readout.geometry").iter().map(|&v| v as usize).collect();
    let lb = Letterbox {
        orig_h: g[4],
        orig_w: g[5],
        canvas_h: g[0],
        canvas_w: g[1],
        content_h: g[2],
        content_w: g[3],
    };
    Resample::new(&lb, cfg.mask_size[0], cfg.mask_size[1], g[4], g[5]).unwrap()
}

fn id_space(cfg: &ModelConfig) -> IdSpace {
    IdSpace::new(&cfg.bit_spec(), cfg.num_classes, cfg.max_instances)
}

/// Runs the fixture's sampling on backend `b`; `read(t)` queues a tensor for comparison and
/// returns its index.
fn run<B: Backend>(
    b: &mut B,
    model: &Pix2SeqD<B::Tensor>,
    fx: &mut Fixture,
    mut read: impl FnMut(&mut B, &B::Tensor) -> usize,
) -> Handles {
    let cfg = model.cfg.clone();
    let (ishape, image) = fx.f32("image");
    let image = b.upload(&[1, ishape[2], ishape[3], 3], &nchw_to_nhwc(&ishape, &image)).unwrap();
    let input = b.affine(&image, cfg.backbone.input_scale, cfg.backbone.input_offset).unwrap();
    let enc = model.encode(b, &input).unwrap();
    let prev = (cfg.video_prev_masks > 0).then(|| {
        let maps = fx.ints("sampler.prev_maps");
        let (hm, wm) = (cfg.mask_size[0], cfg.mask_size[1]);
        let px = hm * wm;
        let frames: Vec<B::Tensor> = (0..cfg.video_prev_masks)
            .map(|f| {
                let class: Vec<u32> = (0..px).map(|i| maps[(f * px + i) * 2] as u32).collect();
                let inst: Vec<u32> = (0..px).map(|i| maps[(f * px + i) * 2 + 1] as u32).collect();
                let c = b.upload_u32(&[1, hm, wm], &class).unwrap();
                let i = b.upload_u32(&[1, hm, wm], &inst).unwrap();
                b.ids_to_bits(&c, &i, &cfg.bit_spec()).unwrap()
            })
            .collect();
        b.concat_channels(&frames.iter().collect::<Vec<_>>()).unwrap()
    });
    let cond = model.condition(b, &enc, prev.as_ref()).unwrap();
    let opts = SamplerOptions {
        steps: fx.ints("steps")[0] as usize,
        td: fx.f32("td").1[0] as f64,
        seed: fx.ints("seed")[0] as u32,
    };
    let out = sample(b, model, &cond, &opts, true, |_, _| {}).unwrap();
    let tr = out.trace.unwrap();
    let ids = id_space(&cfg);
    let cells = b.cells(&out.logits, &out.x0, &ids).unwrap();
    let (class, instance) =
        b.readout(&out.logits, &out.x0, &cells, &ids, &fixture_resample(fx, &cfg)).unwrap();
    Handles {
        taps: enc.taps.iter().map(|t| read(b, t)).collect(),
        tokens: read(b, &enc.tokens),
        features: read(b, &enc.features),
        prev_bits: prev.as_ref().map(|p| read(b, p)),
        noise: read(b, &tr.noise),
        gammas: tr.gammas.clone(),
        logits0: read(b, tr.logits_step0.as_ref().unwrap()),
        x0_steps: tr.x0_steps.iter().map(|t| read(b, t)).collect(),
        m_steps: tr.m_steps.iter().map(|t| read(b, t)).collect(),
        class: read(b, &out.class),
        instance: read(b, &out.instance),
        logits_last: read(b, &out.logits),
        readout_ids: [read(b, &cells.class), read(b, &cells.instance), read(b, &class), read(b, &instance)],
        cell_class_void: read(b, &cells.class_void),
    }
}

fn assemble(h: &Handles, vals: &[Vec<f32>], ints: &[Vec<u32>]) -> Outputs {
    Outputs {
        taps: h.taps.iter().map(|&i| vals[i].clone()).collect(),
        tokens: vals[h.tokens].clone(),
        features: vals[h.features].clone(),
        prev_bits: h.prev_bits.map(|i| vals[i].clone()),
        noise: vals[h.noise].clone(),
        gammas: h.gammas.clone(),
        logits0: vals[h.logits0].clone(),
        x0_steps: h.x0_steps.iter().map(|&i| vals[i].clone()).collect(),
        m_steps: h.m_steps.iter().map(|&i| vals[i].clone()).collect(),
        class: ints[h.class].clone(),
        instance: ints[h.instance].clone(),
        logits_last: vals[h.logits_last].clone(),
        readout_ids: h.readout_ids.map(|i| ints[i].clone()),
        cell_class_void: vals[h.cell_class_void].clone(),
    }
}

/// Ids read out of this run's logits against the fixture's, read out of PyTorch's: an id may
/// differ only where the fixture's margin (`readout.margin`, or the cell's) is within `tol`, the
/// room the logits' own difference leaves.
fn check_readout_ids(path: &str, what: &str, got: &[u32], want: &[i64], margin: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{path} {what}: length");
    let differ: Vec<usize> = (0..got.len()).filter(|&p| got[p] as i64 != want[p]).collect();
    eprintln!(
        "{path:>4} {what:<28} {} of {} pixels differ (tolerated margin {tol:.1e})",
        differ.len(),
        want.len()
    );
    for &p in &differ {
        assert!(
            margin[p] <= tol,
            "{path} {what}: pixel {p} is {} not {} with margin {} > {tol}",
            got[p],
            want[p],
            margin[p]
        );
    }
}

fn compare(path: &str, fx: &mut Fixture, o: &Outputs) {
    for (i, got) in o.taps.iter().enumerate() {
        let (shape, want) = fx.f32(&format!("backbone.tap{i}"));
        check(path, &format!("backbone.tap{i}"), got, &nchw_to_nhwc(&shape, &want));
    }
    check(path, "encoder.tokens", &o.tokens, &fx.f32("encoder.tokens").1);
    let (shape, want) = fx.f32("fusion.features");
    check(path, "fusion.features", &o.features, &nchw_to_nhwc(&shape, &want));
    if let Some(prev) = &o.prev_bits {
        check(path, "sampler.prev_bits", prev, &fx.f32("sampler.prev_bits").1);
    }
    check(path, "sampler.noise", &o.noise, &fx.f32("sampler.noise").1);
    assert_eq!(o.gammas, fx.f32("sampler.gamma").1, "{path} γ(t_now)");
    check(path, "decoder.logits.step0", &o.logits0, &fx.f32("decoder.logits.step0").1);
    let (xs, x0s) = fx.f32("sampler.x0");
    let per = x0s.len() / xs[0];
    let (_, ms) = fx.f32("sampler.m");
    for s in 0..xs[0] {
        check(path, &format!("sampler.x0[{s}]"), &o.x0_steps[s], &x0s[s * per..(s + 1) * per]);
        check(path, &format!("sampler.m[{s}]"), &o.m_steps[s], &ms[s * per..(s + 1) * per]);
    }
    check_ids(path, "output.class", &o.class, &fx.ints("output.class"));
    check_ids(path, "output.instance", &o.instance, &fx.ints("output.instance"));
    // The readout of the last logits: close logits, then ids that may differ only at the edge.
    let (_, want_logits) = fx.f32("sampler.logits_last");
    check(path, "sampler.logits_last", &o.logits_last, &want_logits);
    let delta = o.logits_last.iter().zip(&want_logits).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let tol = 10.0 * delta + 1e-6;
    let void = fx.f32("output.cell_class_void").1;
    check(path, "output.cell_class_void", &o.cell_class_void, &void);
    let cell_margin: Vec<f32> = void.iter().map(|p| (p - 0.5).abs().max(tol * 2.0)).collect();
    check_readout_ids(
        path,
        "output.cell_class",
        &o.readout_ids[0],
        &fx.ints("output.cell_class"),
        &cell_margin,
        tol,
    );
    check_readout_ids(
        path,
        "output.cell_instance",
        &o.readout_ids[1],
        &fx.ints("output.cell_instance"),
        &cell_margin,
        tol,
    );
    let (mshape, margin) = fx.f32("readout.margin");
    let (class_margin, instance_margin) = margin.split_at(mshape[1] * mshape[2]);
    check_readout_ids(path, "readout.class", &o.readout_ids[2], &fx.ints("readout.class"), class_margin, tol);
    // The instance group mixes x̂0's bits: its room is x̂0's own difference.
    let (_, want_x0) = fx.f32("sampler.x0_last");
    let got_x0 = o.x0_steps.last().expect("at least one step");
    let x0_delta = got_x0.iter().zip(&want_x0).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let x0_tol = 10.0 * x0_delta + 1e-7;
    check_readout_ids(
        path,
        "readout.instance",
        &o.readout_ids[3],
        &fx.ints("readout.instance"),
        instance_margin,
        x0_tol,
    );
}

/// The CPU twin of the readout on PyTorch's own last logits gives the fixture's ids bit for bit.
fn readout_of_fixture_logits(name: &str) {
    let mut fx = fixture(name);
    let cfg = fx.cfg.clone();
    let ids = id_space(&cfg);
    let (_, logits) = fx.f32("sampler.logits_last");
    let (_, x0) = fx.f32("sampler.x0_last");
    let cells = readout::cpu::cells(&logits, &x0, &ids);
    let as_u32 = |v: Vec<i64>| v.into_iter().map(|x| x as u32).collect::<Vec<u32>>();
    assert_eq!(cells.class, as_u32(fx.ints("output.cell_class")), "{name}: cell classes");
    assert_eq!(cells.instance, as_u32(fx.ints("output.cell_instance")), "{name}: cell instances");
    assert_eq!(cells.class_void, fx.f32("output.cell_class_void").1, "{name}: cell void probabilities");
    let resample = fixture_resample(&mut fx, &cfg);
    let (class, instance) = readout::cpu::readout(&logits, &x0, cells.view(), &ids, &resample);
    assert_eq!(class, as_u32(fx.ints("readout.class")), "{name}: readout classes");
    assert_eq!(instance, as_u32(fx.ints("readout.instance")), "{name}: readout instances");
}

#[test]
fn readout_twin_matches_pytorch_bit_for_bit() {
    readout_of_fixture_logits("tiny-efficientnet");
    readout_of_fixture_logits("tiny-resnet");
}

fn cpu_parity(name: &str) {
    cpu_parity_of(fixture(name));
}

fn cpu_parity_of(mut fx: Fixture) {
    let mut weights = Weights::parse(fx.weights.clone()).unwrap();
    let model = Pix2SeqD::<CpuTensor>::load(fx.cfg.clone(), &mut weights, &CpuBackend).unwrap();
    let mut b = CpuBackend;
    let mut store: Vec<CpuTensor> = Vec::new();
    let handles = run(&mut b, &model, &mut fx, |_, t| {
        store.push(t.clone());
        store.len() - 1
    });
    let vals: Vec<Vec<f32>> = store.iter().map(|t| t.f32().map(|v| v.to_vec()).unwrap_or_default()).collect();
    let ints: Vec<Vec<u32>> = store.iter().map(|t| t.u32().map(|v| v.to_vec()).unwrap_or_default()).collect();
    let out = assemble(&handles, &vals, &ints);
    compare("cpu", &mut fx, &out);
}

fn gpu_parity(name: &str) {
    let gpu: Gpu = common::gpu();
    let mut fx = fixture(name);
    let mut weights = Weights::parse(fx.weights.clone()).unwrap();
    let model = Pix2SeqD::<Tensor>::load(fx.cfg.clone(), &mut weights, &gpu).unwrap();
    let mut frame = gpu.frame();
    let mut pendings: Vec<(Pending, bool)> = Vec::new();
    let handles = {
        let mut b = GpuBackend::new(&mut frame);
        run(&mut b, &model, &mut fx, |b, t| {
            let is_u32 = t.dtype() == pix2seqd::gpu::DType::U32;
            pendings.push((b.frame.read(t), is_u32));
            pendings.len() - 1
        })
    };
    eprintln!("gpu frame: {} dispatches, one submit", frame.len());
    frame.submit();
    let mut vals = Vec::new();
    let mut ints = Vec::new();
    for (p, is_u32) in pendings {
        if is_u32 {
            ints.push(pollster::block_on(p.into_u32(&gpu)).unwrap());
            vals.push(Vec::new());
        } else {
            vals.push(pollster::block_on(p.into_f32(&gpu)).unwrap());
            ints.push(Vec::new());
        }
    }
    let out = assemble(&handles, &vals, &ints);
    compare("gpu", &mut fx, &out);
}

#[test]
fn every_mbconv_backbone_type_runs_the_same_stack() {
    // The type name only says where training took the pretrained weights from.
    for kind in
        [BackboneType::EfficientNetLite1, BackboneType::EfficientNetLite2, BackboneType::MobileNetV2Coco]
    {
        let fx = fixture_with("tiny-efficientnet", |json| {
            let edited = json.replace("\"efficientnet_lite0\"", &format!("\"{}\"", kind.name()));
            assert_ne!(edited, json, "the fixture names no efficientnet_lite0 backbone");
            edited
        });
        assert_eq!(fx.cfg.backbone.kind, kind);
        cpu_parity_of(fx);
    }
}

#[test]
fn cpu_matches_pytorch_efficientnet() {
    cpu_parity("tiny-efficientnet");
}

#[test]
fn cpu_matches_pytorch_resnet() {
    cpu_parity("tiny-resnet");
}

#[test]
fn gpu_matches_pytorch_efficientnet() {
    gpu_parity("tiny-efficientnet");
}

#[test]
fn gpu_matches_pytorch_resnet() {
    gpu_parity("tiny-resnet");
}
