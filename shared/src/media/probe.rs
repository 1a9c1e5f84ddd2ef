//! Cheap metadata from the first bytes of a file, never the whole of it: image dimensions
//! from the header, WAV/FLAC duration from their header chunks, MP4/MOV/M4A duration (and
//! video size) from `moov` when it lies within the prefix.
//!
//! Not extracted: MP3 (a duration needs the file size and a Xing/VBRI header or a full frame
//! scan), Ogg (the duration is in the *last* page's granule position) and WebM (the `Duration`
//! element is optional and often written at the end by live encoders); no well-kept crate
//! gets them from a prefix alone, so they are `None`. MP4s whose `moov` comes after `mdat`
//! (not "fast-start") also give `None`. Video dimensions ignore the track's rotation matrix.

use std::io::Cursor;

use image::{ImageDecoder, ImageFormat, ImageReader, Limits};

use super::canonical_content_type;

/// How many leading bytes callers should pass to [`probe`]: fast-start MP4s keep `moov`
/// well within this, and every image header fits.
pub const PROBE_LEN: usize = 256 * 1024;

/// What [`probe`] could tell; each field is `None` when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MediaInfo {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_seconds: Option<f64>,
}

/// Metadata of a file of `content_type` from its first bytes (up to [`PROBE_LEN`]). Garbage,
/// truncated or unsupported input gives `MediaInfo::default()`; it never panics.
pub fn probe(content_type: &str, head: &[u8]) -> MediaInfo {
    match canonical_content_type(content_type).as_str() {
        "image/png" => image_info(ImageFormat::Png, head),
        "image/jpeg" => image_info(ImageFormat::Jpeg, head),
        "image/gif" => image_info(ImageFormat::Gif, head),
        "image/webp" => image_info(ImageFormat::WebP, head),
        "audio/wav" => duration_only(wav_duration(head)),
        "audio/flac" => duration_only(flac_duration(head)),
        "video/mp4" | "video/quicktime" | "audio/mp4" => bmff_info(head),
        _ => MediaInfo::default(),
    }
}

fn duration_only(duration_seconds: Option<f64>) -> MediaInfo {
    MediaInfo {
        duration_seconds,
        ..MediaInfo::default()
    }
}

/// The displayed size: the header's, swapped when the EXIF orientation turns it a quarter.
/// `image`'s decoders read only headers here, the same parsers the thumbnail path trusts for
/// its pixel check (so no second image crate).
fn image_info(format: ImageFormat, head: &[u8]) -> MediaInfo {
    let mut reader = ImageReader::with_format(Cursor::new(head), format);
    // Nothing is decoded; this only bounds what header parsing may allocate.
    let mut limits = Limits::default();
    limits.max_alloc = Some(16 * 1024 * 1024);
    reader.limits(limits);
    let Ok(mut decoder) = reader.into_decoder() else {
        // `image` walks every chunk of an extended WebP before it reports a size, so a prefix
        // of one fails there; its size is in the first chunk.
        let size = (format == ImageFormat::WebP)
            .then(|| webp_size(head))
            .flatten();
        return MediaInfo {
            width: size.map(|s| s.0),
            height: size.map(|s| s.1),
            duration_seconds: None,
        };
    };
    let (w, h) = decoder.dimensions();
    let quarter_turn = matches!(
        decoder.orientation(),
        Ok(image::metadata::Orientation::Rotate90
            | image::metadata::Orientation::Rotate270
            | image::metadata::Orientation::Rotate90FlipH
            | image::metadata::Orientation::Rotate270FlipH)
    );
    let (w, h) = if quarter_turn { (h, w) } else { (w, h) };
    MediaInfo {
        width: Some(w),
        height: Some(h),
        duration_seconds: None,
    }
}

/// `N` bytes at `at`, if the prefix holds them.
fn bytes<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    bytes(b, at).map(u32::from_le_bytes)
}

fn u32_be(b: &[u8], at: usize) -> Option<u32> {
    bytes(b, at).map(u32::from_be_bytes)
}

fn u64_be(b: &[u8], at: usize) -> Option<u64> {
    bytes(b, at).map(u64::from_be_bytes)
}

fn u24_le(b: &[u8], at: usize) -> Option<u32> {
    bytes::<3>(b, at).map(|[a, b, c]| u32::from_le_bytes([a, b, c, 0]))
}

