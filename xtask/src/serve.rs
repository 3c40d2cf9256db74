//! A small static file server for `web/`: HTTP/1.1 GET and HEAD, one thread per connection,
//! `Connection: close`, `Cache-Control: no-cache`, the MIME types the page needs (`.wasm` must be
//! `application/wasm` for `WebAssembly.instantiateStreaming`), and the security headers
//! ([`SECURITY_HEADERS`]) on every response, so the page is tested under the policy
//! docs/web-api.md asks other hosts to send.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

/// The largest request head (request line + headers) accepted.
const MAX_HEAD: usize = 16 * 1024;

/// The Content-Security-Policy of every response: scripts only from this origin, no inline script
/// and no eval ('wasm-unsafe-eval' lets WebAssembly compile, nothing else); no inline style
/// (the custom element styles its shadow root with a constructed stylesheet); images, video and
/// workers also from `blob:` (dropped files, video files, the worker shim) and images from
/// `data:` (the favicon); fetches only to this origin (models); no plugins, no framing by others.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
img-src 'self' data: blob:; media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; \
object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

/// Sent with every response (docs/web-api.md lists them for other hosts).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Permissions-Policy", "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"),
];

pub struct Server {
    listener: TcpListener,
    root: PathBuf,
    log: bool,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) to serve the files under `root`.
    pub fn bind(addr: &str, root: &Path, log: bool) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        Ok(Server { listener, root: root.to_path_buf(), log })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections forever, each on its own thread.
    pub fn run(self) {
        for stream in self.listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("serve: accept failed: {e}");
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let root = self.root.clone();
            let log = self.log;
            let spawned = thread::Builder::new().name("serve-conn".into()).spawn(move || {
                // A client that goes away mid-response is its own business: drop the error.
                let _ = handle(stream, &root, log);
            });
            if let Err(e) = spawned {
                eprintln!("serve: could not start a connection thread: {e}");
            }
        }
    }

    /// Runs the server on a background thread and returns its address.
    pub fn spawn(self) -> io::Result<SocketAddr> {
        let addr = self.local_addr()?;
        thread::Builder::new().name("serve".into()).spawn(move || self.run())?;
        Ok(addr)
    }
}

/// The Content-Type for a file name.
pub fn mime_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        "ts" => "text/plain; charset=utf-8",
        "y4m" => "video/x-yuv4mpeg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        // "safetensors" and anything else
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a request target maps to.
#[derive(Debug, PartialEq)]
enum Target {
    /// A path relative to the root, made of plain segments.
    File(PathBuf),
    /// A malformed target (bad escape, not UTF-8, not origin-form).
    BadRequest,
    /// `..`, NUL, backslash or drive-letter colon in a segment.
    Forbidden,
}

/// Maps a request target (`/a/b.js?x=1`) to a relative file path. Rejects `..`, NUL and
/// backslashes; `/` and `dir/` become `index.html` and `dir/index.html`.
fn resolve(target: &str) -> Target {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let Some(path) = percent_decode(path) else { return Target::BadRequest };
    if !path.starts_with('/') {
        return Target::BadRequest;
    }
    let mut rel = PathBuf::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Target::Forbidden,
            s if s.contains(['\\', '\0', ':']) => return Target::Forbidden,
            s => rel.push(s),
        }
    }
    if path.ends_with('/') {
        rel.push("index.html");
    }
    Target::File(rel)
}

fn handle(stream: TcpStream, root: &Path, log: bool) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let head = read_head(&stream)?;
    let mut out = BufWriter::with_capacity(64 * 1024, &stream);
    let Some(head) = head else {
        return respond_text(&mut out, 400, "Bad Request", "bad request\n", false, &[]);
    };
    let request_line = head.lines().next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head_only = method == "HEAD";
    let status = serve_request(&mut out, root, method, target, head_only);
    if log {
        match &status {
            Ok(code) => eprintln!("{method} {target} {code}"),
            Err(e) => eprintln!("{method} {target} (client went away: {e})"),
        }
    }
    status?;
    out.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// Writes the response; returns the status code sent.
