//! The sampler (spec §3.4): DDIM from the shared noise, x̂0 from the softmax head's expected
//! bits, all on the backend: on the GPU the whole loop is recorded into one frame, with no
//! read-back between steps.
//!
//! `m ~ N(0, I)` from the counter-based RNG (docs/rng.md), element i of `[1, Hm, Wm, n_bits]`
//! = `normal(seed, i)`; for each `(t_now, t_next)` of [`step_times`]:
//! `x̂0 = clip(expected_bits(decoder(m, γ(t_now))), ±b)`, `m = ddim(m, x̂0, t_now, t_next)`;
//! the last step's logits are returned for the readout ([`crate::ops::readout`]: per-cell argmax
//! and the bilinear readout at the photo's resolution), beside the final x̂0 thresholded at 0
//! (the readout before it, kept one release for comparison).

use crate::backend::Backend;
use crate::model::{ModelError, Pix2SeqD, StepInputs};
pub use crate::ops::bits::DdimCoefficients;

// ---- the noise schedule ------------------------------------------------------------------------

/// cosine_schedule_simple constants (Analog Bits Alg. 4).
pub const SCHEDULE_NS: f64 = 0.0002;
pub const SCHEDULE_DS: f64 = 0.00025;

/// Signal variance `γ(t) = cos(((t + 0.0002) / (1 + 0.00025)) · π/2)²` (spec §3.1), in f64.
pub fn gamma(t: f64) -> f64 {
    let c = ((t + SCHEDULE_NS) / (1.0 + SCHEDULE_DS) * std::f64::consts::FRAC_PI_2).cos();
    c * c
}

/// `(t_now, t_next)` per step (spec §3.4): `t_now = 1 − i/T`, `t_next = max(1 − (i + 1 + td)/T, 0)`
/// with `td` in units of steps, so the last `⌊td⌋ + 1` steps go to `t_next = 0` (⌈td⌉ + 1 only when
/// td is an integer, as in the eval sweep's td ∈ {1, 2}).
pub fn step_times(steps: usize, td: f64) -> Vec<(f64, f64)> {
    let t = steps as f64;
    (0..steps).map(|i| (1.0 - i as f64 / t, (1.0 - (i as f64 + 1.0 + td) / t).max(0.0))).collect()
}

/// The DDIM coefficients of the step `t_now → t_next`: from `γ(t_now)`, `γ(t_next)`.
pub fn ddim_coefficients(t_now: f64, t_next: f64) -> DdimCoefficients {
    DdimCoefficients::new(gamma(t_now), gamma(t_next))
}

// ---- the sampler -------------------------------------------------------------------------------

/// Run-time sampler options (the config's `sampler` gives the defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerOptions {
    pub steps: usize,
    /// Time difference in steps (spec §3.4; 0 = plain DDIM).
    pub td: f64,
    pub seed: u32,
}

impl SamplerOptions {
    pub fn validate(&self) -> Result<(), ModelError> {
        use crate::limits::{MAX_STEPS, MAX_TD};
        if self.steps == 0 || self.steps > MAX_STEPS {
            return Err(ModelError::Sampler(format!("steps {} must be 1..={MAX_STEPS}", self.steps)));
        }
        if !(0.0..=MAX_TD).contains(&self.td) {
            return Err(ModelError::Sampler(format!("td {:?} must be a number in 0..={MAX_TD}", self.td)));
        }
        Ok(())
    }
}

/// What [`sample`] returns: the last step's logits, the final x̂0 and its thresholded maps at mask
/// resolution, plus the intermediates when traced (the parity tests compare them).
pub struct Sampled<T> {
    /// The decoder's logits at the last step `[1, Hm, Wm, n_logits]`: what the readout reads.
    pub logits: T,
    pub x0: T,
    pub class: T,
    pub instance: T,
    pub trace: Option<Trace<T>>,
}

pub struct Trace<T> {
    pub noise: T,
    pub gammas: Vec<f32>,
    pub logits_step0: Option<T>,
    pub x0_steps: Vec<T>,
    /// Copies of the DDIM state after each step (the GPU updates it in place).
    pub m_steps: Vec<T>,
}

/// Samples one mask for an encoded image. `on_step(i)` runs before step i is recorded (the
/// GPU path uses it to mark stage boundaries for profiling).
pub fn sample<B: Backend>(
    b: &mut B,
    model: &Pix2SeqD<B::Tensor>,
    cond: &crate::model::Condition<B::Tensor>,
    opts: &SamplerOptions,
    trace: bool,
    mut on_step: impl FnMut(&mut B, usize),
) -> Result<Sampled<B::Tensor>, ModelError> {
    opts.validate()?;
    let cfg = &model.cfg;
    let spec = cfg.bit_spec();
    let shape = [1, cfg.mask_size[0], cfg.mask_size[1], cfg.n_bits()];
    let mut m = b.normal_fill(&shape, opts.seed, 0)?;
    let mut tr = trace.then(|| Trace {
        noise: m.clone(),
        gammas: Vec::new(),
        logits_step0: None,
        x0_steps: Vec::new(),
        m_steps: Vec::new(),
    });
    if let Some(t) = tr.as_mut() {
        t.noise = b.affine(&m, 1.0, 0.0)?; // a copy: m is updated in place on the GPU
    }
    let mut x0: Option<B::Tensor> = None;
    let mut last_logits: Option<B::Tensor> = None;
    let zeros =
        if cfg.self_cond { Some(b.upload(&shape, &vec![0.0; shape.iter().product()])?) } else { None };
    for (i, (t_now, t_next)) in step_times(opts.steps, opts.td).into_iter().enumerate() {
        on_step(b, i);
        let g = gamma(t_now) as f32;
        let self_cond = if cfg.self_cond { x0.as_ref().or(zeros.as_ref()) } else { None };
        let logits = model.decode(b, StepInputs { m: &m, self_cond, gamma: g }, cond)?;
        let (x0_new, m_new) = b.expected_bits_ddim(&logits, &m, &spec, &ddim_coefficients(t_now, t_next))?;
        if let Some(t) = tr.as_mut() {
            t.gammas.push(g);
            if i == 0 {
                t.logits_step0 = Some(logits.clone());
            }
            t.x0_steps.push(x0_new.clone());
            t.m_steps.push(b.affine(&m_new, 1.0, 0.0)?);
        }
        x0 = Some(x0_new);
        m = m_new;
        last_logits = Some(logits);
    }
    on_step(b, opts.steps);
    let (Some(x0), Some(logits)) = (x0, last_logits) else {
        return Err(ModelError::Sampler("no sampler steps".into()));
    };
    let (class, instance) = b.bits_to_ids(&x0, &spec, cfg.num_classes as u32, cfg.max_instances as u32)?;
    Ok(Sampled { logits, x0, class, instance, trace: tr })
}
