//! `cargo xtask web`: build the crate for wasm32, run wasm-bindgen into `web/pkg/`, shrink it with
//! npm binaryen's `wasm-opt` when installed, print the sizes, and stage the models in `web/models/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use flate2::Compression;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The crate built for the page, and the base name of wasm-bindgen's output.
const CRATE: &str = "pix2seqd";

pub struct BuildOptions {
    pub debug: bool,
    pub json: bool,
}

/// The repository root (the workspace root, one level above this crate).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Cargo's target directory (honours CARGO_TARGET_DIR and `build.target-dir`).
pub fn target_dir(root: &Path) -> Result<PathBuf, String> {
    let out = Command::new(cargo())
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("cargo metadata failed: {}", err.lines().last().unwrap_or("").trim()));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: bad JSON: {e}"))?;
    v["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata has no target_directory".into())
}

fn wasm_target_installed() -> Result<bool, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run {rustc}: {e}"))?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(out.status.success() && Path::new(&sysroot).join("lib/rustlib").join(WASM_TARGET).join("lib").is_dir())
}

/// Installs the wasm32 standard library with rustup when it is missing (a fresh machine), or
/// fails with the fix when there is no rustup.
fn ensure_wasm_target() -> Result<(), String> {
    if wasm_target_installed()? {
        return Ok(());
    }
    println!("the Rust target {WASM_TARGET} is missing: rustup target add {WASM_TARGET}");
    let status = Command::new("rustup").args(["target", "add", WASM_TARGET]).status();
    match status {
        Ok(s) if s.success() && wasm_target_installed()? => Ok(()),
        _ => Err(format!("the Rust target {WASM_TARGET} is not installed and `rustup target add {WASM_TARGET}` did not install it")),
    }
}

/// Installs web/'s npm tools (binaryen's wasm-opt, playwright-core) from web/package-lock.json
/// when they are missing and npm exists; without npm the build goes on without wasm-opt.
fn ensure_npm_tools(web: &Path) {
    if web.join("node_modules/.bin/wasm-opt").is_file() && web.join("node_modules/playwright-core").is_dir() {
        return;
    }
    println!("installing web/'s npm tools: npm ci --prefix web");
    match Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(web)
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => println!("npm ci failed ({s}): building without wasm-opt"),
        Err(e) => println!("npm is not available ({e}): building without wasm-opt"),
    }
}

/// `cargo build --lib --target wasm32-unknown-unknown -p pix2seqd`; returns the .wasm path.
fn build_wasm(root: &Path, target: &Path, debug: bool) -> Result<PathBuf, String> {
    ensure_wasm_target()?;
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root).args(["build", "--lib", "--target", WASM_TARGET, "-p", CRATE]);
    if !debug {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build for {WASM_TARGET} failed ({status})"));
    }
    let wasm =
        target.join(WASM_TARGET).join(if debug { "debug" } else { "release" }).join(format!("{CRATE}.wasm"));
    if !wasm.is_file() {
        return Err(format!("cargo did not produce {}", wasm.display()));
    }
    Ok(wasm)
}

fn bindgen(wasm: &Path, pkg: &Path, debug: bool) -> Result<(), String> {
    if pkg.exists() {
        std::fs::remove_dir_all(pkg).map_err(|e| format!("cannot clear {}: {e}", pkg.display()))?;
    }
    std::fs::create_dir_all(pkg).map_err(|e| format!("cannot create {}: {e}", pkg.display()))?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(wasm)
        .out_name(CRATE)
        .web(true)
        .map_err(|e| format!("wasm-bindgen: {e:#}"))?
        // Required: the library's default differs from the CLI's; without it init() has no default .wasm URL.
        .omit_default_module_path(false)
        .debug(debug)
        .keep_debug(debug)
        .generate(pkg)
        .map_err(|e| format!("wasm-bindgen: {e:#}"))
}

/// What `wasm_opt` did.
enum Opt {
    NotInstalled,
    Ran,
    /// Same input as last time: the cached output was reused.
    Cached,
}

