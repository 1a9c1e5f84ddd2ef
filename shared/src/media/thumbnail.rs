//! Thumbnails of PNG, JPEG, GIF (first frame) and WebP images, decoded within the same
//! limits as the image generators (`generators::imaging`): the header's size is checked
//! against the pixel limit before any pixel is decoded, and the decoder's allocations are
//! capped to what that size needs.
//!
//! Output is JPEG (quality 82) with transparency flattened onto white: `image`'s WebP encoder
//! is lossless only, which makes photographic thumbnails several times larger than a JPEG.

use std::io::Cursor;

use image::{
    codecs::jpeg::JpegEncoder, imageops::FilterType, DynamicImage, ImageDecoder, ImageError,
    ImageReader, Rgb, RgbImage,
};

use super::MediaError;
use crate::generators::imaging;

/// The default longest side of a thumbnail, in pixels.
pub const THUMBNAIL_MAX_SIDE: u32 = 512;
const JPEG_QUALITY: u8 = 82;

/// Limits on the images [`thumbnail`] will decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Width × height above which an image is refused from its header (the worker passes its
    /// `worker.max_image_pixels`).
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    /// The default of `worker.max_image_pixels`.
    fn default() -> Self {
        Self {
            max_pixels: 40_000_000,
        }
    }
}

/// An encoded thumbnail and its size.
#[derive(Clone, Debug)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub extension: &'static str,
    pub width: u32,
    pub height: u32,
}

fn unreadable(e: impl Into<ImageError>) -> MediaError {
    MediaError::Unreadable(Some(e.into()))
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, MediaError> {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(unreadable)
}

/// A JPEG thumbnail of the image in `bytes`, its longer side at most `max_side` (never
/// enlarged), upright per the EXIF orientation. CPU-bound: call it from a blocking thread.
pub fn thumbnail(
    bytes: &[u8],
    max_side: u32,
    limits: &DecodeLimits,
) -> Result<Thumbnail, MediaError> {
    let (w, h) = reader(bytes)?.into_dimensions().map_err(unreadable)?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(MediaError::ImageTooLarge {
            width: w,
            height: h,
            pixels,
            max_pixels: limits.max_pixels,
        });
    }
    let mut reader = reader(bytes)?;
    reader.limits(imaging::decoder_limits(w, h));
    let mut decoder = reader.into_decoder().map_err(unreadable)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    img.apply_orientation(orientation);

    let flat = flatten_onto_white(img);
    let (tw, th) = fit(flat.width(), flat.height(), max_side.max(1));
    let small = if (tw, th) == flat.dimensions() {
        flat
    } else {
        // Triangle averages the covered source area at any ratio (no aliasing on big
        // reductions); its cost is bounded by the pixel limit.
        image::imageops::resize(&flat, tw, th, FilterType::Triangle)
    };
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(&small)
        .map_err(unreadable)?;
    Ok(Thumbnail {
        bytes: out,
        content_type: "image/jpeg",
        extension: "jpg",
        width: tw,
        height: th,
    })
}

/// The size within `max_side`×`max_side` keeping the aspect ratio, never larger than now.
fn fit(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= max_side {
        return (w, h);
    }
    let scale = |side: u32| {
        let scaled =
            (u64::from(side) * u64::from(max_side) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(scaled).unwrap_or(max_side).clamp(1, max_side)
    };
    (scale(w), scale(h))
}

/// RGB with any transparency composited onto white (JPEG has no alpha; black, the usual
/// colour of transparent pixels, would show instead). Resizing after flattening also keeps
/// transparent pixels' colour from bleeding into the edges.
fn flatten_onto_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u32::from(p[3]);
        let over_white = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        Rgb([over_white(p[0]), over_white(p[1]), over_white(p[2])])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{probe, tests_support::*};

    fn decode(t: &Thumbnail) -> RgbImage {
        image::load_from_memory(&t.bytes).unwrap().into_rgb8()
    }

    #[test]
    fn landscape_and_portrait_images_fit_the_longer_side() {
        let limits = DecodeLimits::default();
        let t = thumbnail(&png(1024, 600), THUMBNAIL_MAX_SIDE, &limits).unwrap();
        assert_eq!((t.width, t.height), (512, 300));
        assert_eq!((t.content_type, t.extension), ("image/jpeg", "jpg"));
        assert_eq!(decode(&t).dimensions(), (512, 300));
        let info = probe("image/jpeg", &t.bytes);
        assert_eq!((info.width, info.height), (Some(512), Some(300)));

        let t = thumbnail(&jpeg(300, 900), 128, &limits).unwrap();
        assert_eq!((t.width, t.height), (43, 128));
        let t = thumbnail(&webp(800, 800), 100, &limits).unwrap();
        assert_eq!((t.width, t.height), (100, 100));
        let t = thumbnail(&gif(2000, 10), 512, &limits).unwrap();
        assert_eq!((t.width, t.height), (512, 3));
    }

    #[test]
    fn small_images_are_not_enlarged() {
        let t = thumbnail(&png(40, 30), THUMBNAIL_MAX_SIDE, &DecodeLimits::default()).unwrap();
        assert_eq!((t.width, t.height), (40, 30));
        assert_eq!(decode(&t).dimensions(), (40, 30));
    }

    #[test]
    fn transparency_is_flattened_onto_white() {
        let limits = DecodeLimits::default();
        let clear = thumbnail(&png_filled(64, 64, [0, 0, 0, 0]), 32, &limits).unwrap();
        assert!(decode(&clear)
            .pixels()
            .all(|p| p.0.iter().all(|&c| c >= 250)));
        let half = thumbnail(&png_filled(64, 64, [0, 0, 0, 128]), 32, &limits).unwrap();
        assert!(decode(&half)
            .pixels()
            .all(|p| p.0.iter().all(|&c| (120..=135).contains(&c))));
    }

    #[test]
    fn images_over_the_pixel_limit_are_refused_from_the_header() {
        // The header claims 100 000 × 100 000 and there is no pixel data at all: only the
        // header check can produce this error; a decode attempt would fail differently.
        let bytes = png_header_only(100_000, 100_000);
        let err = thumbnail(&bytes, 512, &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                MediaError::ImageTooLarge {
                    width: 100_000,
                    height: 100_000,
                    ..
                }
            ),
            "{err}"
        );
        let tight = DecodeLimits {
            max_pixels: 64 * 64 - 1,
        };
        assert!(matches!(
            thumbnail(&png(64, 64), 512, &tight),
            Err(MediaError::ImageTooLarge { .. })
        ));
        assert!(thumbnail(
            &png(64, 64),
            512,
            &DecodeLimits {
                max_pixels: 64 * 64
            }
        )
        .is_ok());
    }

    #[test]
    fn non_images_are_unreadable() {
        for bad in [&b"not an image"[..], b"", &png(10, 10)[..40]] {
            let err = thumbnail(bad, 512, &DecodeLimits::default()).unwrap_err();
            assert!(matches!(err, MediaError::Unreadable(_)), "{err}");
            assert_eq!(err.to_string(), "The image could not be read");
        }
    }
}
