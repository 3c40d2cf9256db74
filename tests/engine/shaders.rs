//! Every shader (prelude included, exactly as the runtime compiles it) parses and validates with
//! naga under WebGPU's default capabilities, so nothing that a browser would reject ships.

use naga::valid::{Capabilities, ValidationFlags, Validator};

#[test]
fn every_shader_validates_with_webgpu_default_capabilities() {
    let shaders = pix2seqd::ops::all_shaders();
    assert!(!shaders.is_empty());
    let mut failures = Vec::new();
    for shader in &shaders {
        let source = shader.full_source();
        match naga::front::wgsl::parse_str(&source) {
            Err(e) => failures.push(format!("{}: {}", shader.name, e.emit_to_string(&source))),
            Ok(module) => {
                if let Err(e) =
                    Validator::new(ValidationFlags::all(), Capabilities::default()).validate(&module)
                {
                    failures.push(format!("{}: {}", shader.name, e.emit_to_string(&source)));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} shaders valid", shaders.len());
}

#[test]
fn every_kernel_entry_point_exists_with_a_workgroup_within_webgpu_defaults() {
    for kernel in pix2seqd::ops::all_kernels() {
        let module = naga::front::wgsl::parse_str(&kernel.shader.full_source()).expect("parsed above");
        let entry = module
            .entry_points
            .iter()
            .find(|e| e.name == kernel.entry)
            .unwrap_or_else(|| panic!("{}: no entry point {}", kernel.shader.name, kernel.entry));
        assert!(kernel.bindings.len() <= 8, "{}: more storage buffers than WebGPU's default 8", kernel.entry);
        let [x, y, z] = entry.workgroup_size;
        assert!(
            x * y * z <= 256 && x <= 256 && y <= 256 && z <= 64,
            "{}: workgroup {x}x{y}x{z} exceeds WebGPU defaults",
            kernel.entry
        );
    }
}

#[test]
fn a_broken_shader_is_reported_with_its_source_span() {
    let source = "fn f() -> f32 { return 1u; }";
    let module = naga::front::wgsl::parse_str(source).expect("parses");
    let err = Validator::new(ValidationFlags::all(), Capabilities::default()).validate(&module).unwrap_err();
    assert!(!err.emit_to_string(source).is_empty());
}

/// Every Rust uniform struct has its WGSL twin's exact layout: the same size, the same member
/// names in the same order at the same offsets (WGSL's uniform layout rules, as naga computes them).
#[test]
fn every_uniform_struct_matches_its_wgsl_struct() {
    let layouts = pix2seqd::ops::all_uniforms();
    assert!(layouts.len() >= 13, "expected every family's uniform structs, got {}", layouts.len());
    let mut failures = Vec::new();
    for layout in layouts {
        let module = naga::front::wgsl::parse_str(&layout.shader.full_source()).expect("parsed above");
        let what = format!(
            "{} ({}) vs {}.wgsl {}",
            layout.rust_struct, layout.size, layout.shader.name, layout.wgsl_struct
        );
        let Some(ty) =
            module.types.iter().map(|(_, t)| t).find(|t| t.name.as_deref() == Some(layout.wgsl_struct))
        else {
            failures.push(format!("{what}: the shader has no such struct"));
            continue;
        };
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            failures.push(format!("{what}: not a struct"));
            continue;
        };
        let wgsl: Vec<(String, usize)> =
            members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize)).collect();
        let rust: Vec<(String, usize)> = layout.fields.iter().map(|(n, o)| (n.to_string(), *o)).collect();
        if wgsl != rust || *span as usize != layout.size {
            failures.push(format!(
                "{what}: WGSL span {span} members {wgsl:?}\n  Rust size {} fields {rust:?}",
                layout.size
            ));
        }
    }
    assert!(failures.is_empty(), "uniform layouts differ:\n{}", failures.join("\n"));
}
