//! Multi-head scaled dot-product attention, flash style (online softmax, no Lq×Lk score matrix).
//!
//! Layout (channels-last tokens, as the linear layers produce them):
//! - [`attention`]: `q` `[batch, Lq, heads·dh]`, `k` and `v` `[batch, Lk, heads·dh]`;
//! - [`attention_qkv`] (self-attention after one fused QKV linear): `qkv` `[batch, L, 3·heads·dh]`
//!   holding `[q | k | v]` along the channels (build the fused weight by concatenating the Q, K, V
//!   weights along the output axis, `[in, 3·out]` in [`crate::ops::matmul`]'s layout);
//! - [`attention_q_kv`] (cross-attention with the K/V of the context precomputed by one fused
//!   linear): `q` `[batch, Lq, heads·dh]`, `kv` `[batch, Lk, 2·heads·dh]` holding `[k | v]`.
//!
//! Head `h` is channels `h·dh .. (h+1)·dh` of each part (PyTorch's `view(B, L, heads, dh)`).
//! The output is `[batch, Lq, heads·dh]` with the same head order, scale `1/sqrt(dh)`.
//! `dh` must be a multiple of 4 and at most 64 (32 and 64 are the model's).
//!
//! Kernel (`shaders/attention.wgsl`): a workgroup of 64 threads takes 64 queries (128 for dh 32:
//! two per thread) of one (batch, head); K and V stream through 16 KiB of workgroup memory in
//! blocks of 32 keys (dh 64) or 64 keys (dh 32); each thread keeps its queries, running maxima,
//! sums and output accumulators in registers and updates them per chunk of 8 keys. Lengths need
//! not be multiples of any block.

use crate::gpu::{Access, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::uniform::{uniform, UniformLayout};

/// The shader compiled three ways (see the head of `shaders/attention.wgsl`): registers sized for
/// dh 64 with one query per thread, dh 32 with two queries per thread (each staged K/V read feeds
/// both), and any other multiple of 4 up to 64 (loops guarded by the uniform head dim).
pub static SHADER_D64: Shader = Shader {
    name: "attention_d64",
    source: concat!(
        "const DH4: u32 = 16u;\nconst QPT: u32 = 1u;\nconst GENERIC: bool = false;\n",
        include_str!("../../shaders/attention.wgsl")
    ),
};
pub static SHADER_D32: Shader = Shader {
    name: "attention_d32",
    source: concat!(
        "const DH4: u32 = 8u;\nconst QPT: u32 = 2u;\nconst GENERIC: bool = false;\n",
        include_str!("../../shaders/attention.wgsl")
    ),
};
pub static SHADER_ANY: Shader = Shader {
    name: "attention_any",
    source: concat!(
        "const DH4: u32 = 16u;\nconst QPT: u32 = 1u;\nconst GENERIC: bool = true;\n",
        include_str!("../../shaders/attention.wgsl")
    ),
};

const R: Access = Access::Read;
const W: Access = Access::ReadWrite;

/// One specialisation's three binding layouts: separate `q, k, v, o`; packed self-attention
/// `qkv, o`; query plus packed keys/values `q, kv, o`.
pub struct Kernels {
    pub separate: Kernel,
    pub qkv: Kernel,
    pub q_kv: Kernel,
    /// Queries per thread of this specialisation.
    queries_per_thread: usize,
}

const fn kernels(shader: &'static Shader, queries_per_thread: usize) -> Kernels {
    Kernels {
        separate: Kernel { shader, entry: "attn", bindings: &[R, R, R, W] },
        qkv: Kernel { shader, entry: "attn_qkv", bindings: &[R, W] },
        q_kv: Kernel { shader, entry: "attn_q_kv", bindings: &[R, R, W] },
        queries_per_thread,
    }
}

pub static D64: Kernels = kernels(&SHADER_D64, 1);
pub static D32: Kernels = kernels(&SHADER_D32, 2);
pub static ANY: Kernels = kernels(&SHADER_ANY, 1);

pub const SHADERS: &[&Shader] = &[&SHADER_D64, &SHADER_D32, &SHADER_ANY];
pub const KERNELS: &[&Kernel] = &[
    &D64.separate,
    &D64.qkv,
    &D64.q_kv,
    &D32.separate,
    &D32.qkv,
    &D32.q_kv,
    &ANY.separate,
    &ANY.qkv,
    &ANY.q_kv,
];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[
    Params::layout(&SHADER_D64, "Params"),
    Params::layout(&SHADER_D32, "Params"),
    Params::layout(&SHADER_ANY, "Params"),
];

#[derive(Clone, Copy)]
enum Layout {
    Separate,
    Qkv,
    QKv,
}

/// Threads per workgroup (`QB` in the shader).
const THREADS: usize = 64;
/// vec4 per staged K (and V) block (`KV_VEC4`).
const KV_VEC4: usize = 512;
/// Keys per online-softmax chunk (`CHUNK`).
const CHUNK: usize = 8;

uniform! {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        lq: u32,
        lk: u32,
        heads: u32,
        dh4: u32,
        q_row: u32,
        q_off: u32,
        k_row: u32,
        k_off: u32,
        v_row: u32,
        v_off: u32,
        q_blocks: u32,
        groups: u32,
        kv_block: u32,
        scale: f32,
    }
}

