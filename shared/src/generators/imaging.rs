//! Pixel work for the local image generators, safe against hostile inputs: decoding reads the
//! header first and refuses images over the pixel limit (and caps the decoder's allocations),
//! outputs are bounded, and every loop checks for cancellation per row, so a cancelled or
//! timed-out job stops burning a CPU within milliseconds even though it runs on a blocking
//! thread the runtime cannot interrupt.

use std::io::Cursor;

use image::{ImageReader, Limits, Rgb, RgbImage};
use tokio_util::sync::CancellationToken;

use super::run::GenerateError;

/// Bytes per pixel of the working images (RGB, 8 bits per channel).
pub const BYTES_PER_PIXEL: u64 = 3;

fn stopped() -> GenerateError {
    GenerateError::Cancelled
}

/// The width and height an encoded image declares, read from its header only.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), GenerateError> {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| GenerateError::Permanent(format!("The input is not a readable image: {e}")))?
        .into_dimensions()
        .map_err(|e| GenerateError::Permanent(format!("The input is not a readable image: {e}")))
}

/// Refuses images of more than `max_pixels` pixels, naming the size.
pub fn check_pixels(what: &str, w: u32, h: u32, max_pixels: u64) -> Result<(), GenerateError> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(GenerateError::Invalid(format!(
            "{what} would be {w}×{h} = {pixels} pixels; at most {max_pixels} are allowed"
        )));
    }
    Ok(())
}

/// Decoder limits for an image whose header declared `w`×`h` (already checked against the
/// pixel limit): the decoder may not produce anything larger, nor allocate more than the image
/// at up to 16 bits per channel with alpha plus 16 MiB of its own.
pub fn decoder_limits(w: u32, h: u32) -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(u64::from(w) * u64::from(h) * 8 + 16 * 1024 * 1024);
    limits
}

/// Decodes `bytes` to RGB within `max_pixels` (checked from the header before any pixel is
/// decoded) and a matching allocation cap.
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, GenerateError> {
    let (w, h) = dimensions(bytes)?;
    check_pixels("The input image", w, h, max_pixels)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| GenerateError::Permanent(format!("The input is not a readable image: {e}")))?;
    reader.limits(decoder_limits(w, h));
    let img = reader
        .decode()
        .map_err(|e| GenerateError::Permanent(format!("The input is not a readable image: {e}")))?;
    Ok(img.into_rgb8())
}

/// Applies `f` to every pixel, row by row, stopping when `cancel` is cancelled.
pub fn map_pixels(
    img: &mut RgbImage,
    cancel: &CancellationToken,
    f: impl Fn(Rgb<u8>) -> Rgb<u8>,
) -> Result<(), GenerateError> {
    for mut row in img.rows_mut() {
        if cancel.is_cancelled() {
            return Err(stopped());
        }
        for p in &mut row {
            *p = f(*p);
        }
    }
    Ok(())
}

/// One horizontal box-blur pass of radius `r` from `src` into `dst` (same size), then the
/// same vertically through the transposed view; three passes approximate a Gaussian.
fn box_pass(
    src: &RgbImage,
    dst: &mut RgbImage,
    r: u32,
    horizontal: bool,
    cancel: &CancellationToken,
) -> Result<(), GenerateError> {
    let (w, h) = src.dimensions();
    let (lines, len) = if horizontal { (h, w) } else { (w, h) };
    let at = |line: u32, i: u32| if horizontal { (i, line) } else { (line, i) };
    let window = u64::from(2 * r + 1);
    for line in 0..lines {
        if cancel.is_cancelled() {
            return Err(stopped());
        }
        let clamp = |i: i64| i.clamp(0, i64::from(len) - 1) as u32;
        let mut sum = [0u64; 3];
        for k in -(i64::from(r))..=i64::from(r) {
            let (x, y) = at(line, clamp(k));
            for (c, s) in sum.iter_mut().enumerate() {
                *s += u64::from(src.get_pixel(x, y)[c]);
            }
        }
        for i in 0..len {
            let (x, y) = at(line, i);
            dst.put_pixel(
                x,
                y,
                Rgb([
                    (sum[0] / window) as u8,
                    (sum[1] / window) as u8,
                    (sum[2] / window) as u8,
                ]),
            );
            let (ox, oy) = at(line, clamp(i64::from(i) - i64::from(r)));
            let (nx, ny) = at(line, clamp(i64::from(i) + i64::from(r) + 1));
            for (c, s) in sum.iter_mut().enumerate() {
                *s = *s + u64::from(src.get_pixel(nx, ny)[c]) - u64::from(src.get_pixel(ox, oy)[c]);
            }
        }
    }
    Ok(())
}

/// A blur of about `sigma` (three box passes each way), cancellable per row.
pub fn blur(
    img: RgbImage,
    sigma: f32,
    cancel: &CancellationToken,
) -> Result<RgbImage, GenerateError> {
    // The box radius whose three passes give roughly this standard deviation.
    let r = ((12.0 * sigma * sigma / 3.0 + 1.0).sqrt() / 2.0)
        .round()
        .max(1.0) as u32;
    let mut a = img;
    let mut b = RgbImage::new(a.width(), a.height());
    for _ in 0..3 {
        box_pass(&a, &mut b, r, true, cancel)?;
        box_pass(&b, &mut a, r, false, cancel)?;
    }
    Ok(a)
}

