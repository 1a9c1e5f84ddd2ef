//! The `config:` map of an `s3` provider in `storage_config.yaml` (runtime.md §4.2), with the
//! original's key names, its defaults and our additions (prefix, presigning, delivery, multipart).

use serde::{Deserialize, Serialize};

use crate::config::Secret;

const MIB: u64 = 1024 * 1024;
/// The smallest part S3 accepts (except the last one).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// The largest part S3 accepts.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// SigV4 presigned URLs live at most a week.
pub const MAX_URL_EXPIRY_SECONDS: u64 = 604_800;

/// How `GET /api/storage/{key}` serves an object of this provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum S3Delivery {
    /// Redirect to [`super::S3Storage::url`] (presigned or public): the bytes bypass the API.
    #[default]
    Redirect,
    /// The API streams the object itself (ranges, validators, its own access control).
    Proxy,
}

/// Extra PutObject / CreateMultipartUpload parameters. The original defaulted to `AES256` and
/// `STANDARD`; we send nothing unless asked, because SeaweedFS and MinIO may reject `AES256`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    #[serde(alias = "ServerSideEncryption")]
    pub server_side_encryption: Option<String>,
    #[serde(alias = "StorageClass")]
    pub storage_class: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// Required.
    pub bucket: String,
    /// Default `us-east-1`; with `endpoint_url` any name the server expects.
    pub region: String,
    /// With `aws_secret_access_key`: static credentials. Without: the AWS default chain
    /// (environment, profile, container, instance metadata).
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<Secret>,
    pub aws_session_token: Option<Secret>,
    /// An S3-compatible server (MinIO, R2, SeaweedFS, Supabase), e.g. `http://127.0.0.1:8333`.
    pub endpoint_url: Option<String>,
    /// Path-style public URLs (`{endpoint}/{bucket}/{key}`); default: true with `endpoint_url`.
    /// Requests themselves are always path-style (rusoto cannot address virtual hosts).
    pub path_style: Option<bool>,
    /// Prepended to every key inside the bucket, e.g. `boards/`.
    pub prefix: String,
    /// A CloudFront domain (`d123.cloudfront.net`): URLs become `https://{domain}/{prefix}{key}`.
    pub cloudfront_domain: Option<String>,
    /// Any CDN base URL (`https://cdn.example.com/media`); wins over `cloudfront_domain`.
    pub cdn_base_url: Option<String>,
    /// Without a CDN: URLs are presigned GETs (default), or plain public URLs when false (the
    /// objects must then be publicly readable).
    pub presign: bool,
    /// Lifetime of presigned URLs (default 3600, at most 604800).
    pub url_expiry_seconds: u64,
    pub delivery: S3Delivery,
    /// Bodies larger than this go up as a multipart upload (default 8 MiB).
    pub multipart_threshold: u64,
    /// Size of each multipart part (default 8 MiB, at least 5 MiB).
    pub part_size: u64,
    /// Memory all puts of this process may hold in part buffers at once (default 16 MiB, at
    /// least the larger of `multipart_threshold` and `part_size`). A streamed put reserves one
    /// buffer's worth before it reads on; others wait (backpressure on their senders), so many
    /// concurrent uploads cannot add up past it.
    pub buffer_memory: u64,
    /// Longest wait for the store to take one request and answer (the body of a put or part
    /// included), default 60 s: a store that hangs fails the put as unavailable (retried)
    /// instead of holding it.
    pub request_timeout_seconds: u64,
    pub upload_config: UploadConfig,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            region: "us-east-1".into(),
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
            endpoint_url: None,
            path_style: None,
            prefix: String::new(),
            cloudfront_domain: None,
            cdn_base_url: None,
            presign: true,
            url_expiry_seconds: 3600,
            delivery: S3Delivery::Redirect,
            multipart_threshold: 8 * MIB,
            part_size: 8 * MIB,
            buffer_memory: 16 * MIB,
            request_timeout_seconds: 60,
            upload_config: UploadConfig::default(),
        }
    }
}

