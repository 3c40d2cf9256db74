//! Matrix products for the CPU backend: matrixmultiply's packed, cache-blocked `sgemm` (AVX2/FMA
//! picked at run time natively, simd128 in the page's wasm) on tiles of output rows spread over
//! the threads, each tile's epilogue applied while it is still in cache.

use std::cell::RefCell;

use super::norm::activate;
use super::par;
use crate::ops::Activation;

/// Floats of left-hand rows a tile aims for (im2col rows, or rows of `a`), 1 MB: small enough that
/// a tile's im2col rows are still in L2 when sgemm packs them, large enough (a few hundred rows)
/// that packing the weights once per tile stays a small share. Measured on the `objects` model:
/// 128 KB and 4 MB tiles were 5-25% slower per decoder step.
pub const TILE_FLOATS: usize = 256 * 1024;

thread_local! {
    /// Per-thread scratch (im2col rows, attention scores): grows to the largest tile once, then is
    /// reused, so a warm engine does not allocate it per frame.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch, at least `len` floats long (contents unspecified).
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < len {
            s.resize(len, 0.0);
        }
        f(&mut s[..len])
    })
}

/// A strided matrix view: element `(r, c)` is `data[r · row_stride + c · col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// Rows `cols` apart in memory are this view's columns (e.g. `kᵀ` of a `[L, d]` key matrix).
    pub fn transposed(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// `c = a · b`, `c` row-major with rows `ldc` apart, on this thread. Panics when a view does not
/// fit its slice (the backend checks shapes before it gets here).
pub fn gemm(a: View, b: View, c: &mut [f32], ldc: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && a.in_bounds() && b.in_bounds(), "gemm: operands do not fit");
    if m == 0 || n == 0 {
        return;
    }
    assert!(n <= ldc && (m - 1) * ldc + n <= c.len(), "gemm: output does not fit");
    // SAFETY: every index sgemm reads or writes was bounds-checked by the asserts above; with
    // beta 0 sgemm overwrites `c` without reading it, and k = 0 writes zeros.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            0.0,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

/// What happens to each output value after the product: convs compute
/// `act((acc + bias + residual) · scale)`; linears `act(acc + bias) + residual` (the transformer's
/// residual stream), as the GPU kernels and the plain twins do.
#[derive(Clone, Copy, Debug)]
pub struct RowEpilogue<'a> {
    /// `[n]`.
    pub bias: Option<&'a [f32]>,
    /// The whole `[m, n]` output's residual.
    pub residual: Option<&'a [f32]>,
    pub act: Activation,
    pub scale: f32,
    pub residual_after_act: bool,
}

impl<'a> RowEpilogue<'a> {
    pub fn conv(bias: Option<&'a [f32]>, residual: Option<&'a [f32]>, act: Activation, scale: f32) -> Self {
        RowEpilogue { bias, residual, act, scale, residual_after_act: false }
    }

    pub fn linear(bias: Option<&'a [f32]>, residual: Option<&'a [f32]>, act: Activation) -> Self {
        RowEpilogue { bias, residual, act, scale: 1.0, residual_after_act: true }
    }

    /// Applies the epilogue to `tile`, rows `first_row..` of an output `n` wide; one vectorised
    /// pass per term.
    pub fn apply(&self, tile: &mut [f32], first_row: usize, n: usize) {
        let add = |row: &mut [f32], terms: &[f32]| row.iter_mut().zip(terms).for_each(|(v, t)| *v += t);
        let residual = self.residual.map(|r| &r[first_row * n..][..tile.len()]);
        for (r, row) in tile.chunks_mut(n).enumerate() {
            let res = residual.map(|res| &res[r * n..][..row.len()]);
            if let Some(bias) = self.bias {
                add(row, bias);
            }
            if self.residual_after_act {
                activate(self.act, row);
                res.inspect(|res| add(row, res));
            } else {
                res.inspect(|res| add(row, res));
                if self.scale != 1.0 {
                    row.iter_mut().for_each(|v| *v *= self.scale);
                }
                activate(self.act, row);
            }
        }
    }
}

/// Up to this many rows a linear is a plain loop rather than a packed GEMM.
const GEMV_ROWS: usize = 4;

/// `epi(x · w)` for `x` `[rows, k]` and `w` `[k, n]`, row-major, over all threads.
pub fn linear(x: &[f32], rows: usize, k: usize, w: &[f32], n: usize, epi: &RowEpilogue) -> Vec<f32> {
    let mut y = vec![0.0f32; rows * n];
    if n == 0 {
        return y;
    }
    if rows <= GEMV_ROWS {
        // A few rows (the time embedding's MLP): packing the weights for sgemm would cost more
        // than the product, so each row is a sum of weight rows, vectorised along `n`.
        for (r, out) in y.chunks_mut(n).enumerate() {
            for (&xv, w_row) in x[r * k..][..k].iter().zip(w.chunks_exact(n)) {
                out.iter_mut().zip(w_row).for_each(|(o, wv)| *o += xv * wv);
            }
        }
        epi.apply(&mut y, 0, n);
        return y;
    }
    let tile = par::tile_rows(rows, k + n, TILE_FLOATS);
    par::for_each_chunk(&mut y, tile * n, |t, out| {
        let first = t * tile;
        let m = out.len() / n;
        gemm(View::row_major(&x[first * k..][..m * k], m, k), View::row_major(w, k, n), out, n);
        epi.apply(out, first, n);
    });
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_that_overruns_its_slice_is_refused() {
        let data = [0.0f32; 5];
        let r = std::panic::catch_unwind(|| {
            let mut c = [0.0f32; 4];
            gemm(View::row_major(&data, 2, 3), View::row_major(&data, 3, 2), &mut c, 2);
        });
        assert!(r.is_err());
    }
}
