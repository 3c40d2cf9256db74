//! [`Backend`] on the GPU: every op records one or more kernels into the frame; nothing runs
//! until the frame is submitted.

use super::{bands, Backend, Epilogue, Upload};
use crate::gpu::{DType, Frame, Gpu, GpuError, Tensor};
use crate::ops::bits::{self, BitSpec, DdimCoefficients};
use crate::ops::conv::{self, Geometry};
use crate::ops::readout::{self, Cells, IdSpace, Resample};
use crate::ops::{attention, elementwise, embed, layout, matmul, norm, rng, Activation};

pub struct GpuBackend<'f, 'g> {
    pub frame: &'f mut Frame<'g>,
}

impl<'f, 'g> GpuBackend<'f, 'g> {
    pub fn new(frame: &'f mut Frame<'g>) -> Self {
        GpuBackend { frame }
    }
}

impl Upload<Tensor> for Gpu {
    fn upload(&self, shape: &[usize], data: &[f32]) -> Result<Tensor, GpuError> {
        Gpu::upload(self, shape, data)
    }
}

impl Backend for GpuBackend<'_, '_> {
    type Tensor = Tensor;

    fn shape(t: &Tensor) -> &[usize] {
        t.shape()
    }

    fn reshape(t: &Tensor, shape: &[usize]) -> Tensor {
        t.reshape(shape)
    }

    fn upload(&mut self, shape: &[usize], data: &[f32]) -> Result<Tensor, GpuError> {
        self.frame.upload(shape, data)
    }

    fn upload_u32(&mut self, shape: &[usize], data: &[u32]) -> Result<Tensor, GpuError> {
        self.frame.upload_u32(shape, data)
    }

    fn conv2d(
        &mut self,
        x: &Tensor,
        w: &Tensor,
        geom: &Geometry,
        epi: Epilogue<Tensor>,
    ) -> Result<Tensor, GpuError> {
        let epi = conv::Epilogue { bias: epi.bias, act: epi.act, residual: epi.residual, scale: epi.scale };
        let out_bytes = match (x.shape(), w.shape()) {
            (&[n, h, wd, _], &[kh, kw, _, cout]) => {
                geom.output_size((h, wd), (kh, kw)).map_or(0, |(oh, ow)| (n * oh * ow * cout) as u64 * 4)
            }
            _ => 0,
        };
        let inputs: Vec<&Tensor> = [Some(x), epi.residual].into_iter().flatten().collect();
        if bands::needed(self.frame, &inputs, out_bytes) {
            return bands::conv2d(self.frame, x, w, geom, &epi);
        }
        conv::conv2d(self.frame, x, w, geom, &epi)
    }

    fn depthwise_conv2d(
        &mut self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        geom: &Geometry,
        act: Activation,
    ) -> Result<Tensor, GpuError> {
        conv::depthwise_conv2d(self.frame, x, w, bias, geom, act)
    }

    fn max_pool2d(
        &mut self,
        x: &Tensor,
        window: (usize, usize),
        geom: &Geometry,
    ) -> Result<Tensor, GpuError> {
        conv::max_pool2d(self.frame, x, window, geom)
    }

    fn linear(&mut self, x: &Tensor, w: &Tensor, epi: Epilogue<Tensor>) -> Result<Tensor, GpuError> {
        matmul::linear(
            self.frame,
            x,
            w,
            matmul::Epilogue { bias: epi.bias, act: epi.act, residual: epi.residual },
        )
    }

    fn layer_norm(
        &mut self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        act: Activation,
    ) -> Result<Tensor, GpuError> {
        norm::layer_norm(self.frame, x, gamma, beta, eps, act)
    }

    fn group_norm(
        &mut self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        groups: usize,
        eps: f32,
        scale_shift: Option<&Tensor>,
        act: Activation,
    ) -> Result<Tensor, GpuError> {
        if bands::needed(self.frame, &[x], 0) {
            return bands::group_norm(self.frame, x, gamma, beta, groups, eps, scale_shift, act);
        }
        match scale_shift {
            Some(ss) => norm::group_norm_film(self.frame, x, gamma, beta, groups, eps, ss, act),
            None => norm::group_norm(self.frame, x, gamma, beta, groups, eps, act),
        }
    }

    fn attention_qkv(&mut self, qkv: &Tensor, heads: usize) -> Result<Tensor, GpuError> {
        attention::attention_qkv(self.frame, qkv, heads)
    }

    fn attention_q_kv(&mut self, q: &Tensor, kv: &Tensor, heads: usize) -> Result<Tensor, GpuError> {
        attention::attention_q_kv(self.frame, q, kv, heads)
    }

    fn add(&mut self, a: &Tensor, b: &Tensor, act: Activation) -> Result<Tensor, GpuError> {
        if bands::needed(self.frame, &[a, b], 0) {
            let out =
                bands::map_rows(self.frame, "add", &[a, b], &[(a.shape().to_vec(), a.dtype())], |f, t| {
                    Ok(vec![elementwise::add(f, &t[0], &t[1], 1.0, act)?])
                })?;
            return Ok(out.into_iter().next().unwrap_or_else(|| a.clone()));
        }
        elementwise::add(self.frame, a, b, 1.0, act)
    }

