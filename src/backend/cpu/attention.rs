//! Multi-head attention for the CPU backend, in blocks of query rows: per block and head, the
//! scores `q kᵀ` are one GEMM into per-thread scratch, the softmax runs on that block, and `p v`
//! is a second GEMM written straight into the head's columns of the output. q, k and v are read
//! in place through strides, so a packed `[q | k | v]` tensor is never split into copies.

use super::gemm::{self, View};
use super::par;

/// One of q, k, v: `[batch, len, heads·dh]` values starting at `offset` of each `row_stride`-long
/// row of `data` (a packed `[q | k | v]` tensor has row stride `3d` and offsets `0, d, 2d`).
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub row_stride: usize,
}

impl<'a> Rows<'a> {
    /// Rows `first..first + len` of head columns `col..col + dh`, as a `[len, dh]` view.
    fn block(&self, first: usize, len: usize, col: usize, dh: usize) -> View<'a> {
        let start = first * self.row_stride + self.offset + col;
        let end = if len == 0 { start } else { start + (len - 1) * self.row_stride + dh };
        View { data: &self.data[start..end], rows: len, cols: dh, row_stride: self.row_stride, col_stride: 1 }
    }
}

/// Query rows per block: the block's scores (`rows × lk`) stay within a cache-sized scratch.
fn block_rows(lq: usize, lk: usize) -> usize {
    par::tile_rows(lq, lk.max(1), gemm::TILE_FLOATS / 2)
}

/// The sizes of one attention: `batch` sequences of `lq` queries over `lk` keys, `heads` heads of
/// width `dh`.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub batch: usize,
    pub lq: usize,
    pub lk: usize,
    pub heads: usize,
    pub dh: usize,
}

/// `softmax(q kᵀ / sqrt(dh)) v` per head → `[batch, lq, heads·dh]`, the same result as
/// `ops::attention::cpu::attention` up to float summation order.
pub fn attention(q: Rows, k: Rows, v: Rows, shape: &Shape) -> Vec<f32> {
    let Shape { batch, lq, lk, heads, dh } = *shape;
    let d = heads * dh;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut out = vec![0.0f32; batch * lq * d];
    if d == 0 || lq == 0 {
        return out;
    }
    let rows = block_rows(lq, lk);
    for (b, out_b) in out.chunks_mut(lq * d).enumerate() {
        par::for_each_chunk(out_b, rows * d, |t, out_block| {
            let first = t * rows;
            let m = out_block.len() / d;
            gemm::with_scratch(m * lk, |scores| {
                for h in 0..heads {
                    let col = h * dh;
                    let q_block = q.block(b * lq + first, m, col, dh);
                    gemm::gemm(q_block, k.block(b * lk, lk, col, dh).transposed(), scores, lk);
                    softmax_rows(scores, lk, scale);
                    let probs = View::row_major(scores, m, lk);
                    gemm::gemm(probs, v.block(b * lk, lk, col, dh), &mut out_block[col..], d);
                }
            });
        });
    }
    out
}

/// Row-wise `softmax(s · scale)` of a `[rows, n]` block, with the row's maximum subtracted.
fn softmax_rows(scores: &mut [f32], n: usize, scale: f32) {
    if n == 0 {
        return;
    }
    for row in scores.chunks_mut(n) {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &s| a.max(s)) * scale;
        let mut sum = 0.0;
        for s in row.iter_mut() {
            *s = super::norm::exp(*s * scale - max);
            sum += *s;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|s| *s *= inv);
    }
}
