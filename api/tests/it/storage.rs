//! `GET`/`HEAD /api/storage/{key}`: symbolic links, `If-Range`, multiple ranges, HEAD and
//! the `download` parameter, against files written straight into the test's storage dir.

use std::path::PathBuf;

use reqwest::{header, Method, StatusCode};
use serde_json::Value;

use crate::util::TestApp;

const KEY: &str = "t/b/g/original.txt";
const BODY: &str = "0123456789";

/// Writes `BODY` at `KEY` in the app's storage directory and returns the directory.
fn stored(app: &TestApp) -> PathBuf {
    let base = PathBuf::from(&app.config.storage.local_base_path);
    let path = base.join(KEY);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, BODY).unwrap();
    base
}

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    request(app, Method::GET, path, headers).await
}

async fn request(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(&format!("/api/storage/{path}")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn header_of(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_out_of_the_storage_directory_is_refused() {
    let app = TestApp::spawn().await;
    let base = stored(&app);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), base.join("t/leak.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), base.join("t/dir")).unwrap();
    std::os::unix::fs::symlink(base.join(KEY), base.join("t/alias.txt")).unwrap();

    for path in ["t/leak.txt", "t/dir/secret.txt"] {
        let res = get(&app, path, &[]).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["detail"], "Access denied", "{path}");
    }
    // A link that stays inside the storage directory is served.
    let res = get(&app, "t/alias.txt", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), BODY);
}

#[tokio::test]
async fn a_mismatched_if_range_serves_the_whole_file() {
    let app = TestApp::spawn().await;
    stored(&app);
    let first = get(&app, KEY, &[]).await;
    let etag = header_of(&first, "etag");
    let last_modified = header_of(&first, "last-modified");
    assert!(!etag.starts_with("W/"), "{etag}");

    let weak = format!("W/{etag}");
    for stale in [
        "\"another-version\"",
        weak.as_str(),
        "Mon, 01 Jan 2001 00:00:00 GMT",
        "not a validator",
    ] {
        let res = get(&app, KEY, &[("Range", "bytes=0-1"), ("If-Range", stale)]).await;
        assert_eq!(res.status(), StatusCode::OK, "If-Range: {stale}");
        assert!(res.headers().get("content-range").is_none(), "{stale}");
        assert_eq!(res.text().await.unwrap(), BODY, "If-Range: {stale}");
    }
    for current in [etag.as_str(), last_modified.as_str()] {
        let res = get(&app, KEY, &[("Range", "bytes=0-1"), ("If-Range", current)]).await;
        assert_eq!(
            res.status(),
            StatusCode::PARTIAL_CONTENT,
            "If-Range: {current}"
        );
        assert_eq!(header_of(&res, "content-range"), "bytes 0-1/10");
        assert_eq!(res.text().await.unwrap(), "01");
    }
}

/// Splits a `multipart/byteranges` body into (headers, data) parts.
fn parts(body: &str, boundary: &str) -> Vec<(String, String)> {
    let delimiter = format!("--{boundary}");
    let end = format!("\r\n--{boundary}--\r\n");
    assert!(body.ends_with(&end), "{body:?}");
    body[..body.len() - end.len()]
        .split(&format!("\r\n{delimiter}"))
        .enumerate()
        .map(|(i, part)| {
            let part = if i == 0 {
                part.strip_prefix(&delimiter).unwrap()
            } else {
                part
            };
            let part = part.strip_prefix("\r\n").unwrap();
            let (headers, data) = part.split_once("\r\n\r\n").unwrap();
            (headers.to_string(), data.to_string())
        })
        .collect()
}

#[tokio::test]
async fn multiple_ranges_get_a_multipart_byteranges_answer() {
    let app = TestApp::spawn().await;
    stored(&app);
    let res = get(&app, KEY, &[("Range", "bytes=0-1,4-5")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert!(res.headers().get("content-range").is_none());
    let content_type = header_of(&res, "content-type");
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{content_type}"))
        .to_string();
    let length: usize = header_of(&res, "content-length").parse().unwrap();
    let body = res.text().await.unwrap();
    assert_eq!(body.len(), length);
    let got = parts(&body, &boundary);
    assert_eq!(got.len(), 2, "{body:?}");
    for ((headers, data), (range, expected)) in got
        .iter()
        .zip([("bytes 0-1/10", "01"), ("bytes 4-5/10", "45")])
    {
        assert!(
            headers.contains(&format!("Content-Range: {range}")),
            "{headers}"
        );
        assert!(
            headers.contains("Content-Type: text/plain; charset=utf-8"),
            "{headers}"
        );
        assert_eq!(data, expected);
    }

    // Overlapping ranges are merged into one; a single range is a plain 206.
    let res = get(&app, KEY, &[("Range", "bytes=0-3, 2-5")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header_of(&res, "content-range"), "bytes 0-5/10");
    assert_eq!(res.text().await.unwrap(), "012345");
    let res = get(&app, KEY, &[("Range", "bytes=-3")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.text().await.unwrap(), "789");
    // Nothing satisfiable: 416 with the size; unreadable: the whole file.
    let res = get(&app, KEY, &[("Range", "bytes=20-30")]).await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header_of(&res, "content-range"), "bytes */10");
    let res = get(&app, KEY, &[("Range", "bytes=x-y")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), BODY);
}

#[tokio::test]
async fn conditional_requests_answer_304_and_412() {
    let app = TestApp::spawn().await;
    stored(&app);
    let etag = header_of(&get(&app, KEY, &[]).await, "etag");
    let res = get(&app, KEY, &[("If-None-Match", &etag)]).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&res, "etag"), etag);
    let res = get(&app, KEY, &[("If-Match", "\"other\"")]).await;
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    // Preconditions come before ranges.
    let res = get(
        &app,
        KEY,
        &[("If-None-Match", &etag), ("Range", "bytes=0-1")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn head_answers_the_headers_of_get_without_a_body() {
    let app = TestApp::spawn().await;
    stored(&app);
    let got = get(&app, KEY, &[]).await;
    let res = request(&app, Method::HEAD, KEY, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    for name in [
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "accept-ranges",
        "content-disposition",
    ] {
        assert_eq!(header_of(&res, name), header_of(&got, name), "{name}");
    }
    assert_eq!(header_of(&res, "content-length"), "10");
    assert!(res.bytes().await.unwrap().is_empty());

    let res = request(&app, Method::HEAD, KEY, &[("Range", "bytes=2-4")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header_of(&res, "content-length"), "3");
    assert!(res.bytes().await.unwrap().is_empty());

    let res = request(&app, Method::HEAD, "t/missing.txt", &[]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Other methods are refused.
    let res = request(&app, Method::POST, KEY, &[]).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header_of(&res, "allow"), "GET, HEAD");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "Method Not Allowed");
}

#[tokio::test]
async fn download_accepts_1_and_0_like_true_and_false() {
    let app = TestApp::spawn().await;
    stored(&app);
    for (value, disposition) in [
        ("1", "attachment"),
        ("true", "attachment"),
        ("True", "attachment"),
        ("0", "inline"),
        ("false", "inline"),
    ] {
        let res = get(&app, &format!("{KEY}?download={value}"), &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "download={value}");
        let got = header_of(&res, header::CONTENT_DISPOSITION.as_str());
        assert!(
            got.starts_with(&format!("{disposition}; filename=")),
            "download={value}: {got}"
        );
    }
    let res = get(&app, &format!("{KEY}?download=maybe"), &[]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("'download'"),
        "{body}"
    );
    let res = get(&app, &format!("{KEY}?download=1&download=0"), &[]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = get(&app, &format!("{KEY}?filename=report.txt&download=1"), &[]).await;
    assert_eq!(
        header_of(&res, "content-disposition"),
        "attachment; filename=\"report.txt\""
    );
}
