//! Issue 19's bad-input suite: the CLI against generated hostile inputs (model cards, weights,
//! paths that are no regular file, images, flags). Every case runs the `pix2seqd` binary under a
//! time cap and an address-space cap, and must end with a non-zero status that is neither a panic
//! (101) nor a signal, within the caps, with stderr naming the flag, field, tensor or file at fault.
//!
//! `cargo test --test engine bad_input -- --nocapture` prints one line per case and the counts.

mod cases;
mod files;
mod inputs;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cases::Case;
use files::Scratch;

/// A case still running after this is a hang.
const TIME_CAP: Duration = Duration::from_secs(20);
/// Address space of every case: an allocation beyond it fails (abort) instead of taking the machine.
const MEMORY_CAP: u64 = 3 << 30;
/// The most resident memory a refused input may cost (the CLI's own baseline is ~20 MB).
const REFUSAL_RSS_BOUND_KB: i64 = 256 << 10;

extern "C" {
    fn setrlimit(resource: i32, limit: *const [u64; 2]) -> i32;
    fn wait4(pid: i32, status: *mut i32, options: i32, usage: *mut [i64; 18]) -> i32;
}
const RLIMIT_AS: i32 = 9;
const WNOHANG: i32 = 1;

#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    Exit(i32),
    Signal(i32),
    Hang,
}

struct Run {
    end: End,
    stderr: String,
    /// Peak resident set in KiB (the kernel's own account, `ru_maxrss`).
    peak_kb: i64,
    seconds: f64,
}

/// Runs the CLI with `args` under [`TIME_CAP`] and [`MEMORY_CAP`].
// The child is reaped by `wait4` (which also reports its peak memory), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_capped(args: &[std::ffi::OsString]) -> Run {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_pix2seqd"));
    command.current_dir(env!("CARGO_MANIFEST_DIR")).args(args);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            let limit = [MEMORY_CAP, MEMORY_CAP];
            if setrlimit(RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = command.spawn().expect("the pix2seqd binary starts");
    let pid = child.id() as i32;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let (mut status, mut usage) = (0i32, [0i64; 18]);
    let mut hung = false;
    loop {
        // SAFETY: plain syscall on our own child; status and usage are valid out-pointers.
        let done = unsafe { wait4(pid, &mut status, WNOHANG, &mut usage) };
        if done == pid {
            break;
        }
        if start.elapsed() > TIME_CAP && !hung {
            hung = true;
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = out.join();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    let end = if hung {
        End::Hang
    } else if status & 0x7f == 0 {
        End::Exit((status >> 8) & 0xff)
    } else {
        End::Signal(status & 0x7f)
    };
    Run { end, stderr, peak_kb: usage[4], seconds: start.elapsed().as_secs_f64() }
}

/// What happened, in the words.
fn verdict(case: &Case, run: &Run) -> &'static str {
    let stderr = run.stderr.to_lowercase();
    match run.end {
        End::Hang => "hang",
        End::Signal(6) => "abort",
        End::Signal(_) => "signal",
        End::Exit(101) => "panic",
        End::Exit(0) => "accepted",
        End::Exit(_) if case.needles.iter().any(|n| !stderr.contains(&n.to_lowercase())) => "unclear",
        End::Exit(_) if run.peak_kb > REFUSAL_RSS_BOUND_KB => "memory",
        End::Exit(_) => "ok",
    }
}

fn all_cases(scratch: &Scratch) -> Vec<Case> {
    files::write_photo(&scratch.path("photo.png"));
    let mut all = cases::card_cases(scratch);
    all.extend(cases::bench_cases(scratch));
    all.extend(inputs::weights_cases(scratch));
    all.extend(inputs::path_cases(scratch));
    all.extend(inputs::image_cases(scratch));
    all.extend(inputs::pq_cases(scratch));
    all.extend(inputs::dataset_cases(scratch));
    all.extend(inputs::flag_cases(scratch));
    all
}

#[test]
fn no_bad_input_panics_aborts_hangs_or_goes_unexplained() {
    let scratch = Scratch::new("bad-input");
    let cases = all_cases(&scratch);
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut failures = Vec::new();
    let mut worst = (0i64, String::new());
    for case in &cases {
        let run = run_capped(&case.args);
        let verdict = verdict(case, &run);
        *counts.entry(verdict).or_default() += 1;
        if run.peak_kb > worst.0 {
            worst = (run.peak_kb, case.name.clone());
        }
        let last = run.stderr.trim().lines().last().unwrap_or("").to_string();
        eprintln!(
            "{verdict:<8} {:>6.1} s {:>8} KB  {}: {:?} | {last}",
            run.seconds, run.peak_kb, case.name, run.end
        );
        if verdict != "ok" {
            failures.push(format!("{verdict}: {} (needs {:?}): {last}", case.name, case.needles));
        }
    }
    eprintln!(
        "bad input: {} cases, {counts:?}; peak memory {} MB ({})",
        cases.len(),
        worst.0 / 1024,
        worst.1
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The harness itself: the unmodified fixture, photo and flags succeed under the same caps, so a
/// case fails only for what it changed.
#[test]
fn the_unmodified_inputs_succeed_under_the_same_caps() {
    let scratch = Scratch::new("bad-input-control");
    files::write_photo(&scratch.path("photo.png"));
    let model = std::path::Path::new(files::FIXTURE);
    let case = cases::segment(&scratch, "control", model, &[]);
    let run = run_capped(&case.args);
    assert_eq!(run.end, End::Exit(0), "{}", run.stderr);
}

/// A photo over the page's 4096-pixel side is scaled down, as the page does, and stderr says so;
/// a complete JPEG passes the end-of-image check the truncated one fails.
#[test]
fn large_photos_are_scaled_down_and_complete_jpegs_accepted() {
    let scratch = Scratch::new("bad-input-large");
    let model = std::path::Path::new(files::FIXTURE);
    let large = scratch.path("large.png");
    std::fs::write(&large, files::huge_png(5000, 3000)).unwrap();
    let jpeg = scratch.path("complete.jpg");
    let mut bytes = files::truncated_jpeg_of(1);
    std::fs::write(&jpeg, &bytes).unwrap();
    for (photo, note) in [(&large, Some("5000x3000 scaled down to 4096x2458")), (&jpeg, None)] {
        let case = cases::case(
            "photo",
            &[&"segment", photo, &"--model", &model, &"--out", &scratch.path("out"), &"--cpu"],
            &[],
        );
        let run = run_capped(&case.args);
        assert_eq!(run.end, End::Exit(0), "{}", run.stderr);
        if let Some(note) = note {
            assert!(run.stderr.contains(note), "{}", run.stderr);
        }
        // A 4096×2458 output: the readout's maps, overlay and panoptic PNG at that size.
        assert!(run.peak_kb < 1 << 20, "{} KB", run.peak_kb);
    }
    // Whatever follows the end-of-image marker (camera trailers) does not matter.
    bytes.extend_from_slice(b"trailing bytes");
    assert!(pix2seqd::photo::jpeg_has_end(&bytes));
    assert!(!pix2seqd::photo::jpeg_has_end(&files::truncated_jpeg()));
}

/// No real photo of the shared data is taken for a truncated one.
#[test]
fn the_shared_jpegs_decode() {
    let root = pix2seqd::data::data_root();
    let dirs = [root.join("coco-panoptic-sample/images"), root.join("coco128-seg/images")];
    let mut checked = 0;
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        for entry in std::fs::read_dir(dir).unwrap().take(40) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "jpg") {
                pix2seqd::photo::read_photo(&path).unwrap_or_else(|e| panic!("{e}"));
                checked += 1;
            }
        }
    }
    eprintln!("{checked} JPEGs decoded");
}

