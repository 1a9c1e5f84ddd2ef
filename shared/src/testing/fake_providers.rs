//! Local fakes of Replicate's predictions API, OpenAI's images and transcriptions APIs, and
//! Kie.ai's task APIs, on 127.0.0.1 (wiremock), speaking each protocol: they record what they
//! receive, can refuse the first submits with 429 (`Retry-After: 0`), fail, or never finish,
//! and serve real output files (PNG/MP4/WAV) from `/files/`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path, path_regex},
    Mock, MockServer, Request, ResponseTemplate,
};

use crate::media::tests_support;

/// How a fake behaves (each reads the fields that mean something for its protocol).
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Submits refused with 429 before one is taken.
    pub refuse_submits: u32,
    /// Polls per task before it finishes.
    pub polls_to_finish: u32,
    pub never_finish: bool,
    /// The task (or the call, for OpenAI) fails with this message.
    pub fail_with: Option<String>,
    /// Output files per task (Kie, Replicate lists).
    pub outputs: usize,
    /// Extension of the output files (`png`, `mp4`, `wav`).
    pub output_ext: &'static str,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            refuse_submits: 0,
            polls_to_finish: 2,
            never_finish: false,
            fail_with: None,
            outputs: 1,
            output_ext: "png",
        }
    }
}

/// What a fake received.
#[derive(Default)]
struct State {
    behaviour: Behaviour,
    refused: u32,
    /// Submits taken: (path, body).
    submits: Vec<(String, Value)>,
    /// Task id → polls.
    polls: HashMap<String, u32>,
    cancels: Vec<String>,
    /// (path, bytes, content type) of every file upload.
    uploads: Vec<(String, Vec<u8>, String)>,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fake provider: its server and what it saw.
pub struct Fake {
    pub server: MockServer,
    state: Shared,
}

impl Fake {
    pub fn url(&self) -> String {
        self.server.uri()
    }
    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut lock(&self.state).behaviour);
    }
    /// (path, body) of the submits taken.
    pub fn submitted(&self) -> Vec<(String, Value)> {
        lock(&self.state).submits.clone()
    }
    pub fn refused(&self) -> u32 {
        lock(&self.state).refused
    }
    pub fn polls(&self) -> u32 {
        lock(&self.state).polls.values().sum()
    }
    pub fn cancels(&self) -> Vec<String> {
        lock(&self.state).cancels.clone()
    }
    /// (path, body, content type) of the multipart uploads (whole bodies).
    pub fn uploads(&self) -> Vec<(String, Vec<u8>, String)> {
        lock(&self.state).uploads.clone()
    }

    async fn start(behaviour: Behaviour) -> (MockServer, Shared) {
        let server = MockServer::start().await;
        let state: Shared = Arc::new(Mutex::new(State {
            behaviour,
            ..State::default()
        }));
        Mock::given(method("GET"))
            .and(path_regex(r"^/files/.+"))
            .respond_with(|r: &Request| {
                let name = r.url.path().rsplit('/').next().unwrap_or_default();
                let (bytes, ct) = match name.rsplit('.').next() {
                    Some("mp4") => (tests_support::mp4_bytes(1000, 4000, 0), "video/mp4"),
                    Some("wav") => (tests_support::wav_bytes(8000, 1, 16000), "audio/wav"),
                    _ => (tests_support::png(40, 30), "image/png"),
                };
                ResponseTemplate::new(200).set_body_raw(bytes, ct)
            })
            .mount(&server)
            .await;
        (server, state)
    }

    /// Records a submit, or refuses it with 429 while refusals remain (`None` = take it).
    fn take(state: &Shared, r: &Request) -> Option<ResponseTemplate> {
        let mut st = lock(state);
        if st.refused < st.behaviour.refuse_submits {
            st.refused += 1;
            return Some(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "0")
                    .set_body_json(json!({"detail": "Request was throttled", "error": {"message": "Rate limit reached"}})),
            );
        }
        let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        st.submits.push((r.url.path().to_string(), body));
        None
    }

    /// Counts a poll of `id`; whether the task is finished now.
    fn poll(state: &Shared, id: &str) -> bool {
        let mut st = lock(state);
        let b = st.behaviour.clone();
        let n = st.polls.entry(id.to_string()).or_default();
        *n += 1;
        !b.never_finish && *n >= b.polls_to_finish
    }

    fn files(state: &Shared, base: &str, id: &str) -> Vec<String> {
        let b = lock(state).behaviour.clone();
        (0..b.outputs)
            .map(|i| format!("{base}/files/{id}-{i}.{}", b.output_ext))
            .collect()
    }

    fn record_upload(state: &Shared, r: &Request) {
        let ct = r
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        lock(state)
            .uploads
            .push((r.url.path().to_string(), r.body.clone(), ct));
    }
}

