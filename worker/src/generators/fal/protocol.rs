//! fal.ai's queue API, as it answers (only the fields Boards reads).

use serde::Deserialize;

/// `POST {queue}/{endpoint}` answers with the request's id.
#[derive(Debug, Deserialize)]
pub struct Submitted {
    pub request_id: String,
}

/// `GET .../requests/{id}/status?logs=1`.
#[derive(Debug, Deserialize)]
pub struct Status {
    pub status: String,
    #[serde(default)]
    pub queue_position: Option<u64>,
    #[serde(default)]
    pub logs: Option<Vec<Log>>,
    /// Set on `COMPLETED` when the request failed.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Log {
    #[serde(default)]
    pub message: String,
}

/// `POST {rest}/storage/auth/token?storage_type=fal-cdn-v3`: a token for the CDN upload.
#[derive(Debug, Deserialize)]
pub struct UploadToken {
    pub token: String,
    pub token_type: String,
    pub base_url: String,
}

/// `POST {cdn}/files/upload`.
#[derive(Debug, Deserialize)]
pub struct Uploaded {
    pub access_url: String,
}

/// The path of an endpoint's requests: only the owner and alias of the endpoint id
/// (`fal-ai/nano-banana/edit` → `fal-ai/nano-banana`), as fal's queue routes them.
pub fn app_path(endpoint: &str) -> String {
    endpoint.split('/').take(2).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_paths_use_owner_and_alias_only() {
        assert_eq!(
            super::app_path("fal-ai/nano-banana/edit"),
            "fal-ai/nano-banana"
        );
        assert_eq!(super::app_path("fal-ai/veo3"), "fal-ai/veo3");
    }
}
