//! Row bands: ops on tensors larger than the adapter's storage-binding limit (WebGPU's default
//! is 128 MiB; the `paper` config's 512² decoder tensors reach 384 MiB).
//!
//! A tensor `[1, H, W, C]` may be larger than a binding, not than a buffer. Such an op runs band
//! by band over output rows: the input rows a band needs (with the conv's halo) are copied into
//! a small tensor, the ordinary kernel runs on it, and its output is copied into the big output
//! at the band's rows. Copies split the frame's compute pass; frames that need no bands keep
//! their single pass. Results equal the unbanded op's (GroupNorm's statistics are merged across
//! bands in one finalize, so only their summation order differs).

use std::ops::Range;

use crate::gpu::{DType, Frame, GpuError, Tensor};
use crate::ops::conv::{self, Geometry};
use crate::ops::readout::{self, Cells, IdSpace, Resample};
use crate::ops::{norm, Activation};

/// `(H, bytes of one row)` of a `[1, H, W, C]` tensor (or `[H, W]`, `[1, H, W]` maps).
fn rows_of(op: &'static str, t: &Tensor) -> Result<(usize, u64), GpuError> {
    match *t.shape() {
        [1, h, w, c] => Ok((h, (w * c) as u64 * t.dtype().size())),
        [1, h, w] | [h, w] => Ok((h, w as u64 * t.dtype().size())),
        _ => Err(GpuError::Unsupported {
            op,
            detail: format!(
                "{:?} ({} bytes) exceeds the storage-binding limit and only [1, H, W, C] tensors can be split into row bands",
                t.shape(),
                t.byte_size()
            ),
        }),
    }
}

/// Whether any of these tensors (or an output of `out_bytes`) is too large to bind.
pub fn needed(frame: &Frame, tensors: &[&Tensor], out_bytes: u64) -> bool {
    let limit = frame.gpu().binding_limit();
    out_bytes > limit || tensors.iter().any(|t| t.byte_size() > limit)
}

/// Rows `r` of `t` as a tensor of their own (a copy recorded in the frame).
fn copy_rows(frame: &mut Frame, op: &'static str, t: &Tensor, r: Range<usize>) -> Result<Tensor, GpuError> {
    let (_, row_bytes) = rows_of(op, t)?;
    let mut shape = t.shape().to_vec();
    let axis = shape.len() - if shape.len() == 4 { 3 } else { 2 };
    shape[axis] = r.len();
    let band = frame.gpu().tensor(&shape, t.dtype())?;
    frame.copy_bytes(t, r.start as u64 * row_bytes, &band, 0, r.len() as u64 * row_bytes)?;
    Ok(band)
}

/// Copies `band` into `dst` from row `r0` on.
fn write_rows(
    frame: &mut Frame,
    op: &'static str,
    band: &Tensor,
    dst: &Tensor,
    r0: usize,
) -> Result<(), GpuError> {
    let (_, row_bytes) = rows_of(op, dst)?;
    frame.copy_bytes(band, 0, dst, r0 as u64 * row_bytes, band.byte_size())
}

/// The fewest bands of `rows` output rows, each starting at a multiple of `step`, for which
/// `bytes(band)` (the largest tensor a band binds) stays within the binding limit.
fn plan(
    frame: &Frame,
    op: &'static str,
    rows: usize,
    step: usize,
    bytes: impl Fn(Range<usize>) -> u64,
) -> Result<Vec<Range<usize>>, GpuError> {
    let limit = frame.gpu().binding_limit();
    let step = step.max(1);
    let units = rows.div_ceil(step);
    for n in 1..=units {
        let per = units.div_ceil(n) * step;
        let bands: Vec<Range<usize>> = (0..rows).step_by(per).map(|r0| r0..(r0 + per).min(rows)).collect();
        if bands.iter().all(|b| bytes(b.clone()) <= limit) {
            return Ok(bands);
        }
    }
    Err(GpuError::TooLarge {
        what: format!("{op}: one row band of {step} rows"),
        needed: bytes(0..step.min(rows)),
        limit,
    })
}

