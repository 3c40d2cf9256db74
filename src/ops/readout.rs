//! Readout: the sampler's last-step logits → class and instance ids, at mask resolution (the cell
//! ids the video state feeds back) and at any output resolution (the photo's own size).
//!
//! Definition (the CPU twin below, `shaders/readout.wgsl` and `train/pix2seqd_train/readout.py`
//! compute it with the same f32 operations in the same order):
//!
//! 1. **Cells.** Per mask cell: over the valid classes (`v < min(2^class_bits, num_classes)`) of
//!    the last step's logits, the void probability `p0 = 1 / Σ_v exp(l_v − l_0)` (summed in id
//!    order) and the class id, 0 when `p0 ≥ 0.5` (or void is the only valid class), else the
//!    argmax over the non-void classes (ties: the smaller id). The instance id is the final x̂0's
//!    instance bits thresholded, `Σ_k [x̂0_k > 0]·2^k`, capped at the largest valid id: the
//!    previous readout at mask resolution.
//! 2. **Geometry.** The output covers the letterbox's content. Per axis the scale
//!    `s = content·mask / (out·canvas)` is computed in f64 and rounded once to f32; output index
//!    `i` sits at `f = (i + 0.5)·s − 0.5` cells (pixel centres), between cells `⌊f⌋` and `⌊f⌋ + 1`
//!    (clamped to the mask) with weight `t = f − ⌊f⌋` on the second; the bilinear weights are
//!    `w00 = (1 − ty)(1 − tx)`, `w01 = (1 − ty)·tx`, `w10 = ty·(1 − tx)`, `w11 = ty·tx`.
//! 3. **Per group.** If the four surrounding cells agree on the id, that id (a convex combination
//!    keeps what all corners share, so this mostly saves work). Otherwise every value `x` (logits,
//!    `p0`, x̂0 bits) is mixed as `((w00·x00 + w01·x01) + w10·x10) + w11·x11`: the class is void
//!    when the mixed `p0 ≥ 0.5`, else the argmax of the mixed non-void class logits; the instance
//!    is the mixed x̂0 instance bits thresholded at 0 (capped as in step 1).
//!
//! Why the class group decides void first: "is anything here" is the probability of void against
//! all classes together, and only then "which class". A plain argmax of mixed logits lets void win
//! between two cells that agree there is an object but not on its class (measured on DAVIS: J 6
//! points lower). Why the instance group reads x̂0's bits: the instance distributions of briefly
//! trained models are flat, and their argmax jumps between near-equal ids from cell to cell (CamVid
//! PQ of things 6 against 18 with the bits, on 80 test images at 4 steps).
//!
//! With identity geometry (output = mask) every `t` is 0 and the readout is the cell ids. The
//! full-resolution logit tensor is never stored: each pixel reads its four cells' logits of one
//! group and keeps the running maximum.

use std::ops::Range;

use crate::geometry::Letterbox;
use crate::gpu::{Access, DType, Frame, GpuError, Kernel, Shader, Tensor};
use crate::ops::bits::{BitSpec, MAX_GROUP_BITS};
use crate::ops::uniform::{uniform, UniformLayout};
use crate::ops::{groups_for, ELEMENTWISE_WORKGROUP};

pub static SHADER: Shader = Shader { name: "readout", source: include_str!("../../shaders/readout.wgsl") };

pub static CELL_IDS: Kernel = Kernel {
    shader: &SHADER,
    entry: "cell_ids",
    bindings: &[Access::Read, Access::Read, Access::ReadWrite, Access::ReadWrite, Access::ReadWrite],
};
pub static READOUT: Kernel = Kernel {
    shader: &SHADER,
    entry: "readout",
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

pub const SHADERS: &[&Shader] = &[&SHADER];
pub const KERNELS: &[&Kernel] = &[&CELL_IDS, &READOUT];
/// The uniform structs of this family (checked against the shaders in tests/engine/shaders.rs).
pub const UNIFORMS: &[UniformLayout] = &[Params::layout(&SHADER, "Params")];

/// The ids a model can predict: its bit groups and how many ids of each are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdSpace {
    pub class_bits: u32,
    pub instance_bits: u32,
    pub num_classes: u32,
    pub max_instances: u32,
}

impl IdSpace {
    pub fn new(spec: &BitSpec, num_classes: usize, max_instances: usize) -> Self {
        let clamp = |n: usize| n.min(u32::MAX as usize) as u32;
        IdSpace {
            class_bits: spec.class_bits,
            instance_bits: spec.instance_bits,
            num_classes: clamp(num_classes),
            max_instances: clamp(max_instances),
        }
    }