/// Floating-point operations of the two products (`q kᵀ` and `p v`): `4·batch·Lq·Lk·heads·dh`
/// (the softmax's exponentials are not counted).
pub fn attention_flops(batch: usize, lq: usize, lk: usize, heads: usize, dh: usize) -> f64 {
    4.0 * batch as f64 * lq as f64 * lk as f64 * heads as f64 * dh as f64
}

/// Where one of q, k, v lives: a tensor `[batch, L, row]` and the channel offset of its head 0.
struct Part<'a> {
    t: &'a Tensor,
    off: usize,
}

fn tokens(op: &'static str, name: &str, t: &Tensor) -> Result<(usize, usize, usize), GpuError> {
    match *t.shape() {
        [b, l, c] => Ok((b, l, c)),
        ref s => Err(GpuError::shape(op, format!("{name} must be [batch, tokens, channels], got {s:?}"))),
    }
}

fn check_heads(op: &'static str, d: usize, heads: usize) -> Result<usize, GpuError> {
    if heads == 0 || d % heads != 0 {
        return Err(GpuError::shape(op, format!("{d} channels do not split into {heads} heads")));
    }
    let dh = d / heads;
    if dh % 4 != 0 || dh == 0 || dh > 64 {
        return Err(GpuError::Unsupported {
            op,
            detail: format!("head dim {dh} (supported: multiples of 4 up to 64)"),
        });
    }
    Ok(dh)
}

/// `softmax(q kᵀ / sqrt(dh)) v` per head, for separate `q` `[batch, Lq, d]`, `k`, `v`
/// `[batch, Lk, d]` with `d = heads·dh`. Returns `[batch, Lq, d]`.
pub fn attention(
    frame: &mut Frame,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
) -> Result<Tensor, GpuError> {
    const OP: &str = "attention";
    let (b, lq, d) = tokens(OP, "q", q)?;
    let (bk, lk, dk) = tokens(OP, "k", k)?;
    if (bk, dk) != (b, d) || v.shape() != k.shape() {
        return Err(GpuError::shape(
            OP,
            format!(
                "q {:?}, k {:?}, v {:?} disagree (want k = v = [{b}, Lk, {d}])",
                q.shape(),
                k.shape(),
                v.shape()
            ),
        ));
    }
    let dh = check_heads(OP, d, heads)?;
    run(
        frame,
        OP,
        Layout::Separate,
        &[q, k, v],
        b,
        lq,
        lk,
        heads,
        dh,
        [Part { t: q, off: 0 }, Part { t: k, off: 0 }, Part { t: v, off: 0 }],
    )
}

/// Self-attention on the output of one fused QKV linear: `qkv` `[batch, L, 3·d]` = `[q | k | v]`.
/// Returns `[batch, L, d]`.
pub fn attention_qkv(frame: &mut Frame, qkv: &Tensor, heads: usize) -> Result<Tensor, GpuError> {
    const OP: &str = "attention_qkv";
    let (b, l, c) = tokens(OP, "qkv", qkv)?;
    if c % 3 != 0 {
        return Err(GpuError::shape(OP, format!("qkv {:?} must have 3·heads·dh channels", qkv.shape())));
    }
    let d = c / 3;
    let dh = check_heads(OP, d, heads)?;
    run(
        frame,
        OP,
        Layout::Qkv,
        &[qkv],
        b,
        l,
        l,
        heads,
        dh,
        [Part { t: qkv, off: 0 }, Part { t: qkv, off: d }, Part { t: qkv, off: 2 * d }],
    )
}

/// Cross-attention with packed keys and values: `q` `[batch, Lq, d]`, `kv` `[batch, Lk, 2·d]`
/// = `[k | v]`. Returns `[batch, Lq, d]`.
pub fn attention_q_kv(frame: &mut Frame, q: &Tensor, kv: &Tensor, heads: usize) -> Result<Tensor, GpuError> {
    const OP: &str = "attention_q_kv";
    let (b, lq, d) = tokens(OP, "q", q)?;
    let (bk, lk, c) = tokens(OP, "kv", kv)?;
    if bk != b || c != 2 * d {
        return Err(GpuError::shape(
            OP,
            format!("kv must be [{b}, Lk, {}] for q {:?}, got {:?}", 2 * d, q.shape(), kv.shape()),
        ));
    }
    let dh = check_heads(OP, d, heads)?;
    run(
        frame,
        OP,
        Layout::QKv,
        &[q, kv],
        b,
        lq,
        lk,
        heads,
        dh,
        [Part { t: q, off: 0 }, Part { t: kv, off: 0 }, Part { t: kv, off: d }],
    )
}

