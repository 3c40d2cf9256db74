//! `cargo xtask package [--out DIR] [--models NAME,…]`: the npm package for embedders. Builds the
//! page (`web::build`), then lays out in DIR (default `<target>/npm-package`) what
//! `<pix2seqd-segmenter>` loads at run time, found by following the imports of `web/element.js`
//! and `web/worker.js` (static and dynamic imports and `new URL("./…", import.meta.url)`): the
//! sibling modules, `worker.js` and wasm-bindgen's `pkg/`, with a `package.json` and a README.
//! Models stay out unless `--models` names them (the element takes a `model` URL). `npm pack DIR`
//! makes the tarball; nothing is published.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use crate::web;

/// The modules the package starts from: the embedder's entry and the CPU worker.
pub const ENTRIES: [&str; 2] = ["element.js", "worker.js"];

pub struct Options {
    pub out: Option<PathBuf>,
    /// Shipped models (`assets/models/NAME.{json,safetensors}`) to put under `models/`.
    pub models: Vec<String>,
}

/// The relative specifiers (`./x.js`, `./pkg/y.js`, `../z`) a module refers to: `import … from
/// "…"` (one line or several), `import "…"`, `import("…")` with a literal and
/// `new URL("…", import.meta.url)`. Lines that are comments are skipped.
pub fn local_refs(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("//") || t.starts_with("/*") || t.starts_with('*'))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut refs = Vec::new();
    for (keyword, needs_meta_url) in
        [("from", false), ("import", false), ("import(", false), ("new URL(", true)]
    {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(keyword) {
            let before_ok = rest[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '$'));
            let after = &rest[i + keyword.len()..];
            rest = after;
            if !before_ok {
                continue;
            }
            let Some(spec) = quoted_at_start(after) else { continue };
            if needs_meta_url && !after.split(')').next().unwrap_or("").contains("import.meta.url") {
                continue;
            }
            if (spec.starts_with("./") || spec.starts_with("../")) && !refs.contains(&spec) {
                refs.push(spec);
            }
        }
    }
    refs
}

/// The string literal at the start of `s` (after spaces), if there is one.
fn quoted_at_start(s: &str) -> Option<String> {
    let s = s.trim_start();
    let quote = s.chars().next().filter(|c| matches!(c, '"' | '\'' | '`'))?;
    let body = &s[1..];
    let end = body.find(quote)?;
    let spec = &body[..end];
    (!spec.contains(['\n', '$'])).then(|| spec.to_string())
}

/// What the package holds, relative to `web/`: the modules reached from [`ENTRIES`], the `pkg/`
/// files, and the references it leaves out (models, said in the README).
pub struct Plan {
    pub files: BTreeSet<String>,
    pub left_out: BTreeSet<String>,
}

/// Follows the references of [`ENTRIES`] through `web/`. `pkg/` counts as wasm-bindgen's output:
/// `pkg/pix2seqd.js` brings `pkg/pix2seqd_bg.wasm` (and the `.d.ts` files that are there).
pub fn plan(web: &Path) -> Result<Plan, String> {
    let mut files = BTreeSet::new();
    let mut left_out = BTreeSet::new();
    let mut todo: VecDeque<String> = ENTRIES.iter().map(|s| s.to_string()).collect();
    while let Some(rel) = todo.pop_front() {
        if !files.insert(rel.clone()) {
            continue;
        }
        if rel.starts_with("pkg/") {
            continue; // generated: its files are added below
        }
        let path = web.join(&rel);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read web/{rel}: {e}"))?;
        let dir = Path::new(&rel).parent().unwrap_or(Path::new(""));
        for spec in local_refs(&text) {
            let target = normalize(&dir.join(&spec))
                .ok_or_else(|| format!("web/{rel} refers to {spec}, outside web/"))?;
            if target.starts_with("models/") {
                left_out.insert(target);
            } else if target.ends_with(".js") {
                todo.push_back(target);
            } else {
                files.insert(target);
            }
        }
    }
    let glue = format!("pkg/{}.js", web::CRATE);
    if files.contains(&glue) {
        files.insert(format!("pkg/{}_bg.wasm", web::CRATE));
        for dts in [format!("pkg/{}.d.ts", web::CRATE), format!("pkg/{}_bg.wasm.d.ts", web::CRATE)] {
            if web.join(&dts).is_file() {
                files.insert(dts);
            }
        }
    }
    Ok(Plan { files, left_out })
}