/// Runs npm binaryen's `wasm-opt -Oz` on `wasm` in place. The last input and output are kept in
/// `cache` (keyed by the input bytes and binaryen's version), so an unchanged build skips it.
fn wasm_opt(web: &Path, wasm: &Path, cache: &Path) -> Result<Opt, String> {
    let bin = web.join("node_modules/.bin/wasm-opt");
    if !bin.is_file() {
        return Ok(Opt::NotInstalled);
    }
    let version = std::fs::read_to_string(web.join("node_modules/binaryen/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let cache = cache.join(format!("binaryen-{version}"));
    let (cached_in, cached_out) = (cache.join("in.wasm"), cache.join("out.wasm"));
    let input = std::fs::read(wasm).map_err(|e| format!("cannot read {}: {e}", wasm.display()))?;
    if cached_out.is_file() && std::fs::read(&cached_in).is_ok_and(|c| c == input) {
        std::fs::copy(&cached_out, wasm).map_err(|e| format!("cannot write {}: {e}", wasm.display()))?;
        return Ok(Opt::Cached);
    }
    let tmp = wasm.with_extension("opt.wasm");
    let status = Command::new(&bin)
        .arg("-Oz")
        .arg(wasm)
        .arg("-o")
        .arg(&tmp)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("wasm-opt -Oz failed ({status})"));
    }
    std::fs::rename(&tmp, wasm).map_err(|e| format!("cannot replace {}: {e}", wasm.display()))?;
    // The cache is an optimisation only: ignore failures to write it.
    if std::fs::create_dir_all(&cache).is_ok() && std::fs::write(&cached_in, &input).is_ok() {
        let _ = std::fs::copy(wasm, &cached_out);
    }
    Ok(Opt::Ran)
}

pub fn gzip_len(bytes: &[u8]) -> usize {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().map(|v| v.len()).unwrap_or(0)
}

struct Size {
    name: String,
    raw: usize,
    gzip: usize,
}

/// `pkg/pix2seqd_bg.wasm`, `pkg/pix2seqd.js`, then the page's own top-level html/js/css.
fn sizes(web: &Path) -> Result<Vec<Size>, String> {
    let mut names = vec![format!("pkg/{CRATE}_bg.wasm"), format!("pkg/{CRATE}.js")];
    let mut own: Vec<String> = std::fs::read_dir(web)
        .map_err(|e| format!("cannot read {}: {e}", web.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| [".html", ".js", ".mjs", ".css"].iter().any(|ext| n.ends_with(ext)))
        .collect();
    own.sort();
    names.extend(own);
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(web.join(&name)).map_err(|e| format!("cannot read web/{name}: {e}"))?;
            Ok(Size { gzip: gzip_len(&bytes), raw: bytes.len(), name })
        })
        .collect()
}

fn print_sizes(sizes: &[Size]) {
    println!("{:<28} {:>12} {:>12}", "file (web/)", "bytes", "gzip -9");
    for s in sizes {
        println!("{:<28} {:>12} {:>12}", s.name, group(s.raw), group(s.gzip));
    }
    let raw: usize = sizes.iter().map(|s| s.raw).sum();
    let gz: usize = sizes.iter().map(|s| s.gzip).sum();
    println!("{:<28} {:>12} {:>12}", "total", group(raw), group(gz));
}

/// 1234567 → "1,234,567".
fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct Staged {
    name: String,
    source: PathBuf,
}

