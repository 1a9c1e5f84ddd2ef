//! Content sniffing: what the leading bytes of an upload are, checked against the artifact
//! kind, the declared content type and the allow-list. The bytes decide the stored type within
//! a kind (a JPEG declared `image/png` is stored as `image/jpeg`), because a wrong type makes
//! browsers and players misbehave and a lying one is how script gets served as media.

use infer::MatcherType;

use super::{
    allowed_list, allowed_type, canonical_content_type, AllowedType, MediaError, AUDIO_MP4,
    TEXT_PLAIN,
};
use crate::generators::ArtifactKind;

/// How many leading bytes callers must buffer for [`accept`] (fewer only if the file is
/// shorter): enough for every `infer` signature (WebM and Matroska look 256 bytes in) and for
/// a meaningful text check.
pub const SNIFF_LEN: usize = 8 * 1024;

/// The type an upload is stored as: canonical content type and file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub content_type: &'static str,
    pub extension: &'static str,
}

impl From<&'static AllowedType> for Accepted {
    fn from(t: &'static AllowedType) -> Self {
        Self {
            content_type: t.content_type,
            extension: t.extensions[0],
        }
    }
}

/// Checks an upload of `kind` from its declared content type (if any) and its first bytes
/// (up to [`SNIFF_LEN`], or the whole file if shorter) and returns the type to store it as.
///
/// A declared type must be in the allow-list and of `kind`; `application/octet-stream` counts
/// as undeclared (browsers send it for any extension they do not know). Binary kinds need
/// bytes `infer` recognises as an allowed type of `kind`. Text needs UTF-8 without NUL bytes
/// that `infer` does not take for a binary format; its type is the declared text type or
/// `text/plain`, and `application/json` must start with `{` or `[`.
pub fn accept(
    kind: ArtifactKind,
    declared: Option<&str>,
    prefix: &[u8],
) -> Result<Accepted, MediaError> {
    if prefix.is_empty() {
        return Err(MediaError::Empty);
    }
    let declared = declared
        .map(canonical_content_type)
        .filter(|d| !d.is_empty() && d != "application/octet-stream");
    let declared = match declared {
        None => None,
        Some(d) => match allowed_type(&d) {
            Some(t) if t.kind == kind => Some(t),
            Some(t) => {
                return Err(invalid(format!(
                    "the file was sent as {d} ({}), but the upload is {kind}",
                    t.kind
                )))
            }
            None => return Err(invalid(refused_declared(&d, kind))),
        },
    };
    match kind {
        ArtifactKind::Text => accept_text(declared, prefix),
        _ => accept_binary(kind, prefix),
    }
}

fn invalid(message: String) -> MediaError {
    MediaError::InvalidType(message)
}

fn refused_declared(declared: &str, kind: ArtifactKind) -> String {
    let accepted = allowed_list(kind);
    if declared == "image/svg+xml" {
        format!("SVG images are not accepted (they can contain scripts); accepted {kind} types: {accepted}")
    } else {
        format!("{declared} is not accepted; accepted {kind} types: {accepted}")
    }
}

fn accept_binary(kind: ArtifactKind, prefix: &[u8]) -> Result<Accepted, MediaError> {
    let accepted = allowed_list(kind);
    let Some(sniffed) = infer::get(prefix) else {
        return Err(invalid(format!(
            "the content is not a recognised {kind} format; accepted {kind} types: {accepted}"
        )));
    };
    let mime = match sniffed.mime_type() {
        // Ogg Opus is still an Ogg file.
        "audio/opus" => "audio/ogg".to_owned(),
        other => canonical_content_type(other),
    };
    let found = match allowed_type(&mime) {
        // `infer` calls every MP4 without the M4A brand video, but the container is the same
        // for audio-only files (`isom`/`mp42` brands are common for .m4a too).
        Some(t) if kind == ArtifactKind::Audio && t.content_type == "video/mp4" => Some(&AUDIO_MP4),
        other => other,
    };
    match found {
        Some(t) if t.kind == kind => Ok(t.into()),
        Some(t) => Err(invalid(format!(
            "the content is {} ({}), but the upload is {kind}",
            t.content_type, t.kind
        ))),
        None => Err(invalid(format!(
            "the content is {mime}, which is not accepted; accepted {kind} types: {accepted}"
        ))),
    }
}

