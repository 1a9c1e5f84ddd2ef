//! `GET`/`HEAD /api/storage/{key}`: stored artifacts of the local provider, with
//! `Content-Type`, validators, ranges (video seeking) and `?download=true` (see
//! [`super::files`] for the HTTP semantics).

use actix_web::{
    http::header::{self, ContentDisposition, DispositionParam, DispositionType},
    web, HttpRequest, HttpResponse,
};
use boards_shared::{
    storage::{Delivery, StorageError},
    AppError,
};
use serde::Deserialize;
use serde_json::json;

use super::{
    error_response,
    files::{self, ServedFile},
};
use crate::state::AppState;

#[derive(Deserialize)]
struct Params {
    download: Option<String>,
    filename: Option<String>,
    /// Signed URLs of private deployments.
    expires: Option<String>,
    signature: Option<String>,
}

/// `download` as FastAPI/pydantic reads a boolean query parameter.
fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

pub async fn status() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "Storage endpoint ready"}))
}

pub async fn serve(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Ok(params) = web::Query::<Params>::from_query(req.query_string()) else {
        return error_response(&AppError::bad_input(
            "Invalid query string: expected at most one 'download' and one 'filename'",
        ));
    };
    let download = match params.download.as_deref().map(parse_bool) {
        None => false,
        Some(Some(b)) => b,
        Some(None) => {
            return error_response(&AppError::bad_input(
                "Invalid query parameter 'download': expected true or false (or 1 or 0)",
            ))
        }
    };
    let key = path.into_inner();
    // Private deployments serve only what a valid, unexpired signature covers (without a
    // local store there is no signer: their URLs are the store's presigned ones).
    if !state.config.storage.public {
        let Some(signer) = &state.signer else {
            return error_response(&AppError::forbidden(
                "Access denied: this deployment serves artifacts through signed URLs",
            ));
        };
        if let Err(e) = signer.verify(&key, params.expires.as_deref(), params.signature.as_deref())
        {
            return error_response(&AppError::forbidden(format!("Access denied: {e}")));
        }
    }
    // A bucket may hold more than artifacts: through an S3 store only keys of the artifact
    // layout are served or presigned.
    let has_bucket = state
        .config
        .storage
        .layout
        .providers
        .values()
        .any(|p| matches!(p, boards_shared::storage::settings::ProviderSpec::S3(_)));
    if has_bucket && !boards_shared::storage::is_artifact_key(&key) {
        return error_response(&AppError::not_found("File not found"));
    }
    // Stores that serve their own objects get a redirect (a signed or public URL).
    let delivery = match state.storage.delivery_of(&key).await {
        Ok(d) => d,
        Err(e) => return error_response(&refused(e)),
    };
    if let Delivery::Redirect(url) = delivery {
        return HttpResponse::TemporaryRedirect()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
    }
    let info = match state.storage.head(&key).await {
        Ok(info) => info,
        Err(e) => return error_response(&refused(e)),
    };
    let default_name = key.rsplit('/').next().unwrap_or("file").to_string();
    let name = params
        .filename
        .as_deref()
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control() && *c != '"' && *c != '/' && *c != '\\')
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .unwrap_or(default_name);
    let disposition = ContentDisposition {
        disposition: if download {
            DispositionType::Attachment
        } else {
            DispositionType::Inline
        },
        parameters: vec![DispositionParam::Filename(name)],
    };
    let mut res = files::respond(
        &req,
        ServedFile {
            storage: state.storage.clone(),
            key,
            content_type: info.content_type.clone(),
            info,
            disposition,
        },
    );
    res.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    res
}

/// What a store's refusal to serve `key` means to the client: missing (404), a malformed key
/// or one that resolves outside the storage directory (403), or the store being down (503).
fn refused(e: StorageError) -> AppError {
    match e {
        StorageError::NotFound(_) => AppError::not_found("File not found"),
        StorageError::InvalidKey(_) | StorageError::OutsideRoot(_) => {
            AppError::forbidden("Access denied")
        }
        e => AppError::Unavailable(
            "Storage is unavailable".into(),
            Some(anyhow::anyhow!("{e}")),
        ),
    }
}