/// Input rows `[a, b)` output rows `r` of a conv read, and the band's own geometry: the same
/// strides, with the padding that the band's window leaves.
fn conv_window(r: &Range<usize>, h: usize, kh: usize, geom: &Geometry) -> (Range<usize>, Geometry) {
    let s = geom.stride_h;
    let first = (r.start * s) as isize - geom.pad_top as isize;
    let last = ((r.end - 1) * s + kh) as isize - geom.pad_top as isize; // exclusive
    let a = first.max(0) as usize;
    let b = (last.max(0) as usize).min(h);
    let pad_top = (a as isize - first) as usize;
    let pad_bottom = (last - b as isize).max(0) as usize;
    (a..b, Geometry { pad_top, pad_bottom, ..*geom })
}

/// [`conv::conv2d`] band by band over output rows.
pub fn conv2d(
    frame: &mut Frame,
    x: &Tensor,
    w: &Tensor,
    geom: &Geometry,
    epi: &conv::Epilogue,
) -> Result<Tensor, GpuError> {
    const OP: &str = "conv2d";
    let (h, x_row) = rows_of(OP, x)?;
    let &[_, _, wd, _] = x.shape() else { return Err(GpuError::shape(OP, "x must be [1, H, W, C]")) };
    let &[kh, kw, _, cout] = w.shape() else {
        return Err(GpuError::shape(OP, format!("weight must be [KH, KW, Cin, Cout], got {:?}", w.shape())));
    };
    let (oh, ow) = geom
        .output_size((h, wd), (kh, kw))
        .ok_or_else(|| GpuError::shape(OP, "no output for this geometry"))?;
    let out_row = (ow * cout) as u64 * 4;
    let y = frame.gpu().tensor(&[1, oh, ow, cout], DType::F32)?;
    let bands = plan(frame, OP, oh, 1, |r| {
        let (inp, _) = conv_window(&r, h, kh, geom);
        (inp.len() as u64 * x_row).max(r.len() as u64 * out_row)
    })?;
    for r in bands {
        let (inp, band_geom) = conv_window(&r, h, kh, geom);
        let xb = copy_rows(frame, OP, x, inp)?;
        let residual = epi.residual.map(|t| copy_rows(frame, OP, t, r.clone())).transpose()?;
        let band_epi = conv::Epilogue { residual: residual.as_ref(), ..*epi };
        let yb = conv::conv2d(frame, &xb, w, &band_geom, &band_epi)?;
        if yb.shape() != [1, r.len(), ow, cout] {
            return Err(GpuError::shape(OP, format!("band {r:?} gave {:?}", yb.shape())));
        }
        write_rows(frame, OP, &yb, &y, r.start)?;
    }
    Ok(y)
}

/// A row-local op (every output row depends only on the same rows of each input, all of one
/// height) band by band: `f` gets the inputs' rows of one band and returns that band's outputs.
pub fn map_rows(
    frame: &mut Frame,
    op: &'static str,
    inputs: &[&Tensor],
    outputs: &[(Vec<usize>, DType)],
    mut f: impl FnMut(&mut Frame, &[Tensor]) -> Result<Vec<Tensor>, GpuError>,
) -> Result<Vec<Tensor>, GpuError> {
    let mut rows = None;
    let mut row_bytes = 0;
    for t in inputs {
        let (h, rb) = rows_of(op, t)?;
        if rows.replace(h).is_some_and(|prev| prev != h) {
            return Err(GpuError::shape(op, "row bands need inputs of one height"));
        }
        row_bytes = row_bytes.max(rb);
    }
    let rows = rows.ok_or_else(|| GpuError::shape(op, "no inputs"))?;
    let out: Vec<Tensor> =
        outputs.iter().map(|(shape, dtype)| frame.gpu().tensor(shape, *dtype)).collect::<Result<_, _>>()?;
    for o in &out {
        let (h, rb) = rows_of(op, o)?;
        if h != rows {
            return Err(GpuError::shape(op, "row bands need outputs as high as the inputs"));
        }
        row_bytes = row_bytes.max(rb);
    }
    for r in plan(frame, op, rows, 1, |r| r.len() as u64 * row_bytes)? {
        let parts: Vec<Tensor> =
            inputs.iter().map(|t| copy_rows(frame, op, t, r.clone())).collect::<Result<_, _>>()?;
        let results = f(frame, &parts)?;
        for (band, dst) in results.iter().zip(&out) {
            write_rows(frame, op, band, dst, r.start)?;
        }
    }
    Ok(out)
}

