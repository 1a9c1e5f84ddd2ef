//! What one request may cost: query cost analysis (aliases, pages, fragments), the response
//! size cap, and the client's own documents well under the default limit. The memory claim is
//! shown against the real binary.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use boards_api::graphql::{build_schema, cost::CostPlan};
use boards_shared::{
    testing::{rss_kib, TestDb},
    Config,
};
use serde_json::{json, Map, Value};

use crate::{
    client_generation_ops as gen_ops, client_ops,
    util::{error_of, fixtures, Options, TestApp},
};

/// The attack of the hardening review: 390 aliases of two nested 500-item pages.
fn alias_bomb(aliases: usize) -> String {
    let one = |i: usize| {
        format!("a{i}: publicBoards(limit: 500) {{ generations(limit: 500) {{ id inputParams outputMetadata }} }} ")
    };
    format!("{{ {} }}", (0..aliases).map(one).collect::<String>())
}

#[test]
fn the_clients_documents_stay_well_under_the_default_limit() {
    let config = Config::default();
    let schema = build_schema(&config.graphql);
    let max = config.graphql.max_cost;
    let vars = |v: Value| v.as_object().cloned().unwrap_or_default();
    let documents: Vec<(String, Map<String, Value>)> = vec![
        (client_ops::get_boards(), vars(json!({"limit": 50}))),
        // The board page asks for 100 generations.
        (client_ops::get_board(), vars(json!({"limit": 100}))),
        (client_ops::create_board(), Map::new()),
        (client_ops::update_board(), Map::new()),
        (gen_ops::create_generation(), Map::new()),
        (gen_ops::get_ancestry(), Map::new()),
        (gen_ops::get_descendants(), Map::new()),
        (gen_ops::get_input_artifacts(), Map::new()),
        (gen_ops::get_tags(), Map::new()),
        (gen_ops::get_generation_tags(), Map::new()),
        (gen_ops::GET_GENERATORS.to_string(), Map::new()),
    ];
    for (doc, variables) in documents {
        let cost = CostPlan::build(&schema.schema, &doc, None, 500).evaluate(&variables);
        assert!(
            cost * 5 <= max,
            "cost {cost} is not well under {max}: {doc}"
        );
    }
}

#[tokio::test]
async fn an_alias_bomb_is_refused_with_its_cost() {
    let app = TestApp::spawn().await;
    let res = app.gql(None, &alias_bomb(390), json!({})).await;
    let (message, code) = error_of(&res);
    assert_eq!(code, "QUERY_TOO_EXPENSIVE", "{res}");
    let cost = res["errors"][0]["extensions"]["cost"].as_u64().unwrap();
    // Per alias: 500 boards (row 10 + the field) × 500 generations (row 20 + id + 2 JSON).
    assert_eq!(cost, 390 * (1 + 500 * (11 + 500 * 41)));
    assert_eq!(res["errors"][0]["extensions"]["maxCost"], 50_000);
    assert!(message.contains(&cost.to_string()), "{message}");
    assert!(res["data"].is_null());
    // Variables count too: the same page through a variable is as expensive.
    let res = app
        .gql(
            None,
            "query($n: Int) { publicBoards(limit: $n) { generations(limit: $n) { id } } }",
            json!({"n": 500}),
        )
        .await;
    assert_eq!(error_of(&res).1, "QUERY_TOO_EXPENSIVE");
    let res = app
        .gql(
            None,
            "query($n: Int) { publicBoards(limit: $n) { generations(limit: $n) { id } } }",
            json!({"n": 10}),
        )
        .await;
    assert!(res.get("errors").is_none(), "{res}");
}

