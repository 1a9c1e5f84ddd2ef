//! Uploads (contract §2.7, §3.4): `POST /api/uploads/artifact` and GraphQL `uploadArtifact`
//! against the real API, PostgreSQL and local storage. URL imports only ever reach a server on
//! 127.0.0.1.

use std::{io::Cursor, path::Path};

use reqwest::{multipart, StatusCode};
use serde_json::{json, Value};

use crate::util::{error_of, fixtures, Options, TestApp, TestUser};

const CREATE_BOARD: &str =
    "mutation($input: CreateBoardInput!) { createBoard(input: $input) { id } }";
const GENERATION: &str =
    "query($id: UUID!) { generation(id: $id) { id status storageUrl thumbnailUrl \
    artifactType generatorName inputParams outputMetadata errorMessage } }";
const UPLOAD_URL: &str =
    "mutation($input: UploadArtifactInput!) { uploadArtifact(input: $input) { \
    id status storageUrl thumbnailUrl artifactType generatorName inputParams outputMetadata } }";

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn board(app: &TestApp, user: &TestUser, public: bool) -> String {
    let data = app
        .ok(
            Some(&user.token),
            CREATE_BOARD,
            json!({"input": {"title": "Uploads", "isPublic": public}}),
        )
        .await;
    data["createBoard"]["id"].as_str().unwrap().to_string()
}

fn file_part(bytes: Vec<u8>, name: &str, mime: &str) -> multipart::Part {
    multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap()
}

async fn post_form(app: &TestApp, token: Option<&str>, form: multipart::Form) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/uploads/artifact"))
        .multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn upload(
    app: &TestApp,
    user: &TestUser,
    board_id: &str,
    kind: &str,
    part: multipart::Part,
) -> reqwest::Response {
    let form = multipart::Form::new()
        .text("board_id", board_id.to_string())
        .text("artifact_type", kind.to_string())
        .part("file", part);
    post_form(app, Some(&user.token), form).await
}

/// Uploads `bytes` as a file named `name` of `content_type`; the new generation's id.
pub async fn upload_bytes(
    app: &TestApp,
    user: &TestUser,
    board_id: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> String {
    let kind = content_type.split('/').next().unwrap_or_default();
    let part = multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(content_type)
        .unwrap();
    let res = upload(app, user, board_id, kind, part).await;
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Every regular file under the app's storage directory.
fn stored_files(app: &TestApp) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p.to_string_lossy().to_string());
                }
            }
        }
    }
    let mut out = vec![];
    walk(Path::new(&app.config.storage.local_base_path), &mut out);
    out
}

async fn board_generation_count(app: &TestApp, board_id: &str) -> i64 {
    fixtures::count_generations(app, board_id).await
}

#[tokio::test]
async fn an_image_upload_completes_with_metadata_and_a_thumbnail() {
    let app = TestApp::spawn().await;
    let user = app.user("uploader").await;
    let board_id = board(&app, &user, false).await;
    let bytes = png(640, 480);
    let res = upload(
        &app,
        &user,
        &board_id,
        "image",
        file_part(bytes.clone(), "../../holiday<1>.png", "image/png"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "completed");
    assert_eq!(body["artifactType"], "image");
    assert_eq!(body["generatorName"], "user-upload-image");
    let url = body["storageUrl"].as_str().unwrap();
    let fetched = app.client.get(url).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.headers()["content-type"], "image/png");
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), bytes);

    let thumb_url = body["thumbnailUrl"].as_str().expect("a thumbnail");
    let thumb = app.client.get(thumb_url).send().await.unwrap();
    assert_eq!(thumb.status(), StatusCode::OK);
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (512, 384));

    let data = app
        .ok(Some(&user.token), GENERATION, json!({"id": body["id"]}))
        .await;
    let g = &data["generation"];
    assert_eq!(g["status"], "COMPLETED");
    assert_eq!(g["storageUrl"], url);
    assert_eq!(g["inputParams"]["original_filename"], "holiday_1_.png");
    assert_eq!(g["inputParams"]["upload_source"], "file");
    let meta = &g["outputMetadata"];
    assert_eq!(meta["width"], 640);
    assert_eq!(meta["height"], 480);
    assert_eq!(meta["content_type"], "image/png");
    assert_eq!(meta["mime_type"], "image/png");
    assert_eq!(meta["file_size"], bytes.len());
    assert_eq!(meta["storage_provider"], "local");
    assert!(meta["storage_key"]
        .as_str()
        .unwrap()
        .ends_with("/upload/original.png"));
}

