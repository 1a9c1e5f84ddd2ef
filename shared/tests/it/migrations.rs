//! Migrations build the original's `boards` schema (contract §4) and revert cleanly.

use boards_shared::{db, testing::TestDb};
use diesel::{sql_types::Text, QueryableByName};
use diesel_async::RunQueryDsl;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

async fn names(db: &TestDb, sql: &str) -> Vec<String> {
    let mut conn = db.connect().await.unwrap();
    let mut v: Vec<String> = diesel::sql_query(sql)
        .load::<Name>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    v.sort();
    v
}

const TABLES: &str =
    "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'boards'";
const CONSTRAINTS: &str = "SELECT conname::text AS name FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'boards'";
const INDEXES: &str = "SELECT indexname::text AS name FROM pg_indexes WHERE schemaname = 'boards'";
const TRIGGERS: &str = "SELECT tgname::text AS name FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'boards' AND NOT t.tgisinternal";

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn assert_original_shape(db: &TestDb) {
    assert_eq!(
        names(db, TABLES).await,
        sorted(&[
            "board_members",
            "boards",
            "credit_transactions",
            "generation_tags",
            "generations",
            "job_outbox", // ours: the job outbox
            "job_runs",   // ours: job claims and leases
            "lora_models",
            "provider_configs",
            "tags",
            "tenant_members", // ours: who may use and administer a tenant
            "tenants",
            "users",
            "webhook_deliveries", // ours: one row per event per endpoint (also the outbox)
            "webhooks",           // ours: a board's webhook endpoints
        ])
    );
    let constraints = names(db, CONSTRAINTS).await;
    for expected in [
        "tenants_pkey",
        "tenants_slug_key",
        "provider_configs_tenant_id_fkey",
        "provider_configs_tenant_id_provider_name_key",
        "users_tenant_id_fkey",
        "users_tenant_id_auth_provider_auth_subject_key",
        "boards_owner_id_fkey",
        "boards_tenant_id_fkey",
        "lora_models_tenant_id_fkey",
        "lora_models_user_id_fkey",
        "board_members_board_id_user_id_key",
        "board_members_role_check",
        "board_members_board_id_fkey",
        "board_members_user_id_fkey",
        "board_members_invited_by_fkey",
        "generations_board_id_fkey",
        "generations_tenant_id_fkey",
        "generations_user_id_fkey",
        "credit_transactions_transaction_type_check",
        "credit_transactions_generation_id_fkey",
        "tags_tenant_id_fkey",
        "tags_tenant_id_slug_key",
        "generation_tags_generation_id_fkey",
        "generation_tags_tag_id_fkey",
        "generation_tags_generation_id_tag_id_key",
        "tenant_members_pkey",
        "tenant_members_tenant_id_fkey",
        "tenant_members_role_check",
        "tenants_status_check",
        "webhooks_board_id_fkey",
        "webhook_deliveries_webhook_id_fkey",
        "webhook_deliveries_status_check",
    ] {
        assert!(
            constraints.contains(&expected.to_string()),
            "missing constraint {expected}"
        );
    }
    let indexes = names(db, INDEXES).await;
    for expected in [
        "idx_users_auth",
        "idx_users_tenant",
        "idx_boards_owner",
        "idx_boards_tenant",
        "idx_board_members_board",
        "idx_board_members_user",
        "idx_generations_board",
        "idx_generations_status",
        "idx_generations_tenant",
        "idx_generations_user",
        "idx_generations_input_artifacts_gin",
        "idx_credit_transactions_user",
        "idx_tags_slug",
        "idx_tags_tenant",
        "idx_generation_tags_generation",
        "idx_generation_tags_tag",
        "idx_tenant_members_identity",
        "idx_tenants_registrant",
    ] {
        assert!(
            indexes.contains(&expected.to_string()),
            "missing index {expected}"
        );
    }
    let triggers = names(db, TRIGGERS).await;
    for table in [
        "tenants",
        "provider_configs",
        "users",
        "boards",
        "lora_models",
        "generations",
        "tags",
        "webhooks",
        "webhook_deliveries",
    ] {
        assert!(
            triggers.contains(&format!("trg_{table}_updated_at")),
            "missing trigger on {table}"
        );
    }
    assert!(triggers.contains(&"trg_generations_webhooks".to_string()));
    assert_eq!(
        names(db, "SELECT slug::text AS name FROM boards.tenants").await,
        vec!["default".to_string()]
    );
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let db = TestDb::empty().await.unwrap();
    let applied = db::run_migrations(db.url()).await.unwrap();
    assert_eq!(applied.len(), db::migration_names().len());
    assert_original_shape(&db).await;
    assert!(!db::has_pending_migrations(db.url()).await.unwrap());

    let reverted = db::revert_all_migrations(db.url()).await.unwrap();
    assert_eq!(reverted, applied.len());
    assert!(names(&db, TABLES).await.is_empty());
    assert!(db::has_pending_migrations(db.url()).await.unwrap());

    db::run_migrations(db.url()).await.unwrap();
    assert_original_shape(&db).await;
}

#[tokio::test]
async fn updated_at_follows_updates() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.connect().await.unwrap();
    diesel::sql_query("UPDATE boards.tenants SET updated_at = '2000-01-01', name = 'x'")
        .execute(&mut conn)
        .await
        .unwrap();
    let stale = names(
        &db,
        "SELECT slug::text AS name FROM boards.tenants WHERE updated_at < '2001-01-01'",
    )
    .await;
    assert!(
        stale.is_empty(),
        "the trigger overrides explicit updated_at values"
    );
}