/// The canvas size from the first chunk of a WebP file (VP8X, lossless VP8L or lossy VP8).
fn webp_size(head: &[u8]) -> Option<(u32, u32)> {
    if &bytes::<4>(head, 0)? != b"RIFF" || &bytes::<4>(head, 8)? != b"WEBP" {
        return None;
    }
    match &bytes::<4>(head, 12)? {
        b"VP8X" => Some((u24_le(head, 24)? + 1, u24_le(head, 27)? + 1)),
        b"VP8L" if *head.get(20)? == 0x2F => {
            let bits = u32::from_le_bytes(bytes(head, 21)?);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8 " if bytes::<3>(head, 23)? == [0x9D, 0x01, 0x2A] => {
            let [w0, w1, h0, h1] = bytes::<4>(head, 26)?;
            let (w, h) = (
                u32::from(u16::from_le_bytes([w0, w1]) & 0x3FFF),
                u32::from(u16::from_le_bytes([h0, h1]) & 0x3FFF),
            );
            (w > 0 && h > 0).then_some((w, h))
        }
        _ => None,
    }
}

fn seconds(units: u64, per_second: u64) -> Option<f64> {
    (units > 0 && per_second > 0).then(|| units as f64 / per_second as f64)
}

/// RIFF/WAVE: `data` chunk size over the `fmt ` chunk's byte rate.
fn wav_duration(head: &[u8]) -> Option<f64> {
    if &bytes::<4>(head, 0)? != b"RIFF" || &bytes::<4>(head, 8)? != b"WAVE" {
        return None;
    }
    let (mut pos, mut byte_rate) = (12usize, None);
    loop {
        let id = bytes::<4>(head, pos)?;
        let size = u32_le(head, pos + 4)?;
        let body = pos.checked_add(8)?;
        match &id {
            // Whatever the format tag (PCM, float, extensible), the byte rate is at offset 8.
            b"fmt " => byte_rate = Some(u32_le(head, body + 8)?),
            // 0xFFFFFFFF: written while streaming, length unknown.
            b"data" if size != u32::MAX => {
                return seconds(u64::from(size), u64::from(byte_rate?));
            }
            b"data" => return None,
            _ => {}
        }
        // Chunks are padded to an even size.
        pos = body
            .checked_add(size as usize)?
            .checked_add(size as usize % 2)?;
    }
}

/// FLAC: total samples over sample rate, from STREAMINFO (always the first metadata block).
fn flac_duration(head: &[u8]) -> Option<f64> {
    if &bytes::<4>(head, 0)? != b"fLaC" || head.get(4)? & 0x7F != 0 {
        return None;
    }
    // STREAMINFO starts at 8; bytes 10..18 pack rate (20 bits), channels, depth, samples (36).
    let packed = u64_be(head, 8 + 10)?;
    let rate = packed >> 44;
    let samples = packed & 0xF_FFFF_FFFF;
    seconds(samples, rate)
}

/// ISO-BMFF boxes of `data` in order: `(type, body)`, the body cut at the end of `data` for
/// the last box when the prefix ends inside it. Stops at anything malformed.
struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Boxes<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let data = self.data;
        let start = self.pos;
        let size32 = u32_be(data, start)?;
        let kind = data.get(start + 4..start.checked_add(8)?)?;
        let (header, size) = match size32 {
            // 64-bit size follows the type.
            1 => (16u64, u64_be(data, start + 8)?),
            // The box runs to the end of the file.
            0 => (8, (data.len() - start) as u64),
            n => (8, u64::from(n)),
        };
        if size < header {
            self.pos = data.len();
            return None;
        }
        let body_start = start + header as usize;
        let end = (start as u64).saturating_add(size);
        let body_end = usize::try_from(end).map_or(data.len(), |e| e.min(data.len()));
        // Past a box the prefix does not hold entirely, nothing more can be read.
        self.pos = body_end;
        Some((kind, data.get(body_start..body_end)?))
    }
}

fn boxes(data: &[u8]) -> Boxes<'_> {
    Boxes { data, pos: 0 }
}