fn accept_text(
    declared: Option<&'static AllowedType>,
    prefix: &[u8],
) -> Result<Accepted, MediaError> {
    // `infer` knows a few text formats (HTML, XML, shell scripts): those are stored as the
    // declared text type, which is served as plain text, so they are harmless.
    if let Some(sniffed) = infer::get(prefix) {
        if sniffed.matcher_type() != MatcherType::Text {
            return Err(invalid(format!(
                "the content is {}, but the upload is text",
                sniffed.mime_type()
            )));
        }
    }
    if prefix.contains(&0) {
        return Err(invalid(
            "the content contains NUL bytes, so it is not text".to_owned(),
        ));
    }
    if !is_utf8_prefix(prefix) {
        return Err(invalid("the content is not UTF-8 text".to_owned()));
    }
    let target = declared.unwrap_or(&TEXT_PLAIN);
    if target.content_type == "application/json" && !starts_like_json(prefix) {
        return Err(invalid(
            "the file was sent as application/json, but the content does not start with { or ["
                .to_owned(),
        ));
    }
    Ok(target.into())
}

/// Valid UTF-8, allowing a multi-byte character cut off by the end of the prefix.
fn is_utf8_prefix(prefix: &[u8]) -> bool {
    match std::str::from_utf8(prefix) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && prefix.len() - e.valid_up_to() < 4,
    }
}