fn bearer(r: &Request, key: &str) -> bool {
    r.headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {key}").as_str())
}

fn unauthorised() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(
        json!({"detail": "Invalid token", "error": {"message": "Incorrect API key"}}),
    )
}

/// Replicate: `POST /models/{owner}/{name}/predictions`, `POST /predictions`, `GET
/// /predictions/{id}`, `POST /predictions/{id}/cancel`, `POST /files`. Key `test-replicate`.
pub async fn replicate(behaviour: Behaviour) -> Fake {
    let (server, state) = Fake::start(behaviour).await;
    let base = server.uri();
    let (s, b) = (state.clone(), base.clone());
    Mock::given(method("POST"))
        .and(path("/files"))
        .respond_with(move |r: &Request| {
            if !bearer(r, "test-replicate") {
                return unauthorised();
            }
            Fake::record_upload(&s, r);
            let id = uuid::Uuid::new_v4();
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": id, "urls": {"get": format!("{b}/uploaded/{id}")}}))
        })
        .mount(&server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path_regex(r"^/predictions/[^/]+/cancel$"))
        .respond_with(move |r: &Request| {
            let id = r
                .url
                .path()
                .split('/')
                .nth(2)
                .unwrap_or_default()
                .to_string();
            lock(&s).cancels.push(id.clone());
            ResponseTemplate::new(200).set_body_json(json!({"id": id, "status": "canceled"}))
        })
        .mount(&server)
        .await;
    let (s, b) = (state.clone(), base.clone());
    Mock::given(method("GET"))
        .and(path_regex(r"^/predictions/[^/]+$"))
        .respond_with(move |r: &Request| {
            if !bearer(r, "test-replicate") {
                return unauthorised();
            }
            let id = r
                .url
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let done = Fake::poll(&s, &id);
            let fail = lock(&s).behaviour.fail_with.clone();
            let body = match (done, fail) {
                (false, _) => json!({"id": id, "status": "processing", "logs": "step 1\nstep 2\n"}),
                (true, Some(e)) => json!({"id": id, "status": "failed", "error": e}),
                (true, None) => {
                    let files = Fake::files(&s, &b, &id);
                    let output = if files.len() == 1 {
                        json!(files[0])
                    } else {
                        json!(files)
                    };
                    json!({"id": id, "status": "succeeded", "output": output})
                }
            };
            ResponseTemplate::new(200).set_body_json(body)
        })
        .mount(&server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path_regex(r"^/(models/[^/]+/[^/]+/)?predictions$"))
        .respond_with(move |r: &Request| {
            if !bearer(r, "test-replicate") {
                return unauthorised();
            }
            if let Some(refused) = Fake::take(&s, r) {
                return refused;
            }
            let id = uuid::Uuid::new_v4().simple().to_string();
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": id, "status": "starting", "output": null}))
        })
        .mount(&server)
        .await;
    Fake { server, state }
}

/// OpenAI: `POST /images/generations`, `POST /images/edits`, `POST /audio/transcriptions`.
/// Key `test-openai`.
pub async fn openai(behaviour: Behaviour) -> Fake {
    let (server, state) = Fake::start(behaviour).await;
    let base = server.uri();
    let (s, b) = (state.clone(), base.clone());
    Mock::given(method("POST"))
        .and(path("/images/generations"))
        .respond_with(move |r: &Request| {
            if !bearer(r, "test-openai") {
                return unauthorised();
            }
            if let Some(refused) = Fake::take(&s, r) {
                return refused;
            }
            if let Some(e) = lock(&s).behaviour.fail_with.clone() {
                return ResponseTemplate::new(400).set_body_json(
                    json!({"error": {"message": e, "type": "invalid_request_error"}}),
                );
            }
            let id = uuid::Uuid::new_v4().simple().to_string();
            let data: Vec<Value> = Fake::files(&s, &b, &id)
                .into_iter()
                .map(|u| json!({"url": u, "revised_prompt": "revised"}))
                .collect();
            ResponseTemplate::new(200).set_body_json(json!({"created": 1, "data": data}))
        })
        .mount(&server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path("/images/edits"))
        .respond_with(move |r: &Request| {
            if !bearer(r, "test-openai") {
                return unauthorised();
            }
            Fake::record_upload(&s, r);
            // gpt-image models answer with the image itself.
            use base64::Engine as _;
            let png = base64::engine::general_purpose::STANDARD.encode(tests_support::png(24, 16));
            ResponseTemplate::new(200)
                .set_body_json(json!({"created": 1, "data": [{"b64_json": png}]}))
        })
        .mount(&server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path("/audio/transcriptions"))
        .respond_with(move |r: &Request| {
            if !bearer(r, "test-openai") {
                return unauthorised();
            }
            Fake::record_upload(&s, r);
            if let Some(e) = lock(&s).behaviour.fail_with.clone() {
                return ResponseTemplate::new(400).set_body_json(json!({"error": {"message": e}}));
            }
            ResponseTemplate::new(200).set_body_json(json!({"text": "the whole transcript, every word of it, well past fifty characters"}))
        })
        .mount(&server)
        .await;
    Fake { server, state }
}