/// `a/./b/../c` → `a/c` with `/` separators; None when it climbs out of the root.
fn normalize(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// The package's `package.json`. `files` lists every file but package.json and the README, which
/// npm always packs.
pub fn package_json(meta: &Meta, files: &BTreeSet<String>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": "pix2seqd",
        "version": meta.version,
        "description": format!("{} — the <pix2seqd-segmenter> custom element, its modules, the CPU worker and the wasm engine; plain ES modules, no bundler", meta.description),
        "type": "module",
        "main": "./element.js",
        "exports": {
            ".": "./element.js",
            "./element.js": "./element.js",
            "./worker.js": "./worker.js",
            "./pkg/*": "./pkg/*",
            "./package.json": "./package.json"
        },
        "files": files.iter().collect::<Vec<_>>(),
        "license": meta.license,
        "keywords": ["panoptic-segmentation", "webgpu", "webassembly", "web-component", "pix2seq", "diffusion"],
    });
    if let Some(repo) = &meta.repository {
        v["repository"] = serde_json::json!({ "type": "git", "url": repo });
    }
    v
}

/// What package.json takes from the crate's Cargo.toml.
pub struct Meta {
    pub version: String,
    pub description: String,
    pub license: String,
    pub repository: Option<String>,
}

fn crate_meta(metadata: &serde_json::Value) -> Result<Meta, String> {
    let pkg = metadata["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == web::CRATE))
        .ok_or_else(|| format!("cargo metadata lists no package {}", web::CRATE))?;
    let field = |k: &str| pkg[k].as_str().map(str::to_string);
    Ok(Meta {
        version: field("version").ok_or("Cargo.toml has no version")?,
        description: field("description").unwrap_or_default(),
        license: field("license").ok_or("Cargo.toml has no license: package.json needs one")?,
        repository: field("repository"),
    })
}

fn readme(meta: &Meta, models: &[String]) -> String {
    let bundled = if models.is_empty() {
        "This package holds no model.".to_string()
    } else {
        format!(
            "This package holds {} under `models/`.",
            models.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
        )
    };
    format!(
        r#"# pix2seqd {version}

`<pix2seqd-segmenter>`: panoptic segmentation (Pix2Seq-D) of an image on your page, on the
visitor's GPU through WebGPU, or on the CPU in a Web Worker where there is no usable GPU. Plain
ES modules and one WebAssembly file, no bundler, no server work: images never leave the browser.

## Use it

From the tarball (`npm pack` of this folder, or the one you were given):

```sh
npm install ./pix2seqd-{version}.tgz
```

then serve `node_modules/pix2seqd/` as static files, for example copied to `/pix2seqd/` on your
site. Or copy this folder to any static host as it is. Either way, one module and one tag:

```html
<script type="module" src="/pix2seqd/element.js"></script>
<pix2seqd-segmenter src="/images/photo.jpg" model="/pix2seqd-models/objects.json" steps="4"></pix2seqd-segmenter>
```

The files find each other by relative URL (`element.js` → its sibling modules, `worker.js`,
`pkg/pix2seqd.js` → `pkg/pix2seqd_bg.wasm`), so keep them together. Serve `.wasm` as
`application/wasm`. A Content-Security-Policy needs `script-src 'self' 'wasm-unsafe-eval'` and
`worker-src 'self' blob:`; the element needs no inline script or style.

## Models

The element loads the model card its `model` attribute names, and the weights beside it (the same
name with `.safetensors`); without the attribute, `models/objects.json` beside `element.js`. Models
are downloaded once per URL and kept in the browser's Cache API. {bundled} The shipped models
(`objects`, `street`, `objects-video`; about 17 MB each) are in the repository's `assets/models/`,
and `cargo xtask package --models objects` puts one here under `models/`.

## More

Attributes, events, the result object and the headers to send: the repository's
`docs/web-api.md` and `web/embed.html` (`cargo xtask web` serves it at `/embed.html`).
Licence: {license}.
"#,
        version = meta.version,
        license = meta.license,
    )
}

/// Removes `out` only when it is empty or a package this command laid out before.
fn clear_out(out: &Path) -> Result<(), String> {
    if !out.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
    let ours = std::fs::read_to_string(out.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["name"] == "pix2seqd");
    if !(empty || ours) {
        return Err(format!("{} exists and is not a pix2seqd package: choose another --out", out.display()));
    }
    std::fs::remove_dir_all(out).map_err(|e| format!("cannot clear {}: {e}", out.display()))
}

/// Builds the page, lays out the package in `opts.out` and returns that folder.
pub fn run(opts: &Options) -> Result<PathBuf, String> {
    let root = web::repo_root();
    web::build(&web::BuildOptions { debug: false, json: false })?;
    let say = web::Say::new(false);
    say.line("laying out the npm package…");
    let metadata = web::metadata(&root)?;
    let meta = crate_meta(&metadata)?;
    let out = match &opts.out {
        Some(o) => o.clone(),
        None => web::target_dir(&root)?.join("npm-package"),
    };
    let web_dir = root.join("web");
    let plan = plan(&web_dir)?;
    let mut files = plan.files.clone();
    for name in &opts.models {
        let plain =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !plain {
            return Err(format!("--models: {name:?} is not a model name (assets/models/NAME.json)"));
        }
        for ext in ["json", "safetensors"] {
            files.insert(format!("models/{name}.{ext}"));
        }
    }
    clear_out(&out)?;
    for rel in &files {
        let from = match rel.strip_prefix("models/") {
            Some(m) => root.join("assets/models").join(m),
            None => web_dir.join(rel),
        };
        let to = out.join(rel);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let bytes = std::fs::read(&from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        std::fs::write(&to, bytes).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    }
    let json = serde_json::to_string_pretty(&package_json(&meta, &files)).map_err(|e| e.to_string())?;
    std::fs::write(out.join("package.json"), json + "\n")
        .map_err(|e| format!("cannot write package.json: {e}"))?;
    std::fs::write(out.join("README.md"), readme(&meta, &opts.models))
        .map_err(|e| format!("cannot write README.md: {e}"))?;
    let bytes: u64 = files.iter().filter_map(|f| std::fs::metadata(out.join(f)).ok()).map(|m| m.len()).sum();
    say.line(&format!(
        "npm package pix2seqd {} in {}: {} files + package.json + README.md, {:.1} MB",
        meta.version,
        out.display(),
        files.len(),
        bytes as f64 / 1e6
    ));
    if !plan.left_out.is_empty() && opts.models.is_empty() {
        say.line(&format!(
            "left out: {} (the element's default model; set its model attribute, or --models NAME)",
            plan.left_out.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if meta.repository.is_none() {
        say.line("note: Cargo.toml names no repository, so package.json has none");
    }
    say.line(&format!("make the tarball with: npm pack {}", out.display()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `./x.js` of every `import … from './x.js'` line (and `import './x.js'`), read the plain
    /// way, independently of `local_refs`.
    fn import_lines(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in text.lines().map(str::trim) {
            let spec = if let Some(i) = line.find(" from ") {
                (line.starts_with("import ") || line.starts_with('}')).then(|| &line[i + 6..])
            } else {
                line.strip_prefix("import ")
            };
            if let Some(s) = spec {
                let s = s.trim().trim_end_matches(';').trim_matches(|c| c == '"' || c == '\'');
                if s.starts_with("./") {
                    out.push(s.trim_start_matches("./").to_string());
                }
            }
        }
        out
    }

    #[test]
    fn the_package_holds_every_module_element_and_worker_import() {
        let web_dir = web::repo_root().join("web");
        let plan = plan(&web_dir).unwrap();
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = ENTRIES.iter().map(|s| s.to_string()).collect();
        while let Some(m) = todo.pop() {
            if !seen.insert(m.clone()) {
                continue;
            }
            assert!(plan.files.contains(&m), "{m} is imported but not in the package: {:?}", plan.files);
            let text = std::fs::read_to_string(web_dir.join(&m)).unwrap();
            todo.extend(import_lines(&text));
        }
        // Imported by every page: the element's modules, found by import lines alone.
        for m in ["engine.js", "wasm.js", "models.js", "images.js", "results.js", "shared.js"] {
            assert!(seen.contains(m), "{m} not reached from element.js: {seen:?}");
        }
        // Found by URL, not by import: the worker (engine.js) and the wasm engine (wasm.js).
        for f in ["worker.js", "pkg/pix2seqd.js", "pkg/pix2seqd_bg.wasm"] {
            assert!(plan.files.contains(f), "{f} missing: {:?}", plan.files);
        }
        // The page's own modules stay out; the default model is a reference, not a file.
        for f in ["app.js", "state.js", "webcam.js", "gallery.js", "embed.js", "index.html"] {
            assert!(!plan.files.contains(f), "{f} should not be in the package");
        }
        assert!(plan.left_out.contains("models/objects.json"), "{:?}", plan.left_out);
    }

    #[test]
    fn finds_every_kind_of_reference_and_skips_comments() {
        let src = r#"
// import { no } from "./commented.js";
import { a,
  b } from "./multi.js";
import c from './single.js';
import "./side-effect.js";
import { remote } from "https://example.com/x.js";
const w = new URL("./worker.js", import.meta.url).href;
const other = new URL("./not-a-module-url.js", document.baseURI);
const mod = await import("./pkg/glue.js");
export { d } from "./reexport.js";
const s = "transform"; // words that contain from and import
"#;
        let refs = local_refs(src);
        assert_eq!(
            refs,
            [
                "./multi.js",
                "./single.js",
                "./reexport.js",
                "./side-effect.js",
                "./pkg/glue.js",
                "./worker.js"
            ]
        );
    }

    #[test]
    fn normalizes_paths_inside_the_root_only() {
        assert_eq!(normalize(Path::new("./a/../b/./c.js")).as_deref(), Some("b/c.js"));
        assert_eq!(normalize(Path::new("../x.js")), None);
    }

    #[test]
    fn package_json_has_what_npm_and_embedders_need() {
        let meta = Meta {
            version: "1.2.3".into(),
            description: "d".into(),
            license: "Apache-2.0".into(),
            repository: None,
        };
        let files: BTreeSet<String> =
            ["element.js", "worker.js", "pkg/pix2seqd_bg.wasm"].iter().map(|s| s.to_string()).collect();
        let v = package_json(&meta, &files);
        assert_eq!(v["name"], "pix2seqd");
        assert_eq!(v["version"], "1.2.3");
        assert_eq!(v["type"], "module");
        assert_eq!(v["license"], "Apache-2.0");
        assert_eq!(v["exports"]["."], "./element.js");
        assert_eq!(v["files"].as_array().unwrap().len(), 3);
        assert!(v.get("repository").is_none());
        // The crate's own licence and version are what the real package takes.
        let real = crate_meta(&web::metadata(&web::repo_root()).unwrap()).unwrap();
        assert_eq!(real.license, "Apache-2.0");
        assert!(!real.version.is_empty());
    }

    #[test]
    fn refuses_to_clear_a_folder_it_did_not_make() {
        let dir = std::env::temp_dir().join(format!("xtask-package-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep.txt"), "x").unwrap();
        assert!(clear_out(&dir).unwrap_err().contains("not a pix2seqd package"));
        assert!(dir.join("keep.txt").is_file());
        std::fs::write(dir.join("package.json"), r#"{"name": "pix2seqd"}"#).unwrap();
        clear_out(&dir).unwrap();
        assert!(!dir.exists());
    }
}
