//! (being written)

use crate::gpu::{Kernel, Shader};

pub const SHADERS: &[&Shader] = &[];
pub const KERNELS: &[&Kernel] = &[];
