//! Upload filenames: sanitising (contract §2.7 step 4) and the extension allow-list check
//! (contract §3.4 step 4, `BOARDS_ALLOWED_UPLOAD_EXTENSIONS`).

use super::MediaError;

/// The longest filename most file systems accept, in bytes.
const MAX_FILENAME_BYTES: usize = 255;
/// Longer "extensions" are not kept when a name is shortened: they are part of the name.
const MAX_KEPT_EXTENSION_BYTES: usize = 16;

/// The default of `BOARDS_ALLOWED_UPLOAD_EXTENSIONS`. `.avi` is listed (as in the original)
/// but AVI content is not in the allow-list, so [`super::accept`] refuses it.
pub fn default_upload_extensions() -> Vec<String> {
    [
        ".jpg", ".jpeg", ".png", ".gif", ".webp", ".mp4", ".mov", ".avi", ".webm", ".mp3", ".wav",
        ".ogg", ".m4a", ".txt", ".md", ".json",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// The last path component, whichever separator the client's OS used.
fn basename(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or_default()
}

/// A safe display/storage name for an uploaded file: the basename only (both `/` and `\`
/// separate), NUL and other control characters removed, each of `< > : " | ? * \` replaced by
/// `_`, leading and trailing dots and spaces stripped, `uploaded_file` when nothing is left,
/// and at most 255 bytes (cut on a character boundary, keeping the extension). Unicode is kept.
pub fn sanitize_filename(name: &str) -> String {
    let cleaned: String = basename(name)
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' | '\\' => '_',
            c => c,
        })
        .collect();
    let trimmed = trim_dots_and_spaces(&cleaned);
    if trimmed.is_empty() {
        return "uploaded_file".to_owned();
    }
    cap_length(trimmed)
}

fn trim_dots_and_spaces(s: &str) -> &str {
    s.trim_matches(['.', ' '])
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix_within(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn cap_length(name: &str) -> String {
    if name.len() <= MAX_FILENAME_BYTES {
        return name.to_owned();
    }
    let extension = name
        .rfind('.')
        .map(|dot| &name[dot..])
        .filter(|ext| ext.len() <= MAX_KEPT_EXTENSION_BYTES);
    match extension {
        Some(ext) => {
            let stem = &name[..name.len() - ext.len()];
            let stem = trim_dots_and_spaces(prefix_within(stem, MAX_FILENAME_BYTES - ext.len()));
            format!("{stem}{ext}")
        }
        None => trim_dots_and_spaces(prefix_within(name, MAX_FILENAME_BYTES)).to_owned(),
    }
}

/// The extension as Python's `os.path.splitext` sees it, lower-cased with its dot (`.png`),
/// `None` without one (leading dots of `.bashrc` do not start an extension).
fn extension_of(filename: &str) -> Option<String> {
    let base = basename(filename);
    let without_leading_dots = base.trim_start_matches('.');
    let dot = without_leading_dots.rfind('.')?;
    Some(without_leading_dots[dot..].to_lowercase())
}

/// Contract §3.4 step 4: a filename with an extension must have one of `allowed`
/// (case-insensitive; entries with or without the dot); files without one pass.
pub fn check_extension(filename: &str, allowed: &[String]) -> Result<(), MediaError> {
    let Some(ext) = extension_of(filename) else {
        return Ok(());
    };
    let listed = allowed.iter().any(|a| {
        let a = a.trim();
        let a = a.strip_prefix('.').unwrap_or(a);
        ext[1..].eq_ignore_ascii_case(a)
    });
    if listed {
        Ok(())
    } else {
        Err(MediaError::ExtensionNotAllowed {
            ext,
            allowed: allowed.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_sanitised_as_the_contract_says() {
        for (input, expected) in [
            ("../../../etc/passwd", "passwd"),
            ("a<b>c.png", "a_b_c.png"),
            (" ..hidden. ", "hidden"),
            ("", "uploaded_file"),
            ("...", "uploaded_file"),
            ("dir/", "uploaded_file"),
            ("C:\\Users\\x\\pic.png", "pic.png"),
            ("a:b\"c|d?e*f.txt", "a_b_c_d_e_f.txt"),
            ("nul\0byte.png", "nulbyte.png"),
            ("tab\there\n.png", "tabhere.png"),
            ("фото 猫.jpg", "фото 猫.jpg"),
            ("report.final.PDF", "report.final.PDF"),
        ] {
            assert_eq!(sanitize_filename(input), expected, "{input:?}");
        }
    }

    #[test]
    fn long_filenames_are_capped_on_a_char_boundary_keeping_the_extension() {
        let long = format!("{}.png", "é".repeat(200));
        let capped = sanitize_filename(&long);
        assert!(capped.len() <= 255, "{}", capped.len());
        assert!(capped.ends_with("é.png"), "{capped}");
        assert_eq!(capped.len(), 254, "125 two-byte chars and .png");

        let no_ext = "x".repeat(300);
        assert_eq!(sanitize_filename(&no_ext), "x".repeat(255));

        // A "extension" longer than 16 bytes is part of the name.
        let long_ext = format!("a.{}", "b".repeat(300));
        assert_eq!(sanitize_filename(&long_ext).len(), 255);
    }

    #[test]
    fn extensions_are_checked_case_insensitively() {
        let allowed = default_upload_extensions();
        assert!(check_extension("photo.JPG", &allowed).is_ok());
        assert!(check_extension("clip.mov", &allowed).is_ok());
        assert!(check_extension("README", &allowed).is_ok());
        assert!(check_extension(".bashrc", &allowed).is_ok());
        assert!(check_extension("x.png", &["png".to_owned()]).is_ok());

        let err = check_extension("evil.SVG", &allowed).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "File extension '.svg' is not allowed. Allowed extensions: {}",
                allowed.join(", ")
            )
        );
        assert!(check_extension("archive.tar.gz", &allowed).is_err());
        assert!(check_extension("dir.png/script.sh", &allowed).is_err());
    }
}