fn serve_request(
    out: &mut impl Write,
    root: &Path,
    method: &str,
    target: &str,
    head_only: bool,
) -> io::Result<u16> {
    if method != "GET" && method != "HEAD" {
        respond_text(
            out,
            405,
            "Method Not Allowed",
            "method not allowed\n",
            false,
            &[("Allow", "GET, HEAD")],
        )?;
        return Ok(405);
    }
    let rel = match resolve(target) {
        Target::File(rel) => rel,
        Target::BadRequest => {
            respond_text(out, 400, "Bad Request", "bad request\n", head_only, &[])?;
            return Ok(400);
        }
        Target::Forbidden => {
            respond_text(out, 403, "Forbidden", "forbidden\n", head_only, &[])?;
            return Ok(403);
        }
    };
    let path = root.join(&rel);
    if path.is_dir() {
        // `/dir` → `/dir/` so that relative URLs in its index.html resolve. The location is
        // rebuilt from the checked segments: echoing the target would turn `//host` into
        // `Location: //host/`, a redirect to another site.
        let location = redirect_location(&rel);
        respond_text(out, 301, "Moved Permanently", "moved\n", head_only, &[("Location", &location)])?;
        return Ok(301);
    }
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(_) => {
            respond_text(out, 404, "Not Found", "not found\n", head_only, &[])?;
            return Ok(404);
        }
    };
    let len = file.metadata()?.len();
    write!(out, "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\n", mime_type(&path))?;
    write_common_headers(out)?;
    if !head_only {
        io::copy(&mut file.take(len), out)?;
    }
    Ok(200)
}

fn respond_text(
    out: &mut impl Write,
    code: u16,
    reason: &str,
    body: &str,
    head_only: bool,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        body.len()
    )?;
    for (k, v) in extra {
        write!(out, "{k}: {v}\r\n")?;
    }
    write_common_headers(out)?;
    if !head_only {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}

/// The headers every response ends with: caching, the security headers, the connection, and the
/// blank line that ends the head.
fn write_common_headers(out: &mut impl Write) -> io::Result<()> {
    write!(out, "Cache-Control: no-cache\r\n")?;
    for (k, v) in SECURITY_HEADERS {
        write!(out, "{k}: {v}\r\n")?;
    }
    write!(out, "Connection: close\r\n\r\n")
}

/// `/a/b/` for the directory `a/b` (percent-encoded): always one leading slash, so never a
/// scheme-relative `//host` URL.
fn redirect_location(rel: &Path) -> String {
    let mut location = String::from("/");
    for seg in rel.iter() {
        for b in seg.to_string_lossy().bytes() {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@".contains(&b) {
                location.push(b as char);
            } else {
                location.push_str(&format!("%{b:02X}"));
            }
        }
        location.push('/');
    }
    location
}

