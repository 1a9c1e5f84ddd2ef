//! `local-image`: a PNG pattern drawn from the prompt and seed.

use image::{Rgb, RgbImage};
use serde_json::{json, Value};

use super::{encode_png, fnv, meta, Rng};
use boards_shared::generators::{
    imaging,
    local::{ImageStyle, LocalImageInput},
    run::{parse_input, Body, Context, Execute, GenerateError, Output},
};

pub struct LocalImage;

#[async_trait::async_trait]
impl Execute for LocalImage {
    async fn generate(
        &self,
        input: Value,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, GenerateError> {
        let input: LocalImageInput = parse_input(input)?;
        let seed = fnv(&input.prompt, u64::from(input.seed.unwrap_or(0)));
        let palette = [
            Rgb([
                (seed & 0xff) as u8,
                ((seed >> 8) & 0xff) as u8,
                ((seed >> 16) & 0xff) as u8,
            ]),
            Rgb([
                ((seed >> 24) & 0xff) as u8,
                ((seed >> 32) & 0xff) as u8,
                ((seed >> 40) & 0xff) as u8,
            ]),
        ];
        let (w, h) = (input.width, input.height);
        imaging::check_pixels("The image", w, h, ctx.max_image_pixels)?;
        // The picture and its encoding.
        let memory = ctx
            .memory
            .reserve(
                u64::from(w) * u64::from(h) * 2 * imaging::BYTES_PER_PIXEL,
                &ctx.cancel,
            )
            .await?;
        let mut img = RgbImage::new(w, h);
        let mut rng = Rng(seed);
        let stripes = 4 + (seed % 12) as u32;
        let chunk = (h / 10).max(1);
        for y0 in (0..h).step_by(chunk as usize) {
            ctx.check_cancelled()?;
            for y in y0..(y0 + chunk).min(h) {
                for x in 0..w {
                    let t = match input.style {
                        ImageStyle::Gradient => (x + y) as f64 / (w + h) as f64,
                        ImageStyle::Stripes => {
                            f64::from(((x * stripes / w.max(1)) + (y * stripes / h.max(1))) % 2)
                        }
                        ImageStyle::Rings => {
                            let (dx, dy) = (x as f64 - w as f64 / 2.0, y as f64 - h as f64 / 2.0);
                            (((dx * dx + dy * dy).sqrt() / 12.0).sin() + 1.0) / 2.0
                        }
                        ImageStyle::Noise => (rng.next() % 1000) as f64 / 1000.0,
                    };
                    let mix = |a: u8, b: u8| (f64::from(a) * (1.0 - t) + f64::from(b) * t) as u8;
                    img.put_pixel(
                        x,
                        y,
                        Rgb([
                            mix(palette[0][0], palette[1][0]),
                            mix(palette[0][1], palette[1][1]),
                            mix(palette[0][2], palette[1][2]),
                        ]),
                    );
                }
            }
            ctx.progress
                .report(
                    f64::from(y0 + chunk).min(f64::from(h)) / f64::from(h) * 90.0,
                    Some("Drawing".into()),
                )
                .await;
            tokio::task::yield_now().await;
        }
        let bytes = tokio::task::spawn_blocking(move || encode_png(&img))
            .await
            .map_err(|e| GenerateError::Permanent(format!("encoder stopped: {e}")))??;
        Ok(vec![Output {
            body: Body::Bytes(bytes),
            extension: "png".into(),
            content_type: "image/png".into(),
            metadata: meta(&[
                ("format", json!("png")),
                ("width", json!(w)),
                ("height", json!(h)),
            ]),
            memory: Some(memory),
        }])
    }
}
