//! Fixtures made at test time: small images encoded with `image`, hand-built WAV and
//! ISO-BMFF (MP4/MOV/M4A) files, and the magic numbers `infer` recognises for MP3, Ogg, WebM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Fixtures: a failure is a broken test.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};

fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn gradient(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| Rgba([(x * 7) as u8, (y * 5) as u8, 90, 255]))
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    encode(DynamicImage::ImageRgba8(gradient(w, h)), ImageFormat::Png)
}

/// A PNG of one colour, alpha included.
pub fn png_filled(w: u32, h: u32, pixel: [u8; 4]) -> Vec<u8> {
    let img = RgbaImage::from_pixel(w, h, Rgba(pixel));
    encode(DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let rgb = DynamicImage::ImageRgba8(gradient(w, h)).into_rgb8();
    encode(DynamicImage::ImageRgb8(rgb), ImageFormat::Jpeg)
}

pub fn gif(w: u32, h: u32) -> Vec<u8> {
    encode(DynamicImage::ImageRgba8(gradient(w, h)), ImageFormat::Gif)
}

pub fn webp(w: u32, h: u32) -> Vec<u8> {
    encode(DynamicImage::ImageRgba8(gradient(w, h)), ImageFormat::WebP)
}

/// A PNG signature, an IHDR declaring `w`×`h` and the start of an IDAT chunk without its
/// data (the PNG reader looks for it before it reports a size): decoding it would fail.
pub fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    let crc = crc32(&ihdr);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(b"\0\0\x10\0IDAT");
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// 16-bit PCM WAV with a LIST chunk before `data`, `samples` frames of silence.
pub fn wav_bytes(rate: u32, channels: u16, samples: u32) -> Vec<u8> {
    let block = u32::from(channels) * 2;
    let data_len = samples * block;
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&1u16.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * block).to_le_bytes());
    fmt.extend_from_slice(&(block as u16).to_le_bytes());
    fmt.extend_from_slice(&16u16.to_le_bytes());
    let mut body = b"WAVE".to_vec();
    for (id, chunk) in [(b"fmt ", fmt), (b"LIST", b"INFOab\0".to_vec())] {
        body.extend_from_slice(id);
        body.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        body.extend_from_slice(&chunk);
        if chunk.len() % 2 == 1 {
            body.push(0);
        }
    }
    body.extend_from_slice(b"data");
    body.extend_from_slice(&data_len.to_le_bytes());
    body.resize(body.len() + data_len as usize, 0);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn bmff_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn mvhd(timescale: u32, duration: u64, version: u8) -> Vec<u8> {
    let mut body = vec![version, 0, 0, 0];
    if version == 1 {
        body.extend_from_slice(&[0; 16]);
        body.extend_from_slice(&timescale.to_be_bytes());
        body.extend_from_slice(&duration.to_be_bytes());
    } else {
        body.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&timescale.to_be_bytes());
        body.extend_from_slice(&(duration as u32).to_be_bytes());
    }
    body.extend_from_slice(&[0; 80]);
    bmff_box(b"mvhd", &body)
}

fn tkhd(width: u32, height: u32) -> Vec<u8> {
    let mut body = vec![0u8; 4 + 20 + 52];
    body.extend_from_slice(&(width << 16).to_be_bytes());
    body.extend_from_slice(&(height << 16).to_be_bytes());
    bmff_box(b"tkhd", &body)
}

/// An ISO-BMFF file: `ftyp` with `brand`, `moov` (an `mvhd`, an audio track, then a
/// 640×360 video track), then a small `mdat`; `moov_last` puts `moov` after `mdat`.
pub fn bmff(
    brand: &[u8; 4],
    timescale: u32,
    duration: u64,
    version: u8,
    moov_last: bool,
) -> Vec<u8> {
    let mut ftyp = brand.to_vec();
    ftyp.extend_from_slice(&[0, 0, 2, 0]);
    ftyp.extend_from_slice(brand);
    ftyp.extend_from_slice(b"mp41");
    let mut moov = mvhd(timescale, duration, version);
    moov.extend(bmff_box(b"trak", &tkhd(0, 0)));
    moov.extend(bmff_box(b"trak", &tkhd(640, 360)));
    let moov = bmff_box(b"moov", &moov);
    let mdat = bmff_box(b"mdat", &[0x55; 64]);
    let mut out = bmff_box(b"ftyp", &ftyp);
    if moov_last {
        out.extend(mdat);
        out.extend(moov);
    } else {
        out.extend(moov);
        out.extend(mdat);
    }
    out
}

pub fn mp4_bytes(timescale: u32, duration: u64, version: u8) -> Vec<u8> {
    bmff(b"isom", timescale, duration, version, false)
}

pub fn mov_header() -> Vec<u8> {
    bmff(b"qt  ", 600, 6000, 0, false)
}

pub fn m4a_header() -> Vec<u8> {
    bmff(b"M4A ", 44100, 441_000, 0, false)
}

/// An ID3v2 tag followed by an MPEG-1 layer III frame header.
pub fn id3_mp3() -> Vec<u8> {
    let mut out = b"ID3\x03\x00\x00\x00\x00\x00\x00".to_vec();
    out.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
    out.resize(512, 0);
    out
}

pub fn ogg_header() -> Vec<u8> {
    let mut out = b"OggS\x00\x02".to_vec();
    out.resize(28, 0);
    out.extend_from_slice(b"\x01vorbis");
    out.resize(128, 0);
    out
}

/// An EBML header with the `webm` doctype, padded past the 256 bytes `infer` wants.
pub fn webm_header() -> Vec<u8> {
    let mut out = vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01];
    out.extend_from_slice(b"\x42\x82\x84webm");
    out.resize(300, 0);
    out
}
