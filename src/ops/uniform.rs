//! The uniform parameter structs the kernels read (`var<uniform> p: Params` in each shader).
//!
//! A Rust struct and its WGSL twin are kept equal by a test, not by hand: [`uniform!`] declares
//! the `#[repr(C)]` struct and records its field names and offsets, each family lists its structs
//! in `UNIFORMS`, and `tests/engine/shaders.rs` compares every one with the struct naga reflects
//! from the shader (size, member names, offsets), so a field added on one side only fails it.

use crate::gpu::Shader;

/// One uniform struct's layout as Rust lays it out, and the WGSL struct it must match.
pub struct UniformLayout {
    pub shader: &'static Shader,
    /// The struct's name in the shader.
    pub wgsl_struct: &'static str,
    pub rust_struct: &'static str,
    pub size: usize,
    /// `(name, byte offset)` per field, in declaration order.
    pub fields: &'static [(&'static str, usize)],
}

/// Declares a `#[repr(C)]` uniform struct (attributes pass through) and its
/// `const fn layout(shader, wgsl_struct) -> UniformLayout`.
macro_rules! uniform {
    ($(#[$meta:meta])* struct $name:ident { $($(#[$field_meta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        struct $name { $($(#[$field_meta])* $field: $ty),* }

        impl $name {
            /// This struct's layout, to be checked against the WGSL struct `wgsl_struct`.
            pub(crate) const fn layout(
                shader: &'static $crate::gpu::Shader,
                wgsl_struct: &'static str,
            ) -> $crate::ops::uniform::UniformLayout {
                $crate::ops::uniform::UniformLayout {
                    shader,
                    wgsl_struct,
                    rust_struct: stringify!($name),
                    size: ::std::mem::size_of::<$name>(),
                    fields: &[$((stringify!($field), ::std::mem::offset_of!($name, $field))),*],
                }
            }
        }
    };
}
pub(crate) use uniform;
