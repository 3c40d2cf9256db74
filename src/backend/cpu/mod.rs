//! The whole forward pass on the CPU: [`CpuBackend`] runs the model code where WebGPU is missing
//! (the page's worker, the CLI's `--cpu`). Convolutions, linears and attention run on the fast
//! kernels of this folder (packed GEMM tiles over all threads: [`gemm`], [`conv`], [`attention`]),
//! which their tests check against the plain-Rust twins (`ops::*::cpu`); the rest runs the twins
//! themselves. Shapes are checked here, so no kernel's assertion can fire on a model that passed
//! loading.

pub mod attention;
pub mod check;
pub mod conv;
pub mod gemm;
pub mod norm;
pub mod par;
mod tensor;

pub use par::CpuPath;
pub use tensor::CpuTensor;
use tensor::{last, nhwc, same_shape, vector};

use crate::backend::{Backend, Epilogue, Upload};
use crate::gpu::GpuError;
use crate::ops::bits::{self, BitSpec, DdimCoefficients};
use crate::ops::conv::{self as conv_ops, Geometry};
use crate::ops::norm as norm_ops;
use crate::ops::readout::{self, Cells, IdSpace, Resample};
use crate::ops::{elementwise, embed, layout, rng, Activation};

/// The CPU backend; stateless.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

/// Uploading to the CPU backend is a copy.
impl Upload<CpuTensor> for CpuBackend {
    fn upload(&self, shape: &[usize], data: &[f32]) -> Result<CpuTensor, GpuError> {
        CpuTensor::new(shape, data.to_vec())
    }
}

impl Backend for CpuBackend {
    type Tensor = CpuTensor;

    fn shape(t: &CpuTensor) -> &[usize] {
        &t.shape
    }

    fn reshape(t: &CpuTensor, shape: &[usize]) -> CpuTensor {
        debug_assert_eq!(shape.iter().product::<usize>(), t.shape.iter().product::<usize>());
        CpuTensor { shape: shape.to_vec(), data: t.data.clone() }
    }

    fn upload(&mut self, shape: &[usize], data: &[f32]) -> Result<CpuTensor, GpuError> {
        CpuTensor::new(shape, data.to_vec())
    }

    fn upload_u32(&mut self, shape: &[usize], data: &[u32]) -> Result<CpuTensor, GpuError> {
        CpuTensor::new_u32(shape, data.to_vec())
    }