impl S3Settings {
    /// Settings for `bucket` with every default.
    pub fn for_bucket(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            ..Self::default()
        }
    }

    /// Whether public URLs put the bucket in the path rather than in the host name.
    pub fn uses_path_style(&self) -> bool {
        self.path_style.unwrap_or(self.endpoint_url.is_some())
    }

    /// `endpoint_url` without a trailing `/`.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint_url
            .as_deref()
            .map(|e| e.trim_end_matches('/'))
            .filter(|e| !e.is_empty())
    }

    /// Checks the settings; the error names the offending key.
    /// What one streamed put holds in memory at most (one part, or a body up to the
    /// threshold), rounded up to whole MiB.
    pub fn buffer_size(&self) -> u64 {
        self.multipart_threshold.max(self.part_size).div_ceil(MIB) * MIB
    }

    pub fn validate(&self) -> Result<(), String> {
        let b = &self.bucket;
        if b.is_empty() {
            return Err("s3 `bucket` is required".into());
        }
        if b.len() < 3
            || b.len() > 63
            || !b
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        {
            return Err(format!(
                "s3 `bucket` `{b}` is not a valid bucket name (3-63 of a-z 0-9 . -)"
            ));
        }
        if self.region.trim().is_empty() {
            return Err("s3 `region` must not be empty".into());
        }
        if self.endpoint().is_none() && self.region.parse::<rusoto_core::Region>().is_err() {
            return Err(format!(
                "s3 `region` `{}` is not an AWS region (set `endpoint_url` for other servers)",
                self.region
            ));
        }
        match (&self.aws_access_key_id, &self.aws_secret_access_key) {
            (Some(id), Some(secret)) if id.is_empty() || secret.is_empty() => {
                return Err(
                    "s3 `aws_access_key_id` and `aws_secret_access_key` must not be empty".into(),
                )
            }
            (Some(_), None) => {
                return Err("s3 `aws_access_key_id` is set without `aws_secret_access_key`".into())
            }
            (None, Some(_)) => {
                return Err("s3 `aws_secret_access_key` is set without `aws_access_key_id`".into())
            }
            _ => {}
        }
        if self.aws_session_token.is_some() && self.aws_access_key_id.is_none() {
            return Err("s3 `aws_session_token` needs `aws_access_key_id`".into());
        }
        if let Some(e) = &self.endpoint_url {
            if !(e.starts_with("http://") || e.starts_with("https://")) || self.endpoint().is_none()
            {
                return Err(format!(
                    "s3 `endpoint_url` `{e}` must be an http:// or https:// URL"
                ));
            }
        }
        if self.path_style == Some(false) && self.endpoint().is_some() {
            // Virtual-host public URLs need the host name of the endpoint.
            let host = self.endpoint().and_then(host_of).unwrap_or_default();
            if host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" {
                return Err(format!(
                    "s3 `path_style: false` needs a DNS name in `endpoint_url`, not `{host}`"
                ));
            }
        }
        let p = &self.prefix;
        if p.starts_with('/')
            || p.contains('\\')
            || p.contains("//")
            || p.split('/').any(|s| s == "." || s == "..")
        {
            return Err(format!(
                "s3 `prefix` `{p}` must be relative, without `//`, `.` or `..` segments"
            ));
        }
        if let Some(d) = &self.cloudfront_domain {
            if d.is_empty() || d.contains('/') {
                return Err(format!(
                    "s3 `cloudfront_domain` `{d}` must be a bare host name (no scheme, no path)"
                ));
            }
        }
        if let Some(u) = &self.cdn_base_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "s3 `cdn_base_url` `{u}` must be an http:// or https:// URL"
                ));
            }
        }
        if self.url_expiry_seconds == 0 || self.url_expiry_seconds > MAX_URL_EXPIRY_SECONDS {
            return Err(format!(
                "s3 `url_expiry_seconds` must be between 1 and {MAX_URL_EXPIRY_SECONDS}, not {}",
                self.url_expiry_seconds
            ));
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(format!(
                "s3 `part_size` must be between {MIN_PART_SIZE} (5 MiB) and {MAX_PART_SIZE} (5 GiB), not {}",
                self.part_size
            ));
        }
        if self.multipart_threshold > MAX_PART_SIZE {
            return Err(format!(
                "s3 `multipart_threshold` must be at most {MAX_PART_SIZE} (5 GiB), not {}",
                self.multipart_threshold
            ));
        }
        if !(1..=3600).contains(&self.request_timeout_seconds) {
            return Err(format!(
                "s3 `request_timeout_seconds` must be between 1 and 3600, not {}",
                self.request_timeout_seconds
            ));
        }
        if self.buffer_memory < self.buffer_size() {
            return Err(format!(
                "s3 `buffer_memory` must be at least the larger of `multipart_threshold` and \
                 `part_size` ({}), not {}",
                self.buffer_size(),
                self.buffer_memory
            ));
        }
        Ok(())
    }
}

