//! What the built-in `local-*` generators do: real PNG, WAV and text artifacts, made offline.

use std::{io::Cursor, time::Duration};

use image::{ImageFormat, Rgb, RgbImage};
use serde_json::{json, Map, Value};

use super::{
    imaging,
    local::{
        ImageFilter, ImageStyle, LocalAudioInput, LocalEchoInput, LocalImageFilterInput,
        LocalImageInput, LocalTextInput,
    },
    run::{parse_input, Context, Execute, GenerateError, Output},
};

/// FNV-1a: a stable hash of the prompt (the same prompt always gives the same picture).
fn fnv(text: &str, seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// xorshift64*: deterministic noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn meta(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn encode_png(img: &RgbImage) -> Result<Vec<u8>, GenerateError> {
    let mut bytes = Cursor::new(Vec::new());
    img.write_to(&mut bytes, ImageFormat::Png)
        .map_err(|e| GenerateError::Permanent(format!("PNG encoding failed: {e}")))?;
    Ok(bytes.into_inner())
}

pub struct LocalImage;

#[async_trait::async_trait]
impl Execute for LocalImage {
    async fn generate(&self, input: Value, ctx: &Context<'_>) -> Result<Output, GenerateError> {
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
        Ok(Output {
            bytes,
            extension: "png".into(),
            content_type: "image/png".into(),
            metadata: meta(&[
                ("format", json!("png")),
                ("width", json!(w)),
                ("height", json!(h)),
            ]),
            memory: Some(memory),
        })
    }
}

pub struct LocalImageFilterExec;

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
impl Execute for LocalImageFilterExec {
    async fn generate(&self, input: Value, ctx: &Context<'_>) -> Result<Output, GenerateError> {
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
        Ok(Output {
            bytes: out,
            extension: "png".into(),
            content_type: "image/png".into(),
            metadata: meta(&[
                ("format", json!("png")),
                ("width", json!(nw)),
                ("height", json!(nh)),
            ]),
            memory: Some(memory),
        })
    }
}

/// A WAV file (RIFF, PCM 16-bit mono).
pub fn wav(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

pub struct LocalAudio;

#[async_trait::async_trait]
impl Execute for LocalAudio {
    async fn generate(&self, input: Value, ctx: &Context<'_>) -> Result<Output, GenerateError> {
        let input: LocalAudioInput = parse_input(input)?;
        let rate = input.sample_rate;
        let total = (input.duration * f64::from(rate)).round() as usize;
        let notes: Vec<f64> = input
            .prompt
            .bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| 220.0 * 2f64.powf(f64::from(b % 24) / 12.0))
            .collect();
        let notes = if notes.is_empty() { vec![440.0] } else { notes };
        let per_note = (total / notes.len()).max(rate as usize / 8);
        let mut samples = Vec::with_capacity(total);
        for i in 0..total {
            if i.is_multiple_of((rate as usize).max(1)) {
                ctx.check_cancelled()?;
                ctx.progress
                    .report(
                        i as f64 / total.max(1) as f64 * 90.0,
                        Some("Synthesising".into()),
                    )
                    .await;
            }
            let f = notes[(i / per_note) % notes.len()];
            let t = i as f64 / f64::from(rate);
            let envelope = 1.0 - ((i % per_note) as f64 / per_note as f64) * 0.7;
            samples.push(((2.0 * std::f64::consts::PI * f * t).sin() * envelope * 12_000.0) as i16);
        }
        let duration = samples.len() as f64 / f64::from(rate);
        Ok(Output {
            bytes: wav(&samples, rate),
            extension: "wav".into(),
            content_type: "audio/wav".into(),
            metadata: meta(&[
                ("format", json!("wav")),
                ("duration", json!(duration)),
                ("sample_rate", json!(rate)),
                ("channels", json!(1)),
            ]),
            memory: None,
        })
    }
}

const WORDS: &[&str] = &[
    "light", "colour", "board", "image", "sound", "quiet", "bright", "river", "stone", "glass",
    "morning", "shadow", "paper", "signal", "garden", "window", "thread", "echo", "field", "frame",
];

pub struct LocalText;

#[async_trait::async_trait]
impl Execute for LocalText {
    async fn generate(&self, input: Value, ctx: &Context<'_>) -> Result<Output, GenerateError> {
        let input: LocalTextInput = parse_input(input)?;
        let own: Vec<&str> = input.prompt.split_whitespace().collect();
        let mut rng = Rng(fnv(&input.prompt, 7));
        let mut words: Vec<String> = own.iter().map(|w| w.to_string()).collect();
        while words.len() < input.max_words as usize {
            let pick = rng.next() as usize;
            let w = if !own.is_empty() && pick.is_multiple_of(3) {
                own[pick % own.len()]
            } else {
                WORDS[pick % WORDS.len()]
            };
            words.push(w.to_string());
            if words.len().is_multiple_of(100) {
                ctx.check_cancelled()?;
                ctx.progress
                    .report(words.len() as f64 / f64::from(input.max_words) * 90.0, None)
                    .await;
            }
        }
        words.truncate(input.max_words as usize);
        let mut content = words.join(" ");
        content.push('.');
        Ok(Output {
            bytes: content.clone().into_bytes(),
            extension: "txt".into(),
            content_type: "text/plain".into(),
            metadata: meta(&[("format", json!("plain")), ("content", json!(content))]),
            memory: None,
        })
    }
}

pub struct LocalEcho;

#[async_trait::async_trait]
impl Execute for LocalEcho {
    async fn generate(&self, input: Value, ctx: &Context<'_>) -> Result<Output, GenerateError> {
        let input: LocalEchoInput = parse_input(input)?;
        let steps = 10u64;
        if input.delay_ms > 0 {
            for i in 1..=steps {
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Err(GenerateError::Cancelled),
                    _ = tokio::time::sleep(Duration::from_millis(input.delay_ms / steps)) => {}
                }
                ctx.progress
                    .report(
                        i as f64 * 100.0 / steps as f64 * 0.9,
                        Some(format!("Step {i} of {steps}")),
                    )
                    .await;
            }
        }
        Ok(Output {
            bytes: input.prompt.clone().into_bytes(),
            extension: "txt".into(),
            content_type: "text/plain".into(),
            metadata: meta(&[("format", json!("plain")), ("content", json!(input.prompt))]),
            memory: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_headers_describe_the_samples() {
        let w = wav(&[0, 1, -1, 2], 8000);
        assert_eq!(&w[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([w[24], w[25], w[26], w[27]]), 8000);
        assert_eq!(u32::from_le_bytes([w[40], w[41], w[42], w[43]]), 8);
        assert_eq!(w.len(), 44 + 8);
    }
}