    /// Valid class ids: `min(2^class_bits, num_classes)`.
    pub fn class_count(&self) -> usize {
        (1usize << self.class_bits).min(self.num_classes as usize)
    }

    /// Valid instance ids: `min(2^instance_bits, max_instances)`.
    pub fn instance_count(&self) -> usize {
        (1usize << self.instance_bits).min(self.max_instances as usize)
    }

    /// Where the instance group starts in a cell's logits: `2^class_bits`.
    pub fn instance_offset(&self) -> usize {
        1usize << self.class_bits
    }

    /// Analog bits per cell (x̂0's channels): `class_bits + instance_bits`.
    pub fn n_bits(&self) -> usize {
        (self.class_bits + self.instance_bits) as usize
    }

    /// Logits per cell: `2^class_bits + 2^instance_bits`.
    pub fn cell_logits(&self) -> usize {
        (1usize << self.class_bits) + (1usize << self.instance_bits)
    }

    fn check(&self, op: &'static str) -> Result<(), GpuError> {
        if self.class_bits > MAX_GROUP_BITS || self.instance_bits > MAX_GROUP_BITS {
            return Err(GpuError::shape(
                op,
                format!(
                    "{} class and {} instance bits: at most {MAX_GROUP_BITS}",
                    self.class_bits, self.instance_bits
                ),
            ));
        }
        if self.class_count() == 0 || self.instance_count() == 0 {
            return Err(GpuError::shape(op, "num_classes and max_instances must be ≥ 1"));
        }
        Ok(())
    }
}

/// Where the output pixels sit on the mask grid (step 2 of the definition).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resample {
    pub mask_h: usize,
    pub mask_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    /// Mask cells per output pixel along each axis.
    pub scale_y: f32,
    pub scale_x: f32,
}

impl Resample {
    /// The output `out_h × out_w` covering `lb`'s content, read from a mask of `mask_h × mask_w`
    /// cells spanning `lb`'s canvas.
    pub fn new(
        lb: &Letterbox,
        mask_h: usize,
        mask_w: usize,
        out_h: usize,
        out_w: usize,
    ) -> Result<Resample, GpuError> {
        lb.validate().map_err(|e| GpuError::shape("readout", e.detail()))?;
        if mask_h == 0 || mask_w == 0 || out_h == 0 || out_w == 0 {
            return Err(GpuError::shape(
                "readout",
                format!("mask {mask_h}x{mask_w} and output {out_h}x{out_w} must be non-empty"),
            ));
        }
        let scale = |content: usize, mask: usize, out: usize, canvas: usize| {
            ((content as f64 * mask as f64) / (out as f64 * canvas as f64)) as f32
        };
        Ok(Resample {
            mask_h,
            mask_w,
            out_h,
            out_w,
            scale_y: scale(lb.content_h, mask_h, out_h, lb.canvas_h),
            scale_x: scale(lb.content_w, mask_w, out_w, lb.canvas_w),
        })
    }

    /// Output = mask: the readout gives the cell ids.
    pub fn identity(h: usize, w: usize) -> Result<Resample, GpuError> {
        Resample::new(&Letterbox::identity(h, w), h, w, h, w)
    }

    fn check(&self, op: &'static str) -> Result<(), GpuError> {
        let pixels = self.out_h as u64 * self.out_w as u64;
        let cells = self.mask_h as u64 * self.mask_w as u64;
        // f32 holds every output index exactly below 2^24; the kernel indexes with u32.
        if self.out_h.max(self.out_w) >= 1 << 24 || pixels > u32::MAX as u64 || cells > u32::MAX as u64 {
            return Err(GpuError::shape(
                op,
                format!(
                    "output {}x{} or mask {}x{} exceeds the kernel's indexing",
                    self.out_h, self.out_w, self.mask_h, self.mask_w
                ),
            ));
        }
        if !(self.scale_y.is_finite() && self.scale_x.is_finite() && self.scale_y > 0.0 && self.scale_x > 0.0)
        {
            return Err(GpuError::shape(op, format!("invalid scales {} and {}", self.scale_y, self.scale_x)));
        }
        Ok(())
    }
}