/// Blocks of `block` pixels filled with their average colour, cancellable per block row.
pub fn pixelate(
    mut img: RgbImage,
    block: u32,
    cancel: &CancellationToken,
) -> Result<RgbImage, GenerateError> {
    let (w, h) = img.dimensions();
    let block = block.max(1);
    for by in (0..h).step_by(block as usize) {
        if cancel.is_cancelled() {
            return Err(stopped());
        }
        for bx in (0..w).step_by(block as usize) {
            let (x1, y1) = ((bx + block).min(w), (by + block).min(h));
            let mut sum = [0u64; 3];
            for y in by..y1 {
                for x in bx..x1 {
                    for (c, s) in sum.iter_mut().enumerate() {
                        *s += u64::from(img.get_pixel(x, y)[c]);
                    }
                }
            }
            let n = u64::from((x1 - bx) * (y1 - by)).max(1);
            let avg = Rgb(sum.map(|s| (s / n) as u8));
            for y in by..y1 {
                for x in bx..x1 {
                    img.put_pixel(x, y, avg);
                }
            }
        }
    }
    Ok(img)
}

/// Resizes to `nw`×`nh`: each output pixel averages the source area it covers (downscaling)
/// or interpolates its nearest source pixels (upscaling). Cancellable per output row.
pub fn resize(
    src: &RgbImage,
    nw: u32,
    nh: u32,
    cancel: &CancellationToken,
) -> Result<RgbImage, GenerateError> {
    let (w, h) = src.dimensions();
    let (sx, sy) = (f64::from(w) / f64::from(nw), f64::from(h) / f64::from(nh));
    let mut out = RgbImage::new(nw, nh);
    for oy in 0..nh {
        if cancel.is_cancelled() {
            return Err(stopped());
        }
        for ox in 0..nw {
            let pixel = if sx > 1.0 || sy > 1.0 {
                // Area average over the covered source rectangle.
                let (x0, x1) = (
                    (f64::from(ox) * sx) as u32,
                    ((f64::from(ox + 1) * sx).ceil() as u32).min(w),
                );
                let (y0, y1) = (
                    (f64::from(oy) * sy) as u32,
                    ((f64::from(oy + 1) * sy).ceil() as u32).min(h),
                );
                let mut sum = [0u64; 3];
                for y in y0..y1.max(y0 + 1) {
                    for x in x0..x1.max(x0 + 1) {
                        let p = src.get_pixel(x.min(w - 1), y.min(h - 1));
                        for (c, s) in sum.iter_mut().enumerate() {
                            *s += u64::from(p[c]);
                        }
                    }
                }
                let n = u64::from((x1.max(x0 + 1) - x0) * (y1.max(y0 + 1) - y0)).max(1);
                Rgb(sum.map(|s| (s / n) as u8))
            } else {
                // Bilinear between the four nearest source pixels.
                let fx = ((f64::from(ox) + 0.5) * sx - 0.5).max(0.0);
                let fy = ((f64::from(oy) + 0.5) * sy - 0.5).max(0.0);
                let (x0, y0) = ((fx as u32).min(w - 1), (fy as u32).min(h - 1));
                let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
                let (tx, ty) = (fx - f64::from(x0), fy - f64::from(y0));
                let lerp = |a: u8, b: u8, t: f64| f64::from(a) * (1.0 - t) + f64::from(b) * t;
                let (p00, p10, p01, p11) = (
                    src.get_pixel(x0, y0),
                    src.get_pixel(x1, y0),
                    src.get_pixel(x0, y1),
                    src.get_pixel(x1, y1),
                );
                Rgb(std::array::from_fn(|c| {
                    let top = lerp(p00[c], p10[c], tx);
                    let bottom = lerp(p01[c], p11[c], tx);
                    (top * (1.0 - ty) + bottom * ty).round().clamp(0.0, 255.0) as u8
                }))
            };
            out.put_pixel(ox, oy, pixel);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            if (x + y) % 2 == 0 {
                Rgb([255, 255, 255])
            } else {
                Rgb([0, 0, 0])
            }
        })
    }

    #[test]
    fn oversized_images_are_refused_from_their_header() {
        let mut png = Cursor::new(vec![]);
        checker(64, 32)
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        let bytes = png.into_inner();
        assert_eq!(dimensions(&bytes).unwrap(), (64, 32));
        assert!(decode_rgb(&bytes, 64 * 32).is_ok());
        let err = decode_rgb(&bytes, 64 * 32 - 1).unwrap_err();
        assert!(err.to_string().contains("64×32"), "{err}");
        assert!(decode_rgb(b"not an image", 1000).is_err());
    }

    #[test]
    fn blur_and_resize_keep_flat_colours_and_sizes() {
        let cancel = CancellationToken::new();
        let flat = RgbImage::from_pixel(20, 10, Rgb([10, 200, 30]));
        let blurred = blur(flat.clone(), 3.0, &cancel).unwrap();
        assert_eq!(blurred, flat);
        let up = resize(&flat, 50, 25, &cancel).unwrap();
        assert_eq!(up.dimensions(), (50, 25));
        assert!(up.pixels().all(|p| *p == Rgb([10, 200, 30])));
        let down = resize(&checker(40, 40), 4, 4, &cancel).unwrap();
        // A fine checkerboard averages to grey.
        assert!(
            down.pixels().all(|p| (120..=135).contains(&p[0])),
            "{down:?}"
        );
    }

    #[test]
    fn cancelled_work_stops() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let img = checker(100, 100);
        assert!(matches!(
            blur(img.clone(), 3.0, &cancel),
            Err(GenerateError::Cancelled)
        ));
        assert!(matches!(
            resize(&img, 200, 200, &cancel),
            Err(GenerateError::Cancelled)
        ));
        assert!(matches!(
            pixelate(img, 16, &cancel),
            Err(GenerateError::Cancelled)
        ));
    }
}
