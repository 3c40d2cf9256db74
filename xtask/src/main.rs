//! Project tasks (`cargo xtask …`, an alias in `.cargo/config.toml`):
//!
//! - `web [--port 8080] [--no-serve] [--debug] [--json]`: build the wasm, run wasm-bindgen into
//!   `web/pkg/`, `wasm-opt -Oz` (npm binaryen, when installed), print sizes, stage the models in
//!   `web/models/`, then serve `web/` on http://127.0.0.1:PORT/.
//! - `y4m --sequence DIR --out FILE [--frames N] [--width W]`: a DAVIS sequence → a Y4M clip for
//!   Chromium's fake camera.
//! - `test-web`: `web --no-serve`, the fake camera clip, a server on a free port, then
//!   `node web/e2e/run.mjs` (Playwright + headless Chromium).
//! - `package [--out DIR] [--models NAME,…]`: `web --no-serve`, then the npm package for embedders
//!   (`element.js`, the modules it and `worker.js` import, `pkg/`, package.json, README) in DIR.

mod package;
mod serve;
mod web;
mod y4m;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  web [--port N] [--no-serve] [--debug] [--json]
        build the wasm (release; --debug: dev profile, no wasm-opt), run wasm-bindgen into web/pkg/,
        wasm-opt -Oz when web/node_modules has binaryen, print sizes, stage web/models/, and
        serve web/ on http://127.0.0.1:N/ (default 8080) unless --no-serve
  y4m --sequence DIR --out FILE [--frames N] [--width W]
        DIR/images/*.jpg → a YUV4MPEG2 4:2:0 clip for Chromium's fake camera (width default 320, even)
  test-web
        web --no-serve, the fake camera clip (target/web-test/camera.y4m), a server on a free port,
        then node web/e2e/run.mjs (env PIX2SEQD_URL, PIX2SEQD_Y4M, PIX2SEQD_DATA)
  serve [--port N]
        serve web/ as it is, without building
  package [--out DIR] [--models NAME,...]
        web --no-serve, then the npm package for embedders in DIR (default <target>/npm-package):
        element.js, the modules it and worker.js import, worker.js, pkg/, package.json and a README;
        --models copies assets/models/NAME.{json,safetensors} into it (none by default).
        Then `npm pack DIR` makes the tarball (nothing is published)
";

/// The DAVIS sequence the fake camera plays in `test-web`, and how many frames.
const CAMERA_SEQUENCE: &str = "davis2016/cows";
const CAMERA_FRAMES: usize = 60;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Minimal flag parser: `--name value`, `--name=value`, boolean `--name`.
struct Args {
    rest: Vec<String>,
}

impl Args {
    fn new(args: &[String]) -> Args {
        Args { rest: args.to_vec() }
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|a| a != name);
        self.rest.len() != before
    }

    fn value(&mut self, name: &str) -> Result<Option<String>, String> {
        let prefix = format!("{name}=");
        if let Some(i) = self.rest.iter().position(|a| a.starts_with(&prefix)) {
            let v = self.rest.remove(i);
            return Ok(Some(v[prefix.len()..].to_string()));
        }
        if let Some(i) = self.rest.iter().position(|a| a == name) {
            if i + 1 >= self.rest.len() {
                return Err(format!("{name} needs a value"));
            }
            let v = self.rest.remove(i + 1);
            self.rest.remove(i);
            return Ok(Some(v));
        }
        Ok(None)
    }

    fn parsed<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>, String> {
        match self.value(name)? {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| format!("{name}: not a valid number: {v:?}")),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self.rest.first() {
            None => Ok(()),
            Some(a) => Err(format!("unexpected argument {a:?} (see `cargo xtask help`)")),
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return Err("no command given".into());
    };
    let mut a = Args::new(rest);
    match cmd.as_str() {
        "web" => {
            let port: u16 = a.parsed("--port")?.unwrap_or(8080);
            let no_serve = a.flag("--no-serve");
            let opts = web::BuildOptions { debug: a.flag("--debug"), json: a.flag("--json") };
            a.finish()?;
            web::build(&opts)?;
            if !no_serve {
                serve_forever(port)?;
            }
        }
        "serve" => {
            let port: u16 = a.parsed("--port")?.unwrap_or(8080);
            a.finish()?;
            serve_forever(port)?;
        }
        "y4m" => {
            let sequence = a.value("--sequence")?.ok_or("y4m needs --sequence DIR")?;
            let out = a.value("--out")?.ok_or("y4m needs --out FILE")?;
            let frames = a.parsed("--frames")?;
            let width = a.parsed("--width")?.unwrap_or(320);
            a.finish()?;
            let opts = y4m::Options { sequence: sequence.into(), out: out.into(), frames, width };
            let s = y4m::write_clip(&opts)?;
            println!(
                "wrote {} ({} frames, {}x{}, {} bytes)",
                opts.out.display(),
                s.frames,
                s.width,
                s.height,
                s.bytes
            );
        }
        "test-web" => {
            a.finish()?;
            return test_web();
        }
        "package" => {
            let out = a.value("--out")?.map(PathBuf::from);
            let models: Vec<String> = a
                .value("--models")?
                .map(|m| m.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            a.finish()?;
            package::run(&package::Options { out, models })?;
        }
        "help" | "--help" | "-h" => print!("{USAGE}"),
        other => {
            eprint!("{USAGE}");
            return Err(format!("unknown command {other:?}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serve_forever(port: u16) -> Result<(), String> {
    let web = web::repo_root().join("web");
    let addr = format!("127.0.0.1:{port}");
    web::Say::new(false).line(&format!("starting the server on {addr}…"));
    let server = serve::Server::bind(&addr, &web, true)
        .map_err(|e| format!("cannot listen on {addr}: {e} (try --port N)"))?;
    let bound = server.local_addr().map_err(|e| e.to_string())?;
    web::Say::new(false).line(&format!("serving web/ on http://{bound}/  (Ctrl-C to stop)"));
    server.run();
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn test_web() -> Result<ExitCode, String> {
    let root = web::repo_root();
    web::build(&web::BuildOptions { debug: false, json: false })?;

    let data = match std::env::var_os("PIX2SEQD_DATA") {
        Some(d) => PathBuf::from(d),
        None => root.join("../shared/data"),
    };
    if !data.is_dir() {
        return Err(format!(
            "the data folder {} is missing (the browser tests need ../shared/data; CI always has it)",
            data.display()
        ));
    }
    let data = absolute(&data);
    let target = web::target_dir(&root)?;
    let y4m_path = target.join("web-test/camera.y4m");
    let opts = y4m::Options {
        sequence: data.join(CAMERA_SEQUENCE),
        out: y4m_path.clone(),
        frames: Some(CAMERA_FRAMES),
        width: 320,
    };
    let s = y4m::write_clip(&opts)?;
    let y4m_path = absolute(&y4m_path);
    println!(
        "fake camera: {} ({} frames of {CAMERA_SEQUENCE}, {}x{})",
        y4m_path.display(),
        s.frames,
        s.width,
        s.height
    );

    let script = match std::env::var_os("PIX2SEQD_E2E") {
        Some(s) => PathBuf::from(s),
        None => {
            let s = root.join("web/e2e/run.mjs");
            if !s.is_file() {
                return Err(format!("{} does not exist", s.display()));
            }
            if !root.join("web/node_modules/playwright-core").is_dir() {
                return Err("web/node_modules/playwright-core is missing; run `npm ci --prefix web`".into());
            }
            s
        }
    };

    let server = serve::Server::bind("127.0.0.1:0", &root.join("web"), false)
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let addr = server.spawn().map_err(|e| format!("cannot start the server: {e}"))?;
    let url = format!("http://{addr}/");
    println!("serving web/ on {url}; running node {}", script.display());

    let status = Command::new("node")
        .current_dir(&root)
        .arg(&script)
        .env("PIX2SEQD_URL", &url)
        .env("PIX2SEQD_Y4M", &y4m_path)
        .env("PIX2SEQD_DATA", &data)
        .status()
        .map_err(|e| format!("cannot run node: {e} (install Node.js 18 or newer)"))?;
    match status.code() {
        Some(0) => {
            println!("browser tests passed");
            Ok(ExitCode::SUCCESS)
        }
        Some(code) => {
            eprintln!("error: browser tests failed (node {} exited with status {code})", script.display());
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)))
        }
        None => Err(format!("browser tests failed (node {} was killed: {status})", script.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Args {
        Args::new(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_flags_and_values() {
        let mut a = args(&["--no-serve", "--port", "9000", "--width=64"]);
        assert!(a.flag("--no-serve"));
        assert!(!a.flag("--debug"));
        assert_eq!(a.parsed::<u16>("--port").unwrap(), Some(9000));
        assert_eq!(a.parsed::<u32>("--width").unwrap(), Some(64));
        assert!(a.finish().is_ok());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(args(&["--port"]).value("--port").unwrap_err().contains("needs a value"));
        assert!(args(&["--port", "x"]).parsed::<u16>("--port").unwrap_err().contains("not a valid number"));
        assert!(args(&["--port", "70000"]).parsed::<u16>("--port").is_err());
        assert!(args(&["--bogus"]).finish().unwrap_err().contains("--bogus"));
        assert!(run(&["nope".to_string()]).is_err());
        assert!(run(&[]).is_err());
        assert!(run(&["y4m".into(), "--out".into(), "x.y4m".into()]).unwrap_err().contains("--sequence"));
    }
}
