//! `TestApp`: the real API on port 0 against a database of its own.

use std::collections::BTreeMap;

use boards_api::{state::AppState, Application};
use boards_shared::{auth::JwtProvider, config::AuthConfig, testing::TestDb, Config};
use serde_json::{json, Value};

pub const JWT_SECRET: &str = "test-secret-with-enough-length-0123456789";

pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    pub client: reqwest::Client,
    pub state: actix_web::web::Data<AppState>,
    /// The configuration the app runs with (workers in tests reuse it).
    pub config: Config,
    /// Kept so the directory lives as long as the app.
    pub _storage_dir: tempfile::TempDir,
    signer: JwtProvider,
}

#[derive(Clone, Default)]
pub struct Options {
    /// Use the `none` provider instead of `jwt`.
    pub no_auth: bool,
    pub env: Vec<(&'static str, String)>,
}

impl Options {
    pub fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    /// A RabbitMQ URL nobody listens on: job messages stay in the outbox.
    pub fn no_broker(self) -> Self {
        self.env("BOARDS_AMQP_URL", "amqp://guest:guest@127.0.0.1:9/%2f")
    }
}

/// Logs to the terminal when `BOARDS_TEST_LOG` is set (debugging), else nowhere.
pub fn test_logger() -> slog::Logger {
    if std::env::var("BOARDS_TEST_LOG").is_ok() {
        boards_shared::logging::build(
            &boards_shared::config::LogConfig {
                level: "debug".into(),
                format: "term".into(),
                otlp_endpoint: None,
            },
            "test",
        )
    } else {
        boards_shared::logging::discard()
    }
}

/// A signed-in test user.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub token: String,
    pub email: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let db = TestDb::new().await.expect("test database");
        let storage_dir = tempfile::tempdir().expect("storage dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("BOARDS_DATABASE_URL".into(), db.url().to_string());
        env.insert("BOARDS_API_PORT".into(), port.to_string());
        // The test's name in its queue names, so anything left behind says who left it.
        let test = std::thread::current()
            .name()
            .and_then(|n| n.rsplit("::").next())
            .unwrap_or("test")
            .chars()
            .take(40)
            .collect::<String>();
        env.insert("BOARDS_AMQP_PREFIX".into(), format!("test-{test}-{tag}"));
        env.insert("BOARDS_REDIS_CHANNEL_PREFIX".into(), format!("test-{tag}:"));
        env.insert(
            "BOARDS_STORAGE_LOCAL_BASE_PATH".into(),
            storage_dir.path().to_string_lossy().to_string(),
        );
        env.insert(
            "BOARDS_STORAGE_LOCAL_PUBLIC_URL_BASE".into(),
            format!("http://127.0.0.1:{port}/api/storage"),
        );
        env.insert("BOARDS_JOB_RETRY_DELAYS_MS".into(), "200,400".into());
        env.insert("BOARDS_JOB_RELAY_INTERVAL_MS".into(), "200".into());
        env.insert("BOARDS_PROGRESS_PERSIST_INTERVAL_MS".into(), "100".into());
        env.insert("BOARDS_WORKER_HEALTH_PORT".into(), "0".into());
        env.insert("BOARDS_WORKER_HEALTH_HOST".into(), "127.0.0.1".into());
        env.insert("BOARDS_API_WORKERS".into(), "1".into());
        env.insert("BOARDS_DATABASE_POOL_SIZE".into(), "4".into());
        env.insert("BOARDS_DATABASE_MAX_OVERFLOW".into(), "4".into());
        if !options.no_auth {
            env.insert("BOARDS_AUTH_PROVIDER".into(), "jwt".into());
            env.insert("BOARDS_JWT_SECRET".into(), JWT_SECRET.into());
        }
        for (k, v) in &options.env {
            env.insert((*k).into(), v.clone());
        }
        let config = Config::load_from(&env).expect("test config");
        let app = Application::build(config.clone(), test_logger())
            .await
            .expect("application starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        let signer = JwtProvider::from_config(&AuthConfig {
            provider: "jwt".into(),
            config: json!({}),
            jwt_secret: Some(boards_shared::config::Secret::new(JWT_SECRET)),
            jwt_tenant_claim: None,
            leeway_seconds: 0,
            env: Default::default(),
        })
        .expect("signer");
        Self {
            base,
            db,
            client: reqwest::Client::new(),
            state,
            config,
            _storage_dir: storage_dir,
            signer,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A valid token for `sub` with extra claims merged in.
    pub fn token_with(&self, sub: &str, extra: Value) -> String {
        let mut claims = json!({
            "iss": "boards", "aud": "boards-api", "sub": sub,
            "exp": chrono::Utc::now().timestamp() + 3600,
            "email": format!("{sub}@example.com"), "name": format!("User {sub}"),
        });
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        self.signer.sign(&claims).expect("sign")
    }

    pub fn token(&self, sub: &str) -> String {
        self.token_with(sub, json!({}))
    }

    /// Signs in `sub` (provisioning the user) and returns its id and token.
    pub async fn user(&self, sub: &str) -> TestUser {
        self.user_with(sub, json!({}), None).await
    }

    pub async fn user_with(&self, sub: &str, claims: Value, tenant: Option<&str>) -> TestUser {
        let token = self.token_with(sub, claims);
        let res = self
            .gql_full(Some(&token), tenant, "{ me { id email } }", json!({}))
            .await;
        let me = &res["data"]["me"];
        TestUser {
            id: me["id"]
                .as_str()
                .unwrap_or_else(|| panic!("me failed: {res}"))
                .to_string(),
            email: me["email"].as_str().unwrap_or_default().to_string(),
            token,
        }
    }

    /// POSTs a GraphQL request and returns the JSON body (asserting HTTP 200).
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.gql_full(token, None, query, variables).await
    }