fn starts_like_json(prefix: &[u8]) -> bool {
    let body = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tests_support::*;
    use ArtifactKind::*;

    fn ok(kind: ArtifactKind, declared: Option<&str>, bytes: &[u8]) -> &'static str {
        match accept(kind, declared, bytes) {
            Ok(a) => a.content_type,
            Err(e) => panic!("{kind} {declared:?} refused: {e}"),
        }
    }

    fn refused(kind: ArtifactKind, declared: Option<&str>, bytes: &[u8]) -> String {
        match accept(kind, declared, bytes) {
            Ok(a) => panic!("{kind} {declared:?} accepted as {a:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn images_are_accepted_when_bytes_and_declaration_agree() {
        assert_eq!(ok(Image, Some("image/png"), &png(4, 3)), "image/png");
        assert_eq!(ok(Image, Some("image/jpg"), &jpeg(4, 3)), "image/jpeg");
        assert_eq!(ok(Image, None, &gif(4, 3)), "image/gif");
        assert_eq!(
            ok(Image, Some("application/octet-stream"), &webp(4, 3)),
            "image/webp"
        );
        let accepted = accept(Image, Some("IMAGE/JPEG; q=1"), &jpeg(2, 2)).unwrap();
        assert_eq!(accepted.extension, "jpg");
    }

    #[test]
    fn within_a_kind_the_bytes_win_over_the_declaration() {
        assert_eq!(ok(Image, Some("image/png"), &jpeg(4, 3)), "image/jpeg");
        assert_eq!(
            ok(Video, Some("video/mp4"), &mov_header()),
            "video/quicktime"
        );
    }

    #[test]
    fn bytes_of_another_kind_are_refused() {
        let msg = refused(Video, Some("video/mp4"), &png(4, 3));
        assert!(msg.starts_with("Invalid file type: "), "{msg}");
        assert!(msg.contains("image/png") && msg.contains("video"), "{msg}");
        assert!(refused(Audio, None, &jpeg(2, 2)).contains("image/jpeg"));
        assert!(refused(Image, None, &wav_bytes(8000, 1, 100)).contains("audio/wav"));
    }

    #[test]
    fn a_declared_type_of_another_kind_is_refused() {
        let msg = refused(Image, Some("video/mp4"), &png(4, 3));
        assert!(msg.contains("video/mp4") && msg.contains("image"), "{msg}");
        assert!(refused(Text, Some("image/png"), b"hello").contains("image/png"));
    }

    #[test]
    fn svg_and_html_are_refused_whatever_the_bytes() {
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
        let msg = refused(Image, Some("image/svg+xml"), svg);
        assert!(msg.contains("SVG"), "{msg}");
        assert!(refused(Image, None, svg).contains("not a recognised image"));
        let msg = refused(Text, Some("text/html; charset=utf-8"), b"<html></html>");
        assert!(msg.contains("text/html is not accepted"), "{msg}");
    }

    #[test]
    fn unknown_or_unlisted_binary_content_is_refused() {
        assert!(refused(Video, None, b"just some words").contains("not a recognised video"));
        // BMP is an image, but not one Boards stores.
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0u8; 60]);
        let msg = refused(Image, None, &bmp);
        assert!(msg.contains("image/bmp"), "{msg}");
    }

    #[test]
    fn audio_and_video_containers_are_recognised() {
        assert_eq!(
            ok(Audio, Some("audio/x-wav"), &wav_bytes(8000, 1, 100)),
            "audio/wav"
        );
        assert_eq!(ok(Audio, Some("audio/mp3"), &id3_mp3()), "audio/mpeg");
        assert_eq!(ok(Audio, None, &ogg_header()), "audio/ogg");
        assert_eq!(ok(Audio, Some("audio/x-m4a"), &m4a_header()), "audio/mp4");
        // An audio-only MP4 with a generic brand.
        assert_eq!(
            ok(Audio, Some("audio/mp4"), &mp4_bytes(1000, 5000, 0)),
            "audio/mp4"
        );
        assert_eq!(ok(Audio, None, b"fLaC\0\0\0\x22"), "audio/flac");
        assert_eq!(ok(Video, None, &mp4_bytes(1000, 5000, 0)), "video/mp4");
        assert_eq!(ok(Video, Some("video/webm"), &webm_header()), "video/webm");
        assert!(refused(Video, None, &m4a_header()).contains("audio/mp4"));
    }

    #[test]
    fn text_must_be_utf8_without_nul_bytes() {
        assert_eq!(ok(Text, None, "héllo\n".as_bytes()), "text/plain");
        assert_eq!(
            ok(Text, Some("text/markdown"), b"# Title\n"),
            "text/markdown"
        );
        assert_eq!(
            ok(Text, Some("text/plain; charset=utf-8"), b"plain"),
            "text/plain"
        );
        // A multi-byte character cut by the end of the prefix.
        let cut = &"ab€".as_bytes()[..3];
        assert_eq!(ok(Text, None, cut), "text/plain");
        assert!(refused(Text, None, b"a\0b").contains("NUL"));
        assert!(refused(Text, None, b"\xff\xfeabc").contains("UTF-8"));
        assert!(refused(Text, None, &png(2, 2)).contains("image/png"));
        // An invalid sequence in the middle is not excused.
        assert!(refused(Text, None, b"ab\xe2\x82zz").contains("UTF-8"));
    }

    #[test]
    fn json_must_start_like_json() {
        assert_eq!(
            ok(
                Text,
                Some("application/json"),
                b"\xEF\xBB\xBF \n {\"a\": 1}"
            ),
            "application/json"
        );
        assert_eq!(
            ok(Text, Some("application/json"), b"[1, 2]"),
            "application/json"
        );
        let msg = refused(Text, Some("application/json"), b"hello");
        assert!(msg.contains("{ or ["), "{msg}");
    }

    #[test]
    fn empty_content_is_refused() {
        assert_eq!(refused(Image, Some("image/png"), b""), "The file is empty");
        assert_eq!(refused(Text, None, b""), "The file is empty");
    }
}
