//! Turning rusoto's errors into [`StorageError`]s: what is worth retrying (network, 5xx,
//! throttling) and what is not (credentials, missing bucket), with messages an operator can act
//! on and never a credential in them.

use rusoto_core::RusotoError;
use rusoto_s3::{
    AbortMultipartUploadError, CompleteMultipartUploadError, CreateBucketError,
    CreateMultipartUploadError, DeleteObjectError, GetObjectError, HeadBucketError,
    HeadObjectError, PutObjectError, UploadPartError,
};

use crate::storage::StorageError;

/// The S3 error code of an operation's modelled service error.
pub(super) trait ServiceCode {
    fn code(&self) -> &'static str;
}

macro_rules! no_modelled_errors {
    ($($t:ty),*) => {$(
        impl ServiceCode for $t {
            fn code(&self) -> &'static str {
                match *self {}
            }
        }
    )*};
}
no_modelled_errors!(
    PutObjectError,
    DeleteObjectError,
    CreateMultipartUploadError,
    UploadPartError,
    CompleteMultipartUploadError
);

impl ServiceCode for GetObjectError {
    fn code(&self) -> &'static str {
        match self {
            Self::NoSuchKey(_) => "NoSuchKey",
            Self::InvalidObjectState(_) => "InvalidObjectState",
        }
    }
}

impl ServiceCode for HeadObjectError {
    fn code(&self) -> &'static str {
        match self {
            Self::NoSuchKey(_) => "NoSuchKey",
        }
    }
}

impl ServiceCode for HeadBucketError {
    fn code(&self) -> &'static str {
        match self {
            Self::NoSuchBucket(_) => "NoSuchBucket",
        }
    }
}

impl ServiceCode for CreateBucketError {
    fn code(&self) -> &'static str {
        match self {
            Self::BucketAlreadyExists(_) => "BucketAlreadyExists",
            Self::BucketAlreadyOwnedByYou(_) => "BucketAlreadyOwnedByYou",
        }
    }
}

impl ServiceCode for AbortMultipartUploadError {
    fn code(&self) -> &'static str {
        match self {
            Self::NoSuchUpload(_) => "NoSuchUpload",
        }
    }
}

/// What the request was about, for the message and for what a 404 means.
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    Bucket,
    Object(&'a str),
}

/// A failed request, reduced to what matters for classifying it.
#[derive(Debug)]
pub(super) struct Failure {
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// S3 error code (`NoSuchKey`, `SlowDown`, ...), when the answer had one.
    pub code: Option<String>,
    pub detail: String,
    /// Could not reach the server, or could not read its answer.
    pub transport: bool,
}

impl Failure {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl<E: ServiceCode + std::fmt::Display> From<RusotoError<E>> for Failure {
    fn from(err: RusotoError<E>) -> Self {
        match err {
            RusotoError::Service(e) => Self {
                status: None,
                code: Some(e.code().to_string()),
                detail: e.to_string(),
                transport: false,
            },
            RusotoError::HttpDispatch(e) => Self {
                status: None,
                code: None,
                detail: e.to_string(),
                transport: true,
            },
            RusotoError::Credentials(e) => Self {
                status: None,
                code: Some("CredentialsUnavailable".into()),
                detail: format!("could not obtain AWS credentials: {e}"),
                transport: false,
            },
            RusotoError::Unknown(res) => {
                let body = String::from_utf8_lossy(&res.body);
                let code = xml_field(&body, "Code");
                let message = xml_field(&body, "Message");
                let status = res.status.as_u16();
                Self {
                    status: Some(status),
                    detail: match (&code, message) {
                        (Some(c), Some(m)) => format!("HTTP {status} {c}: {m}"),
                        (Some(c), None) => format!("HTTP {status} {c}"),
                        _ => format!("HTTP {status}"),
                    },
                    code,
                    transport: false,
                }
            }
            RusotoError::ParseError(e) => Self {
                status: None,
                code: None,
                detail: format!("unreadable answer: {e}"),
                transport: true,
            },
            RusotoError::Validation(e) => Self {
                status: None,
                code: Some("Validation".into()),
                detail: e,
                transport: false,
            },
            RusotoError::Blocking => Self {
                status: None,
                code: None,
                detail: "blocking call failed".into(),
                transport: true,
            },
        }
    }
}

/// The text of the first `<name>…</name>` in an S3 XML error body.
fn xml_field(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&format!("</{name}>"))?;
    Some(body[start..start + len].trim().to_string()).filter(|s| !s.is_empty())
}

/// Classifies a failure on `bucket` (and the object `target` names, if any).
pub(super) fn classify(f: Failure, bucket: &str, target: Target<'_>) -> StorageError {
    let status = f.status.unwrap_or(0);
    let code = f.code.as_deref().unwrap_or("");
    if f.transport {
        return StorageError::Unavailable(format!("cannot reach the S3 store: {}", f.detail));
    }
    if code == "CredentialsUnavailable" {
        // The default chain (instance metadata, container endpoint) may come back.
        return StorageError::Unavailable(f.detail);
    }
    if status >= 500
        || status == 429
        || matches!(
            code,
            "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" | "Throttling"
        )
    {
        return StorageError::Unavailable(format!("the S3 store is struggling: {}", f.detail));
    }
    if code == "NoSuchBucket" {
        return StorageError::Refused(format!("bucket `{bucket}` does not exist"));
    }
    if status == 403
        || matches!(
            code,
            "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken"
        )
    {
        return StorageError::Refused(format!(
            "access denied to bucket `{bucket}` (check the credentials): {}",
            f.detail
        ));
    }
    if status == 416 || code == "InvalidRange" {
        return StorageError::BadRange;
    }
    if status == 404 || code == "NoSuchKey" {
        return match target {
            Target::Object(key) => StorageError::NotFound(key.to_string()),
            Target::Bucket => StorageError::Refused(format!("bucket `{bucket}` does not exist")),
        };
    }
    StorageError::Refused(format!("the S3 store refused: {}", f.detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, code: Option<&str>) -> Failure {
        Failure {
            status: Some(status),
            code: code.map(str::to_string),
            detail: format!("HTTP {status}"),
            transport: false,
        }
    }

    #[test]
    fn failures_are_classified() {
        let obj = Target::Object("a/b");
        let c = |f| classify(f, "media", obj);
        assert!(c(answer(503, None)).is_transient());
        assert!(c(answer(429, None)).is_transient());
        assert!(c(answer(400, Some("SlowDown"))).is_transient());
        assert!(c(Failure {
            status: None,
            code: None,
            detail: "connection refused".into(),
            transport: true
        })
        .is_transient());
        let StorageError::Refused(m) = c(answer(403, Some("AccessDenied"))) else {
            panic!("403 should be refused")
        };
        assert!(m.contains("access denied to bucket `media` (check the credentials)"));
        let StorageError::Refused(m) = c(answer(404, Some("NoSuchBucket"))) else {
            panic!("NoSuchBucket should be refused")
        };
        assert_eq!(m, "bucket `media` does not exist");
        assert!(matches!(c(answer(404, None)), StorageError::NotFound(k) if k == "a/b"));
        assert!(matches!(
            classify(answer(404, None), "media", Target::Bucket),
            StorageError::Refused(_)
        ));
        assert!(matches!(c(answer(416, None)), StorageError::BadRange));
        assert!(!c(answer(400, Some("InvalidArgument"))).is_transient());
    }

    #[test]
    fn xml_error_fields_are_read() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                    <Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(xml_field(body, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(xml_field(body, "Resource"), None);
    }
}