    pub async fn gql_full(
        &self,
        token: Option<&str>,
        tenant: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        let headers: Vec<_> = tenant.map(|t| ("X-Tenant", t)).into_iter().collect();
        self.gql_with(token, &headers, query, variables).await
    }

    /// A GraphQL call with extra request headers.
    pub async fn gql_with(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
        query: &str,
        variables: Value,
    ) -> Value {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.expect("request");
        assert_eq!(res.status(), 200, "graphql status");
        res.json().await.expect("json body")
    }

    /// Like [`gql`](Self::gql) but panics unless the response has no errors; returns `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.ok_traced(token, None, query, variables).await
    }

    /// Like [`ok`](Self::ok), sent with `traceparent` when given.
    pub async fn ok_traced(
        &self,
        token: Option<&str>,
        traceparent: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        let headers: Vec<_> = traceparent
            .map(|t| ("traceparent", t))
            .into_iter()
            .collect();
        let res = self.gql_with(token, &headers, query, variables).await;
        assert!(res.get("errors").is_none(), "unexpected errors: {res}");
        res["data"].clone()
    }

    /// SQL statements the app has run so far.
    pub fn queries(&self) -> u64 {
        self.state.db_metrics.queries()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let pools: Vec<&str> = self
            .config
            .jobs
            .pools
            .values()
            .map(String::as_str)
            .chain(["default"])
            .collect();
        // Straight to the broker: a test may have routed the app through a proxy that cannot
        // run while this drop blocks the test's runtime.
        let mut config = self.config.clone();
        config.amqp.url = boards_shared::Config::default().amqp.url;
        if let Ok(url) = std::env::var("BOARDS_AMQP_URL") {
            config.amqp.url = boards_shared::config::Secret::new(url);
        }
        boards_shared::testing::delete_topology(&config, &pools);
        boards_shared::testing::delete_redis_keys(
            self.config.redis.url.expose(),
            &self.config.redis.channel_prefix,
        );
    }
}

