//! The chart's Grafana dashboard and alert rules use only metrics the binaries export.

use std::{collections::BTreeSet, time::Duration};

use serde_json::json;

use crate::{
    pipeline::{board, generate, wait_for},
    util::TestApp,
};

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `boards_*` metric names in a dashboard or rules file, histogram suffixes removed.
fn used_names() -> BTreeSet<String> {
    let text =
        repo_file("helm/boards/files/dashboard.json") + &repo_file("helm/boards/files/alerts.yaml");
    let re = regex::Regex::new(r"boards_[a-z_]+").unwrap();
    re.find_iter(&text)
        .map(|m| {
            let name = m.as_str();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| b.ends_with("_seconds")))
                .unwrap_or(name)
                .to_string()
        })
        .filter(|n| n != "boards_") // the job regex `.*boards.*`
        .collect()
}

/// Metric families in a scrape.
fn families(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_metric_of_the_dashboard_and_alerts_is_exported() {
    let used = used_names();
    assert!(used.len() >= 10, "{used:?}");
    let registered: BTreeSet<String> = boards_shared::metrics::Metrics::new()
        .names()
        .into_iter()
        .collect();
    let unknown: Vec<&String> = used.difference(&registered).collect();
    assert!(
        unknown.is_empty(),
        "not exported by the binaries: {unknown:?}"
    );

    // And a real scrape of the API and a worker after one job shows them (counters that only
    // move on failures — retries, dead letters — appear once they have happened).
    let app = TestApp::spawn().await;
    let user = app.user("metrics").await;
    let b = board(&app, &user).await;
    let registry = boards_shared::generators::config::load(&app.config)
        .unwrap()
        .registry;
    let w = crate::pipeline::worker(&app, registry).await;
    let id = generate(
        &app,
        &user,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "hi"}),
    )
    .await;
    wait_for(&app, &user, &id, &["completed"], Duration::from_secs(30)).await;
    let api = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let worker = app
        .client
        .get(format!("http://127.0.0.1:{}/metrics", w.health_port))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scraped: BTreeSet<String> = families(&api).union(&families(&worker)).cloned().collect();
    let only_on_failures = [
        "boards_job_retries_total",
        "boards_jobs_dead_lettered_total",
    ];
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !only_on_failures.contains(&n.as_str()))
        .filter(|n| !scraped.contains(*n))
        .collect();
    assert!(missing.is_empty(), "not in the scrape: {missing:?}\n{api}");
    w.stop().await;
}
