//! Photos from files (JPEG, PNG) as RGBA8, decoded without trusting them: the file is read only if
//! it is a regular file within [`MAX_IMAGE_FILE_BYTES`], the size its header declares is checked
//! before a pixel is decoded ([`MAX_DECODED_SIDE`], [`MAX_DECODED_PIXELS`]), and a JPEG whose data
//! stops before its end-of-image marker is refused, as browsers refuse it, instead of being
//! segmented with its missing half filled in.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, ImageReader, Limits};

use crate::limits::{read_regular_file, MAX_DECODED_PIXELS, MAX_DECODED_SIDE, MAX_IMAGE_FILE_BYTES};
use crate::Error;

/// A decoded photo, RGBA8 row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Photo {
    pub width: usize,
    pub height: usize,
    pub rgba: Vec<u8>,
}

fn image_error(name: &str, detail: String) -> Error {
    Error::Image { name: name.to_string(), detail }
}

/// Reads and decodes the photo at `path` (see [`decode_photo`]).
pub fn read_photo(path: &Path) -> Result<Photo, Error> {
    let bytes = read_regular_file(path, MAX_IMAGE_FILE_BYTES)?;
    decode_photo(&bytes, &path.display().to_string())
}

/// Decodes a JPEG or PNG (`name` is for messages).
pub fn decode_photo(bytes: &[u8], name: &str) -> Result<Photo, Error> {
    let reader = |bytes| {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| image_error(name, format!("cannot be read ({e})")))
    };
    let format = reader(bytes)?.format();
    match format {
        Some(ImageFormat::Jpeg) if !jpeg_has_end(bytes) => {
            return Err(image_error(
                name,
                "is truncated: the JPEG data stops before its end-of-image marker".into(),
            ))
        }
        Some(ImageFormat::Jpeg | ImageFormat::Png) => {}
        _ => return Err(image_error(name, "is not a readable image (JPEG or PNG)".into())),
    }
    let (width, height) = reader(bytes)?
        .into_dimensions()
        .map_err(|e| image_error(name, format!("is not a readable image ({e})")))?;
    crate::limits::check_declared_size(width, height).map_err(|detail| image_error(name, detail))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    // Up to 8 bytes a pixel: a 16-bit RGBA PNG at the pixel limit.
    limits.max_alloc = Some(MAX_DECODED_PIXELS * 8);
    let mut decoder = reader(bytes)?;
    decoder.limits(limits);
    let rgba = decoder
        .decode()
        .map_err(|e| image_error(name, format!("is not a readable image ({e})")))?
        .into_rgba8();
    Ok(Photo { width: rgba.width() as usize, height: rgba.height() as usize, rgba: rgba.into_raw() })
}

/// `photo` scaled down (area-weighted) so that neither side exceeds `max_side`; unchanged when it
/// already fits.
pub fn fit_within(photo: Photo, max_side: usize) -> Photo {
    let longest = photo.width.max(photo.height);
    let consistent = crate::limits::product(&[photo.width, photo.height, 4]) == Some(photo.rgba.len() as u64);
    if longest <= max_side || max_side == 0 || !consistent || longest > u32::MAX as usize {
        return photo;
    }
    let scale = |side: usize| ((side as u64 * max_side as u64).div_ceil(longest as u64) as u32).max(1);
    let (w, h) = (scale(photo.width), scale(photo.height));
    let (width, height) = (photo.width as u32, photo.height as u32);
    let Some(source) = image::RgbaImage::from_raw(width, height, photo.rgba) else {
        return Photo { width: 0, height: 0, rgba: Vec::new() }; // not reached: checked above
    };
    let scaled = image::imageops::resize(&source, w, h, image::imageops::FilterType::Triangle);
    Photo { width: w as usize, height: h as usize, rgba: scaled.into_raw() }
}

/// Whether a JPEG's first scan is followed by an end-of-image marker (FF D9). Inside entropy-coded
/// data a 0xFF byte is always followed by 0x00 or a restart marker, so an FF D9 after the scan
/// header is the real end; a file cut short has none.
pub fn jpeg_has_end(bytes: &[u8]) -> bool {
    let mut pos = 2; // after SOI
    while pos + 1 < bytes.len() {
        if bytes[pos] != 0xFF {
            return false;
        }
        let marker = bytes[pos + 1];
        match marker {
            0xFF => pos += 1, // fill byte
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => pos += 2, // markers without a length
            _ => {
                let Some(len) =
                    bytes.get(pos + 2..pos + 4).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
                else {
                    return false;
                };
                let next = pos + 2 + len;
                if marker == 0xDA {
                    let scan = bytes.get(next..).unwrap_or(&[]);
                    return scan.windows(2).any(|w| w == [0xFF, 0xD9]);
                }
                pos = next;
            }
        }
    }
    false
}
