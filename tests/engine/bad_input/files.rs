//! Generators of hostile inputs, written to a scratch folder at test time (nothing large is
//! committed): model cards and safetensors files derived from the tiny fixture, PNGs whose header
//! claims a huge image, truncated JPEGs, FIFOs and links to devices.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The valid model every model case starts from (fp32, 48×80 input).
pub const FIXTURE: &str = "tests/fixtures/tiny-efficientnet/model";

/// A scratch folder removed when the suite ends.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("pix2seqd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn fixture_card() -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURE}.json")).unwrap()).unwrap()
}

/// A safetensors file held as its JSON header and its data bytes.
#[derive(Clone)]
pub struct SafeTensors {
    pub header: serde_json::Map<String, Value>,
    pub data: Vec<u8>,
}

impl SafeTensors {
    pub fn fixture() -> SafeTensors {
        let bytes = std::fs::read(format!("{FIXTURE}.safetensors")).unwrap();
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
        SafeTensors { header: header.as_object().unwrap().clone(), data: bytes[8 + len..].to_vec() }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).unwrap();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.data);
        out
    }

    /// Tensor names in data order.
    pub fn names_by_offset(&self) -> Vec<String> {
        let mut names: Vec<(u64, String)> = self
            .header
            .iter()
            .filter(|(k, _)| *k != "__metadata__")
            .map(|(k, v)| (v["data_offsets"][0].as_u64().unwrap(), k.clone()))
            .collect();
        names.sort();
        names.into_iter().map(|(_, k)| k).collect()
    }

    pub fn range(&self, name: &str) -> (usize, usize) {
        let o = &self.header[name]["data_offsets"];
        (o[0].as_u64().unwrap() as usize, o[1].as_u64().unwrap() as usize)
    }

    /// Overwrites element `index` of an F32 tensor.
    pub fn set_f32(&mut self, name: &str, index: usize, value: f32) {
        let (start, _) = self.range(name);
        let at = start + 4 * index;
        self.data[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// The same tensors stored as F16 (labelled `label`, metadata dtype `meta`).
    pub fn to_f16(&self, label: &str, meta: &str) -> SafeTensors {
        let mut out = SafeTensors { header: serde_json::Map::new(), data: Vec::new() };
        for name in self.names_by_offset() {
            let (start, end) = self.range(&name);
            let begin = out.data.len();
            for b in self.data[start..end].chunks_exact(4) {
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                out.data.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
            }
            let shape = self.header[&name]["shape"].clone();
            out.header.insert(
                name,
                json!({"dtype": label, "shape": shape, "data_offsets": [begin, out.data.len()]}),
            );
        }
        let mut metadata = self.header["__metadata__"].clone();
        metadata["dtype"] = json!(meta);
        out.header.insert("__metadata__".into(), metadata);
        out
    }
}

/// Writes `STEM.json` + `STEM.safetensors` and returns the stem.
pub fn write_model(dir: &Path, name: &str, card: &Value, weights: &[u8]) -> PathBuf {
    let stem = dir.join(name);
    std::fs::write(stem.with_extension("json"), serde_json::to_vec_pretty(card).unwrap()).unwrap();
    std::fs::write(stem.with_extension("safetensors"), weights).unwrap();
    stem
}

/// A small valid photo for the model cases (64×48 PNG).
pub fn write_photo(path: &Path) {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 90]));
    img.save(path).unwrap();
}

/// A JPEG of noise, cut to half its length (no end-of-image marker, half the scan missing).
pub fn truncated_jpeg() -> Vec<u8> {
    truncated_jpeg_of(2)
}

/// A JPEG of noise, cut to `1 / divisor` of its length (1: complete).
pub fn truncated_jpeg_of(divisor: usize) -> Vec<u8> {
    let mut state = 7u32;
    let img = image::RgbImage::from_fn(256, 192, |_, _| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let [a, b, c, _] = state.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&img).unwrap();
    bytes.truncate(bytes.len() / divisor);
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Deflate bits, least significant first; Huffman codes are written most significant first.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn bits(&mut self, value: u32, count: u32) {
        self.acc |= (value as u64) << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn code(&mut self, code: u32, len: u32) {
        self.bits(code.reverse_bits() >> (32 - len), len);
    }
}

/// A zlib stream of `len` zero bytes in one fixed-Huffman block (a literal 0, then copies of
/// 258 bytes at distance 1): about 13 bits per 258 bytes.
fn zlib_zeros(len: u64) -> Vec<u8> {
    let mut w = BitWriter { out: vec![0x78, 0x01], acc: 0, n: 0 };
    w.bits(1, 1); // last block
    w.bits(1, 2); // fixed Huffman
    let literal_zero = |w: &mut BitWriter| w.code(0x30, 8);
    literal_zero(&mut w);
    let mut left = len - 1;
    while left >= 258 {
        w.code(0xC5, 8); // length symbol 285: 258 bytes
        w.code(0, 5); // distance symbol 0: distance 1
        left -= 258;
    }
    for _ in 0..left {
        literal_zero(&mut w);
    }
    w.code(0, 7); // end of block
    if w.n > 0 {
        w.out.push(w.acc as u8); // the last partial byte
    }
    let adler = (((len % 65521) as u32) << 16) | 1;
    w.out.extend_from_slice(&adler.to_be_bytes());
    w.out
}

/// A valid RGB PNG of `width × height` black pixels whose data compresses to a few hundred KB
/// (16000² is ~250 KB on disk and 768 MB decoded).
pub fn huge_png(width: u32, height: u32) -> Vec<u8> {
    let raw = height as u64 * (1 + 3 * width as u64); // a filter byte (0) per row, then pixels
    png_with_data(width, height, &zlib_zeros(raw))
}

/// A PNG whose header declares `width × height` but whose data holds one row of zeros.
pub fn huge_png_header(width: u32, height: u32) -> Vec<u8> {
    png_with_data(width, height, &zlib_zeros(1 + 3 * width as u64))
}

fn png_with_data(width: u32, height: u32, zlib: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", zlib);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A named pipe nobody writes to (reading it blocks forever).
#[cfg(unix)]
pub fn fifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}