/// Kie.ai: the market, Veo, Aleph and Suno task APIs and the file upload, on one host. Key
/// `test-kie`.
pub async fn kie(behaviour: Behaviour) -> Fake {
    let (server, state) = Fake::start(behaviour).await;
    let base = server.uri();
    let (s, b) = (state.clone(), base.clone());
    Mock::given(method("POST"))
        .and(path("/api/file-stream-upload"))
        .respond_with(move |r: &Request| {
            if !bearer(r, "test-kie") {
                return unauthorised();
            }
            Fake::record_upload(&s, r);
            let id = uuid::Uuid::new_v4();
            ResponseTemplate::new(200).set_body_json(json!({"success": true, "code": 200, "data": {"downloadUrl": format!("{b}/uploaded/{id}")}}))
        })
        .mount(&server)
        .await;
    for (kind, submit, record) in [
        (
            "market",
            "/api/v1/jobs/createTask",
            "/api/v1/jobs/recordInfo",
        ),
        ("veo", "/api/v1/veo/generate", "/api/v1/veo/record-info"),
        (
            "aleph",
            "/api/v1/aleph/generate",
            "/api/v1/aleph/record-info",
        ),
        ("suno", "/api/v1/generate", "/api/v1/generate/record-info"),
        (
            "sounds",
            "/api/v1/generate/sounds",
            "/api/v1/generate/record-info",
        ),
    ] {
        let s = state.clone();
        Mock::given(method("POST"))
            .and(path(submit))
            .respond_with(move |r: &Request| {
                if !bearer(r, "test-kie") {
                    return unauthorised();
                }
                if let Some(refused) = Fake::take(&s, r) {
                    return refused;
                }
                // Kie answers bad requests with HTTP 200 and another code.
                if let Some(e) = lock(&s).behaviour.fail_with.clone() {
                    if e.starts_with("submit:") {
                        return ResponseTemplate::new(200).set_body_json(
                            json!({"code": 422, "msg": e.trim_start_matches("submit:").trim()}),
                        );
                    }
                }
                let id = format!("{kind}-{}", uuid::Uuid::new_v4().simple());
                ResponseTemplate::new(200)
                    .set_body_json(json!({"code": 200, "msg": "success", "data": {"taskId": id}}))
            })
            .mount(&server)
            .await;
        let (s, b) = (state.clone(), base.clone());
        Mock::given(method("GET"))
            .and(path(record))
            .respond_with(move |r: &Request| {
                if !bearer(r, "test-kie") {
                    return unauthorised();
                }
                let id = r
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "taskId")
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default();
                let done = Fake::poll(&s, &id);
                let fail = lock(&s).behaviour.fail_with.clone().filter(|e| !e.starts_with("submit:"));
                let files = Fake::files(&s, &b, &id);
                let data = match (id.split('-').next().unwrap_or_default(), done, fail) {
                    ("market", false, _) => json!({"taskId": id, "state": "generating"}),
                    ("market", true, Some(e)) => json!({"taskId": id, "state": "fail", "failMsg": e}),
                    ("market", true, None) => json!({"taskId": id, "state": "success", "resultJson": json!({"resultUrls": files}).to_string()}),
                    ("suno" | "sounds", false, _) => json!({"taskId": id, "status": "FIRST_SUCCESS"}),
                    ("suno" | "sounds", true, Some(e)) => json!({"taskId": id, "status": "GENERATE_AUDIO_FAILED", "errorMsg": e}),
                    ("suno" | "sounds", true, None) => json!({"taskId": id, "status": "SUCCESS", "response": {"sunoData": files.iter().map(|u| json!({"audioUrl": u, "duration": 2.0})).collect::<Vec<_>>()}}),
                    (_, false, _) => json!({"taskId": id, "successFlag": 0}),
                    (_, true, Some(e)) => json!({"taskId": id, "successFlag": 2, "errorMsg": e}),
                    (_, true, None) => json!({"taskId": id, "successFlag": 1, "response": {"resultUrls": files, "resultVideoUrl": files.first()}}),
                };
                ResponseTemplate::new(200).set_body_json(json!({"code": 200, "msg": "success", "data": data}))
            })
            .mount(&server)
            .await;
    }
    Fake { server, state }
}