/// `upsample_nearest` (plus `skip`) by an integer factor, band by band over output rows.
pub fn upsample_nearest(
    frame: &mut Frame,
    x: &Tensor,
    factor: usize,
    skip: Option<&Tensor>,
) -> Result<Tensor, GpuError> {
    const OP: &str = "upsample_nearest";
    let (h, x_row) = rows_of(OP, x)?;
    let &[_, _, wd, c] = x.shape() else { return Err(GpuError::shape(OP, "x must be [1, H, W, C]")) };
    let out_shape = [1, h * factor, wd * factor, c];
    if let Some(s) = skip {
        if s.shape() != out_shape {
            return Err(GpuError::shape(OP, format!("skip {:?} is not {out_shape:?}", s.shape())));
        }
    }
    let out_row = (wd * factor * c) as u64 * 4;
    let y = frame.gpu().tensor(&out_shape, DType::F32)?;
    for r in plan(frame, OP, h * factor, factor, |r| {
        (r.len() as u64 * out_row).max(r.len().div_ceil(factor) as u64 * x_row)
    })? {
        let xb = copy_rows(frame, OP, x, r.start / factor..r.end.div_ceil(factor))?;
        let yb = match skip {
            Some(s) => {
                let sb = copy_rows(frame, OP, s, r.clone())?;
                crate::ops::layout::upsample_nearest_add(frame, &xb, factor, factor, &sb)?
            }
            None => crate::ops::layout::upsample_nearest(frame, &xb, factor, factor)?,
        };
        write_rows(frame, OP, &yb, &y, r.start)?;
    }
    Ok(y)
}

