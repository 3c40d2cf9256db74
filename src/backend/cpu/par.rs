//! How the CPU backend uses the machine: work split over the cores with rayon's pool natively
//! (`RAYON_NUM_THREADS` sets its size), one thread in wasm32, where the page's worker has no
//! shared-memory threads (docs/performance.md says why), and which SIMD its GEMM runs on.

/// The number of threads the CPU backend's kernels use.
pub fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    return rayon::current_num_threads();
    #[cfg(target_arch = "wasm32")]
    1
}

/// Calls `f(index, chunk)` on each `chunk_len`-long piece of `out` (the last one may be shorter),
/// on all threads.
pub fn for_each_chunk<T: Send>(out: &mut [T], chunk_len: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    let chunk_len = chunk_len.max(1);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        if out.len() > chunk_len {
            out.par_chunks_mut(chunk_len).enumerate().for_each(|(i, c)| f(i, c));
            return;
        }
    }
    out.chunks_mut(chunk_len).enumerate().for_each(|(i, c)| f(i, c));
}

/// Rows per tile when `rows` rows of `row_cost` units each are split over the threads: tiles of
/// about `target` units, and at least 2 tiles per thread when there are enough rows.
pub fn tile_rows(rows: usize, row_cost: usize, target: usize) -> usize {
    let by_cache = (target / row_cost.max(1)).max(1);
    let by_balance = rows.div_ceil(2 * threads()).max(1);
    by_cache.min(by_balance)
}

/// What the CPU backend runs on this machine: its thread count and the widest SIMD its GEMM uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CpuPath {
    pub threads: usize,
    pub simd: &'static str,
}

impl CpuPath {
    pub fn detect() -> CpuPath {
        CpuPath { threads: threads(), simd: simd_name() }
    }
}

impl std::fmt::Display for CpuPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.threads == 1 { "" } else { "s" };
        write!(f, "{}, {} thread{s}", self.simd, self.threads)
    }
}

/// The instruction set matrixmultiply's kernels pick at run time (natively) or the build has
/// (wasm32).
fn simd_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2") {
            return "AVX2+FMA";
        }
        return "SSE2";
    }
    #[cfg(target_arch = "aarch64")]
    return "NEON";
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return "wasm SIMD128";
    #[allow(unreachable_code)]
    "scalar"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_is_visited_once_with_its_chunk_index() {
        let mut v = vec![0usize; 1003];
        for_each_chunk(&mut v, 100, |i, c| c.iter_mut().for_each(|x| *x += i + 1));
        for (j, x) in v.iter().enumerate() {
            assert_eq!(*x, j / 100 + 1);
        }
    }

    #[test]
    fn tiles_are_never_empty() {
        assert_eq!(tile_rows(0, 10, 1000), 1);
        assert_eq!(tile_rows(1, 1 << 30, 1), 1);
        assert!(tile_rows(10_000, 10, 1000) <= 100);
    }
}
