//! The `pix2seqd` binary on real images: `segment` writes an overlay and a COCO panoptic PNG +
//! JSON that the project's own reader accepts and that agree with each other; `eval pq` scores the
//! real COCO sample; bad input ends with a non-zero status and one line naming the problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pix2seqd::panoptic::{load_panoptic_json, read_panoptic_png};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pix2seqd"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn sample_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/coco-panoptic-sample");
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!("SKIPPING: {} is missing (see ../shared/data/README.md)", dir.display());
        None
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pix2seqd-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn stderr_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!out.status.success(), "expected a failure, got success; stderr: {text}");
    let last = text.lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("pix2seqd: "), "error line should start with 'pix2seqd: ': {text}");
    last
}

#[test]
fn segment_writes_overlay_and_a_valid_coco_panoptic_pair() {
    let Some(sample) = sample_dir() else { return };
    let image = sample.join("images/000000142238.jpg");
    let out_dir = temp_dir("segment");
    let out = bin().args(["segment", image.to_str().unwrap(), "--out", out_dir.to_str().unwrap(), "--json"]).output().unwrap();
    assert!(out.status.success(), "segment failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert!(report["note"].as_str().unwrap_or("").contains("untrained"), "the untrained fixture model must be named: {report}");

    let overlay = image::open(out_dir.join("000000142238.png")).expect("overlay PNG");
    assert_eq!((overlay.width(), overlay.height()), (640, 427));

    let json = load_panoptic_json(&out_dir.join("panoptic.json")).expect("panoptic.json reads back");
    assert_eq!(json.annotations.len(), 1);
    let ann = &json.annotations[0];
    let (h, w, ids) = read_panoptic_png(&out_dir.join(&ann.file_name)).expect("panoptic PNG reads back");
    assert_eq!((h, w), (427, 640));
    // Every segment of the JSON is in the PNG with its area, and nothing else is.
    let mut listed: Vec<u32> = ann.segments_info.iter().map(|s| s.id).collect();
    listed.sort();
    let mut present: Vec<u32> = ids.iter().copied().filter(|&i| i != 0).collect();
    present.sort();
    present.dedup();
    assert_eq!(listed, present, "segments_info ids vs PNG ids");
    for s in &ann.segments_info {
        let area = ids.iter().filter(|&&i| i == s.id).count() as u64;
        assert_eq!(s.area, Some(area), "segment {} area", s.id);
        assert!(json.categories.iter().any(|c| c.id == s.category_id), "segment {} has an unknown category", s.id);
    }
    assert_eq!(report["images"][0]["segments"].as_array().map(|a| a.len()), Some(ann.segments_info.len()));

    // The written prediction scores PQ 1 against itself through `eval pq`.
    let pq = bin()
        .args(["eval", "pq", "--json", "--gt-json"])
        .arg(out_dir.join("panoptic.json"))
        .arg("--gt-dir")
        .arg(&out_dir)
        .arg("--pred-json")
        .arg(out_dir.join("panoptic.json"))
        .arg("--pred-dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(pq.status.success(), "eval pq failed: {}", String::from_utf8_lossy(&pq.stderr));
    let pq: serde_json::Value = serde_json::from_slice(&pq.stdout).unwrap();
    assert_eq!(pq["all"]["pq"].as_f64(), Some(1.0), "{pq}");
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn eval_pq_scores_the_coco_sample_against_itself() {
    let Some(sample) = sample_dir() else { return };
    let json = sample.join("panoptic.json");
    let pngs = sample.join("panoptic");
    let out = bin()
        .args(["eval", "pq", "--json", "--gt-json"])
        .arg(&json)
        .arg("--gt-dir")
        .arg(&pngs)
        .arg("--pred-json")
        .arg(&json)
        .arg("--pred-dir")
        .arg(&pngs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (split, n) in [("all", 8), ("things", 4), ("stuff", 4)] {
        assert_eq!(r[split]["pq"].as_f64(), Some(1.0), "{split}: {r}");
        assert_eq!(r[split]["n"].as_u64(), Some(n), "{split}: {r}");
    }
}

#[test]
fn bad_input_gives_one_clear_line_and_a_failure() {
    let out_dir = temp_dir("errors");
    let missing = bin().args(["segment", "no/such/image.jpg", "--out", out_dir.to_str().unwrap()]).output().unwrap();
    assert!(stderr_line(&missing).contains("no/such/image.jpg"));

    let not_image = bin().args(["segment", "Cargo.toml", "--out", out_dir.to_str().unwrap()]).output().unwrap();
    assert!(stderr_line(&not_image).contains("Cargo.toml"));

    let bad_model = bin().args(["segment", "Cargo.toml", "--model", "no/such/model", "--out", out_dir.to_str().unwrap()]).output().unwrap();
    assert!(stderr_line(&bad_model).contains("no/such/model"));

    // A weights file that is not safetensors: the message names the file's problem.
    let fake = out_dir.join("fake");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::copy("tests/fixtures/tiny-efficientnet/model.json", fake.with_extension("json")).unwrap();
    std::fs::write(fake.with_extension("safetensors"), b"not a model at all, just text").unwrap();
    let bad_weights =
        bin().args(["segment", "Cargo.toml", "--model"]).arg(&fake).args(["--out", out_dir.to_str().unwrap()]).output().unwrap();
    let line = stderr_line(&bad_weights);
    assert!(line.contains("weights file") && line.contains("header"), "{line}");

    let bad_pq =
        bin().args(["eval", "pq", "--gt-json", "x.json", "--gt-dir", ".", "--pred-json", "y.json", "--pred-dir", "."]).output().unwrap();
    assert!(stderr_line(&bad_pq).contains("x.json"));
    let _ = std::fs::remove_dir_all(&out_dir);
}