fn bmff_info(head: &[u8]) -> MediaInfo {
    let Some((_, moov)) = boxes(head).find(|(kind, _)| *kind == b"moov") else {
        return MediaInfo::default();
    };
    let duration_seconds = boxes(moov)
        .find(|(kind, _)| *kind == b"mvhd")
        .and_then(|(_, mvhd)| mvhd_duration(mvhd));
    let size = boxes(moov)
        .filter(|(kind, _)| *kind == b"trak")
        .filter_map(|(_, trak)| boxes(trak).find(|(kind, _)| *kind == b"tkhd"))
        .filter_map(|(_, tkhd)| tkhd_size(tkhd))
        .next();
    MediaInfo {
        width: size.map(|s| s.0),
        height: size.map(|s| s.1),
        duration_seconds,
    }
}

/// `mvhd` version 0 (32-bit times) or 1 (64-bit): duration in timescale units.
fn mvhd_duration(mvhd: &[u8]) -> Option<f64> {
    let (timescale, duration) = match mvhd.first()? {
        0 => (u32_be(mvhd, 12)?, u64::from(u32_be(mvhd, 16)?)),
        1 => (u32_be(mvhd, 20)?, u64_be(mvhd, 24)?),
        _ => return None,
    };
    // All ones means "unknown" (fragmented files often write 0, which `seconds` refuses too).
    if duration == u64::from(u32::MAX) || duration == u64::MAX {
        return None;
    }
    seconds(duration, u64::from(timescale))
}

