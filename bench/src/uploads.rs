//! Upload benchmark: one large file through `POST /api/uploads/artifact` to local storage and
//! to S3 (SeaweedFS started here), against `curl` PUT of the same file straight to SeaweedFS
//! (the ceiling); then the API's peak RSS while several such uploads run at once.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use boards_shared::testing::TestDb;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::{start_api_with, token, Api, Args};

#[derive(clap::Args, Clone)]
pub(crate) struct UploadArgs {
    /// Size of the uploaded file, MiB.
    #[arg(long, default_value_t = 50)]
    size_mib: usize,
    /// Timed uploads per store (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Concurrent uploads of the memory run.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// A WAV file of `size` bytes (sniffed as audio), its samples pseudo-random.
fn wav(size: usize) -> Bytes {
    let data = size.saturating_sub(44);
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((36 + data) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&48_000u32.to_le_bytes());
    out.extend_from_slice(&192_000u32.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data as u32).to_le_bytes());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    Bytes::from(out)
}

struct Target {
    api: Api,
    token: String,
    board_id: String,
}

async fn target(args: &Args, db: &TestDb, env: &[(String, String)]) -> anyhow::Result<Target> {
    let mut env = env.to_vec();
    env.push(("BOARDS_MAX_UPLOAD_SIZE".into(), (1u64 << 30).to_string()));
    let api = start_api_with(args, db, &env).await?;
    let signer = crate::signer()?;
    let token = token(&signer, "uploader")?;
    let client = reqwest::Client::new();
    let res: Value = client
        .post(format!("{}/graphql", api.base))
        .bearer_auth(&token)
        .json(&json!({"query": "mutation { createBoard(input: {title: \"uploads\"}) { id } }"}))
        .send()
        .await?
        .json()
        .await?;
    let board_id = res["data"]["createBoard"]["id"]
        .as_str()
        .with_context(|| format!("createBoard: {res}"))?
        .to_string();
    Ok(Target {
        api,
        token,
        board_id,
    })
}

async fn upload_once(client: &reqwest::Client, t: &Target, body: Bytes) -> anyhow::Result<()> {
    let part = reqwest::multipart::Part::stream(reqwest::Body::from(body))
        .file_name("bench.wav")
        .mime_str("audio/wav")?;
    let form = reqwest::multipart::Form::new()
        .text("board_id", t.board_id.clone())
        .text("artifact_type", "audio")
        .part("file", part);
    let res = client
        .post(format!("{}/api/uploads/artifact", t.api.base))
        .bearer_auth(&t.token)
        .multipart(form)
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("upload: {} {}", res.status(), res.text().await?);
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn throughput(t: &Target, body: &Bytes, runs: usize) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let mib = body.len() as f64 / (1 << 20) as f64;
    upload_once(&client, t, body.clone()).await?; // warm-up
    let mut rates = vec![];
    for _ in 0..runs {
        let start = Instant::now();
        upload_once(&client, t, body.clone()).await?;
        rates.push(mib / start.elapsed().as_secs_f64());
    }
    Ok(median(rates))
}

/// Peak RSS growth (MiB) of the API while `n` uploads of `body` run at once.
async fn peak_rss_growth(t: &Target, body: &Bytes, n: usize) -> anyhow::Result<(f64, f64)> {
    let pid = t.api.child.id();
    let idle = boards_shared::testing::rss_kib(pid) as f64 / 1024.0;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(boards_shared::testing::rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak as f64 / 1024.0
        })
    };
    let client = reqwest::Client::new();
    let uploads = (0..n).map(|_| upload_once(&client, t, body.clone()));
    let results = futures::future::join_all(uploads).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await?;
    for r in results {
        r?;
    }
    Ok((idle, peak - idle))
}

/// `curl` PUT (SigV4) of the file straight to SeaweedFS: MiB/s, median of `runs`.
fn curl_ceiling(
    s3: &boards_shared::testing::SeaweedFs,
    path: &std::path::Path,
    runs: usize,
) -> anyhow::Result<f64> {
    let mib = std::fs::metadata(path)?.len() as f64 / (1 << 20) as f64;
    let mut rates = vec![];
    for i in 0..=runs {
        let url = format!("{}/{}/curl/{i}.wav", s3.endpoint(), s3.bucket);
        let start = Instant::now();
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T"])
            .arg(path)
            .args(["--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{}:{}", s3.access_key, s3.secret_key))
            .args(["-H", "Content-Type: audio/wav", &url])
            .output()
            .context("running curl")?;
        let elapsed = start.elapsed().as_secs_f64();
        let code = String::from_utf8_lossy(&out.stdout).to_string();
        if code != "200" {
            bail!(
                "curl PUT answered {code}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if i > 0 {
            rates.push(mib / elapsed);
        }
    }
    Ok(median(rates))
}

pub(crate) async fn run(args: &Args, up: &UploadArgs) -> anyhow::Result<()> {
    let size = up.size_mib << 20;
    let body = wav(size);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bench.wav");
    std::fs::write(&file, &body)?;
    println!(
        "upload benchmark: {} MiB WAV, {} timed runs per store (median), release build",
        up.size_mib, up.runs
    );

    let db = TestDb::new().await?;
    let local_dir = tempfile::tempdir()?;
    let local = target(
        args,
        &db,
        &[(
            "BOARDS_STORAGE_LOCAL_BASE_PATH".into(),
            local_dir.path().to_string_lossy().to_string(),
        )],
    )
    .await?;
    let local_rate = throughput(&local, &body, up.runs).await?;
    println!("local storage:  {local_rate:7.1} MiB/s");
    let (idle, growth) = peak_rss_growth(&local, &body, up.concurrency).await?;
    println!(
        "local storage, {} concurrent uploads: API RSS idle {idle:.0} MiB, peak growth {growth:.1} MiB",
        up.concurrency
    );
    drop(local);

    let s3 = boards_shared::testing::SeaweedFs::start().await;
    let db = TestDb::new().await?;
    let remote = target(
        args,
        &db,
        &[
            ("BOARDS_STORAGE_S3_BUCKET".into(), s3.bucket.clone()),
            ("BOARDS_STORAGE_S3_ENDPOINT_URL".into(), s3.endpoint()),
            ("BOARDS_AWS_ACCESS_KEY_ID".into(), s3.access_key.clone()),
            ("BOARDS_AWS_SECRET_ACCESS_KEY".into(), s3.secret_key.clone()),
            ("BOARDS_STORAGE_DEFAULT_PROVIDER".into(), "s3".into()),
        ],
    )
    .await?;
    let s3_rate = throughput(&remote, &body, up.runs).await?;
    println!("S3 (SeaweedFS): {s3_rate:7.1} MiB/s");
    let (idle, growth) = peak_rss_growth(&remote, &body, up.concurrency).await?;
    println!(
        "S3 storage, {} concurrent uploads: API RSS idle {idle:.0} MiB, peak growth {growth:.1} MiB",
        up.concurrency
    );
    let ceiling = curl_ceiling(&s3, &file, up.runs)?;
    println!("curl PUT straight to SeaweedFS (ceiling): {ceiling:7.1} MiB/s");
    Ok(())
}