/// Fills `web/models/` (generated, git-ignored): `default` (the shipped `objects` model, else the
/// untrained parity fixture), `tiny` (the fixture), `tiny-video` (a tiny trained video model for
/// the browser tests) and every `assets/models/NAME.{json,safetensors}`.
/// Writes `web/models/index.json` listing them.
fn stage_models(root: &Path, web: &Path, log: &mut dyn FnMut(String)) -> Result<Vec<Staged>, String> {
    let models = web.join("models");
    if models.exists() {
        std::fs::remove_dir_all(&models).map_err(|e| format!("cannot clear {}: {e}", models.display()))?;
    }
    std::fs::create_dir_all(&models).map_err(|e| format!("cannot create {}: {e}", models.display()))?;
    let assets = root.join("assets/models");
    let fixture = root.join("tests/fixtures/tiny-efficientnet/model");
    let has_pair =
        |stem: &Path| stem.with_extension("json").is_file() && stem.with_extension("safetensors").is_file();
    if !has_pair(&fixture) {
        return Err(format!("the parity fixture {}.{{json,safetensors}} is missing", fixture.display()));
    }

    let mut plan: Vec<(String, PathBuf)> = Vec::new();
    let objects = assets.join("objects");
    if has_pair(&objects) {
        plan.push(("default".into(), objects));
    } else {
        log("note: assets/models/objects.{json,safetensors} is not there yet; the page's default model is the UNTRAINED parity fixture (tests/fixtures/tiny-efficientnet)".into());
        plan.push(("default".into(), fixture.clone()));
    }
    plan.push(("tiny".into(), fixture));
    // A tiny video model trained on DAVIS (tests/fixtures/tiny-video/README.md): the browser
    // tests' streaming checks need weights whose masks settle on a still input.
    let tiny_video = root.join("tests/fixtures/tiny-video/model");
    if !has_pair(&tiny_video) {
        return Err(format!("the test model {}.{{json,safetensors}} is missing", tiny_video.display()));
    }
    plan.push(("tiny-video".into(), tiny_video));
    if let Ok(entries) = std::fs::read_dir(&assets) {
        let mut stems: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .map(|p| p.with_extension(""))
            .filter(|s| has_pair(s))
            .collect();
        stems.sort();
        for stem in stems {
            let Some(name) = stem.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            if ["default", "tiny", "tiny-video", "index"].contains(&name.as_str()) {
                log(format!("note: assets/models/{name}.* is not staged: the name is reserved"));
                continue;
            }
            plan.push((name, stem));
        }
    }

    let mut staged = Vec::new();
    for (name, stem) in plan {
        for ext in ["json", "safetensors"] {
            let (from, to) = (stem.with_extension(ext), models.join(format!("{name}.{ext}")));
            // read + write rather than fs::copy: the copy gets ordinary permissions, not the source's.
            let bytes = std::fs::read(&from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
            std::fs::write(&to, bytes).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        }
        let rel = stem.strip_prefix(root).unwrap_or(&stem);
        let source = PathBuf::from(format!("{}.{{json,safetensors}}", rel.display()));
        staged.push(Staged { name, source });
    }
    let index = serde_json::json!({
        "models": staged.iter().map(|s| serde_json::json!({
            "name": s.name,
            "config": format!("{}.json", s.name),
            "weights": format!("{}.safetensors", s.name),
            "source": s.source.to_string_lossy(),
        })).collect::<Vec<_>>()
    });
    let text = serde_json::to_string_pretty(&index).map_err(|e| format!("models/index.json: {e}"))?;
    std::fs::write(models.join("index.json"), text + "\n")
        .map_err(|e| format!("cannot write web/models/index.json: {e}"))?;
    Ok(staged)
}

/// Build + bindgen + wasm-opt + sizes + models. Human text goes to stdout, or to stderr with `json`
/// (stdout then carries one JSON object).
pub fn build(opts: &BuildOptions) -> Result<(), String> {
    let root = repo_root();
    let web = root.join("web");
    let json = opts.json;
    let mut say = |s: String| {
        if json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    };
    let target = target_dir(&root)?;
    if !opts.debug {
        ensure_npm_tools(&web);
    }
    let profile = if opts.debug { "debug" } else { "release" };
    say(format!("building {CRATE} for {WASM_TARGET} ({profile})"));
    let wasm = build_wasm(&root, &target, opts.debug)?;

    let pkg = web.join("pkg");
    let t = std::time::Instant::now();
    bindgen(&wasm, &pkg, opts.debug)?;
    say(format!("wasm-bindgen --target web → web/pkg/ ({:.1} s)", t.elapsed().as_secs_f64()));

    let out_wasm = pkg.join(format!("{CRATE}_bg.wasm"));
    let optimized = if opts.debug {
        say("wasm-opt: skipped (--debug)".into());
        false
    } else {
        let t = std::time::Instant::now();
        let before = std::fs::metadata(&out_wasm).map(|m| m.len()).unwrap_or(0);
        match wasm_opt(&web, &out_wasm, &target.join("xtask-wasm-opt"))? {
            Opt::NotInstalled => {
                say("wasm-opt: skipped (web/node_modules/.bin/wasm-opt not found; run `npm ci --prefix web` for npm binaryen)".into());
                false
            }
            done => {
                let after = std::fs::metadata(&out_wasm).map(|m| m.len()).unwrap_or(0);
                let how =
                    if matches!(done, Opt::Cached) { "unchanged input, cached" } else { "npm binaryen" };
                say(format!(
                    "wasm-opt -Oz: {} → {} bytes ({how}, {:.1} s)",
                    group(before as usize),
                    group(after as usize),
                    t.elapsed().as_secs_f64()
                ));
                true
            }
        }
    };

    let sizes = sizes(&web)?;
    if !json {
        print_sizes(&sizes);
    }

    let staged = stage_models(&root, &web, &mut say)?;
    say(format!(
        "models in web/models/: {}",
        staged.iter().map(|s| format!("{} ({})", s.name, s.source.display())).collect::<Vec<_>>().join(", ")
    ));

    if json {
        let v = serde_json::json!({
            "profile": profile,
            "wasmOpt": optimized,
            "files": sizes.iter().map(|s| serde_json::json!({"name": s.name, "bytes": s.raw, "gzip": s.gzip})).collect::<Vec<_>>(),
            "totalBytes": sizes.iter().map(|s| s.raw).sum::<usize>(),
            "totalGzip": sizes.iter().map(|s| s.gzip).sum::<usize>(),
            "models": staged.iter().map(|s| serde_json::json!({"name": s.name, "source": s.source.to_string_lossy()})).collect::<Vec<_>>(),
        });
        println!("{v}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn gzip_shrinks_repetitive_data() {
        let n = gzip_len(&[b'a'; 10_000]);
        assert!(n > 18 && n < 100, "{n}");
    }

    #[test]
    fn repo_root_is_the_workspace() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(repo_root().join("xtask/Cargo.toml").is_file());
    }
}
