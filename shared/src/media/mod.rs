//! Media handling shared by upload validation, storage and the worker: the one allow-list of
//! content types ([`ALLOWED_TYPES`]), content sniffing ([`accept`]), filename sanitising and
//! the extension check ([`sanitize_filename`], [`check_extension`]), cheap metadata from a
//! prefix ([`probe`]) and thumbnails ([`thumbnail`]).
//!
//! The allow-list is the single source of truth: uploads accept exactly these types, the
//! storage layer stores exactly these, so nothing passes one check only to fail the other (the
//! original's two lists disagreed, contract §2.7 step 9). SVG is deliberately absent: it can
//! carry script and would run when served inline.

mod names;
mod probe;
mod sniff;
#[cfg(any(test, feature = "test-helpers"))]
pub mod tests_support;
mod thumbnail;

pub use names::{check_extension, default_upload_extensions, sanitize_filename};
pub use probe::{probe, MediaInfo, PROBE_LEN};
pub use sniff::{accept, Accepted, SNIFF_LEN};
pub use thumbnail::{thumbnail, DecodeLimits, Thumbnail, THUMBNAIL_MAX_SIDE};

use crate::{generators::ArtifactKind, AppError};

/// Why media was refused. Messages are for the uploader; causes stay in `source()` for logs.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("The file is empty")]
    Empty,
    /// The content or its declared type is not acceptable; the message says what was found
    /// and what was expected.
    #[error("Invalid file type: {0}")]
    InvalidType(String),
    #[error("File extension '{ext}' is not allowed. Allowed extensions: {allowed}")]
    ExtensionNotAllowed { ext: String, allowed: String },
    /// Refused from the header, before any pixel was decoded.
    #[error("The image is {width}×{height} = {pixels} pixels; at most {max_pixels} can be read")]
    ImageTooLarge {
        width: u32,
        height: u32,
        pixels: u64,
        max_pixels: u64,
    },
    #[error("The image could not be read")]
    Unreadable(#[source] Option<image::ImageError>),
}

impl From<MediaError> for AppError {
    fn from(e: MediaError) -> Self {
        AppError::BadInput(e.to_string())
    }
}

/// One accepted content type: its artifact kind and file extensions (the first is canonical).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowedType {
    pub kind: ArtifactKind,
    pub content_type: &'static str,
    pub extensions: &'static [&'static str],
}

const fn allowed(
    kind: ArtifactKind,
    content_type: &'static str,
    extensions: &'static [&'static str],
) -> AllowedType {
    AllowedType {
        kind,
        content_type,
        extensions,
    }
}

/// Audio in an MP4 container (`.m4a`), whatever brand the file declares.
const AUDIO_MP4: AllowedType = allowed(ArtifactKind::Audio, "audio/mp4", &["m4a"]);
/// Text without a declared type.
const TEXT_PLAIN: AllowedType = allowed(ArtifactKind::Text, "text/plain", &["txt"]);

/// Every content type Boards accepts and stores, in canonical form.
pub const ALLOWED_TYPES: &[AllowedType] = &[
    allowed(ArtifactKind::Image, "image/jpeg", &["jpg", "jpeg"]),
    allowed(ArtifactKind::Image, "image/png", &["png"]),
    allowed(ArtifactKind::Image, "image/webp", &["webp"]),
    allowed(ArtifactKind::Image, "image/gif", &["gif"]),
    allowed(ArtifactKind::Video, "video/mp4", &["mp4"]),
    allowed(ArtifactKind::Video, "video/webm", &["webm"]),
    allowed(ArtifactKind::Video, "video/quicktime", &["mov"]),
    allowed(ArtifactKind::Audio, "audio/mpeg", &["mp3"]),
    allowed(ArtifactKind::Audio, "audio/wav", &["wav"]),
    allowed(ArtifactKind::Audio, "audio/ogg", &["ogg"]),
    AUDIO_MP4,
    allowed(ArtifactKind::Audio, "audio/flac", &["flac"]),
    TEXT_PLAIN,
    allowed(ArtifactKind::Text, "text/markdown", &["md"]),
    allowed(ArtifactKind::Text, "application/json", &["json"]),
];

