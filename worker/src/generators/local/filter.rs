//! `local-image-filter`: a filter and a resize applied to another image generation.

use image::Rgb;
use serde_json::{json, Value};

use super::{encode_png, meta};
use boards_shared::generators::{
    imaging,
    local::{ImageFilter, LocalImageFilterInput},
    run::{parse_input, Body, Context, Execute, GenerateError, Output},
};

pub struct LocalImageFilter;

/// The output size of `w`×`h` scaled by `scale` (at least 1×1).
fn scaled(w: u32, h: u32, scale: f64) -> (u32, u32) {
    let side = |v: u32| {
        (f64::from(v) * scale)
            .round()
            .clamp(1.0, f64::from(u32::MAX)) as u32
    };
    (side(w), side(h))
}

#[async_trait::async_trait]
impl Execute for LocalImageFilter {
    async fn generate(
        &self,
        input: Value,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, GenerateError> {
        let input: LocalImageFilterInput = parse_input(input)?;
        let source = ctx.input("image").ok_or_else(|| {
            GenerateError::Invalid("image: the input generation was not resolved".into())
        })?;
        let bytes = ctx.read(source).await?;
        // Sizes from the header only: refuse what is too large before decoding anything.
        let (w, h) = imaging::dimensions(&bytes)?;
        imaging::check_pixels("The input image", w, h, ctx.max_image_pixels)?;
        let (nw, nh) = scaled(w, h, input.scale);
        imaging::check_pixels("The output image", nw, nh, ctx.max_image_pixels)?;
        // Decoded (up to 8 bytes a pixel) + RGB copy + a work buffer; output + its encoding.
        let (in_px, out_px) = (u64::from(w) * u64::from(h), u64::from(nw) * u64::from(nh));
        let estimate = in_px * (8 + 2 * imaging::BYTES_PER_PIXEL)
            + out_px * 2 * imaging::BYTES_PER_PIXEL
            + bytes.len() as u64;
        let memory = ctx.memory.reserve(estimate, &ctx.cancel).await?;
        ctx.progress
            .report(20.0, Some("Read the input image".into()))
            .await;
        ctx.check_cancelled()?;
        let (filter, cancel, max_pixels) = (input.filter, ctx.cancel.clone(), ctx.max_image_pixels);
        let (out, memory) = tokio::task::spawn_blocking(move || {
            let mut img = imaging::decode_rgb(&bytes, max_pixels)?;
            drop(bytes);
            let img = match filter {
                ImageFilter::Grayscale => {
                    imaging::map_pixels(&mut img, &cancel, |p| {
                        let [r, g, b] = p.0.map(f64::from);
                        let l = (0.299 * r + 0.587 * g + 0.114 * b).round() as u8;
                        Rgb([l, l, l])
                    })?;
                    img
                }
                ImageFilter::Invert => {
                    imaging::map_pixels(&mut img, &cancel, |p| Rgb(p.0.map(|c| 255 - c)))?;
                    img
                }
                ImageFilter::Sepia => {
                    imaging::map_pixels(&mut img, &cancel, |p| {
                        let [r, g, b] = p.0.map(f64::from);
                        Rgb([
                            (0.393 * r + 0.769 * g + 0.189 * b).min(255.0) as u8,
                            (0.349 * r + 0.686 * g + 0.168 * b).min(255.0) as u8,
                            (0.272 * r + 0.534 * g + 0.131 * b).min(255.0) as u8,
                        ])
                    })?;
                    img
                }
                ImageFilter::Blur => imaging::blur(img, 3.0, &cancel)?,
                ImageFilter::Pixelate => imaging::pixelate(img, 16, &cancel)?,
            };
            let img = if (nw, nh) == img.dimensions() {
                img
            } else {
                imaging::resize(&img, nw, nh, &cancel)?
            };
            if cancel.is_cancelled() {
                return Err(GenerateError::Cancelled);
            }
            // The reservation leaves with the bytes: held until they are stored, and returned
            // at once if this work stops (its job gone or not).
            Ok::<_, GenerateError>((encode_png(&img)?, memory))
        })
        .await
        .map_err(|e| GenerateError::Permanent(format!("filter stopped: {e}")))??;
        ctx.progress.report(90.0, Some("Filtered".into())).await;
        Ok(vec![Output {
            body: Body::Bytes(out),
            extension: "png".into(),
            content_type: "image/png".into(),
            metadata: meta(&[
                ("format", json!("png")),
                ("width", json!(nw)),
                ("height", json!(nh)),
            ]),
            memory: Some(memory),
        }])
    }
}
