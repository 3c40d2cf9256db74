//! ResNet-50 "c4" (`resnet.py`): 7×7/2 stem, 3×3/2 max-pool (pad 1), bottleneck stages C2..C4,
//! BatchNorm folded, symmetric padding.

use super::layers::{Conv2d, Conv2dConfig};
use crate::backend::{Backend, Upload};
use crate::model::config::BackboneConfig;
use crate::model::{ModelError, Params};
use crate::ops::conv::Geometry;
use crate::ops::Activation;

const EXPANSION: usize = 4;

/// `reduce 1×1 → spatial 3×3/s → expand 1×1`, `out = relu(expand + shortcut)` (fused epilogue).
struct Bottleneck<T> {
    reduce: Conv2d<T>,
    spatial: Conv2d<T>,
    expand: Conv2d<T>,
    shortcut: Option<Conv2d<T>>,
}

impl<T: Clone> Bottleneck<T> {
    fn load<U: Upload<T>>(
        p: &mut Params<U>,
        name: &str,
        in_ch: usize,
        width: usize,
        stride: usize,
    ) -> Result<Self, ModelError> {
        let out_ch = width * EXPANSION;
        let conv = |p: &mut Params<U>, part: &str, i: usize, o: usize, k: usize, s: usize| {
            Conv2dConfig::new(i, o, k).stride(s).load(p, &format!("{name}.{part}.conv"))
        };
        Ok(Bottleneck {
            reduce: conv(p, "reduce", in_ch, width, 1, 1)?,
            spatial: conv(p, "spatial", width, width, 3, stride)?,
            expand: conv(p, "expand", width, out_ch, 1, 1)?,
            shortcut: if stride != 1 || in_ch != out_ch {
                Some(conv(p, "shortcut", in_ch, out_ch, 1, stride)?)
            } else {
                None
            },
        })
    }

    fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, x: &T) -> Result<T, ModelError> {
        let shortcut = match &self.shortcut {
            Some(s) => s.run(b, x, Activation::None)?,
            None => x.clone(),
        };
        let y = self.reduce.run(b, x, Activation::Relu)?;
        let y = self.spatial.run(b, &y, Activation::Relu)?;
        self.expand.forward(b, &y, Activation::Relu, Some(&shortcut), 1.0)
    }
}

pub struct ResNetC4<T> {
    stem: Conv2d<T>,
    stages: Vec<Vec<Bottleneck<T>>>,
    pub tap_channels: [usize; 3],
}

impl<T: Clone> ResNetC4<T> {
    pub fn load<U: Upload<T>>(p: &mut Params<U>, cfg: &BackboneConfig) -> Result<Self, ModelError> {
        let stem = Conv2dConfig::new(3, cfg.stem_channels, 7).stride(2).load(p, "backbone.stem.conv")?;
        let mut stages = Vec::new();
        let mut in_ch = cfg.stem_channels;
        for (s, (&width, &count)) in cfg.widths.iter().zip(&cfg.blocks).enumerate() {
            let first_stride = if s == 0 { 1 } else { 2 };
            let mut blocks = Vec::new();
            for k in 0..count {
                let name = format!("backbone.stages.{s}.{k}");
                blocks.push(Bottleneck::load(p, &name, in_ch, width, if k == 0 { first_stride } else { 1 })?);
                in_ch = width * EXPANSION;
            }
            stages.push(blocks);
        }
        let w = &cfg.widths;
        Ok(ResNetC4 { stem, stages, tap_channels: [w[0] * EXPANSION, w[1] * EXPANSION, w[2] * EXPANSION] })
    }

    /// Normalised input `[N, H, W, 3]` → `[C2, C3, C4]`.
    pub fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, x: &T) -> Result<Vec<T>, ModelError> {
        let x = self.stem.run(b, x, Activation::Relu)?;
        let mut x = b.max_pool2d(&x, (3, 3), &Geometry::symmetric(2, 1))?;
        let mut taps = Vec::with_capacity(3);
        for stage in &self.stages {
            for block in stage {
                x = block.forward(b, &x)?;
            }
            taps.push(x.clone());
        }
        Ok(taps)
    }
}