/// Other names clients (and `infer`) use for allowed types.
const ALIASES: &[(&str, &str)] = &[
    ("image/jpg", "image/jpeg"),
    ("image/pjpeg", "image/jpeg"),
    ("audio/mp3", "audio/mpeg"),
    ("audio/x-wav", "audio/wav"),
    ("audio/wave", "audio/wav"),
    ("audio/vnd.wave", "audio/wav"),
    ("audio/x-m4a", "audio/mp4"),
    ("audio/m4a", "audio/mp4"),
    ("audio/x-flac", "audio/flac"),
    ("video/x-m4v", "video/mp4"),
];

/// A content type lower-cased, without parameters (`; charset=utf-8`), aliases resolved.
pub fn canonical_content_type(content_type: &str) -> String {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match ALIASES.iter().find(|(alias, _)| *alias == essence) {
        Some((_, canonical)) => (*canonical).to_owned(),
        None => essence,
    }
}

/// The allow-list entry for a content type (in any spelling [`canonical_content_type`]
/// understands); `None` means refused, for uploads and storage alike.
pub fn allowed_type(content_type: &str) -> Option<&'static AllowedType> {
    let canonical = canonical_content_type(content_type);
    ALLOWED_TYPES.iter().find(|t| t.content_type == canonical)
}

/// The allow-list entry for a file extension (with or without the dot, any case).
pub fn allowed_type_for_extension(extension: &str) -> Option<&'static AllowedType> {
    let ext = extension.trim_start_matches('.').to_ascii_lowercase();
    ALLOWED_TYPES
        .iter()
        .find(|t| t.extensions.contains(&ext.as_str()))
}

/// The allowed content types of one kind, for messages.
fn allowed_list(kind: ArtifactKind) -> String {
    ALLOWED_TYPES
        .iter()
        .filter(|t| t.kind == kind)
        .map(|t| t.content_type)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_normalised_before_lookup() {
        assert_eq!(canonical_content_type("Image/JPG"), "image/jpeg");
        assert_eq!(
            canonical_content_type("text/plain; charset=utf-8"),
            "text/plain"
        );
        assert_eq!(canonical_content_type(" audio/x-wav "), "audio/wav");
        assert_eq!(
            allowed_type("audio/x-m4a").map(|t| t.content_type),
            Some("audio/mp4")
        );
        assert_eq!(
            allowed_type("audio/mp3").map(|t| t.kind),
            Some(ArtifactKind::Audio)
        );
        assert!(allowed_type("text/markdown; charset=UTF-8").is_some());
    }

    #[test]
    fn svg_html_and_generic_types_are_not_in_the_allow_list() {
        for refused in [
            "image/svg+xml",
            "text/html",
            "application/octet-stream",
            "video/x-msvideo",
            "image/bmp",
            "",
        ] {
            assert!(allowed_type(refused).is_none(), "{refused}");
        }
    }

    #[test]
    fn extensions_map_to_their_types() {
        assert_eq!(
            allowed_type_for_extension(".JPEG").map(|t| t.content_type),
            Some("image/jpeg")
        );
        assert_eq!(
            allowed_type_for_extension("m4a").map(|t| t.content_type),
            Some("audio/mp4")
        );
        assert!(allowed_type_for_extension("svg").is_none());
    }

    #[test]
    fn every_type_has_a_canonical_extension_and_a_unique_name() {
        for (i, t) in ALLOWED_TYPES.iter().enumerate() {
            assert!(!t.extensions.is_empty(), "{}", t.content_type);
            assert_eq!(canonical_content_type(t.content_type), t.content_type);
            assert!(ALLOWED_TYPES[i + 1..]
                .iter()
                .all(|o| o.content_type != t.content_type));
        }
    }
}