uniform! {
    #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        mask_h: u32,
        mask_w: u32,
        out_h: u32,
        out_w: u32,
        class_count: u32,
        instance_count: u32,
        instance_offset: u32,
        cell_logits: u32,
        scale_y: f32,
        scale_x: f32,
        /// Row bands: the first output row this dispatch computes, and the first cell row its cell
        /// tensors hold (0 and 0 unbanded).
        out_row0: u32,
        cell_row0: u32,
        class_bits: u32,
        instance_bits: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

fn params(ids: &IdSpace, r: &Resample) -> Params {
    Params {
        mask_h: r.mask_h as u32,
        mask_w: r.mask_w as u32,
        out_h: r.out_h as u32,
        out_w: r.out_w as u32,
        class_count: ids.class_count() as u32,
        instance_count: ids.instance_count() as u32,
        instance_offset: ids.instance_offset() as u32,
        cell_logits: ids.cell_logits() as u32,
        scale_y: r.scale_y,
        scale_x: r.scale_x,
        class_bits: ids.class_bits,
        instance_bits: ids.instance_bits,
        ..Default::default()
    }
}

/// `(mask_h, mask_w)` of logits `[H, W, L]` or `[1, H, W, L]` with `L` = the id space's logits.
pub fn logits_grid(op: &'static str, shape: &[usize], ids: &IdSpace) -> Result<(usize, usize), GpuError> {
    match *shape {
        [h, w, l] | [1, h, w, l] if l == ids.cell_logits() && h > 0 && w > 0 => Ok((h, w)),
        _ => Err(GpuError::shape(
            op,
            format!("logits must be [1, H, W, {}] with H, W ≥ 1, got {shape:?}", ids.cell_logits()),
        )),
    }
}

/// `(mask_h, mask_w)` of the last step's logits `[1, H, W, L]` and x̂0 `[1, H, W, n_bits]`.
fn check_last(
    op: &'static str,
    logits: &Tensor,
    x0: &Tensor,
    ids: &IdSpace,
) -> Result<(usize, usize), GpuError> {
    ids.check(op)?;
    if logits.dtype() != DType::F32 || x0.dtype() != DType::F32 {
        return Err(GpuError::shape(
            op,
            format!("logits and x̂0 must be f32, got {:?} and {:?}", logits.dtype(), x0.dtype()),
        ));
    }
    let grid = logits_grid(op, logits.shape(), ids)?;
    if x0.shape() != [1, grid.0, grid.1, ids.n_bits()] {
        return Err(GpuError::shape(
            op,
            format!("x̂0 must be [1, {}, {}, {}], got {:?}", grid.0, grid.1, ids.n_bits(), x0.shape()),
        ));
    }
    if logits.len() as u64 > u32::MAX as u64 {
        return Err(GpuError::shape(op, "logits exceed the 32-bit index"));
    }
    Ok(grid)
}

/// What step 1 of the definition gives per mask cell, on any backend: u32 class and instance ids
/// `[1, Hm, Wm]` and the class group's f32 void probability `[1, Hm, Wm]`.
#[derive(Debug)]
pub struct Cells<T> {
    pub class: T,
    pub instance: T,
    pub class_void: T,
}

/// Step 1: the last step's logits `[1, Hm, Wm, L]` and x̂0 `[1, Hm, Wm, n_bits]` → the cells'
/// ids and void probabilities.
pub fn cells(
    frame: &mut Frame,
    logits: &Tensor,
    x0: &Tensor,
    ids: &IdSpace,
) -> Result<Cells<Tensor>, GpuError> {
    const OP: &str = "cell_ids";
    let (h, w) = check_last(OP, logits, x0, ids)?;
    let class = frame.gpu().tensor(&[1, h, w], DType::U32)?;
    let instance = frame.gpu().tensor(&[1, h, w], DType::U32)?;
    let class_void = frame.gpu().tensor(&[1, h, w], DType::F32)?;
    let p = params(ids, &Resample::identity(h, w)?);
    let groups = frame.gpu().fold_workgroups(groups_for(h * w, ELEMENTWISE_WORKGROUP));
    frame.dispatch(&CELL_IDS, &p, &[logits, x0, &class, &instance, &class_void], groups);
    Ok(Cells { class, instance, class_void })
}

/// The readout at `r`'s output size: the last step's logits `[1, Hm, Wm, L]`, x̂0
/// `[1, Hm, Wm, n_bits]` and their [`cells`] → (class, instance) u32 `[out_h, out_w]`.
pub fn readout(
    frame: &mut Frame,
    logits: &Tensor,
    x0: &Tensor,
    cells: &Cells<Tensor>,
    ids: &IdSpace,
    r: &Resample,
) -> Result<(Tensor, Tensor), GpuError> {
    check_readout(logits, x0, cells, ids, r)?;
    readout_rows(frame, logits, x0, cells, ids, r, 0..r.out_h, 0)
}

/// The shape checks of [`readout`] (also for its row bands).
pub(crate) fn check_readout(
    logits: &Tensor,
    x0: &Tensor,
    cells: &Cells<Tensor>,
    ids: &IdSpace,
    r: &Resample,
) -> Result<(), GpuError> {
    const OP: &str = "readout";
    let grid = check_last(OP, logits, x0, ids)?;
    r.check(OP)?;
    if grid != (r.mask_h, r.mask_w) {
        return Err(GpuError::shape(
            OP,
            format!(
                "logits are {}x{} cells, the resampling expects {}x{}",
                grid.0, grid.1, r.mask_h, r.mask_w
            ),
        ));
    }
    let n = r.mask_h * r.mask_w;
    for (t, dtype) in
        [(&cells.class, DType::U32), (&cells.instance, DType::U32), (&cells.class_void, DType::F32)]
    {
        if t.dtype() != dtype || t.len() != n {
            return Err(GpuError::shape(
                OP,
                format!("cell maps must be {dtype:?} with {n} cells, got {:?} {:?}", t.shape(), t.dtype()),
            ));
        }
    }
    Ok(())
}

/// The cell rows the output rows `rows` read (with one row of margin on each side, so f32
/// rounding on the GPU cannot reach past them).
pub fn cell_rows(r: &Resample, rows: Range<usize>) -> Range<usize> {
    let cell = |i: usize| ((i as f32 + 0.5) * r.scale_y - 0.5).floor() as i64;
    let last = r.mask_h as i64 - 1;
    let first = (cell(rows.start) - 1).clamp(0, last) as usize;
    let end = (cell(rows.end.saturating_sub(1).max(rows.start)) + 2).clamp(0, last) as usize;
    first..end + 1
}

/// Output rows `rows` of the readout from cell tensors that hold the cell rows from `cell_row0`
/// on (row bands; the whole map is `0..out_h` from 0): (class, instance) `[rows, out_w]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn readout_rows(
    frame: &mut Frame,
    logits: &Tensor,
    x0: &Tensor,
    cells: &Cells<Tensor>,
    ids: &IdSpace,
    r: &Resample,
    rows: Range<usize>,
    cell_row0: usize,
) -> Result<(Tensor, Tensor), GpuError> {
    let class = frame.gpu().tensor(&[rows.len(), r.out_w], DType::U32)?;
    let instance = frame.gpu().tensor(&[rows.len(), r.out_w], DType::U32)?;
    let p = Params {
        out_h: rows.len() as u32,
        out_row0: rows.start as u32,
        cell_row0: cell_row0 as u32,
        ..params(ids, r)
    };
    let groups = frame.gpu().fold_workgroups(groups_for(rows.len() * r.out_w, ELEMENTWISE_WORKGROUP));
    let bound = [logits, x0, &cells.class, &cells.instance, &cells.class_void, &class, &instance];
    frame.dispatch(&READOUT, &p, &bound, groups);
    Ok((class, instance))
}