    fn affine(&mut self, x: &Tensor, alpha: f32, beta: f32) -> Result<Tensor, GpuError> {
        if bands::needed(self.frame, &[x], 0) {
            let out =
                bands::map_rows(self.frame, "affine", &[x], &[(x.shape().to_vec(), x.dtype())], |f, t| {
                    Ok(vec![elementwise::affine(f, &t[0], alpha, beta, Activation::None)?])
                })?;
            return Ok(out.into_iter().next().unwrap_or_else(|| x.clone()));
        }
        elementwise::affine(self.frame, x, alpha, beta, Activation::None)
    }

    fn concat_channels(&mut self, parts: &[&Tensor]) -> Result<Tensor, GpuError> {
        let channels: usize = parts.iter().map(|t| t.shape().last().copied().unwrap_or(0)).sum();
        let out_bytes = parts
            .first()
            .map_or(0, |t| (t.len() / t.shape().last().copied().unwrap_or(1).max(1) * channels) as u64 * 4);
        if bands::needed(self.frame, parts, out_bytes) {
            let mut shape = parts[0].shape().to_vec();
            if let Some(last) = shape.last_mut() {
                *last = channels;
            }
            let out =
                bands::map_rows(self.frame, "concat_channels", parts, &[(shape, DType::F32)], |f, t| {
                    Ok(vec![layout::concat_channels(f, &t.iter().collect::<Vec<_>>())?])
                })?;
            return out.into_iter().next().ok_or_else(|| GpuError::shape("concat_channels", "no output"));
        }
        layout::concat_channels(self.frame, parts)
    }

    fn upsample_nearest(
        &mut self,
        x: &Tensor,
        factor: usize,
        skip: Option<&Tensor>,
    ) -> Result<Tensor, GpuError> {
        let out_bytes = x.byte_size() * (factor * factor) as u64;
        if bands::needed(self.frame, &[x], out_bytes) {
            return bands::upsample_nearest(self.frame, x, factor, skip);
        }
        match skip {
            Some(s) => layout::upsample_nearest_add(self.frame, x, factor, factor, s),
            None => layout::upsample_nearest(self.frame, x, factor, factor),
        }
    }

    fn append_token(&mut self, x: &Tensor, token: &Tensor, pos: Option<&Tensor>) -> Result<Tensor, GpuError> {
        layout::append_token(self.frame, x, token, pos)
    }

    fn slice_tokens(&mut self, x: &Tensor, start: usize, len: usize) -> Result<Tensor, GpuError> {
        layout::slice_tokens(self.frame, x, start, len)
    }

    fn scalar_embedding(&mut self, value: f32, scale: f32, n: usize, dim: usize) -> Result<Tensor, GpuError> {
        embed::scalar_embedding(self.frame, value, scale, n, dim)
    }

    fn position_code_2d(&mut self, height: usize, width: usize, dim: usize) -> Result<Tensor, GpuError> {
        embed::position_code_2d(self.frame, height, width, dim)
    }

    fn normal_fill(&mut self, shape: &[usize], seed: u32, offset: u32) -> Result<Tensor, GpuError> {
        rng::normal_fill(self.frame, shape, seed, offset)
    }

    fn ids_to_bits(&mut self, class: &Tensor, instance: &Tensor, spec: &BitSpec) -> Result<Tensor, GpuError> {
        bits::ids_to_bits(self.frame, class, instance, spec)
    }

    fn expected_bits_ddim(
        &mut self,
        logits: &Tensor,
        m: &Tensor,
        spec: &BitSpec,
        k: &DdimCoefficients,
    ) -> Result<(Tensor, Tensor), GpuError> {
        if bands::needed(self.frame, &[logits, m], 0) {
            // x̂0 and the updated m come back band by band (the kernel updates m in place).
            let out = bands::map_rows(
                self.frame,
                "expected_bits_ddim",
                &[logits, m],
                &[(m.shape().to_vec(), DType::F32), (m.shape().to_vec(), DType::F32)],
                |f, t| {
                    let x0 = bits::expected_bits_ddim(f, &t[0], &t[1], spec, k)?;
                    Ok(vec![x0, t[1].clone()])
                },
            )?;
            let mut out = out.into_iter();
            return match (out.next(), out.next()) {
                (Some(x0), Some(m)) => Ok((x0, m)),
                _ => Err(GpuError::shape("expected_bits_ddim", "no output")),
            };
        }
        let x0 = bits::expected_bits_ddim(self.frame, logits, m, spec, k)?;
        Ok((x0, m.clone()))
    }

    fn bits_to_ids(
        &mut self,
        x: &Tensor,
        spec: &BitSpec,
        num_classes: u32,
        max_instances: u32,
    ) -> Result<(Tensor, Tensor), GpuError> {
        bits::bits_to_ids(self.frame, x, spec, num_classes, max_instances)
    }

    fn cells(&mut self, logits: &Tensor, x0: &Tensor, ids: &IdSpace) -> Result<Cells<Tensor>, GpuError> {
        if bands::needed(self.frame, &[logits, x0], 0) {
            return bands::cells(self.frame, logits, x0, ids);
        }
        readout::cells(self.frame, logits, x0, ids)
    }

    fn readout(
        &mut self,
        logits: &Tensor,
        x0: &Tensor,
        cells: &Cells<Tensor>,
        ids: &IdSpace,
        r: &Resample,
    ) -> Result<(Tensor, Tensor), GpuError> {
        let out_bytes = (r.out_h * r.out_w) as u64 * 4;
        if bands::needed(
            self.frame,
            &[logits, x0, &cells.class, &cells.instance, &cells.class_void],
            out_bytes,
        ) {
            return bands::readout(self.frame, logits, x0, cells, ids, r);
        }
        readout::readout(self.frame, logits, x0, cells, ids, r)
    }
}
