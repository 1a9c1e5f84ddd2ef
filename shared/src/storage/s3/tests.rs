//! URL shapes and settings handling; no network (static credentials, nothing is sent).
#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::Secret;

async fn store(edit: impl FnOnce(&mut S3Settings)) -> S3Storage {
    let mut settings = S3Settings::for_bucket("media");
    settings.aws_access_key_id = Some("AKIDEXAMPLE".into());
    settings.aws_secret_access_key = Some(Secret::new("wJalrXUtnFEMI/K7MDENG"));
    edit(&mut settings);
    S3Storage::new(settings).await.unwrap()
}

#[tokio::test]
async fn public_urls_follow_the_endpoint_not_amazonaws() {
    let s = store(|s| {
        s.endpoint_url = Some("http://127.0.0.1:9000/".into());
        s.presign = false;
        s.prefix = "boards/".into();
    })
    .await;
    assert_eq!(
        s.url("t/b/g/run-1/original.png"),
        "http://127.0.0.1:9000/media/boards/t/b/g/run-1/original.png"
    );
    let s = store(|s| {
        s.endpoint_url = Some("https://s3.example.net".into());
        s.path_style = Some(false);
        s.presign = false;
    })
    .await;
    assert_eq!(s.url("a/b.txt"), "https://media.s3.example.net/a/b.txt");
}

#[tokio::test]
async fn aws_urls_use_the_virtual_host() {
    let s = store(|s| {
        s.region = "eu-west-1".into();
        s.presign = false;
    })
    .await;
    assert_eq!(
        s.url("a/b.txt"),
        "https://media.s3.eu-west-1.amazonaws.com/a/b.txt"
    );
}

#[tokio::test]
async fn a_cdn_wins_over_presigning() {
    let s = store(|s| s.cloudfront_domain = Some("d1.cloudfront.net".into())).await;
    assert_eq!(s.url("a/b.txt"), "https://d1.cloudfront.net/a/b.txt");
    let s = store(|s| {
        s.cloudfront_domain = Some("d1.cloudfront.net".into());
        s.cdn_base_url = Some("https://cdn.example.com/m/".into());
        s.prefix = "p/".into();
    })
    .await;
    assert_eq!(s.url("a/b.txt"), "https://cdn.example.com/m/p/a/b.txt");
}

#[tokio::test]
async fn presigned_urls_carry_a_signature_and_no_secret() {
    let s = store(|s| {
        s.endpoint_url = Some("http://127.0.0.1:9000".into());
        s.url_expiry_seconds = 600;
    })
    .await;
    let url = s.url("a/b.txt");
    assert!(
        url.starts_with("http://127.0.0.1:9000/media/a/b.txt?"),
        "{url}"
    );
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(url.contains("X-Amz-Expires=600"), "{url}");
    assert!(url.contains("AKIDEXAMPLE"), "{url}");
    assert!(!url.contains("wJalrXUtnFEMI"), "{url}");
    assert_eq!(s.delivery("a/b.txt").clone(), s.delivery("a/b.txt"));
    assert!(
        matches!(s.delivery("a/b.txt"), Delivery::Redirect(u) if u.contains("X-Amz-Signature"))
    );
    let s = store(|s| s.delivery = S3Delivery::Proxy).await;
    assert_eq!(s.delivery("a/b.txt"), Delivery::Proxy);
    assert!(!format!("{s:?}").contains("wJalrXUtnFEMI"));
}

#[tokio::test]
async fn invalid_settings_are_refused_at_construction() {
    let err = S3Storage::new(S3Settings::default()).await.unwrap_err();
    assert!(matches!(err, StorageError::Refused(m) if m.contains("`bucket`")));
}

#[test]
fn paths_are_encoded_per_segment() {
    assert_eq!(encode_path("a b/c+d/é"), "a%20b/c%2Bd/%C3%A9");
    assert_eq!(encode_path("t/b/run-1/x.png"), "t/b/run-1/x.png");
}

#[test]
fn http_dates_are_parsed() {
    let d = parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
    assert_eq!(d.to_rfc3339(), "2015-10-21T07:28:00+00:00");
}