/// The first error's message and code.
pub fn error_of(res: &Value) -> (String, String) {
    let e = &res["errors"][0];
    (
        e["message"].as_str().unwrap_or_default().to_string(),
        e["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Book-keeping shared by the access-matrix tests (`access`, `access_generations`).
pub mod matrix {
    use std::cell::Cell;

    /// A well-formed HS256 token signed with a secret the API does not know.
    pub const BAD_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJib2FyZHMiLCJhdWQiOiJib2FyZHMtYXBpIiwic3ViIjoib3duZXIiLCJleHAiOjQxMDI0NDQ4MDB9.ZmFrZS1zaWduYXR1cmUtZmFrZS1zaWduYXR1cmUtZmFrZQ";

    /// The callers of every matrix, in the order printed.
    pub const CALLERS: &str =
        "owner, viewer, editor, admin, non-member, other tenant, anonymous, bad token";

    thread_local! {
        /// Cells checked by the test running on this thread (tokio tests run on one thread).
        static CELLS: Cell<usize> = const { Cell::new(0) };
    }

    /// Counts `n` checked cells (caller × operation × case).
    pub fn count(n: usize) {
        CELLS.with(|c| c.set(c.get() + n));
    }

    /// Prints and resets this test's count; called when a matrix world is dropped.
    pub fn report() {
        let cells = CELLS.with(|c| c.replace(0));
        println!("access matrix: {cells} cells checked (callers: {CALLERS})");
    }
}

/// Fixtures written straight to the database (states no API call produces yet).
pub mod fixtures {
    use diesel_async::RunQueryDsl;
    use serde_json::Value;

    use super::TestApp;

    /// Inserts a generation row and returns its id.
    pub struct GenerationFixture<'a> {
        pub board_id: &'a str,
        pub user_id: &'a str,
        pub generator: &'a str,
        pub artifact_type: &'a str,
        pub status: &'a str,
        pub progress: f64,
        pub input_params: Value,
        pub output_metadata: Value,
        pub input_artifacts: Value,
        pub storage_url: Option<&'a str>,
    }

    impl<'a> GenerationFixture<'a> {
        pub fn completed_image(board_id: &'a str, user_id: &'a str) -> Self {
            Self {
                board_id,
                user_id,
                generator: "local-image",
                artifact_type: "image",
                status: "completed",
                progress: 100.0,
                input_params: serde_json::json!({"prompt": "fixture"}),
                output_metadata: serde_json::json!({"format": "png", "width": 64, "height": 64}),
                input_artifacts: serde_json::json!([]),
                storage_url: Some("http://localhost/x.png"),
            }
        }

        pub async fn insert(&self, app: &TestApp) -> String {
            let mut conn = app.db.connect().await.unwrap();
            let id = uuid::Uuid::new_v4();
            let q = |v: &Value| v.to_string().replace('\'', "''");
            diesel::sql_query(format!(
                "INSERT INTO boards.generations (id, tenant_id, board_id, user_id, generator_name, artifact_type,
                   input_params, status, progress, output_metadata, input_artifacts, storage_url, completed_at)
                 SELECT '{id}', b.tenant_id, b.id, '{user}', '{gen}', '{kind}', '{params}'::jsonb, '{status}',
                   {progress}, '{meta}'::jsonb, '{inputs}'::jsonb, {url}, CASE WHEN '{status}' = 'completed' THEN now() END
                 FROM boards.boards b WHERE b.id = '{board}'",
                user = self.user_id,
                gen = self.generator,
                kind = self.artifact_type,
                params = q(&self.input_params),
                status = self.status,
                progress = self.progress,
                meta = q(&self.output_metadata),
                inputs = q(&self.input_artifacts),
                url = self.storage_url.map_or("NULL".to_string(), |u| format!("'{u}'")),
                board = self.board_id,
            ))
            .execute(&mut conn)
            .await
            .unwrap();
            id.to_string()
        }
    }

    /// Runs SQL against the test's database.
    pub async fn sql(app: &TestApp, statement: &str) {
        let mut conn = app.db.connect().await.unwrap();
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap();
    }

    /// Number of queued job messages for `generation_id`.
    pub async fn outbox_count(app: &TestApp, generation_id: &str) -> i64 {
        count(
            app,
            &format!("SELECT count(*) AS n FROM boards.job_outbox WHERE generation_id = '{generation_id}'"),
        )
        .await
    }

    /// Number of generations (any status) on `board_id`.
    pub async fn count_generations(app: &TestApp, board_id: &str) -> i64 {
        count(
            app,
            &format!("SELECT count(*) AS n FROM boards.generations WHERE board_id = '{board_id}'"),
        )
        .await
    }

    pub async fn count(app: &TestApp, query: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = app.db.connect().await.unwrap();
        let rows: Vec<N> = diesel::sql_query(query).load(&mut conn).await.unwrap();
        rows[0].n
    }
}

/// A TCP proxy the test can switch off (refusing and cutting connections), black-hole (accept
/// and hold connections, forwarding nothing, as a host behind a dead route), and on again.
pub mod proxy {
    use tokio::{
        net::{TcpListener, TcpStream},
        sync::watch,
    };

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mode {
        Forward,
        /// New connections are refused, open ones cut.
        Off,
        /// Connections stay open and silent; nothing is forwarded either way.
        BlackHole,
    }

    pub struct Proxy {
        port: u16,
        mode: watch::Sender<(Mode, u64)>,
    }

    /// Waits until the mode changes away from what it was when the connection started.
    async fn changed(rx: &mut watch::Receiver<(Mode, u64)>) -> Mode {
        let _ = rx.changed().await;
        rx.borrow_and_update().0
    }

    /// Holds `sockets` open until the mode changes again.
    async fn hold(mut rx: watch::Receiver<(Mode, u64)>, sockets: Vec<TcpStream>) {
        let _ = rx.changed().await;
        drop(sockets);
    }

    impl Proxy {
        pub async fn start(target: &str) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let (tx, rx) = watch::channel((Mode::Forward, 0u64));
            let target = target.to_string();
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        return;
                    };
                    let mut rx = rx.clone();
                    let mode = rx.borrow_and_update().0;
                    match mode {
                        Mode::Off => drop(inbound),
                        Mode::BlackHole => {
                            tokio::spawn(hold(rx, vec![inbound]));
                        }
                        Mode::Forward => {
                            let target = target.clone();
                            tokio::spawn(async move {
                                let Ok(mut outbound) = TcpStream::connect(&target).await else {
                                    return;
                                };
                                let next = tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
                                    m = changed(&mut rx) => m,
                                };
                                if next == Mode::BlackHole {
                                    hold(rx, vec![inbound, outbound]).await;
                                }
                            });
                        }
                    }
                }
            });
            Self { port, mode: tx }
        }

        pub fn port(&self) -> u16 {
            self.port
        }

        pub fn set_mode(&self, mode: Mode) {
            self.mode.send_modify(|(m, n)| {
                *m = mode;
                *n += 1;
            });
        }

        /// Off: new connections are refused and open ones are cut.
        pub fn set_enabled(&self, on: bool) {
            self.set_mode(if on { Mode::Forward } else { Mode::Off });
        }
    }
}
