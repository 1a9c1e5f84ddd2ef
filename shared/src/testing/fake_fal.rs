//! A local fake of fal.ai's queue API and CDN on 127.0.0.1, speaking its protocol: submit,
//! status (queue position, then logs, then `COMPLETED`), result, cancel, CDN token and upload,
//! and the output files themselves (real PNG/MP4/WAV bytes). It counts what it receives, and
//! can be told to refuse submits with 429, fail requests, or never finish.

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

/// How the fake behaves.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Submits refused with 429 (`Retry-After: 0`) before one is taken.
    pub refuse_submits: u32,
    /// Status polls per request before it reports `COMPLETED`.
    pub polls_to_finish: u32,
    /// Never completes (for cancels and timeouts).
    pub never_finish: bool,
    /// The result answer is this error (status, body) instead of outputs.
    pub fail_with: Option<(u16, Value)>,
    /// Size of the output images (whatever the answer JSON claims).
    pub image_size: (u32, u32),
    /// Outputs when the submit names no `num_images`.
    pub default_outputs: usize,
    /// Finishes this long after the submit instead of after `polls_to_finish` polls.
    pub finish_after: Option<std::time::Duration>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            refuse_submits: 0,
            polls_to_finish: 3,
            never_finish: false,
            fail_with: None,
            image_size: (64, 48),
            default_outputs: 1,
            finish_after: None,
        }
    }
}

#[derive(Default)]
struct State {
    behaviour: Behaviour,
    refused: u32,
    /// Request id → (endpoint, submitted body, polls so far, submitted at).
    requests: HashMap<String, (String, Value, u32, std::time::Instant)>,
    cancels: Vec<String>,
    uploads: Vec<(String, usize)>,
}

pub struct FakeFal {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Arc<Mutex<State>>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeFal {
    pub async fn start(behaviour: Behaviour) -> Self {
        Self::start_on(MockServer::start().await, behaviour).await
    }

    /// A fake that does not keep the requests it receives (benchmarks: thousands of polls).
    pub async fn start_quiet(behaviour: Behaviour) -> Self {
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        Self::start_on(server, behaviour).await
    }