/// GroupNorm (optionally with FiLM) band by band: statistics of every band into one partials
/// buffer, one finalize, then the apply pass band by band.
#[allow(clippy::too_many_arguments)]
pub fn group_norm(
    frame: &mut Frame,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    groups: usize,
    eps: f32,
    film: Option<&Tensor>,
    act: Activation,
) -> Result<Tensor, GpuError> {
    const OP: &str = "group_norm";
    let (h, row_bytes) = rows_of(OP, x)?;
    let &[_, _, wd, _] = x.shape() else { return Err(GpuError::shape(OP, "x must be [1, H, W, C]")) };
    let bands = plan(frame, OP, h, 1, |r| r.len() as u64 * row_bytes)?;
    let plan = norm::BandedStats::new(frame, x.shape(), groups, eps, act)?;
    for r in &bands {
        let xb = copy_rows(frame, OP, x, r.clone())?;
        plan.stats(frame, &xb, r.start * wd)?;
    }
    let coef = plan.finalize(frame, gamma, beta, film)?;
    let y = frame.gpu().tensor(x.shape(), DType::F32)?;
    for r in bands {
        let xb = copy_rows(frame, OP, x, r.clone())?;
        let yb = plan.apply(frame, &xb, &coef)?;
        write_rows(frame, OP, &yb, &y, r.start)?;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_windows_cover_the_taps_and_keep_the_output_rows() {
        for (h, kh, s, p) in [(17, 3, 1, 1), (16, 3, 2, 1), (9, 1, 1, 0), (20, 7, 2, 3), (5, 3, 1, 1)] {
            let geom = Geometry::symmetric(s, p);
            let (oh, _) = geom.output_size((h, 4), (kh, 1)).unwrap();
            for r0 in 0..oh {
                for r1 in r0 + 1..=oh {
                    let (inp, g) = conv_window(&(r0..r1), h, kh, &geom);
                    let (boh, _) = g.output_size((inp.len(), 4), (kh, 1)).unwrap();
                    assert_eq!(boh, r1 - r0, "h {h} k {kh} s {s} p {p} band {r0}..{r1}");
                    // the band's first output row reads input row a - pad_top' = r0*s - p
                    assert_eq!(inp.start as isize - g.pad_top as isize, (r0 * s) as isize - p as isize);
                }
            }
        }
    }
}

/// The readout's cells, band by band over mask rows (each cell reads only its own logits).
pub fn cells(
    frame: &mut Frame,
    logits: &Tensor,
    x0: &Tensor,
    ids: &IdSpace,
) -> Result<Cells<Tensor>, GpuError> {
    let [_, h, w, _] = logits.shape()[..] else {
        return Err(GpuError::shape(
            "cell_ids",
            format!("logits must be [1, H, W, L], got {:?}", logits.shape()),
        ));
    };
    let outputs = [(vec![1, h, w], DType::U32), (vec![1, h, w], DType::U32), (vec![1, h, w], DType::F32)];
    let out = map_rows(frame, "cell_ids", &[logits, x0], &outputs, |f, t| {
        let c = readout::cells(f, &t[0], &t[1], ids)?;
        Ok(vec![c.class, c.instance, c.class_void])
    })?;
    let [class, instance, class_void]: [Tensor; 3] =
        out.try_into().map_err(|_| GpuError::shape("cell_ids", "lost a band output"))?;
    Ok(Cells { class, instance, class_void })
}

/// The readout band by band over output rows: each band copies the cell rows its pixels read.
pub fn readout(
    frame: &mut Frame,
    logits: &Tensor,
    x0: &Tensor,
    cells: &Cells<Tensor>,
    ids: &IdSpace,
    r: &Resample,
) -> Result<(Tensor, Tensor), GpuError> {
    const OP: &str = "readout";
    readout::check_readout(logits, x0, cells, ids, r)?;
    let (_, logits_row) = rows_of(OP, logits)?;
    let (_, x0_row) = rows_of(OP, x0)?;
    let logits_row = logits_row.max(x0_row);
    let out_row = r.out_w as u64 * 4;
    let bands = plan(frame, OP, r.out_h, 1, |rows| {
        (rows.len() as u64 * out_row).max(readout::cell_rows(r, rows).len() as u64 * logits_row)
    })?;
    let class = frame.gpu().tensor(&[r.out_h, r.out_w], DType::U32)?;
    let instance = frame.gpu().tensor(&[r.out_h, r.out_w], DType::U32)?;
    for rows in bands {
        let cell_rows = readout::cell_rows(r, rows.clone());
        let band_logits = copy_rows(frame, OP, logits, cell_rows.clone())?;
        let band_x0 = copy_rows(frame, OP, x0, cell_rows.clone())?;
        let band_cells = Cells {
            class: copy_rows(frame, OP, &cells.class, cell_rows.clone())?,
            instance: copy_rows(frame, OP, &cells.instance, cell_rows.clone())?,
            class_void: copy_rows(frame, OP, &cells.class_void, cell_rows.clone())?,
        };
        let (c, i) = readout::readout_rows(
            frame,
            &band_logits,
            &band_x0,
            &band_cells,
            ids,
            r,
            rows.clone(),
            cell_rows.start,
        )?;
        write_rows(frame, OP, &c, &class, rows.start)?;
        write_rows(frame, OP, &i, &instance, rows.start)?;
    }
    Ok((class, instance))
}
