//! Photos from files (JPEG, PNG) as RGBA8, decoded without trusting them: the file is read only if
//! it is a regular file within [`MAX_IMAGE_FILE_BYTES`], the size its header declares is checked
//! before a pixel is decoded ([`MAX_DECODED_SIDE`], [`MAX_DECODED_PIXELS`]), and a JPEG whose data
//! stops before its end-of-image marker is refused, as browsers refuse it, instead of being
//! segmented with its missing half filled in.

use std::io::Cursor;
use std::path::Path;

use image::error::{ImageFormatHint, UnsupportedError, UnsupportedErrorKind};
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

/// Why [`decode_checked`] refused an image.
#[derive(Debug)]
pub enum DecodeError {
    /// Neither a JPEG nor a PNG (the `image` crate's error saying so).
    Format(image::ImageError),
    /// The header declares a size beyond [`MAX_DECODED_SIDE`] or [`MAX_DECODED_PIXELS`].
    TooLarge(String),
    /// The header or the data cannot be decoded, or decoding would exceed the limits.
    Image(image::ImageError),
}

/// The one decoder of image files (photos and dataset images): a JPEG or PNG whose header's
/// declared size is checked ([`crate::limits::check_declared_size`]) before a pixel is decoded,
/// then decoded with the `image` crate's limits set to the same bounds.
pub fn decode_checked(bytes: &[u8]) -> Result<image::DynamicImage, DecodeError> {
    let reader = || {
        // Guessing from an in-memory buffer does no I/O that can fail; kept as an error anyway.
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| DecodeError::Image(e.into()))
    };
    match reader()?.format() {
        Some(ImageFormat::Jpeg | ImageFormat::Png) => {}
        other => {
            let hint = other.map_or(ImageFormatHint::Unknown, ImageFormatHint::Exact);
            let unsupported =
                UnsupportedError::from_format_and_kind(hint.clone(), UnsupportedErrorKind::Format(hint));
            return Err(DecodeError::Format(image::ImageError::Unsupported(unsupported)));
        }
    }
    let (width, height) = reader()?.into_dimensions().map_err(DecodeError::Image)?;
    crate::limits::check_declared_size(width, height).map_err(DecodeError::TooLarge)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    // Up to 8 bytes a pixel: a 16-bit RGBA PNG at the pixel limit.
    limits.max_alloc = Some(MAX_DECODED_PIXELS * 8);
    let mut decoder = reader()?;
    decoder.limits(limits);
    decoder.decode().map_err(DecodeError::Image)
}

/// Decodes a JPEG or PNG photo ([`decode_checked`]), refusing a JPEG cut short as browsers do
/// (`name` is for messages).
pub fn decode_photo(bytes: &[u8], name: &str) -> Result<Photo, Error> {
    if image::guess_format(bytes).ok() == Some(ImageFormat::Jpeg) && !jpeg_has_end(bytes) {
        return Err(image_error(
            name,
            "is truncated: the JPEG data stops before its end-of-image marker".into(),
        ));
    }
    let detail = match decode_checked(bytes) {
        Ok(image) => {
            let rgba = image.into_rgba8();
            let (width, height) = (rgba.width() as usize, rgba.height() as usize);
            return Ok(Photo { width, height, rgba: rgba.into_raw() });
        }
        Err(DecodeError::Format(_)) => "is not a readable image (JPEG or PNG)".to_string(),
        Err(DecodeError::TooLarge(detail)) => detail,
        Err(DecodeError::Image(e)) => format!("is not a readable image ({e})"),
    };
    Err(image_error(name, detail))
}

/// `photo` scaled down (area-weighted) so that neither side exceeds `max_side`; unchanged when it
/// already fits, and when its `rgba` does not hold exactly `width × height` pixels (a side beyond
/// `u32` included: no image is that large).
pub fn fit_within(photo: Photo, max_side: usize) -> Photo {
    let longest = photo.width.max(photo.height);
    if longest <= max_side || max_side == 0 {
        return photo;
    }
    let holds_pixels =
        crate::limits::product(&[photo.width, photo.height, 4]) == Some(photo.rgba.len() as u64);
    let source = match (u32::try_from(photo.width), u32::try_from(photo.height)) {
        (Ok(width), Ok(height)) if holds_pixels => {
            image::ImageBuffer::<image::Rgba<u8>, &[u8]>::from_raw(width, height, &photo.rgba)
        }
        _ => None,
    };
    let Some(source) = source else { return photo };
    // longest ≤ u32::MAX here, so the product fits in u64 and each side scales to at most max_side.
    let scale = |side: usize| ((side as u64 * max_side as u64).div_ceil(longest as u64) as u32).max(1);
    let (w, h) = (scale(photo.width), scale(photo.height));
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

#[cfg(test)]
mod tests {
    use super::{fit_within, Photo};

    fn photo(width: usize, height: usize, len: usize) -> Photo {
        Photo { width, height, rgba: vec![7; len] }
    }

    #[test]
    fn fit_within_scales_the_longest_side_down() {
        let small = fit_within(photo(100, 40, 100 * 40 * 4), 10);
        assert_eq!((small.width, small.height, small.rgba.len()), (10, 4, 10 * 4 * 4));
        assert!(small.rgba.iter().all(|&v| v == 7));
        assert_eq!(fit_within(photo(10, 4, 160), 10), photo(10, 4, 160));
        assert_eq!(fit_within(photo(10, 4, 160), 0), photo(10, 4, 160));
    }

    #[test]
    fn fit_within_leaves_inconsistent_photos_unchanged() {
        for p in [
            photo(100, 40, 10),
            photo(100, 40, 100 * 40 * 4 + 1),
            photo(usize::MAX, 2, 0),
            photo(1 << 33, 1, 0),
        ] {
            assert_eq!(fit_within(p.clone(), 10), p);
        }
    }
}
