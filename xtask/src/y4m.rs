//! `cargo xtask y4m`: a DAVIS sequence (`DIR/images/*.jpg`) → a YUV4MPEG2 clip for Chromium's fake
//! camera (`--use-file-for-fake-video-capture`). Chromium's rules (docs/toolchain.md): even width
//! and height, an `F` frame rate in the header, 4:2:0, BT.601 limited range.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::RgbImage;

pub struct Options {
    pub sequence: PathBuf,
    pub out: PathBuf,
    /// At most this many frames (all when `None`).
    pub frames: Option<usize>,
    /// Output width (even); the height keeps the aspect ratio, rounded to even.
    pub width: u32,
}

#[derive(Debug)]
pub struct Summary {
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// The frames of a sequence, in name order.
pub fn frame_paths(sequence: &Path) -> Result<Vec<PathBuf>, String> {
    let dir = sequence.join("images");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no .jpg frames in {}", dir.display()));
    }
    Ok(paths)
}

/// The output height for a source size and an output width: aspect kept, rounded to the nearest
/// even number, at least 2.
pub fn even_height(src_w: u32, src_h: u32, width: u32) -> u32 {
    let h = src_h as f64 * width as f64 / src_w as f64;
    ((h / 2.0).round() as u32 * 2).max(2)
}

pub fn header(width: u32, height: u32) -> String {
    format!("YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n")
}

fn clamp_u8(x: f32) -> u8 {
    x.round().clamp(0.0, 255.0) as u8
}

/// BT.601 limited-range luma of an 8-bit RGB colour (16..235).
pub fn luma(r: f32, g: f32, b: f32) -> u8 {
    clamp_u8(16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0)
}

/// BT.601 limited-range chroma (Cb, Cr) of an 8-bit RGB colour (16..240).
pub fn chroma(r: f32, g: f32, b: f32) -> (u8, u8) {
    let cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    (clamp_u8(cb), clamp_u8(cr))
}

/// One frame as planar 4:2:0 (Y plane, then U, then V). Chroma is taken from the mean RGB of each
/// 2×2 block (centred siting, as `C420jpeg` says). Width and height must be even.
pub fn rgb_to_i420(img: &RgbImage) -> Vec<u8> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    assert!(w % 2 == 0 && h % 2 == 0, "y4m frames need even sizes");
    let (cw, ch) = (w / 2, h / 2);
    let mut out = vec![0u8; w * h + 2 * cw * ch];
    let (y_plane, uv) = out.split_at_mut(w * h);
    let (u_plane, v_plane) = uv.split_at_mut(cw * ch);
    let px = img.as_raw();
    for (i, p) in px.chunks_exact(3).enumerate() {
        y_plane[i] = luma(p[0] as f32, p[1] as f32, p[2] as f32);
    }
    for cy in 0..ch {
        for cx in 0..cw {
            let mut sum = [0f32; 3];
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let o = ((2 * cy + dy) * w + 2 * cx + dx) * 3;
                for c in 0..3 {
                    sum[c] += px[o + c] as f32;
                }
            }
            let (u, v) = chroma(sum[0] / 4.0, sum[1] / 4.0, sum[2] / 4.0);
            u_plane[cy * cw + cx] = u;
            v_plane[cy * cw + cx] = v;
        }
    }
    out
}

