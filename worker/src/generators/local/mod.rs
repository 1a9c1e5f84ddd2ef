//! The built-in `local-*` generators: real PNG, WAV and text artifacts, made offline (one file
//! per generator; their inputs are declared in `boards_shared::generators::local`).

mod audio;
mod echo;
mod filter;
mod image;
mod text;

use std::sync::Arc;

use ::image::RgbImage;
use boards_shared::generators::run::{Execute, GenerateError};
use serde_json::{Map, Value};

/// The executor of the local generator `id`.
pub fn executor(id: &str) -> Option<Arc<dyn Execute>> {
    Some(match id {
        "local-image" => Arc::new(image::LocalImage),
        "local-image-filter" => Arc::new(filter::LocalImageFilter),
        "local-audio" => Arc::new(audio::LocalAudio),
        "local-text" => Arc::new(text::LocalText),
        "local-echo" => Arc::new(echo::LocalEcho),
        _ => return None,
    })
}

/// FNV-1a: a stable hash of the prompt (the same prompt always gives the same picture).
pub(crate) fn fnv(text: &str, seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// xorshift64*: deterministic noise.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

pub(crate) fn meta(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

pub(crate) fn encode_png(img: &RgbImage) -> Result<Vec<u8>, GenerateError> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, ::image::ImageFormat::Png)
        .map_err(|e| GenerateError::Permanent(format!("PNG encoding failed: {e}")))?;
    Ok(bytes.into_inner())
}
