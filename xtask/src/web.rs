//! `cargo xtask web`: build the crate for wasm32, run wasm-bindgen into `web/pkg/`, shrink it with
//! npm binaryen's `wasm-opt` when installed, print the sizes, and stage the models in `web/models/`
//! and the sample photos in `web/samples/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use flate2::Compression;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The crate built for the page, and the base name of wasm-bindgen's output.
pub const CRATE: &str = "pix2seqd";

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

/// `cargo metadata --no-deps` of the workspace.
pub fn metadata(root: &Path) -> Result<serde_json::Value, String> {
    let out = Command::new(cargo())
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("cargo metadata failed: {}", err.lines().last().unwrap_or("").trim()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: bad JSON: {e}"))
}

/// Cargo's target directory (honours CARGO_TARGET_DIR and `build.target-dir`).
pub fn target_dir(root: &Path) -> Result<PathBuf, String> {
    metadata(root)?["target_directory"]
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
        // The engine is built with simd128 (.cargo/config.toml); say so rather than rely on
        // binaryen reading the target-features section.
        .arg("--enable-simd")
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

/// The model the page and `<pix2seqd-segmenter>` load without a `model` (web/element.js
/// `DEFAULT_MODEL_URL`).
const DEFAULT_MODEL: &str = "objects";

struct Staged {
    name: String,
    source: PathBuf,
    /// In `web/models/index.json` (the page's model picker): shipped models, not test fixtures.
    listed: bool,
}

/// Copies `assets/samples/` (the photos, `samples.json` with each one's model, licence, source
/// and author, and the README) into `web/samples/` (generated, git-ignored): the page's gallery
/// and the embed page's example. Every photo `samples.json` names must be there. Returns the
/// photos' file names.
fn stage_samples(root: &Path, web: &Path) -> Result<Vec<String>, String> {
    let from = root.join("assets/samples");
    let to = web.join("samples");
    if to.exists() {
        std::fs::remove_dir_all(&to).map_err(|e| format!("cannot clear {}: {e}", to.display()))?;
    }
    std::fs::create_dir_all(&to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let list = from.join("samples.json");
    let text = std::fs::read_to_string(&list).map_err(|e| format!("cannot read {}: {e}", list.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: bad JSON: {e}", list.display()))?;
    let files: Vec<String> = v["samples"]
        .as_array()
        .ok_or_else(|| format!("{}: no \"samples\" list", list.display()))?
        .iter()
        .map(|s| {
            let file = s["file"].as_str().unwrap_or_default();
            // A plain file name: the page builds `samples/FILE` from it.
            let plain = !file.is_empty() && !file.contains(['/', '\\']) && !file.starts_with('.');
            let complete = ["title", "model", "licence", "source", "author"].iter().all(|k| s[k].is_string());
            if plain && complete && from.join(file).is_file() {
                Ok(file.to_string())
            } else {
                Err(format!(
                    "{}: each sample needs a file in assets/samples/ and title, model, licence, source, author: {s}",
                    list.display()
                ))
            }
        })
        .collect::<Result<_, String>>()?;
    for name in files.iter().map(String::as_str).chain(["samples.json", "README.md"]) {
        let (src, dst) = (from.join(name), to.join(name));
        let bytes = std::fs::read(&src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
        std::fs::write(&dst, bytes).map_err(|e| format!("cannot write {}: {e}", dst.display()))?;
    }
    Ok(files)
}

/// Fills `web/models/` (generated, git-ignored) with every shipped model,
/// `assets/models/NAME.{json,safetensors}`, listed in `web/models/index.json` (the page's model
/// picker), and `web/models/test/` with the browser tests' fixtures, which the index does not list:
/// `tiny` (the untrained parity fixture) and `tiny-video` (a tiny trained video model).
fn stage_models(root: &Path, web: &Path, log: &mut dyn FnMut(String)) -> Result<Vec<Staged>, String> {
    let models = web.join("models");
    if models.exists() {
        std::fs::remove_dir_all(&models).map_err(|e| format!("cannot clear {}: {e}", models.display()))?;
    }
    std::fs::create_dir_all(models.join("test"))
        .map_err(|e| format!("cannot create {}: {e}", models.display()))?;
    let assets = root.join("assets/models");
    let has_pair =
        |stem: &Path| stem.with_extension("json").is_file() && stem.with_extension("safetensors").is_file();
    // (name under web/models/, source stem, listed in the index)
    let mut plan: Vec<(String, PathBuf, bool)> = Vec::new();
    // The parity fixture, and a tiny video model trained on DAVIS (tests/fixtures/tiny-video/README.md):
    // the browser tests' streaming checks need weights whose masks settle on a still input.
    for (name, dir) in [("tiny", "tiny-efficientnet"), ("tiny-video", "tiny-video")] {
        let stem = root.join("tests/fixtures").join(dir).join("model");
        if !has_pair(&stem) {
            return Err(format!("the test model {}.{{json,safetensors}} is missing", stem.display()));
        }
        plan.push((format!("test/{name}"), stem, false));
    }
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
            if name == "index" {
                log("note: assets/models/index.* is not staged: the name is reserved".into());
                continue;
            }
            plan.push((name, stem, true));
        }
    }
    if !plan.iter().any(|(name, _, _)| name == DEFAULT_MODEL) {
        log(format!(
            "note: assets/models/{DEFAULT_MODEL}.{{json,safetensors}} is missing: the page's default model will not load"
        ));
    }

    let mut staged = Vec::new();
    for (name, stem, listed) in plan {
        for ext in ["json", "safetensors"] {
            let (from, to) = (stem.with_extension(ext), models.join(format!("{name}.{ext}")));
            // read + write rather than fs::copy: the copy gets ordinary permissions, not the source's.
            let bytes = std::fs::read(&from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
            std::fs::write(&to, bytes).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        }
        let rel = stem.strip_prefix(root).unwrap_or(&stem);
        let source = PathBuf::from(format!("{}.{{json,safetensors}}", rel.display()));
        staged.push(Staged { name, source, listed });
    }
    let index = serde_json::json!({
        "models": staged.iter().filter(|s| s.listed).map(|s| serde_json::json!({
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

/// How long the first release build of the wasm takes on a 2-core machine (no cargo cache), as
/// `cargo xtask web` announces it; measured: README.md, "The web page".
pub const FIRST_BUILD: &str = "about 7 min on 2 cores";

/// One line per phase, printed and flushed before the phase starts, so a slow first build is never
/// silent. Human text goes to stdout, or to stderr with `json` (stdout then carries one JSON object).
pub struct Say {
    json: bool,
}

impl Say {
    pub fn new(json: bool) -> Say {
        Say { json }
    }

    pub fn line(&self, s: &str) {
        if self.json {
            eprintln!("{s}");
            let _ = std::io::stderr().flush();
        } else {
            println!("{s}");
            let _ = std::io::stdout().flush();
        }
    }
}

/// Build + bindgen + wasm-opt + sizes + models, each phase announced before it starts.
pub fn build(opts: &BuildOptions) -> Result<(), String> {
    let root = repo_root();
    let web = root.join("web");
    let json = opts.json;
    let out = Say::new(json);
    let say = |s: String| out.line(&s);
    let profile = if opts.debug { "debug" } else { "release" };
    say(format!(
        "cargo xtask web: building the page into web/ ({profile}); each phase is announced before it starts"
    ));
    let target = target_dir(&root)?;
    if !opts.debug {
        ensure_npm_tools(&web);
    }
    say(format!(
        "[1/5] building the wasm (cargo build --lib --target {WASM_TARGET}{}; the first build takes {FIRST_BUILD}, later ones seconds)…",
        if opts.debug { "" } else { " --release" }
    ));
    let t = std::time::Instant::now();
    let wasm = build_wasm(&root, &target, opts.debug)?;
    say(format!("      built {CRATE}.wasm ({:.1} s)", t.elapsed().as_secs_f64()));

    let pkg = web.join("pkg");
    say("[2/5] wasm-bindgen --target web → web/pkg/…".into());
    let t = std::time::Instant::now();
    bindgen(&wasm, &pkg, opts.debug)?;
    say(format!("      done ({:.1} s)", t.elapsed().as_secs_f64()));

    let out_wasm = pkg.join(format!("{CRATE}_bg.wasm"));
    let optimized = if opts.debug {
        say("[3/5] wasm-opt: skipped (--debug)".into());
        false
    } else {
        say("[3/5] wasm-opt -Oz (npm binaryen; a minute or two when the wasm changed)…".into());
        let t = std::time::Instant::now();
        let before = std::fs::metadata(&out_wasm).map(|m| m.len()).unwrap_or(0);
        match wasm_opt(&web, &out_wasm, &target.join("xtask-wasm-opt"))? {
            Opt::NotInstalled => {
                say("      skipped (web/node_modules/.bin/wasm-opt not found; run `npm ci --prefix web` for npm binaryen)".into());
                false
            }
            done => {
                let after = std::fs::metadata(&out_wasm).map(|m| m.len()).unwrap_or(0);
                let how =
                    if matches!(done, Opt::Cached) { "unchanged input, cached" } else { "npm binaryen" };
                say(format!(
                    "      {} → {} bytes ({how}, {:.1} s)",
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

    say("[4/5] staging the models in web/models/…".into());
    let staged = stage_models(&root, &web, &mut |s| out.line(&s))?;
    say(format!(
        "      {}",
        staged.iter().map(|s| format!("{} ({})", s.name, s.source.display())).collect::<Vec<_>>().join(", ")
    ));
    say("[5/5] staging the sample photos in web/samples/…".into());
    let samples = stage_samples(&root, &web)?;
    say(format!("      {}", samples.join(", ")));

    if json {
        let v = serde_json::json!({
            "profile": profile,
            "wasmOpt": optimized,
            "files": sizes.iter().map(|s| serde_json::json!({"name": s.name, "bytes": s.raw, "gzip": s.gzip})).collect::<Vec<_>>(),
            "totalBytes": sizes.iter().map(|s| s.raw).sum::<usize>(),
            "totalGzip": sizes.iter().map(|s| s.gzip).sum::<usize>(),
            "models": staged.iter().map(|s| serde_json::json!({"name": s.name, "source": s.source.to_string_lossy()})).collect::<Vec<_>>(),
            "samples": samples,
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
    fn stages_shipped_models_in_the_index_and_fixtures_apart() {
        let web = std::env::temp_dir().join(format!("xtask-stage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&web);
        let staged = stage_models(&repo_root(), &web, &mut |_| {}).unwrap();
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(web.join("models/index.json")).unwrap()).unwrap();
        let listed: Vec<&str> =
            index["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
        // Exactly the shipped models: no `default` alias, no test fixtures.
        let mut shipped: Vec<String> = std::fs::read_dir(repo_root().join("assets/models"))
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .collect();
        shipped.sort();
        assert_eq!(listed, shipped);
        assert!(listed.contains(&DEFAULT_MODEL));
        for name in ["test/tiny", "test/tiny-video"] {
            assert!(web.join(format!("models/{name}.safetensors")).is_file(), "{name}");
            assert!(staged.iter().any(|s| s.name == name && !s.listed), "{name}");
        }
        let samples = stage_samples(&repo_root(), &web).unwrap();
        assert!(samples.iter().any(|s| s == "astronaut.jpg"), "{samples:?}");
        assert!(web.join("samples/samples.json").is_file() && web.join("samples/astronaut.jpg").is_file());
        let _ = std::fs::remove_dir_all(&web);
    }

    #[test]
    fn repo_root_is_the_workspace() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(repo_root().join("xtask/Cargo.toml").is_file());
    }
}