#[tokio::test]
async fn content_is_sniffed_and_must_match_the_artifact_type() {
    let app = TestApp::spawn().await;
    let user = app.user("sniffer").await;
    let board_id = board(&app, &user, false).await;
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("video", png(8, 8), "clip.mp4", "video/mp4"),
        ("text", b"hello\0world".to_vec(), "notes.txt", "text/plain"),
        (
            "image",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
            "x.png",
            "image/svg+xml",
        ),
        ("image", b"just some text".to_vec(), "x.png", "image/png"),
    ];
    for (kind, bytes, name, mime) in cases {
        let res = upload(&app, &user, &board_id, kind, file_part(bytes, name, mime)).await;
        assert_eq!(
            res.status(),
            StatusCode::BAD_REQUEST,
            "{kind} {name} {mime}"
        );
        let body: Value = res.json().await.unwrap();
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("Invalid file type"),
            "{body}"
        );
    }
    assert!(stored_files(&app).is_empty(), "{:?}", stored_files(&app));
    assert_eq!(board_generation_count(&app, &board_id).await, 0);

    // A JPEG declared as PNG is stored as what it is.
    let mut jpeg = Cursor::new(Vec::new());
    image::RgbImage::new(16, 16)
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .unwrap();
    let res = upload(
        &app,
        &user,
        &board_id,
        "image",
        file_part(jpeg.into_inner(), "photo.png", "image/png"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let fetched = app
        .client
        .get(body["storageUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.headers()["content-type"], "image/jpeg");
}

#[tokio::test]
async fn the_size_cap_applies_while_streaming_without_content_length() {
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_MAX_UPLOAD_SIZE", "1048576")).await;
    let user = app.user("big").await;
    let board_id = board(&app, &user, false).await;
    // A WAV header, then 2 MiB of samples, sent in chunks without a length.
    let mut head = Vec::new();
    head.extend_from_slice(b"RIFF");
    head.extend_from_slice(&(36u32 + (2 << 20)).to_le_bytes());
    head.extend_from_slice(b"WAVEfmt ");
    head.extend_from_slice(&16u32.to_le_bytes());
    head.extend_from_slice(&1u16.to_le_bytes());
    head.extend_from_slice(&1u16.to_le_bytes());
    head.extend_from_slice(&8000u32.to_le_bytes());
    head.extend_from_slice(&16000u32.to_le_bytes());
    head.extend_from_slice(&2u16.to_le_bytes());
    head.extend_from_slice(&16u16.to_le_bytes());
    head.extend_from_slice(b"data");
    head.extend_from_slice(&(2u32 << 20).to_le_bytes());
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = std::iter::once(Ok(head))
        .chain((0..32).map(|_| Ok(vec![0u8; 64 * 1024])))
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let part = multipart::Part::stream(body)
        .file_name("long.wav")
        .mime_str("audio/wav")
        .unwrap();
    let res = upload(&app, &user, &board_id, "audio", part).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("1048576"),
        "{body}"
    );
    assert!(stored_files(&app).is_empty(), "{:?}", stored_files(&app));
    assert_eq!(board_generation_count(&app, &board_id).await, 0);
}

#[tokio::test]
async fn errors_come_in_the_contract_order_with_clear_messages() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let viewer = app.user("viewer").await;
    let board_id = board(&app, &owner, true).await;
    let part = || file_part(png(4, 4), "a.png", "image/png");

    let form = multipart::Form::new()
        .text("board_id", board_id.clone())
        .text("artifact_type", "image")
        .part("file", part());
    assert_eq!(
        post_form(&app, None, form).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let form = multipart::Form::new()
        .text("artifact_type", "image")
        .part("file", part());
    let res = post_form(&app, Some(&owner.token), form).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("board_id"),
        "{body}"
    );

    let res = upload(&app, &owner, &board_id, "model", part()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "Invalid artifact_type. Must be one of: image, video, audio, text"
    );

    let res = upload(
        &app,
        &owner,
        &board_id,
        "image",
        file_part(png(4, 4), "run.exe", "image/png"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("File extension '.exe' is not allowed"),
        "{body}"
    );

    let res = upload(&app, &owner, "not-a-uuid", "image", part()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "Invalid board_id or parent_generation_id format"
    );

    let res = upload(
        &app,
        &owner,
        &uuid::Uuid::new_v4().to_string(),
        "image",
        part(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "Board not found");

    // A public board is readable by others, not writable.
    let res = upload(&app, &viewer, &board_id, "image", part()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Permission denied"),
        "{body}"
    );

    let form = multipart::Form::new()
        .text("board_id", board_id.clone())
        .text("artifact_type", "image");
    let res = post_form(&app, Some(&owner.token), form).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    assert!(stored_files(&app).is_empty(), "{:?}", stored_files(&app));
}

#[tokio::test]
async fn fields_after_the_file_are_checked_and_a_refusal_removes_the_object() {
    let app = TestApp::spawn().await;
    let user = app.user("lineage").await;
    let board_id = board(&app, &user, false).await;
    let parent = upload(
        &app,
        &user,
        &board_id,
        "image",
        file_part(png(4, 4), "p.png", "image/png"),
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    let files_before = stored_files(&app).len();

    let form = multipart::Form::new()
        .text("board_id", board_id.clone())
        .text("artifact_type", "image")
        .part("file", file_part(png(4, 4), "c.png", "image/png"))
        .text("user_description", "a child")
        .text(
            "parent_generation_id",
            parent["id"].as_str().unwrap().to_string(),
        );
    let res = post_form(&app, Some(&user.token), form).await;
    assert_eq!(res.status(), StatusCode::OK);
    let child: Value = res.json().await.unwrap();
    let data = app
        .ok(
            Some(&user.token),
            "query($id: UUID!) { generation(id: $id) { inputParams inputArtifacts { generationId role } } }",
            json!({"id": child["id"]}),
        )
        .await;
    assert_eq!(
        data["generation"]["inputParams"]["user_description"],
        "a child"
    );
    assert_eq!(
        data["generation"]["inputArtifacts"][0]["generationId"],
        parent["id"]
    );
    let files_after_child = stored_files(&app).len();
    assert!(files_after_child > files_before);

    // A parent the caller cannot read (here: none) is refused after the file was stored,
    // and the stored object goes again.
    let form = multipart::Form::new()
        .text("board_id", board_id.clone())
        .text("artifact_type", "image")
        .part("file", file_part(png(4, 4), "d.png", "image/png"))
        .text("parent_generation_id", uuid::Uuid::new_v4().to_string());
    let res = post_form(&app, Some(&user.token), form).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("not found"),
        "{body}"
    );
    assert_eq!(stored_files(&app).len(), files_after_child);
}

#[tokio::test]
async fn a_store_that_fails_leaves_a_failed_row_and_no_object() {
    // The storage "directory" is a regular file: every write fails.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let app = TestApp::spawn_with(Options::default().env(
        "BOARDS_STORAGE_LOCAL_BASE_PATH",
        blocker.path().to_string_lossy().to_string(),
    ))
    .await;
    let user = app.user("unlucky").await;
    let board_id = board(&app, &user, false).await;
    let res = upload(
        &app,
        &user,
        &board_id,
        "image",
        file_part(png(4, 4), "a.png", "image/png"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "Upload failed: storage is unavailable");
    let data = app
        .ok(
            Some(&user.token),
            "query($id: UUID!) { board(id: $id) { generations { status errorMessage storageUrl generatorName } } }",
            json!({"id": board_id}),
        )
        .await;
    let rows = data["board"]["generations"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{data}");
    assert_eq!(rows[0]["status"], "FAILED");
    assert_eq!(
        rows[0]["errorMessage"],
        "Upload failed: storage is unavailable"
    );
    assert_eq!(rows[0]["storageUrl"], Value::Null);
    assert_eq!(rows[0]["generatorName"], "user-upload-image");
}

/// A one-route HTTP server on 127.0.0.1 answering every request with `body`.
async fn file_server(
    body: Vec<u8>,
    content_type: &'static str,
) -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn url_imports_are_refused_for_loopback_unless_allow_listed() {
    let bytes = png(32, 16);
    let (port, _server) = file_server(bytes.clone(), "image/png").await;
    let url = format!("http://127.0.0.1:{port}/pics/cat.png");

    let app = TestApp::spawn().await;
    let user = app.user("importer").await;
    let board_id = board(&app, &user, false).await;
    let input = json!({"input": {"boardId": board_id, "artifactType": "IMAGE", "fileUrl": url}});
    let res = app.gql(Some(&user.token), UPLOAD_URL, input.clone()).await;
    let (message, code) = error_of(&res);
    assert!(message.starts_with("URL not allowed"), "{message}");
    assert!(message.contains("loopback"), "{message}");
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(stored_files(&app).is_empty());
    drop(app);

    let app = TestApp::spawn_with(
        Options::default().env("BOARDS_URL_IMPORT_ALLOWED_HOSTS", "127.0.0.1/32"),
    )
    .await;
    let user = app.user("importer").await;
    let board_id = board(&app, &user, false).await;
    let input = json!({"input": {"boardId": board_id, "artifactType": "IMAGE", "fileUrl": url,
        "userDescription": "a cat"}});
    let data = app.ok(Some(&user.token), UPLOAD_URL, input).await;
    let g = &data["uploadArtifact"];
    assert_eq!(g["status"], "COMPLETED");
    assert_eq!(g["generatorName"], "user-upload-image");
    assert_eq!(g["inputParams"]["upload_source"], "url");
    assert_eq!(g["inputParams"]["source_url"], url);
    assert_eq!(g["inputParams"]["original_filename"], "cat.png");
    assert_eq!(g["outputMetadata"]["width"], 32);
    let fetched = app
        .client
        .get(g["storageUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), bytes);
    assert!(g["thumbnailUrl"].is_string());

    // The wrong kind of content is refused like a file upload's.
    let input = json!({"input": {"boardId": board_id, "artifactType": "VIDEO", "fileUrl": url}});
    let res = app.gql(Some(&user.token), UPLOAD_URL, input).await;
    let (message, _) = error_of(&res);
    assert!(message.contains("Invalid file type"), "{message}");

    let input = json!({"input": {"boardId": board_id, "artifactType": "IMAGE", "fileUrl": "file:///etc/passwd"}});
    let res = app.gql(Some(&user.token), UPLOAD_URL, input).await;
    let (message, _) = error_of(&res);
    assert!(message.starts_with("URL not allowed"), "{message}");
}

#[tokio::test]
async fn private_deployments_hand_out_signed_urls_that_storage_checks() {
    let app = TestApp::spawn_with(
        Options::default()
            .env("BOARDS_STORAGE_PUBLIC", "false")
            .env("BOARDS_STORAGE_SIGNING_KEY", "k".repeat(40)),
    )
    .await;
    let user = app.user("private").await;
    let board_id = board(&app, &user, false).await;
    let body: Value = upload(
        &app,
        &user,
        &board_id,
        "image",
        file_part(png(8, 8), "a.png", "image/png"),
    )
    .await
    .json()
    .await
    .unwrap();
    let url = body["storageUrl"].as_str().unwrap().to_string();
    assert!(url.contains("signature="), "{url}");
    assert_eq!(
        app.client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    let data = app
        .ok(Some(&user.token), GENERATION, json!({"id": body["id"]}))
        .await;
    let fresh = data["generation"]["storageUrl"].as_str().unwrap();
    assert!(fresh.contains("signature="));
    assert_eq!(
        app.client.get(fresh).send().await.unwrap().status(),
        StatusCode::OK
    );
    let thumb = data["generation"]["thumbnailUrl"].as_str().unwrap();
    assert_eq!(
        app.client.get(thumb).send().await.unwrap().status(),
        StatusCode::OK
    );

    let bare = url.split('?').next().unwrap();
    let res = app.client.get(bare).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let tampered = url.replace("signature=", "signature=0");
    assert_eq!(
        app.client.get(&tampered).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // A signature covers one key only.
    let (_, query) = url.split_once('?').unwrap();
    let other = format!("{}?{query}", thumb.split('?').next().unwrap());
    assert_eq!(
        app.client.get(&other).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_request_that_fails_after_its_file_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    let user = app.user("trailing").await;
    let board_id = board(&app, &user, false).await;
    // A description over the field limit after the file; then a second file.
    let form = multipart::Form::new()
        .text("board_id", board_id.clone())
        .text("artifact_type", "image")
        .part("file", file_part(png(8, 8), "a.png", "image/png"))
        .text("user_description", "x".repeat(20 * 1024));
    let res = post_form(&app, Some(&user.token), form).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let form = multipart::Form::new()
        .text("board_id", board_id.clone())
        .text("artifact_type", "image")
        .part("file", file_part(png(8, 8), "a.png", "image/png"))
        .part("file", file_part(png(8, 8), "b.png", "image/png"));
    let res = post_form(&app, Some(&user.token), form).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(stored_files(&app).is_empty(), "{:?}", stored_files(&app));
    assert_eq!(board_generation_count(&app, &board_id).await, 0);
}

/// Uploads into S3 (SeaweedFS on 127.0.0.1): the URL is presigned, `/api/storage` redirects
/// artifact keys to a presigned URL and serves nothing else from the bucket.
#[tokio::test]
async fn uploads_go_to_s3_and_storage_serves_only_artifact_keys() {
    let s3 = boards_shared::testing::SeaweedFs::start().await;
    let app = TestApp::spawn_with(
        Options::default()
            .env("BOARDS_STORAGE_S3_BUCKET", s3.bucket.clone())
            .env("BOARDS_STORAGE_S3_ENDPOINT_URL", s3.endpoint())
            .env("BOARDS_AWS_ACCESS_KEY_ID", s3.access_key.clone())
            .env("BOARDS_AWS_SECRET_ACCESS_KEY", s3.secret_key.clone())
            .env("BOARDS_STORAGE_DEFAULT_PROVIDER", "s3"),
    )
    .await;
    let user = app.user("s3user").await;
    let board_id = board(&app, &user, false).await;
    let bytes = png(40, 30);
    let body: Value = upload(
        &app,
        &user,
        &board_id,
        "image",
        file_part(bytes.clone(), "a.png", "image/png"),
    )
    .await
    .json()
    .await
    .unwrap();
    let url = body["storageUrl"].as_str().unwrap();
    assert!(
        url.starts_with(&s3.endpoint()) && url.contains("X-Amz-Signature="),
        "{url}"
    );
    let fetched = app.client.get(url).send().await.unwrap();
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), bytes);
    assert!(stored_files(&app).is_empty());

    let data = app
        .ok(Some(&user.token), GENERATION, json!({"id": body["id"]}))
        .await;
    let meta = &data["generation"]["outputMetadata"];
    assert_eq!(meta["storage_provider"], "s3");
    let key = meta["storage_key"].as_str().unwrap();
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirect
        .get(app.url(&format!("/api/storage/{key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let fetched = app.client.get(&location).send().await.unwrap();
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), bytes);

    // Another object in the same bucket is not reachable through the API.
    let store = s3.storage().await;
    boards_shared::storage::Storage::put(
        &store,
        "backups/db.sql",
        boards_shared::storage::stream_of(&b"secret"[..]),
        "text/plain",
        100,
    )
    .await
    .unwrap();
    let res = no_redirect
        .get(app.url("/api/storage/backups/db.sql"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// Wrong S3 credentials stop the API at startup with a clear reason (the probe of the bucket),
/// naming neither the secret nor anything else it should not.
#[tokio::test]
async fn wrong_s3_credentials_stop_startup_with_a_clear_error() {
    let s3 = boards_shared::testing::SeaweedFs::start().await;
    let db = boards_shared::testing::TestDb::new().await.unwrap();
    let mut env = std::collections::BTreeMap::new();
    for (k, v) in [
        ("BOARDS_DATABASE_URL", db.url().to_string()),
        ("BOARDS_API_PORT", "0".to_string()),
        ("BOARDS_STORAGE_S3_BUCKET", s3.bucket.clone()),
        ("BOARDS_STORAGE_S3_ENDPOINT_URL", s3.endpoint()),
        ("BOARDS_AWS_ACCESS_KEY_ID", s3.access_key.clone()),
        (
            "BOARDS_AWS_SECRET_ACCESS_KEY",
            "definitely-not-the-secret".to_string(),
        ),
        ("BOARDS_STORAGE_DEFAULT_PROVIDER", "s3".to_string()),
    ] {
        env.insert(k.to_string(), v);
    }
    let config = boards_shared::Config::load_from(&env).unwrap();
    let err = match boards_api::Application::build(config, crate::util::test_logger()).await {
        Ok(_) => panic!("the API started with wrong S3 credentials"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("credentials"), "{err}");
    assert!(err.contains(&s3.bucket), "{err}");
    assert!(!err.contains("definitely-not-the-secret"), "{err}");
}