    fn conv2d(
        &mut self,
        x: &CpuTensor,
        w: &CpuTensor,
        geom: &Geometry,
        epi: Epilogue<CpuTensor>,
    ) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu conv2d";
        let xs = nhwc(OP, x)?;
        let ws = match *w.shape() {
            [kh, kw, ci, co] if ci == xs[3] => [kh, kw, ci, co],
            _ => {
                return Err(GpuError::shape(
                    OP,
                    format!("weight {:?} does not fit the input {:?}", w.shape(), x.shape()),
                ))
            }
        };
        let (oh, ow) = geom
            .output_size((xs[1], xs[2]), (ws[0], ws[1]))
            .ok_or_else(|| GpuError::shape(OP, "no output for this geometry"))?;
        let out_shape = [xs[0], oh, ow, ws[3]];
        let residual = match epi.residual {
            Some(r) if r.shape() != out_shape => {
                return Err(GpuError::shape(OP, format!("residual {:?} is not {out_shape:?}", r.shape())))
            }
            Some(r) => Some(r.f32()?),
            None => None,
        };
        let row_epi = gemm::RowEpilogue::conv(vector(OP, epi.bias, ws[3])?, residual, epi.act, epi.scale);
        CpuTensor::new(&out_shape, conv::conv2d(x.f32()?, xs, w.f32()?, ws, geom, &row_epi))
    }

    fn depthwise_conv2d(
        &mut self,
        x: &CpuTensor,
        w: &CpuTensor,
        bias: Option<&CpuTensor>,
        geom: &Geometry,
        act: Activation,
    ) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu depthwise_conv2d";
        let xs = nhwc(OP, x)?;
        let (kh, kw) = match *w.shape() {
            [kh, kw, c] if c == xs[3] => (kh, kw),
            _ => {
                return Err(GpuError::shape(
                    OP,
                    format!("weight {:?} does not fit the input {:?}", w.shape(), x.shape()),
                ))
            }
        };
        let (oh, ow) = geom
            .output_size((xs[1], xs[2]), (kh, kw))
            .ok_or_else(|| GpuError::shape(OP, "no output for this geometry"))?;
        let y = conv::depthwise_conv2d(x.f32()?, xs, w.f32()?, (kh, kw), vector(OP, bias, xs[3])?, geom, act);
        CpuTensor::new(&[xs[0], oh, ow, xs[3]], y)
    }

    fn max_pool2d(
        &mut self,
        x: &CpuTensor,
        window: (usize, usize),
        geom: &Geometry,
    ) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu max_pool2d";
        let xs = nhwc(OP, x)?;
        let (oh, ow) = geom
            .output_size((xs[1], xs[2]), window)
            .ok_or_else(|| GpuError::shape(OP, "no output for this geometry"))?;
        CpuTensor::new(&[xs[0], oh, ow, xs[3]], conv_ops::cpu::max_pool2d(x.f32()?, xs, window, geom))
    }

    fn linear(
        &mut self,
        x: &CpuTensor,
        w: &CpuTensor,
        epi: Epilogue<CpuTensor>,
    ) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu linear";
        let k = last(x);
        let n = match *w.shape() {
            [wk, n] if wk == k => n,
            _ => {
                return Err(GpuError::shape(
                    OP,
                    format!("weight {:?} does not fit the input {:?}", w.shape(), x.shape()),
                ))
            }
        };
        let mut out_shape = x.shape().to_vec();
        if let Some(l) = out_shape.last_mut() {
            *l = n;
        }
        let residual = match epi.residual {
            Some(r) if r.shape() != out_shape.as_slice() => {
                return Err(GpuError::shape(OP, format!("residual {:?} is not {out_shape:?}", r.shape())))
            }
            Some(r) => Some(r.f32()?),
            None => None,
        };
        let rows = x.shape().iter().product::<usize>() / k.max(1);
        let row_epi = gemm::RowEpilogue::linear(vector(OP, epi.bias, n)?, residual, epi.act);
        CpuTensor::new(&out_shape, gemm::linear(x.f32()?, rows, k, w.f32()?, n, &row_epi))
    }

    fn layer_norm(
        &mut self,
        x: &CpuTensor,
        gamma: &CpuTensor,
        beta: &CpuTensor,
        eps: f32,
        act: Activation,
    ) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu layer_norm";
        let d = last(x);
        let (g, b) = (vector(OP, Some(gamma), d)?.unwrap_or(&[]), vector(OP, Some(beta), d)?.unwrap_or(&[]));
        CpuTensor::new(x.shape(), norm_ops::cpu::layer_norm(x.f32()?, d, g, b, eps, act))
    }

    fn group_norm(
        &mut self,
        x: &CpuTensor,
        gamma: &CpuTensor,
        beta: &CpuTensor,
        groups: usize,
        eps: f32,
        scale_shift: Option<&CpuTensor>,
        act: Activation,
    ) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu group_norm";
        let c = last(x);
        let n = x.shape().first().copied().unwrap_or(0);
        if groups == 0 || c % groups != 0 || x.shape().len() < 2 {
            return Err(GpuError::shape(
                OP,
                format!("{c} channels of {:?} do not form {groups} groups", x.shape()),
            ));
        }
        let ss = match scale_shift {
            Some(t) if t.shape() == [n, 2 * c] => Some(t.f32()?),
            Some(t) => {
                return Err(GpuError::shape(
                    OP,
                    format!("scale_shift must be [{n}, {}], got {:?}", 2 * c, t.shape()),
                ))
            }
            None => None,
        };
        let (g, b) = (vector(OP, Some(gamma), c)?.unwrap_or(&[]), vector(OP, Some(beta), c)?.unwrap_or(&[]));
        let spec = norm::GroupNorm { groups, gamma: g, beta: b, eps, act };
        CpuTensor::new(x.shape(), norm::group_norm(x.f32()?, n, c, &spec, ss))
    }

    fn attention_qkv(&mut self, qkv: &CpuTensor, heads: usize) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu attention_qkv";
        let &[n, l, d3] = qkv.shape() else {
            return Err(GpuError::shape(OP, format!("qkv must be [N, L, 3d], got {:?}", qkv.shape())));
        };
        let d = d3 / 3;
        if d3 % 3 != 0 || heads == 0 || d % heads != 0 {
            return Err(GpuError::shape(
                OP,
                format!("{d3} channels do not split into q, k, v of {heads} heads"),
            ));
        }
        let data = qkv.f32()?;
        let part = |i: usize| attention::Rows { data, offset: i * d, row_stride: d3 };
        let shape = attention::Shape { batch: n, lq: l, lk: l, heads, dh: d / heads };
        CpuTensor::new(&[n, l, d], attention::attention(part(0), part(1), part(2), &shape))
    }

    fn attention_q_kv(&mut self, q: &CpuTensor, kv: &CpuTensor, heads: usize) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu attention_q_kv";
        let (&[n, lq, d], &[nk, lk, d2]) = (q.shape(), kv.shape()) else {
            return Err(GpuError::shape(
                OP,
                format!("q {:?} / kv {:?} must be [N, L, d] / [N, L, 2d]", q.shape(), kv.shape()),
            ));
        };
        if nk != n || d2 != 2 * d || heads == 0 || d % heads != 0 {
            return Err(GpuError::shape(
                OP,
                format!("q {:?} and kv {:?} do not match ({heads} heads)", q.shape(), kv.shape()),
            ));
        }
        let q = attention::Rows { data: q.f32()?, offset: 0, row_stride: d };
        let (data, row_stride) = (kv.f32()?, d2);
        let (k, v) = (
            attention::Rows { data, offset: 0, row_stride },
            attention::Rows { data, offset: d, row_stride },
        );
        let shape = attention::Shape { batch: n, lq, lk, heads, dh: d / heads };
        CpuTensor::new(&[n, lq, d], attention::attention(q, k, v, &shape))
    }

    fn add(&mut self, a: &CpuTensor, b: &CpuTensor, act: Activation) -> Result<CpuTensor, GpuError> {
        let b = same_shape("cpu add", a, Some(b))?.unwrap_or(&[]);
        CpuTensor::new(a.shape(), elementwise::cpu::add(a.f32()?, b, 1.0, act))
    }

    fn affine(&mut self, x: &CpuTensor, alpha: f32, beta: f32) -> Result<CpuTensor, GpuError> {
        CpuTensor::new(x.shape(), elementwise::cpu::affine(x.f32()?, alpha, beta, Activation::None))
    }

    fn concat_channels(&mut self, parts: &[&CpuTensor]) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu concat_channels";
        let first = parts.first().ok_or_else(|| GpuError::shape(OP, "nothing to concatenate"))?;
        let lead = &first.shape()[..first.shape().len().saturating_sub(1)];
        let mut slices = Vec::with_capacity(parts.len());
        for p in parts {
            if p.shape().is_empty() || &p.shape()[..p.shape().len() - 1] != lead {
                return Err(GpuError::shape(
                    OP,
                    format!("{:?} and {:?} differ outside the channels", first.shape(), p.shape()),
                ));
            }
            slices.push((p.f32()?, last(p)));
        }
        let mut shape = lead.to_vec();
        shape.push(slices.iter().map(|s| s.1).sum());
        CpuTensor::new(&shape, layout::cpu::concat_channels(&slices))
    }

    fn upsample_nearest(
        &mut self,
        x: &CpuTensor,
        factor: usize,
        skip: Option<&CpuTensor>,
    ) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu upsample_nearest";
        let [n, h, w, c] = nhwc(OP, x)?;
        let out = [n, h * factor, w * factor, c];
        let skip = match skip {
            Some(s) if s.shape() != out => {
                return Err(GpuError::shape(OP, format!("skip {:?} is not {out:?}", s.shape())))
            }
            Some(s) => Some(s.f32()?),
            None => None,
        };
        CpuTensor::new(&out, layout::cpu::upsample_nearest(x.f32()?, n, h, w, c, factor, factor, skip))
    }

    fn append_token(
        &mut self,
        x: &CpuTensor,
        token: &CpuTensor,
        pos: Option<&CpuTensor>,
    ) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu append_token";
        let &[n, l, c] = x.shape() else {
            return Err(GpuError::shape(OP, format!("x must be [N, L, C], got {:?}", x.shape())));
        };
        if token.shape() != [n, c] || pos.is_some_and(|p| p.shape() != [l, c]) {
            return Err(GpuError::shape(
                OP,
                format!("token {:?} / pos do not fit {:?}", token.shape(), x.shape()),
            ));
        }
        let pos = match pos {
            Some(p) => Some(p.f32()?),
            None => None,
        };
        CpuTensor::new(&[n, l + 1, c], layout::cpu::append_token(x.f32()?, token.f32()?, pos, n, l, c))
    }

    fn slice_tokens(&mut self, x: &CpuTensor, start: usize, len: usize) -> Result<CpuTensor, GpuError> {
        const OP: &str = "cpu slice_tokens";
        let &[n, l, c] = x.shape() else {
            return Err(GpuError::shape(OP, format!("x must be [N, L, C], got {:?}", x.shape())));
        };
        if start + len > l {
            return Err(GpuError::shape(
                OP,
                format!("tokens [{start}, {}) are outside {:?}", start + len, x.shape()),
            ));
        }
        CpuTensor::new(&[n, len, c], layout::cpu::slice_tokens(x.f32()?, n, l, c, start, len))
    }

    fn scalar_embedding(
        &mut self,
        value: f32,
        scale: f32,
        n: usize,
        dim: usize,
    ) -> Result<CpuTensor, GpuError> {
        CpuTensor::new(&[n, dim], embed::cpu::scalar_embedding(&vec![value; n], scale, dim))
    }

    fn position_code_2d(&mut self, height: usize, width: usize, dim: usize) -> Result<CpuTensor, GpuError> {
        CpuTensor::new(&[height * width, dim], embed::cpu::position_code_2d(height, width, dim))
    }

    fn normal_fill(&mut self, shape: &[usize], seed: u32, offset: u32) -> Result<CpuTensor, GpuError> {
        CpuTensor::new(shape, rng::cpu::normal_fill(seed, offset, shape.iter().product()))
    }

    fn ids_to_bits(
        &mut self,
        class: &CpuTensor,
        instance: &CpuTensor,
        spec: &BitSpec,
    ) -> Result<CpuTensor, GpuError> {
        if class.shape() != instance.shape() {
            return Err(GpuError::shape(
                "cpu ids_to_bits",
                format!("{:?} and {:?} differ", class.shape(), instance.shape()),
            ));
        }
        let mut shape = class.shape().to_vec();
        shape.push(spec.n_bits());
        CpuTensor::new(&shape, bits::cpu::ids_to_bits(class.u32()?, instance.u32()?, spec))
    }

    fn expected_bits_ddim(
        &mut self,
        logits: &CpuTensor,
        m: &CpuTensor,
        spec: &BitSpec,
        k: &DdimCoefficients,
    ) -> Result<(CpuTensor, CpuTensor), GpuError> {
        const OP: &str = "cpu expected_bits_ddim";
        if last(logits) != spec.n_logits()
            || last(m) != spec.n_bits()
            || logits.shape()[..logits.shape().len() - 1] != m.shape()[..m.shape().len() - 1]
        {
            return Err(GpuError::shape(
                OP,
                format!("logits {:?} and m {:?} do not fit the bit layout", logits.shape(), m.shape()),
            ));
        }
        let x0: Vec<f32> = bits::cpu::expected_bits(logits.f32()?, spec)
            .into_iter()
            .map(|v| v.clamp(-spec.b_scale, spec.b_scale))
            .collect();
        let next = bits::cpu::ddim_step(m.f32()?, &x0, spec.b_scale, k);
        Ok((CpuTensor::new(m.shape(), x0)?, CpuTensor::new(m.shape(), next)?))
    }

    fn bits_to_ids(
        &mut self,
        x: &CpuTensor,
        spec: &BitSpec,
        num_classes: u32,
        max_instances: u32,
    ) -> Result<(CpuTensor, CpuTensor), GpuError> {
        if last(x) != spec.n_bits() || num_classes == 0 || max_instances == 0 {
            return Err(GpuError::shape(
                "cpu bits_to_ids",
                format!("{:?} does not fit the bit layout", x.shape()),
            ));
        }
        let shape = &x.shape()[..x.shape().len() - 1];
        let (c, i) = bits::cpu::bits_to_ids(x.f32()?, spec, num_classes, max_instances);
        Ok((CpuTensor::new_u32(shape, c)?, CpuTensor::new_u32(shape, i)?))
    }

    fn cells(
        &mut self,
        logits: &CpuTensor,
        x0: &CpuTensor,
        ids: &IdSpace,
    ) -> Result<Cells<CpuTensor>, GpuError> {
        let (h, w) = readout::logits_grid("cpu cells", logits.shape(), ids)?;
        if x0.shape() != [1, h, w, ids.n_bits()] {
            return Err(GpuError::shape(
                "cpu cells",
                format!("x̂0 {:?} does not fit the logits {:?}", x0.shape(), logits.shape()),
            ));
        }
        let c = readout::cpu::cells(logits.f32()?, x0.f32()?, ids);
        let shape = [1, h, w];
        Ok(Cells {
            class: CpuTensor::new_u32(&shape, c.class)?,
            instance: CpuTensor::new_u32(&shape, c.instance)?,
            class_void: CpuTensor::new(&shape, c.class_void)?,
        })
    }

    fn readout(
        &mut self,
        logits: &CpuTensor,
        x0: &CpuTensor,
        cells: &Cells<CpuTensor>,
        ids: &IdSpace,
        r: &Resample,
    ) -> Result<(CpuTensor, CpuTensor), GpuError> {
        const OP: &str = "cpu readout";
        let grid = readout::logits_grid(OP, logits.shape(), ids)?;
        if x0.shape() != [1, grid.0, grid.1, ids.n_bits()] {
            return Err(GpuError::shape(
                OP,
                format!("x̂0 {:?} does not fit the logits {:?}", x0.shape(), logits.shape()),
            ));
        }
        let maps = readout::cpu::CellSlices {
            class: cells.class.u32()?,
            instance: cells.instance.u32()?,
            class_void: cells.class_void.f32()?,
        };
        let n = r.mask_h * r.mask_w;
        if grid != (r.mask_h, r.mask_w)
            || [maps.class.len(), maps.instance.len(), maps.class_void.len()] != [n; 3]
        {
            return Err(GpuError::shape(
                OP,
                format!("logits {:?} and their cells do not fit the resampling {r:?}", logits.shape()),
            ));
        }
        let (c, i) = readout::cpu::readout(logits.f32()?, x0.f32()?, maps, ids, r);
        Ok((CpuTensor::new_u32(&[r.out_h, r.out_w], c)?, CpuTensor::new_u32(&[r.out_h, r.out_w], i)?))
    }
}