#[allow(clippy::too_many_arguments)]
fn run(
    frame: &mut Frame,
    op: &'static str,
    layout: Layout,
    inputs: &[&Tensor],
    batch: usize,
    lq: usize,
    lk: usize,
    heads: usize,
    dh: usize,
    [pq, pk, pv]: [Part; 3],
) -> Result<Tensor, GpuError> {
    let d = heads * dh;
    if lk == 0 && lq > 0 && batch > 0 {
        return Err(GpuError::shape(op, "no keys to attend to (Lk = 0)"));
    }
    let set = match dh {
        64 => &D64,
        32 => &D32,
        _ => &ANY,
    };
    let kernel = match layout {
        Layout::Separate => &set.separate,
        Layout::Qkv => &set.qkv,
        Layout::QKv => &set.q_kv,
    };
    let q_blocks = lq.div_ceil(THREADS * set.queries_per_thread);
    let groups = q_blocks as u64 * heads as u64 * batch as u64;
    let largest = inputs.iter().map(|t| t.len()).max().unwrap_or(0).max(batch * lq * d);
    if groups > u32::MAX as u64 || largest / 4 > u32::MAX as usize {
        return Err(GpuError::shape(op, "too large for 32-bit indexing"));
    }
    let o = frame.gpu().tensor(&[batch, lq, d], pq.t.dtype())?;
    if o.is_empty() {
        return Ok(o);
    }
    let dh4 = dh / 4;
    let row = |part: &Part| (part.t.shape()[2] / 4) as u32;
    let p = Params {
        lq: lq as u32,
        lk: lk as u32,
        heads: heads as u32,
        dh4: dh4 as u32,
        q_row: row(&pq),
        q_off: (pq.off / 4) as u32,
        k_row: row(&pk),
        k_off: (pk.off / 4) as u32,
        v_row: row(&pv),
        v_off: (pv.off / 4) as u32,
        q_blocks: q_blocks as u32,
        groups: groups as u32,
        kv_block: ((KV_VEC4 / dh4) / CHUNK * CHUNK) as u32,
        scale: std::f32::consts::LOG2_E / (dh as f32).sqrt(),
    };
    let workgroups = frame.gpu().fold_workgroups(groups as u32);
    let mut buffers = inputs.to_vec();
    buffers.push(&o);
    frame.dispatch(kernel, &p, &buffers, workgroups);
    Ok(o)
}

/// CPU references.
pub mod cpu {
    /// `softmax(q kᵀ / sqrt(dh)) v` per head: `q` `[batch, lq, heads·dh]`, `k`, `v`
    /// `[batch, lk, heads·dh]`; returns `[batch, lq, heads·dh]`. Plain loops, softmax with the
    /// maximum subtracted.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        batch: usize,
        lq: usize,
        lk: usize,
        heads: usize,
        dh: usize,
    ) -> Vec<f32> {
        let d = heads * dh;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut out = vec![0.0f32; batch * lq * d];
        let mut scores = vec![0.0f32; lk];
        for b in 0..batch {
            for h in 0..heads {
                for i in 0..lq {
                    let qi = &q[(b * lq + i) * d + h * dh..][..dh];
                    for (j, s) in scores.iter_mut().enumerate() {
                        let kj = &k[(b * lk + j) * d + h * dh..][..dh];
                        *s = qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
                    }
                    let max = scores.iter().fold(f32::NEG_INFINITY, |a, &s| a.max(s));
                    let mut sum = 0.0;
                    for s in scores.iter_mut() {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    let o = &mut out[(b * lq + i) * d + h * dh..][..dh];
                    for (j, s) in scores.iter().enumerate() {
                        let vj = &v[(b * lk + j) * d + h * dh..][..dh];
                        for (o, x) in o.iter_mut().zip(vj) {
                            *o += s * x;
                        }
                    }
                    for o in o.iter_mut() {
                        *o /= sum;
                    }
                }
            }
        }
        out
    }

    /// Splits a packed `[rows, parts·d]` tensor (e.g. `[q | k | v]`) into its parts.
    pub fn split_channels(packed: &[f32], parts: usize, d: usize) -> Vec<Vec<f32>> {
        let rows = packed.len() / (parts * d).max(1);
        (0..parts)
            .map(|p| (0..rows).flat_map(|r| packed[r * parts * d + p * d..][..d].iter().copied()).collect())
            .collect()
    }
}
