//! Multi-scale fusion "pyramid_merge" (`fusion.py`): `[C2, C3, T]` → F at mask resolution. The plan
//! (which taps merge, block widths, the final solo block) is computed from the config's sizes
//! exactly as `plan_fusion`.

use super::layers::{Conv2d, Conv2dConfig, Norm};
use crate::backend::{Backend, Upload};
use crate::model::{ModelError, Params};
use crate::ops::Activation;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergeStep {
    /// The tap merged in (`None`: a solo block that only upsamples).
    pub hr_index: Option<usize>,
    pub in_channels: usize,
    pub hr_channels: usize,
    pub out_channels: usize,
    pub factor: usize,
}

/// `channels` / `sizes` of `[C2, C3, T]` (high → low resolution) → the blocks in order.
pub fn plan_fusion(
    channels: &[usize],
    sizes: &[(usize, usize)],
    mask: (usize, usize),
    dim: usize,
) -> Result<Vec<MergeStep>, ModelError> {
    let mut steps = Vec::new();
    let (mut x_channels, mut x_size) = (channels[channels.len() - 1], sizes[sizes.len() - 1]);
    for i in (0..channels.len() - 1).rev() {
        let hr = sizes[i];
        if hr.0 > mask.0 || hr.1 > mask.1 {
            continue;
        }
        let factor = hr.0 / x_size.0.max(1);
        if hr.0 != x_size.0 * factor || hr.1 != x_size.1 * factor {
            return Err(ModelError::Config(format!(
                "fusion: {x_size:?} does not upsample to {hr:?} by an integer factor"
            )));
        }
        let out_channels = if hr == mask { dim } else { channels[i] };
        steps.push(MergeStep {
            hr_index: Some(i),
            in_channels: x_channels,
            hr_channels: channels[i],
            out_channels,
            factor,
        });
        (x_channels, x_size) = (out_channels, hr);
    }
    if x_size != mask {
        let factor = mask.0 / x_size.0.max(1);
        if mask.0 != x_size.0 * factor || mask.1 != x_size.1 * factor {
            return Err(ModelError::Config(format!(
                "fusion: {x_size:?} does not upsample to the mask {mask:?}"
            )));
        }
        steps.push(MergeStep {
            hr_index: None,
            in_channels: x_channels,
            hr_channels: dim,
            out_channels: dim,
            factor,
        });
    }
    Ok(steps)
}

/// `y = SiLU(GN(lateral(x_lr)))`; `out = SiLU(GN(conv3×3(x_hr + up(y))))`.
struct UpsampleBlock<T> {
    step: MergeStep,
    lateral: Conv2d<T>,
    lateral_norm: Norm<T>,
    conv: Conv2d<T>,
    norm: Norm<T>,
}

pub struct FeaturePyramidMerge<T> {
    blocks: Vec<UpsampleBlock<T>>,
    pub out_channels: usize,
}

impl<T: Clone> FeaturePyramidMerge<T> {
    pub fn load<U: Upload<T>>(
        p: &mut Params<U>,
        plan: &[MergeStep],
        input_channels: usize,
    ) -> Result<Self, ModelError> {
        let mut blocks = Vec::new();
        for (j, &step) in plan.iter().enumerate() {
            let name = format!("fusion.blocks.{j}");
            blocks.push(UpsampleBlock {
                step,
                lateral: Conv2dConfig::new(step.in_channels, step.hr_channels, 1)
                    .load(p, &format!("{name}.lateral"))?,
                lateral_norm: Norm::group(
                    p,
                    &format!("{name}.lateral_norm"),
                    step.hr_channels,
                    step.hr_channels,
                )?,
                conv: Conv2dConfig::new(step.hr_channels, step.out_channels, 3)
                    .load(p, &format!("{name}.conv"))?,
                norm: Norm::group(p, &format!("{name}.norm"), step.out_channels, step.out_channels)?,
            });
        }
        let out_channels = plan.last().map_or(input_channels, |s| s.out_channels);
        Ok(FeaturePyramidMerge { blocks, out_channels })
    }

    /// `[C2, C3, T-map]` (NHWC) → F.
    pub fn forward<B: Backend<Tensor = T>>(&self, b: &mut B, features: &[T]) -> Result<T, ModelError> {
        let mut x =
            features.last().cloned().ok_or_else(|| ModelError::Config("fusion needs features".into()))?;
        for block in &self.blocks {
            let y = block.lateral.run(b, &x, Activation::None)?;
            let y = block.lateral_norm.forward(b, &y, Activation::Silu)?;
            let hr = block.step.hr_index.and_then(|i| features.get(i));
            let merged = b.upsample_nearest(&y, block.step.factor, hr)?;
            let y = block.conv.run(b, &merged, Activation::None)?;
            x = block.norm.forward(b, &y, Activation::Silu)?;
        }
        Ok(x)
    }
}
