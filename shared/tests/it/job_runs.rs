//! The job state machine's fencing: once a run lost its claim (reaped while it stalled, and
//! the job claimed again), none of its writes changes the job.

use boards_shared::{
    db::models::{
        generations,
        job_runs::{self, Claim},
    },
    testing::TestDb,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

/// A pending generation on a fresh board of a fresh user; returns its id.
async fn pending_generation(conn: &mut AsyncPgConnection) -> Uuid {
    let (user, board, generation) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    diesel::sql_query(format!(
        "WITH t AS (SELECT id FROM boards.tenants WHERE slug = 'default'),
         u AS (INSERT INTO boards.users (id, tenant_id, auth_provider, auth_subject)
               SELECT '{user}', id, 'jwt', 'u-{user}' FROM t RETURNING tenant_id),
         b AS (INSERT INTO boards.boards (id, tenant_id, owner_id, title)
               SELECT '{board}', tenant_id, '{user}', 'b' FROM u RETURNING tenant_id)
         INSERT INTO boards.generations (id, tenant_id, board_id, user_id, generator_name,
                                         artifact_type, input_params, status)
         SELECT '{generation}', tenant_id, '{board}', '{user}', 'local-echo', 'text', '{{}}', 'pending' FROM b"
    ))
    .execute(conn)
    .await
    .unwrap();
    generation
}

/// Lets the lease of `id` run out, as it does while its worker is paused.
async fn expire(conn: &mut AsyncPgConnection, id: Uuid) {
    diesel::sql_query(format!(
        "UPDATE boards.job_runs SET lease_until = now() - interval '10 seconds' WHERE generation_id = '{id}'"
    ))
    .execute(conn)
    .await
    .unwrap();
}

async fn status(conn: &mut AsyncPgConnection, id: Uuid) -> (String, Option<String>, String) {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        storage_url: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Text)]
        progress: String,
    }
    let row: Row = diesel::sql_query(format!(
        "SELECT status::text AS status, storage_url, progress::text AS progress FROM boards.generations WHERE id = '{id}'"
    ))
    .get_result(conn)
    .await
    .unwrap();
    (row.status, row.storage_url, row.progress)
}

async fn stale_and_current(conn: &mut AsyncPgConnection) -> (Uuid, Claim, Claim) {
    let id = pending_generation(conn).await;
    let (_, stale) = job_runs::claim(conn, id, "worker-a", 60)
        .await
        .unwrap()
        .unwrap();
    expire(conn, id).await;
    let reaped = job_runs::reap_expired(conn, 1, 10, 10).await.unwrap();
    assert_eq!(reaped.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id]);
    let (_, current) = job_runs::claim(conn, id, "worker-b", 60)
        .await
        .unwrap()
        .unwrap();
    assert!(current.attempt > stale.attempt);
    (id, stale, current)
}

#[tokio::test]
async fn a_stale_run_cannot_complete_fail_release_or_report_progress() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.connect().await.unwrap();
    let (id, stale, current) = stale_and_current(&mut conn).await;

    // While the current run is still going, every write of the stale run is a no-op.
    assert!(!job_runs::heartbeat(&mut conn, &stale, 60).await.unwrap());
    assert!(!job_runs::set_progress(&mut conn, &stale, 80.0)
        .await
        .unwrap());
    assert!(
        !job_runs::set_input_artifacts(&mut conn, &stale, &json!([]))
            .await
            .unwrap()
    );
    assert!(
        job_runs::complete(&mut conn, &stale, "http://stale", None, &json!({}), vec![])
            .await
            .unwrap()
            .is_none()
    );
    assert!(job_runs::fail(&mut conn, &stale, "stale failure")
        .await
        .unwrap()
        .is_none());
    assert!(!job_runs::release(&mut conn, &stale).await.unwrap());
    assert_eq!(
        status(&mut conn, id).await,
        ("processing".into(), None, "0.00".into())
    );

    // The current run's writes work.
    assert!(job_runs::heartbeat(&mut conn, &current, 60).await.unwrap());
    assert!(job_runs::set_progress(&mut conn, &current, 40.0)
        .await
        .unwrap());
    let done = job_runs::complete(
        &mut conn,
        &current,
        "http://current",
        None,
        &json!({}),
        vec![],
    )
    .await
    .unwrap();
    assert!(done.is_some());

    // And after it completed, the stale run still changes nothing.
    assert!(
        job_runs::complete(&mut conn, &stale, "http://stale", None, &json!({}), vec![])
            .await
            .unwrap()
            .is_none()
    );
    assert!(job_runs::fail(&mut conn, &stale, "late")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        status(&mut conn, id).await,
        (
            "completed".into(),
            Some("http://current".into()),
            "100.00".into()
        )
    );
}

