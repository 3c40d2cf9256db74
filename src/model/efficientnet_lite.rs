//! EfficientNet-Lite0 up to stride 16 (`efficientnet_lite.py`): stem 3×3/2 + MBConv blocks, every
//! conv with TensorFlow "SAME" padding, BatchNorm folded into `conv.bias`, ReLU6.

use super::layers::{Conv2d, Conv2dConfig, DepthwiseConv2d, Padding};
use crate::backend::{Backend, Upload};
use crate::model::config::BackboneConfig;
use crate::model::{ModelError, Params};
use crate::ops::Activation;

const TAP_STRIDES: [usize; 3] = [4, 8, 16];

/// Inverted residual: `[expand 1×1] → depthwise k×k/s → project 1×1 (+ identity)`.
struct MBConv<T> {
    expand: Option<Conv2d<T>>,
    dw: DepthwiseConv2d<T>,
    project: Conv2d<T>,
    residual: bool,
}

impl<T: Clone> MBConv<T> {
    fn load<U: Upload<T>>(
        p: &mut Params<U>,
        name: &str,
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        expand_ratio: usize,
    ) -> Result<Self, ModelError> {
        let hidden = in_ch * expand_ratio;
        let expand = if expand_ratio != 1 {
            Some(
                Conv2dConfig::new(in_ch, hidden, 1)
                    .padding(Padding::TfSame)
                    .load(p, &format!("{name}.expand.conv"))?,
            )
        } else {
            None
        };
        Ok(MBConv {
            expand,
            dw: DepthwiseConv2d::load(p, &format!("{name}.dw.conv"), hidden, kernel, stride)?,
            project: Conv2dConfig::new(hidden, out_ch, 1)
                .padding(Padding::TfSame)
                .load(p, &format!("{name}.project.conv"))?,
            residual: stride == 1 && in_ch == out_ch,
        })
    }

    fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, x: &T) -> Result<T, ModelError> {
        let y = match &self.expand {
            Some(e) => e.run(b, x, Activation::Relu6)?,
            None => x.clone(),
        };
        let y = self.dw.forward(b, &y, Activation::Relu6)?;
        self.project.forward(b, &y, Activation::None, self.residual.then_some(x), 1.0)
    }
}

pub struct EfficientNetLite<T> {
    stem: Conv2d<T>,
    blocks: Vec<MBConv<T>>,
    tap_indices: [usize; 3],
    pub tap_channels: [usize; 3],
}

impl<T: Clone> EfficientNetLite<T> {
    pub fn load<U: Upload<T>>(p: &mut Params<U>, cfg: &BackboneConfig) -> Result<Self, ModelError> {
        let stem = Conv2dConfig::new(3, cfg.stem_channels, 3)
            .stride(2)
            .padding(Padding::TfSame)
            .load(p, "backbone.stem.conv")?;
        let mut blocks = Vec::new();
        let mut strides = Vec::new();
        let mut channels = Vec::new();
        let (mut in_ch, mut stride_so_far) = (cfg.stem_channels, 2);
        for &[repeats, kernel, stride, expand_ratio, out_ch] in &cfg.stages {
            for r in 0..repeats {
                let block_stride = if r == 0 { stride } else { 1 };
                let name = format!("backbone.blocks.{}", blocks.len());
                blocks.push(MBConv::load(p, &name, in_ch, out_ch, kernel, block_stride, expand_ratio)?);
                stride_so_far *= block_stride;
                strides.push(stride_so_far);
                channels.push(out_ch);
                in_ch = out_ch;
            }
        }
        let mut tap_indices = [0; 3];
        for (t, tap) in TAP_STRIDES.iter().enumerate() {
            tap_indices[t] = strides
                .iter()
                .rposition(|s| s == tap)
                .ok_or_else(|| ModelError::Config(format!("efficientnet stages never reach stride {tap}")))?;
        }
        let tap_channels = tap_indices.map(|i| channels[i]);
        Ok(EfficientNetLite { stem, blocks, tap_indices, tap_channels })
    }

    /// Normalised input `[N, H, W, 3]` → taps at strides 4, 8, 16.
    pub fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, x: &T) -> Result<Vec<T>, ModelError> {
        let mut x = self.stem.run(b, x, Activation::Relu6)?;
        let mut taps = Vec::with_capacity(3);
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(b, &x)?;
            if self.tap_indices.contains(&i) {
                taps.push(x.clone());
            }
        }
        Ok(taps)
    }
}