/// CPU twins: the same f32 operations in the same order as `shaders/readout.wgsl`.
pub mod cpu {
    use super::{IdSpace, Resample};

    /// Step 1's maps in host memory.
    #[derive(Clone, Debug, PartialEq)]
    pub struct CellMaps {
        pub class: Vec<u32>,
        pub instance: Vec<u32>,
        pub class_void: Vec<f32>,
    }

    /// Step 1's maps borrowed from wherever they live (a [`CellMaps`], CPU tensors).
    #[derive(Clone, Copy, Debug)]
    pub struct CellSlices<'a> {
        pub class: &'a [u32],
        pub instance: &'a [u32],
        pub class_void: &'a [f32],
    }

    impl CellMaps {
        pub fn view(&self) -> CellSlices<'_> {
            CellSlices { class: &self.class, instance: &self.instance, class_void: &self.class_void }
        }
    }

    /// The first largest value's index (ties: the smaller index, as numpy's argmax).
    fn argmax(values: impl Iterator<Item = f32>) -> u32 {
        let (mut best, mut best_value) = (0u32, 0.0f32);
        for (v, x) in values.enumerate() {
            if v == 0 || x > best_value {
                best = v as u32;
                best_value = x;
            }
        }
        best
    }

    /// `p0 = 1 / Σ_v exp(l_v − l_0)` of one group's valid logits, summed in id order.
    pub fn void_probability(group: &[f32]) -> f32 {
        let mut sum = 0.0f32;
        for &l in group {
            sum += (l - group[0]).exp();
        }
        1.0 / sum
    }

    /// The class id from the void probability and the class scores: void when `p0 ≥ 0.5` (or
    /// it is the only valid class), else the best non-void class.
    fn class_id(p0: f32, count: usize, score: impl Fn(usize) -> f32) -> u32 {
        if count == 1 || p0 >= 0.5 {
            0
        } else {
            1 + argmax((1..count).map(score))
        }
    }

    /// The instance id of x̂0's instance bits (or of their mix): `Σ_k [x_k > 0]·2^k`, capped.
    fn instance_id(bits: impl Iterator<Item = f32>, count: usize) -> u32 {
        let id = bits.enumerate().fold(0u32, |acc, (k, x)| acc | (u32::from(x > 0.0) << k));
        id.min(count as u32 - 1)
    }

    /// Step 1 of the definition: logits `[cells, L]` and x̂0 `[cells, n_bits]` → ids and class
    /// void probabilities.
    pub fn cells(logits: &[f32], x0: &[f32], ids: &IdSpace) -> CellMaps {
        let (classes, instances, class_bits) =
            (ids.class_count(), ids.instance_count(), ids.class_bits as usize);
        let n = logits.len() / ids.cell_logits();
        let mut out = CellMaps {
            class: Vec::with_capacity(n),
            instance: Vec::with_capacity(n),
            class_void: Vec::with_capacity(n),
        };
        for (cell, bits) in logits.chunks_exact(ids.cell_logits()).zip(x0.chunks_exact(ids.n_bits())) {
            let class_logits = &cell[..classes];
            let p0 = void_probability(class_logits);
            out.class.push(class_id(p0, classes, |v| class_logits[v]));
            out.class_void.push(p0);
            out.instance.push(instance_id(bits[class_bits..].iter().copied(), instances));
        }
        out
    }

    /// One axis of the resampling: for each output index, its two cells and the second's weight.
    fn axis(out: usize, scale: f32, len: usize) -> Vec<(usize, usize, f32)> {
        let last = len as i64 - 1;
        (0..out)
            .map(|i| {
                let f = (i as f32 + 0.5) * scale - 0.5;
                let fl = f.floor();
                let i0 = fl as i64;
                (i0.clamp(0, last) as usize, (i0 + 1).clamp(0, last) as usize, f - fl)
            })
            .collect()
    }

    /// The readout: logits `[Hm·Wm, L]`, x̂0 `[Hm·Wm, n_bits]` and their [`cells`] → (class,
    /// instance) `[out_h·out_w]`.
    pub fn readout(
        logits: &[f32],
        x0: &[f32],
        cells: CellSlices<'_>,
        ids: &IdSpace,
        r: &Resample,
    ) -> (Vec<u32>, Vec<u32>) {
        let (l, nb) = (ids.cell_logits(), ids.n_bits());
        let (classes, instances, class_bits) =
            (ids.class_count(), ids.instance_count(), ids.class_bits as usize);
        let rows = axis(r.out_h, r.scale_y, r.mask_h);
        let cols = axis(r.out_w, r.scale_x, r.mask_w);
        let (mut class, mut instance) =
            (Vec::with_capacity(r.out_h * r.out_w), Vec::with_capacity(r.out_h * r.out_w));
        let agreed = |map: &[u32], c: &[usize; 4]| c[1..].iter().all(|&k| map[k] == map[c[0]]);
        for &(y0, y1, ty) in &rows {
            for &(x0c, x1c, tx) in &cols {
                let c = [y0 * r.mask_w + x0c, y0 * r.mask_w + x1c, y1 * r.mask_w + x0c, y1 * r.mask_w + x1c];
                let w = [(1.0 - ty) * (1.0 - tx), (1.0 - ty) * tx, ty * (1.0 - tx), ty * tx];
                let mix = |x: &dyn Fn(usize) -> f32| {
                    ((w[0] * x(c[0]) + w[1] * x(c[1])) + w[2] * x(c[2])) + w[3] * x(c[3])
                };
                class.push(if agreed(cells.class, &c) {
                    cells.class[c[0]]
                } else {
                    class_id(mix(&|cell| cells.class_void[cell]), classes, |v| {
                        mix(&|cell| logits[cell * l + v])
                    })
                });
                instance.push(if agreed(cells.instance, &c) {
                    cells.instance[c[0]]
                } else {
                    let bits = (class_bits..nb).map(|k| mix(&|cell| x0[cell * nb + k]));
                    instance_id(bits, instances)
                });
            }
        }
        (class, instance)
    }
}