/// Dataset images (`data::read_rgb`) and photos (`photo::read_photo`) go through one checked
/// decoder (`photo::decode_checked`): the same size limits and the same pixels. Only photos refuse
/// a JPEG cut short; dataset readers decode it as they always have.
#[test]
fn dataset_images_and_photos_share_the_checked_decoder() {
    use pix2seqd::{data::read_rgb, photo::read_photo};
    let scratch = Scratch::new("bad-input-decoder");
    let big = scratch.path("big.png");
    std::fs::write(&big, files::huge_png_header(16000, 16000)).unwrap();
    for message in [read_rgb(&big).unwrap_err().to_string(), read_photo(&big).unwrap_err().to_string()] {
        assert!(message.contains("declares 16000x16000 pixels"), "{message}");
    }
    let text = scratch.path("text.jpg");
    std::fs::write(&text, "not an image").unwrap();
    assert!(read_rgb(&text).is_err() && read_photo(&text).is_err());
    let jpeg = scratch.path("complete.jpg");
    std::fs::write(&jpeg, files::truncated_jpeg_of(1)).unwrap();
    let (rgb, photo) = (read_rgb(&jpeg).unwrap(), read_photo(&jpeg).unwrap());
    assert_eq!((rgb.width, rgb.height), (photo.width, photo.height));
    assert!(rgb.rgb.chunks_exact(3).zip(photo.rgba.chunks_exact(4)).all(|(a, b)| a == &b[..3]));
    let cut = scratch.path("cut.jpg");
    std::fs::write(&cut, files::truncated_jpeg()).unwrap();
    assert!(read_rgb(&cut).is_ok());
    let message = read_photo(&cut).unwrap_err().to_string();
    assert!(message.contains("truncated"), "{message}");
}