pub fn write_clip(opts: &Options) -> Result<Summary, String> {
    if opts.width < 2 || opts.width % 2 != 0 {
        return Err(format!("--width must be an even number of at least 2 (got {})", opts.width));
    }
    let mut paths = frame_paths(&opts.sequence)?;
    if let Some(n) = opts.frames {
        if n == 0 {
            return Err("--frames must be at least 1".into());
        }
        if n > paths.len() {
            eprintln!(
                "note: {} has only {} frames; writing all of them",
                opts.sequence.display(),
                paths.len()
            );
        }
        paths.truncate(n);
    }
    if let Some(parent) = opts.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let file = File::create(&opts.out).map_err(|e| format!("cannot create {}: {e}", opts.out.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let write_err = |e: std::io::Error| format!("cannot write {}: {e}", opts.out.display());
    let mut size = None;
    for path in &paths {
        let img = image::open(path).map_err(|e| format!("cannot decode {}: {e}", path.display()))?.to_rgb8();
        let (w, h) = (opts.width, even_height(img.width(), img.height(), opts.width));
        match size {
            None => {
                out.write_all(header(w, h).as_bytes()).map_err(write_err)?;
                size = Some((w, h));
            }
            Some(s) if s != (w, h) => {
                return Err(format!(
                    "{} has a different size from the first frame ({}x{})",
                    path.display(),
                    img.width(),
                    img.height()
                ));
            }
            Some(_) => {}
        }
        let img = if (img.width(), img.height()) == (w, h) {
            img
        } else {
            image::imageops::resize(&img, w, h, FilterType::Triangle)
        };
        out.write_all(b"FRAME\n").map_err(write_err)?;
        out.write_all(&rgb_to_i420(&img)).map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    let (width, height) = size.unwrap_or((0, 0));
    let bytes = std::fs::metadata(&opts.out).map(|m| m.len()).unwrap_or(0);
    Ok(Summary { frames: paths.len(), width, height, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yuv(rgb: [u8; 3]) -> (u8, u8, u8) {
        let [r, g, b] = rgb.map(|c| c as f32);
        let (u, v) = chroma(r, g, b);
        (luma(r, g, b), u, v)
    }

    #[test]
    fn bt601_limited_range_values() {
        // The textbook BT.601 studio-swing values.
        assert_eq!(yuv([0, 0, 0]), (16, 128, 128));
        assert_eq!(yuv([255, 255, 255]), (235, 128, 128));
        assert_eq!(yuv([255, 0, 0]), (81, 90, 240));
        assert_eq!(yuv([0, 255, 0]), (145, 54, 34));
        assert_eq!(yuv([0, 0, 255]), (41, 240, 110));
        assert_eq!(yuv([128, 128, 128]), (126, 128, 128));
    }

    #[test]
    fn planes_are_420() {
        // 4×2 image: left 2×2 block red, right 2×2 block blue.
        let mut img = RgbImage::new(4, 2);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = if x < 2 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) };
        }
        let f = rgb_to_i420(&img);
        assert_eq!(f.len(), 4 * 2 + 2 * 2);
        assert_eq!(&f[..8], &[81, 81, 41, 41, 81, 81, 41, 41]);
        assert_eq!(&f[8..10], &[90, 240]); // U
        assert_eq!(&f[10..12], &[240, 110]); // V
    }

    #[test]
    fn chroma_is_the_mean_of_each_block() {
        // A block of two black and two white pixels: mid grey chroma, Y untouched.
        let mut img = RgbImage::new(2, 2);
        img.put_pixel(0, 0, image::Rgb([255, 255, 255]));
        img.put_pixel(1, 1, image::Rgb([255, 255, 255]));
        let f = rgb_to_i420(&img);
        assert_eq!(f, vec![235, 16, 16, 235, 128, 128]);
    }

    #[test]
    fn header_and_even_sizes() {
        assert_eq!(header(320, 180), "YUV4MPEG2 W320 H180 F30:1 Ip A1:1 C420jpeg\n");
        assert_eq!(even_height(427, 240, 320), 180); // 179.86
        assert_eq!(even_height(427, 240, 426), 240); // 239.4 → 240
        assert_eq!(even_height(640, 480, 2), 2);
        for w in (2..700).step_by(2) {
            assert_eq!(even_height(427, 240, w) % 2, 0);
        }
    }

    #[test]
    fn writes_a_clip_from_jpegs() {
        let dir = std::env::temp_dir().join(format!("xtask-y4m-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("images")).unwrap();
        for i in 0..3u8 {
            let img = RgbImage::from_pixel(427, 240, image::Rgb([255, 255, 255]));
            img.save(dir.join(format!("images/{i:05}.jpg"))).unwrap();
        }
        let out = dir.join("clip.y4m");
        let opts = Options { sequence: dir.clone(), out: out.clone(), frames: Some(2), width: 320 };
        let s = write_clip(&opts).unwrap();
        assert_eq!((s.frames, s.width, s.height), (2, 320, 180));
        let bytes = std::fs::read(&out).unwrap();
        let head = header(320, 180);
        let frame = 320 * 180 * 3 / 2;
        assert_eq!(bytes.len(), head.len() + 2 * (6 + frame));
        assert!(bytes.starts_with(head.as_bytes()));
        assert_eq!(&bytes[head.len()..head.len() + 6], b"FRAME\n");
        // White JPEG → Y near 235, chroma near 128.
        let y0 = bytes[head.len() + 6];
        assert!((233..=235).contains(&y0), "{y0}");
        let odd = Options { sequence: dir.clone(), out: out.clone(), frames: None, width: 321 };
        assert!(write_clip(&odd).unwrap_err().contains("even"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