/// A track header's presentation size (16.16 fixed point); audio tracks have 0×0.
fn tkhd_size(tkhd: &[u8]) -> Option<(u32, u32)> {
    let at = match tkhd.first()? {
        0 => 4 + 20 + 52,
        1 => 4 + 32 + 52,
        _ => return None,
    };
    let (w, h) = (u32_be(tkhd, at)? >> 16, u32_be(tkhd, at + 4)? >> 16);
    (w > 0 && h > 0).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tests_support::*;

    fn dims(info: MediaInfo) -> (Option<u32>, Option<u32>) {
        (info.width, info.height)
    }

    #[test]
    fn image_dimensions_come_from_the_header() {
        assert_eq!(dims(probe("image/png", &png(30, 20))), (Some(30), Some(20)));
        assert_eq!(
            dims(probe("image/jpg", &jpeg(17, 40))),
            (Some(17), Some(40))
        );
        assert_eq!(dims(probe("image/gif", &gif(9, 5))), (Some(9), Some(5)));
        assert_eq!(dims(probe("image/webp", &webp(12, 7))), (Some(12), Some(7)));
        // Only the header is needed.
        let big = png(300, 200);
        assert_eq!(dims(probe("image/png", &big[..64])), (Some(300), Some(200)));
        let big = jpeg(300, 200);
        assert_eq!(
            dims(probe("image/jpeg", &big[..big.len() / 2])),
            (Some(300), Some(200))
        );
        assert_eq!(probe("image/png", &png(3, 3)).duration_seconds, None);
    }

    #[test]
    fn webp_prefixes_give_the_canvas_size() {
        let lossless = webp(300, 200);
        assert_eq!(
            dims(probe("image/webp", &lossless[..40])),
            (Some(300), Some(200))
        );
        // An extended (VP8X) file cut after its first chunk.
        let mut vp8x = b"RIFF\xff\xff\x00\x00WEBPVP8X\x0a\x00\x00\x00\x2c\x00\x00\x00".to_vec();
        vp8x.extend_from_slice(&[0x3F, 0x01, 0x00, 0xEF, 0x00, 0x00]);
        vp8x.extend_from_slice(b"ICCP\x00\x10\x00\x00");
        vp8x.resize(200, 0);
        assert_eq!(dims(probe("image/webp", &vp8x)), (Some(320), Some(240)));
        // A lossy (VP8) key frame header.
        let mut vp8 = b"RIFF\x00\x10\x00\x00WEBPVP8 \x00\x0f\x00\x00".to_vec();
        vp8.extend_from_slice(&[0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01]);
        vp8.resize(100, 0);
        assert_eq!(dims(probe("image/webp", &vp8)), (Some(640), Some(480)));
    }

    #[test]
    fn wav_duration_comes_from_fmt_and_data() {
        let info = probe("audio/x-wav", &wav_bytes(8000, 2, 12_000));
        assert_eq!(info.duration_seconds, Some(1.5));
        assert_eq!(dims(info), (None, None));
        // The data chunk header suffices; the samples need not be there.
        let wav = wav_bytes(16_000, 1, 32_000);
        assert_eq!(probe("audio/wav", &wav[..80]).duration_seconds, Some(2.0));
    }

    #[test]
    fn flac_duration_comes_from_streaminfo() {
        let mut flac = b"fLaC\x80\x00\x00\x22".to_vec();
        let mut info = [0u8; 34];
        // 48 kHz, 2 channels, 16 bits, 96 000 samples.
        let packed: u64 = (48_000 << 44) | (1 << 41) | (15 << 36) | 96_000;
        info[10..18].copy_from_slice(&packed.to_be_bytes());
        flac.extend_from_slice(&info);
        assert_eq!(probe("audio/flac", &flac).duration_seconds, Some(2.0));
    }

    #[test]
    fn mp4_duration_comes_from_mvhd_of_either_version() {
        let info = probe("video/mp4", &mp4_bytes(1000, 12_500, 0));
        assert_eq!(info.duration_seconds, Some(12.5));
        assert_eq!(dims(info), (Some(640), Some(360)));
        let v1 = mp4_bytes(90_000, 90_000 * 3, 1);
        assert_eq!(probe("video/mp4", &v1).duration_seconds, Some(3.0));
        assert_eq!(
            probe("video/quicktime", &mov_header()).duration_seconds,
            Some(10.0)
        );
        assert_eq!(
            probe("audio/x-m4a", &m4a_header()).duration_seconds,
            Some(10.0)
        );
    }

    #[test]
    fn mp4_with_moov_outside_the_prefix_gives_nothing() {
        let late = bmff(b"isom", 1000, 5000, 0, true);
        // The whole file has it…
        assert_eq!(probe("video/mp4", &late).duration_seconds, Some(5.0));
        // …a prefix ending inside mdat does not.
        assert_eq!(probe("video/mp4", &late[..60]), MediaInfo::default());
        // Unknown (all ones) and zero durations are not reported.
        let unknown = mp4_bytes(1000, u64::from(u32::MAX), 0);
        assert_eq!(probe("video/mp4", &unknown).duration_seconds, None);
        assert_eq!(
            probe("video/mp4", &mp4_bytes(1000, 0, 0)).duration_seconds,
            None
        );
    }

    #[test]
    fn formats_without_cheap_metadata_give_nothing() {
        assert_eq!(probe("audio/mpeg", &id3_mp3()), MediaInfo::default());
        assert_eq!(probe("audio/ogg", &ogg_header()), MediaInfo::default());
        assert_eq!(probe("video/webm", &webm_header()), MediaInfo::default());
        assert_eq!(probe("text/plain", b"hello"), MediaInfo::default());
    }

    #[test]
    fn garbage_and_truncated_input_never_panics() {
        let types = [
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "audio/wav",
            "audio/flac",
            "video/mp4",
            "video/quicktime",
            "audio/mp4",
        ];
        let fixtures = [
            png(20, 10),
            jpeg(20, 10),
            gif(20, 10),
            webp(20, 10),
            wav_bytes(8000, 1, 100),
            mp4_bytes(1000, 5000, 1),
            bmff(b"qt  ", 600, 600, 0, true),
        ];
        // A small xorshift generator: deterministic, no extra crate.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for ct in types {
            for f in &fixtures {
                for cut in 0..f.len().min(200) {
                    let _ = probe(ct, &f[..cut]);
                }
                // Corrupt a few bytes of a valid file, many times.
                for _ in 0..200 {
                    let mut bad = f.clone();
                    for _ in 0..4 {
                        let i = (next() as usize) % bad.len();
                        bad[i] = next() as u8;
                    }
                    let _ = probe(ct, &bad);
                }
            }
            for len in [0, 1, 7, 8, 16, 100, 1000] {
                let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                let _ = probe(ct, &noise);
            }
            // Boxes claiming huge, zero and 64-bit sizes.
            let _ = probe(ct, b"\xff\xff\xff\xffmoov\x00\x00\x00\x01mvhd");
            let _ = probe(ct, b"\x00\x00\x00\x01moov\xff\xff\xff\xff\xff\xff\xff\xff");
            let _ = probe(ct, b"\x00\x00\x00\x00moov\x00\x00\x00\x00mvhd\x01");
            let _ = probe(ct, b"RIFF\0\0\0\0WAVEfmt \xff\xff\xff\xff");
        }
    }
}