/// The host of `scheme://host[:port][/path]`.
pub(super) fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    Some(host.trim_start_matches('[').trim_end_matches(']'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let s: S3Settings = serde_yaml::from_str("bucket: media").unwrap();
        assert_eq!(s.region, "us-east-1");
        assert!(s.presign);
        assert_eq!(s.url_expiry_seconds, 3600);
        assert_eq!(s.delivery, S3Delivery::Redirect);
        assert_eq!(s.multipart_threshold, 8 * MIB);
        assert_eq!(s.part_size, 8 * MIB);
        assert_eq!(s.upload_config, UploadConfig::default());
        assert!(!s.uses_path_style());
        s.validate().unwrap();
    }

    #[test]
    fn the_original_keys_are_accepted() {
        let s: S3Settings = serde_yaml::from_str(
            "bucket: media\nregion: eu-west-1\naws_access_key_id: AKIA\n\
             aws_secret_access_key: shh\nendpoint_url: http://127.0.0.1:9000/\n\
             cloudfront_domain: d1.cloudfront.net\ndelivery: proxy\n\
             upload_config: { ServerSideEncryption: AES256, StorageClass: STANDARD_IA }",
        )
        .unwrap();
        s.validate().unwrap();
        assert_eq!(s.endpoint(), Some("http://127.0.0.1:9000"));
        assert!(s.uses_path_style());
        assert_eq!(s.delivery, S3Delivery::Proxy);
        assert_eq!(
            s.upload_config.server_side_encryption.as_deref(),
            Some("AES256")
        );
        assert_eq!(
            s.upload_config.storage_class.as_deref(),
            Some("STANDARD_IA")
        );
        // The secret never shows in Debug output.
        assert!(!format!("{s:?}").contains("shh"));
        assert!(serde_yaml::from_str::<S3Settings>("bucket: x\nbukket: y").is_err());
    }

    #[test]
    fn bad_settings_name_the_key() {
        let base = S3Settings::for_bucket("media");
        let cases: Vec<(S3Settings, &str)> = vec![
            (S3Settings::default(), "`bucket`"),
            (S3Settings::for_bucket("Bad_Bucket"), "`bucket`"),
            (
                S3Settings {
                    region: "mars-1".into(),
                    ..base.clone()
                },
                "`region`",
            ),
            (
                S3Settings {
                    aws_access_key_id: Some("id".into()),
                    ..base.clone()
                },
                "`aws_secret_access_key`",
            ),
            (
                S3Settings {
                    endpoint_url: Some("ftp://x".into()),
                    ..base.clone()
                },
                "`endpoint_url`",
            ),
            (
                S3Settings {
                    part_size: MIB,
                    ..base.clone()
                },
                "`part_size`",
            ),
            (
                S3Settings {
                    url_expiry_seconds: MAX_URL_EXPIRY_SECONDS + 1,
                    ..base.clone()
                },
                "`url_expiry_seconds`",
            ),
            (
                S3Settings {
                    prefix: "/abs/".into(),
                    ..base.clone()
                },
                "`prefix`",
            ),
            (
                S3Settings {
                    cloudfront_domain: Some("https://d1.cloudfront.net".into()),
                    ..base.clone()
                },
                "`cloudfront_domain`",
            ),
        ];
        for (settings, key) in cases {
            let err = settings.validate().unwrap_err();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }
}