/// Reads up to the blank line that ends the request head. `None` when it is too long or not text.
fn read_head(mut stream: &TcpStream) -> io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
    Ok(String::from_utf8(buf).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    struct Fixture {
        dir: PathBuf,
        addr: SocketAddr,
    }

    fn start() -> Fixture {
        let dir = std::env::temp_dir().join(format!("xtask-serve-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("index.html"), "<!doctype html><title>t</title>").unwrap();
        std::fs::write(dir.join("pkg/m_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(dir.join("app.js"), "export const x = 1;\n").unwrap();
        std::fs::write(dir.join("sub/index.html"), "sub").unwrap();
        std::fs::write(dir.join("with space.json"), "{}").unwrap();
        std::fs::write(dir.join("big.safetensors"), vec![7u8; 4 << 20]).unwrap();
        let server = Server::bind("127.0.0.1:0", &dir, false).unwrap();
        let addr = server.spawn().unwrap();
        Fixture { dir, addr }
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Response {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    fn request(addr: SocketAddr, raw: &str) -> Response {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("no header end");
        let head = String::from_utf8(buf[..split].to_vec()).unwrap();
        let body = buf[split + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect();
        Response { status, headers, body }
    }

    fn get(addr: SocketAddr, path: &str) -> Response {
        request(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
    }

    #[test]
    fn serves_files_with_mime_types() {
        let f = start();
        let r = get(f.addr, "/pkg/m_bg.wasm");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/wasm"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert_eq!(r.header("content-length"), Some("8"));
        assert_eq!(r.body, b"\0asm\x01\0\0\0");

        let r = get(f.addr, "/app.js?v=3");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/javascript; charset=utf-8"));
        assert_eq!(r.body, b"export const x = 1;\n");

        let r = get(f.addr, "/with%20space.json");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    #[test]
    fn root_and_directories_map_to_index() {
        let f = start();
        let r = get(f.addr, "/");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r.body.starts_with(b"<!doctype html>"));
        assert_eq!(get(f.addr, "/sub/").body, b"sub");
        let r = get(f.addr, "/sub?x");
        assert_eq!(r.status, 301);
        assert_eq!(r.header("location"), Some("/sub/"));
    }

    #[test]
    fn no_open_redirect() {
        let f = start();
        // `//sub` used to answer `Location: //sub/`: a scheme-relative URL, i.e. another host.
        for (target, want) in [
            ("//sub", "/sub/"),
            ("///sub?x", "/sub/"),
            ("/%2Fsub", "/sub/"),
            ("/./sub", "/sub/"),
            ("/sub", "/sub/"),
        ] {
            let r = get(f.addr, target);
            assert_eq!(r.status, 301, "{target}");
            assert_eq!(r.header("location"), Some(want), "{target}");
        }
        std::fs::create_dir_all(f.dir.join("a b")).unwrap();
        assert_eq!(get(f.addr, "/a%20b").header("location"), Some("/a%20b/"));
    }

    #[test]
    fn every_response_carries_the_security_headers() {
        let f = start();
        let responses = [
            get(f.addr, "/"),
            get(f.addr, "/pkg/m_bg.wasm"),
            get(f.addr, "/nope.js"),
            get(f.addr, "/sub"),
            get(f.addr, "/../x"),
            request(f.addr, "HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n"),
            request(f.addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
        ];
        for r in &responses {
            for (k, v) in SECURITY_HEADERS {
                assert_eq!(r.header(k), Some(*v), "{k} on a {} response", r.status);
            }
        }
        let csp = CSP;
        // No inline script, no eval; WebAssembly may compile.
        let script = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src")).unwrap();
        assert_eq!(script, "script-src 'self' 'wasm-unsafe-eval'");
        assert!(!csp.contains("'unsafe-inline'") && !csp.contains("'unsafe-eval'"), "{csp}");
        assert!(csp.contains("object-src 'none'"));
    }

    #[test]
    fn head_sends_headers_only() {
        let f = start();
        let r = request(f.addr, "HEAD /pkg/m_bg.wasm HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/wasm"));
        assert_eq!(r.header("content-length"), Some("8"));
        assert!(r.body.is_empty());
    }

    #[test]
    fn traversal_is_forbidden() {
        let f = start();
        for p in
            ["/../etc/passwd", "/pkg/../../x", "/%2e%2e/x", "/pkg/..%2f..%2fx", "/a%5c..%5cb", "/x%00.js"]
        {
            assert_eq!(get(f.addr, p).status, 403, "{p}");
        }
    }

    #[test]
    fn missing_is_404_and_other_methods_405() {
        let f = start();
        let r = get(f.addr, "/nope.js");
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"not found\n");
        let r = request(f.addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        assert_eq!(get(f.addr, "/bad%zz").status, 400);
    }

    #[test]
    fn survives_a_client_that_disconnects_mid_response() {
        let f = start();
        for _ in 0..3 {
            let mut s = TcpStream::connect(f.addr).unwrap();
            s.write_all(b"GET /big.safetensors HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut first = [0u8; 100];
            s.read_exact(&mut first).unwrap();
            drop(s);
        }
        let r = get(f.addr, "/big.safetensors");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.body.len(), 4 << 20);
    }

    #[test]
    fn decoding_and_resolving() {
        assert_eq!(percent_decode("a%20b%2F"), Some("a b/".into()));
        assert_eq!(percent_decode("%e2%82%ac"), Some("€".into()));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(resolve("/"), Target::File("index.html".into()));
        assert_eq!(resolve("/a/./b.js#frag"), Target::File("a/b.js".into()));
        assert_eq!(resolve("/a/../b"), Target::Forbidden);
        assert_eq!(resolve("http://x/"), Target::BadRequest);
        assert_eq!(mime_type(Path::new("m.safetensors")), "application/octet-stream");
        assert_eq!(mime_type(Path::new("clip.y4m")), "video/x-yuv4mpeg");
        assert_eq!(mime_type(Path::new("a.MJS")), "text/javascript; charset=utf-8");
        assert_eq!(mime_type(Path::new("a.webp")), "image/webp");
        assert_eq!(mime_type(Path::new("a.svg")), "image/svg+xml");
        assert_eq!(mime_type(Path::new("a.png")), "image/png");
        assert_eq!(mime_type(Path::new("a.jpg")), "image/jpeg");
        assert_eq!(mime_type(Path::new("a.css")), "text/css; charset=utf-8");
    }
}
