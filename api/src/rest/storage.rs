//! `GET /api/storage/{key}`: stored artifacts of the local provider, with `Content-Type`,
//! `ETag`/`Last-Modified`, `Range` (video seeking) and `?download=true`.

use actix_files::NamedFile;
use actix_web::{
    http::header::{self, ContentDisposition, DispositionParam, DispositionType},
    web, HttpRequest, HttpResponse,
};
use boards_shared::{
    storage::{content_type_of, Storage},
    AppError,
};
use serde::Deserialize;
use serde_json::json;

use super::error_response;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct Params {
    #[serde(default)]
    download: bool,
    filename: Option<String>,
}

pub async fn status() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "Storage endpoint ready"}))
}

pub async fn serve(
    req: HttpRequest,
    path: web::Path<String>,
    params: web::Query<Params>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let key = path.into_inner();
    let Ok(file_path) = state.storage.local_path(&key) else {
        return error_response(&AppError::forbidden("Access denied"));
    };
    let file = match NamedFile::open_async(&file_path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return error_response(&AppError::not_found("File not found"))
        }
        Err(_) => return error_response(&AppError::bad_input("Path is not a file")),
    };
    if file.metadata().is_dir() {
        return error_response(&AppError::bad_input("Path is not a file"));
    }
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
        disposition: if params.download {
            DispositionType::Attachment
        } else {
            DispositionType::Inline
        },
        parameters: vec![DispositionParam::Filename(name)],
    };
    let content_type = content_type_of(&key).parse().unwrap_or(mime_octet());
    let mut res = file
        .set_content_type(content_type)
        .set_content_disposition(disposition)
        .use_etag(true)
        .use_last_modified(true)
        .into_response(&req);
    res.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    res
}

fn mime_octet() -> mime::Mime {
    mime::APPLICATION_OCTET_STREAM
}