#[tokio::test]
async fn an_answer_over_the_response_cap_becomes_an_error() {
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_GRAPHQL_MAX_RESPONSE_BYTES", "4096"))
            .await;
    let alice = app.user("alice").await;
    let board = crate::boards::create(
        &app,
        &alice.token,
        json!({"title": "big", "isPublic": true}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..20 {
        let mut g = fixtures::GenerationFixture::completed_image(&board, &alice.id);
        g.input_params = json!({"prompt": "x".repeat(400)});
        g.insert(&app).await;
    }
    let q = "query($b: UUID!) { board(id: $b) { generations { id inputParams } } }";
    let res = app.gql(Some(&alice.token), q, json!({"b": board})).await;
    assert_eq!(error_of(&res).1, "RESPONSE_TOO_LARGE", "{res}");
    let small = "query($b: UUID!) { board(id: $b) { generations(limit: 2) { id } } }";
    assert!(app
        .gql(Some(&alice.token), small, json!({"b": board}))
        .await
        .get("errors")
        .is_none());
}

struct Api(Child);

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn anonymous_floods_of_costly_queries_leave_the_api_process_near_idle_memory() {
    // Arrange: the real binary on a database with public boards full of generations.
    let db = TestDb::new().await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let api = Api(Command::new(env!("CARGO_BIN_EXE_boards-api"))
        .env("BOARDS_DATABASE_URL", db.url())
        .env("BOARDS_API_PORT", port.to_string())
        .env("BOARDS_AMQP_PREFIX", format!("limits-{tag}"))
        .env("BOARDS_REDIS_CHANNEL_PREFIX", format!("limits-{tag}:"))
        .env("BOARDS_AUTH_PROVIDER", "jwt")
        .env("BOARDS_JWT_SECRET", crate::util::JWT_SECRET)
        .env("BOARDS_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let mut conn = db.connect().await.unwrap();
    use diesel_async::RunQueryDsl as _;
    diesel::sql_query(
        "WITH t AS (SELECT id FROM boards.tenants WHERE slug = 'default'),
         u AS (INSERT INTO boards.users (id, tenant_id, auth_provider, auth_subject)
               SELECT gen_random_uuid(), id, 'jwt', 'seed' FROM t RETURNING id, tenant_id),
         b AS (INSERT INTO boards.boards (tenant_id, owner_id, title, is_public)
               SELECT u.tenant_id, u.id, 'public ' || n, true FROM u, generate_series(1, 20) n
               RETURNING id, tenant_id, owner_id)
         INSERT INTO boards.generations (tenant_id, board_id, user_id, generator_name, artifact_type,
                                         input_params, output_metadata, status)
         SELECT b.tenant_id, b.id, b.owner_id, 'local-image', 'image',
                jsonb_build_object('prompt', repeat('p', 2000)), jsonb_build_object('note', repeat('m', 2000)),
                'completed'
         FROM b, generate_series(1, 200)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/graphql");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = client
            .post(&url)
            .json(&json!({"query": "{ me { id } }"}))
            .send()
            .await;
        if up.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the API did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let idle = rss_kib(api.0.id());

    // Act: the alias bomb, and a flood of the most expensive queries the limit lets through.
    let bomb: Value = client
        .post(&url)
        .json(&json!({"query": alias_bomb(390)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        bomb["errors"][0]["extensions"]["code"],
        "QUERY_TOO_EXPENSIVE"
    );
    // Just under the cost limit: 20 × 60 generations with 4 kB of JSON each
    // (1 + 20 × (11 + 60 × 41) = 49,421).
    let heavy =
        "{ publicBoards(limit: 20) { generations(limit: 60) { id inputParams outputMetadata } } }";
    let mut peak = rss_kib(api.0.id());
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let (client, url) = (client.clone(), url.clone());
        flood.spawn(async move {
            client
                .post(&url)
                .json(&json!({"query": heavy}))
                .send()
                .await
                .map(|r| r.status().as_u16())
            // (Some may be told the server is busy: expensive queries run a few at a time.)
        });
    }
    while !flood.is_empty() {
        tokio::select! {
            done = flood.join_next() => {
                if let Some(r) = done {
                    assert_eq!(r.unwrap().unwrap(), 200);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        peak = peak.max(rss_kib(api.0.id()));
    }

    eprintln!("API RSS: idle {idle} KiB, peak {peak} KiB under the flood");
    // Assert: within 100 MB of idle throughout.
    assert!(
        peak.saturating_sub(idle) < 100 * 1024,
        "RSS went from {idle} KiB to {peak} KiB"
    );
    drop(api);
    boards_shared::testing::delete_topology(
        &Config::load_from(
            &[("BOARDS_AMQP_PREFIX".to_string(), format!("limits-{tag}"))]
                .into_iter()
                .collect(),
        )
        .unwrap(),
        &["default"],
    );
}

#[tokio::test]
async fn stored_json_and_user_board_lists_are_bounded() {
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_GRAPHQL_MAX_PAGE_SIZE", "2")).await;
    let alice = app.user("alice").await;
    for i in 0..3 {
        crate::boards::create(
            &app,
            &alice.token,
            json!({"title": format!("b{i}"), "isPublic": true}),
        )
        .await;
    }
    let data = app
        .ok(
            None,
            "{ publicBoards(limit: 1) { owner { boards { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["publicBoards"][0]["owner"]["boards"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // 16 KiB of JSON per stored document.
    let big = "x".repeat(17 * 1024);
    let res = app
        .gql(
            Some(&alice.token),
            crate::boards::CREATE,
            json!({"input": {"title": "big", "settings": {"notes": big}}}),
        )
        .await;
    let (message, code) = error_of(&res);
    assert_eq!(code, "BAD_USER_INPUT", "{res}");
    assert!(
        message.starts_with("settings must be at most 16384 bytes"),
        "{message}"
    );
    let board = crate::boards::create(&app, &alice.token, json!({"title": "small"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .gql(
            Some(&alice.token),
            crate::generations::CREATE_GEN,
            json!({"input": {"boardId": board, "generatorName": "local-echo", "artifactType": "TEXT",
                "inputParams": {"prompt": "x", "extra": big}}}),
        )
        .await;
    let (message, code) = error_of(&res);
    assert_eq!(code, "BAD_USER_INPUT", "{res}");
    assert!(
        message.starts_with("Invalid input parameters: inputParams must be at most 16384 bytes"),
        "{message}"
    );
}