    async fn start_on(server: MockServer, behaviour: Behaviour) -> Self {
        let state = Arc::new(Mutex::new(State {
            behaviour,
            ..State::default()
        }));
        let uri = server.uri();

        // CDN: token, upload, files.
        let s = state.clone();
        let base = uri.clone();
        Mock::given(method("POST"))
            .and(path("/storage/auth/token"))
            .respond_with(move |r: &Request| {
                if !authorised(r) {
                    return unauthorised();
                }
                let _ = &s;
                ResponseTemplate::new(200).set_body_json(json!({
                    "token": "cdn-token", "token_type": "Bearer", "base_url": base,
                    "expires_at": "2099-01-01T00:00:00Z"
                }))
            })
            .mount(&server)
            .await;
        let s = state.clone();
        let base = uri.clone();
        Mock::given(method("POST"))
            .and(path("/files/upload"))
            .respond_with(move |r: &Request| {
                let name = r
                    .headers
                    .get("x-fal-file-name")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("file")
                    .to_string();
                if r.headers.get("authorization").and_then(|v| v.to_str().ok())
                    != Some("Bearer cdn-token")
                {
                    return unauthorised();
                }
                lock(&s).uploads.push((name.clone(), r.body.len()));
                ResponseTemplate::new(200)
                    .set_body_json(json!({"access_url": format!("{base}/cdn/{name}")}))
            })
            .mount(&server)
            .await;
        let s = state.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^/files/.+"))
            .respond_with(move |r: &Request| {
                let name = r.url.path().rsplit('/').next().unwrap_or_default();
                let (w, h) = lock(&s).behaviour.image_size;
                let (bytes, ct) = match name.rsplit('.').next() {
                    Some("mp4") => (tests_support::mp4_bytes(1000, 5000, 0), "video/mp4"),
                    Some("wav") => (tests_support::wav_bytes(8000, 1, 8000), "audio/wav"),
                    _ => (tests_support::png(w, h), "image/png"),
                };
                ResponseTemplate::new(200).set_body_raw(bytes, ct)
            })
            .mount(&server)
            .await;

        // Queue: cancel, status, result (most specific first), then submit.
        let s = state.clone();
        Mock::given(method("PUT"))
            .and(path_regex(r"^/[^/]+/[^/]+/requests/[^/]+/cancel$"))
            .respond_with(move |r: &Request| {
                let id = r
                    .url
                    .path()
                    .split('/')
                    .nth(4)
                    .unwrap_or_default()
                    .to_string();
                lock(&s).cancels.push(id);
                ResponseTemplate::new(202)
                    .set_body_json(json!({"status": "CANCELLATION_REQUESTED"}))
            })
            .mount(&server)
            .await;
        let s = state.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^/[^/]+/[^/]+/requests/[^/]+/status$"))
            .respond_with(move |r: &Request| {
                if !authorised(r) {
                    return unauthorised();
                }
                let id = r.url.path().split('/').nth(4).unwrap_or_default();
                let mut st = lock(&s);
                let b = st.behaviour.clone();
                let Some(req) = st.requests.get_mut(id) else {
                    return ResponseTemplate::new(404).set_body_json(json!({"detail": "Request not found"}));
                };
                req.2 += 1;
                let polls = req.2;
                let running = match b.finish_after {
                    Some(after) => req.3.elapsed() < after,
                    None => polls < b.polls_to_finish,
                };
                let body = if b.never_finish || running {
                    if polls == 1 {
                        json!({"status": "IN_QUEUE", "queue_position": 2})
                    } else {
                        json!({"status": "IN_PROGRESS", "logs": (1..polls).map(|i| json!({"message": format!("step {i}"), "level": "INFO"})).collect::<Vec<_>>()})
                    }
                } else {
                    json!({"status": "COMPLETED", "logs": []})
                };
                ResponseTemplate::new(200).set_body_json(body)
            })
            .mount(&server)
            .await;
        let s = state.clone();
        let base = uri.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^/[^/]+/[^/]+/requests/[^/]+$"))
            .respond_with(move |r: &Request| {
                if !authorised(r) {
                    return unauthorised();
                }
                let id = r.url.path().split('/').nth(4).unwrap_or_default();
                let st = lock(&s);
                if let Some((status, body)) = &st.behaviour.fail_with {
                    return ResponseTemplate::new(*status).set_body_json(body.clone());
                }
                let Some((_, body, _, _)) = st.requests.get(id) else {
                    return ResponseTemplate::new(404).set_body_json(json!({"detail": "Request not found"}));
                };
                let n = body
                    .get("num_images")
                    .and_then(Value::as_u64)
                    .map_or(st.behaviour.default_outputs, |n| n as usize);
                let (w, h) = st.behaviour.image_size;
                // Claimed sizes differ from the real ones on purpose: Boards must read the bytes.
                let images: Vec<Value> = (0..n)
                    .map(|i| json!({"url": format!("{base}/files/{id}-{i}.png"), "width": w * 10, "height": h * 10, "content_type": "image/png"}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "images": images,
                    "image": {"url": format!("{base}/files/{id}-0.png")},
                    "video": {"url": format!("{base}/files/{id}.mp4")},
                    "audio": {"url": format!("{base}/files/{id}.wav")},
                    "seed": 42
                }))
            })
            .mount(&server)
            .await;
        let s = state.clone();
        let base = uri.clone();
        Mock::given(method("POST"))
            .and(path_regex(r"^/[^/]+/.+"))
            .respond_with(move |r: &Request| {
                if !authorised(r) {
                    return unauthorised();
                }
                let mut st = lock(&s);
                if st.refused < st.behaviour.refuse_submits {
                    st.refused += 1;
                    return ResponseTemplate::new(429)
                        .insert_header("Retry-After", "0")
                        .set_body_json(json!({"detail": "Too many requests"}));
                }
                let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
                    return ResponseTemplate::new(422)
                        .set_body_json(json!({"detail": "body is not JSON"}));
                };
                let endpoint = r.url.path().trim_start_matches('/').to_string();
                let id = uuid::Uuid::new_v4().to_string();
                let app: String = endpoint.split('/').take(2).collect::<Vec<_>>().join("/");
                st.requests
                    .insert(id.clone(), (endpoint, body, 0, std::time::Instant::now()));
                ResponseTemplate::new(200).set_body_json(json!({
                    "request_id": id,
                    "status_url": format!("{base}/{app}/requests/{id}/status"),
                    "response_url": format!("{base}/{app}/requests/{id}"),
                    "cancel_url": format!("{base}/{app}/requests/{id}/cancel"),
                }))
            })
            .mount(&server)
            .await;
        Self { server, state }
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// Changes the behaviour from now on.
    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut lock(&self.state).behaviour);
    }

    /// Submits taken (refused ones not counted).
    pub fn submits(&self) -> usize {
        lock(&self.state).requests.len()
    }

    /// Submits refused with 429.
    pub fn refused(&self) -> u32 {
        lock(&self.state).refused
    }

    /// (endpoint, body) of every submit taken.
    pub fn submitted(&self) -> Vec<(String, Value)> {
        lock(&self.state)
            .requests
            .values()
            .map(|(e, b, _, _)| (e.clone(), b.clone()))
            .collect()
    }

    /// Status polls of every request, summed.
    pub fn polls(&self) -> u32 {
        lock(&self.state).requests.values().map(|r| r.2).sum()
    }

    pub fn cancels(&self) -> Vec<String> {
        lock(&self.state).cancels.clone()
    }

    /// (file name, bytes) of every CDN upload.
    pub fn uploads(&self) -> Vec<(String, usize)> {
        lock(&self.state).uploads.clone()
    }
}

fn authorised(r: &Request) -> bool {
    r.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "Key test-fal-key")
}

fn unauthorised() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({"detail": "Invalid key"}))
}