#[tokio::test]
async fn run_attempts_keep_growing_across_finished_runs() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.connect().await.unwrap();
    let id = pending_generation(&mut conn).await;
    let (_, first) = job_runs::claim(&mut conn, id, "w", 60)
        .await
        .unwrap()
        .unwrap();
    job_runs::fail(&mut conn, &first, "boom")
        .await
        .unwrap()
        .unwrap();
    // A retry makes the generation pending again; its next run is a new attempt, so the
    // first run's claim (same worker, same process) cannot touch it.
    diesel::sql_query(format!(
        "UPDATE boards.generations SET status = 'pending' WHERE id = '{id}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let (_, second) = job_runs::claim(&mut conn, id, "w", 60)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.attempt, first.attempt + 1);
    assert!(
        job_runs::complete(&mut conn, &first, "http://old", None, &json!({}), vec![])
            .await
            .unwrap()
            .is_none()
    );
}

#[test]
fn each_run_stores_under_its_own_key() {
    let (t, b, g) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let one = boards_shared::storage::artifact_key(t, b, g, 1, "png");
    let two = boards_shared::storage::artifact_key(t, b, g, 2, "png");
    assert_ne!(one, two);
    boards_shared::storage::validate_key(&one).unwrap();
}

#[tokio::test]
async fn the_reaper_finds_expired_jobs_behind_many_finished_runs() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.connect().await.unwrap();
    // More finished runs than one reaper batch, all with ended leases.
    for _ in 0..12 {
        let id = pending_generation(&mut conn).await;
        let (_, run) = job_runs::claim(&mut conn, id, "w", 60)
            .await
            .unwrap()
            .unwrap();
        job_runs::complete(&mut conn, &run, "http://done", None, &json!({}), vec![])
            .await
            .unwrap()
            .unwrap();
        expire(&mut conn, id).await;
    }
    let stuck = pending_generation(&mut conn).await;
    job_runs::claim(&mut conn, stuck, "dead", 60)
        .await
        .unwrap()
        .unwrap();
    expire(&mut conn, stuck).await;
    let reaped = job_runs::reap_expired(&mut conn, 1, 5, 10).await.unwrap();
    let board_id = generations::find(&mut conn, stuck)
        .await
        .unwrap()
        .unwrap()
        .board_id;
    assert_eq!(
        reaped,
        vec![job_runs::Reaped {
            id: stuck,
            board_id,
            status: "pending".into(),
            runs: 1
        }]
    );
}

#[tokio::test]
async fn a_job_whose_workers_keep_dying_fails_after_its_runs() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.connect().await.unwrap();
    let id = pending_generation(&mut conn).await;
    for run in 1..=3 {
        job_runs::claim(&mut conn, id, "doomed", 60)
            .await
            .unwrap()
            .unwrap();
        expire(&mut conn, id).await;
        let reaped = job_runs::reap_expired(&mut conn, 1, 10, 3).await.unwrap();
        let expected = if run < 3 { "pending" } else { "failed" };
        assert_eq!(reaped[0].status, expected, "run {run}");
    }
    let (status, _, _) = status(&mut conn, id).await;
    assert_eq!(status, "failed");
    // Nothing claims a failed job.
    assert!(job_runs::claim(&mut conn, id, "w", 60)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_claim_waits_for_a_briefly_locked_row_instead_of_dropping_the_job() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.connect().await.unwrap();
    let id = pending_generation(&mut conn).await;
    // Another transaction holds the row (as a tag being added to it does, FOR KEY SHARE).
    let mut other = db.connect().await.unwrap();
    diesel::sql_query("BEGIN")
        .execute(&mut other)
        .await
        .unwrap();
    diesel::sql_query(format!(
        "SELECT 1 FROM boards.generations WHERE id = '{id}' FOR UPDATE"
    ))
    .execute(&mut other)
    .await
    .unwrap();
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        diesel::sql_query("COMMIT")
            .execute(&mut other)
            .await
            .unwrap();
    };
    let (claimed, ()) = tokio::join!(job_runs::claim(&mut conn, id, "w", 60), release);
    assert!(claimed.unwrap().is_some(), "the claim skipped a locked job");
}
