//! `/graphql` over HTTP: POST JSON and GET queries (contract §3.2), GraphiQL, the variable
//! pre-pass for `JSON`, auth resolved once per request, and error responses with codes.

use actix_web::{http::header, web, HttpMessage, HttpRequest, HttpResponse};
use boards_shared::{
    trace::{Origin, TraceContext},
    AppError,
};
use juniper::{ExecutionError, GraphQLError, OperationType, Value as GqlValue};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use slog::{error, o, warn, Logger};

use super::{
    context::Context,
    errors::{request_refusal, CAUSE_KEY, RETRY_AFTER_KEY},
    scalars::BoardsScalar,
    variables,
};
use crate::{
    middleware::{RequestId, RequestTrace},
    state::AppState,
};

struct GraphqlRequest {
    query: String,
    operation_name: Option<String>,
    variables: Map<String, Value>,
}

fn bad_request(message: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/plain; charset=utf-8")
        .body(message.to_string())
}

fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// The request's span (set by the access-log middleware; a new trace otherwise).
pub fn request_trace(req: &HttpRequest) -> TraceContext {
    req.extensions()
        .get::<RequestTrace>()
        .map_or_else(TraceContext::root, |t| t.0)
}

/// POST /graphql
pub async fn graphql_post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("application/json") {
        return bad_request("Unsupported content type");
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return bad_request("Unable to parse request body as JSON"),
    };
    let request = match parsed {
        Value::Object(map) => match parse_request(map) {
            Ok(r) => r,
            Err(msg) => return bad_request(msg),
        },
        Value::Array(_) => return bad_request("Batching is not enabled"),
        _ => return bad_request("The request body must be a JSON object"),
    };
    execute(&req, state, request, true).await
}

fn parse_request(mut map: Map<String, Value>) -> Result<GraphqlRequest, &'static str> {
    let query = match map.remove("query") {
        Some(Value::String(q)) => q,
        None | Some(Value::Null) => return Err("No GraphQL query found in the request"),
        Some(_) => return Err("The GraphQL query must be a string"),
    };
    let variables = match map.remove("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(v)) => v,
        Some(_) => return Err("The GraphQL variables must be a JSON object"),
    };
    let operation_name = match map.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err("The operation name must be a string"),
    };
    match map.remove("extensions") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err("The GraphQL extensions must be a JSON object"),
    }
    Ok(GraphqlRequest {
        query,
        operation_name,
        variables,
    })
}

#[derive(Deserialize)]
pub struct GetParams {
    query: Option<String>,
    variables: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

/// GET /graphql: a query in the URL, or GraphiQL for a browser.
pub async fn graphql_get(
    req: HttpRequest,
    params: web::Query<GetParams>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let params = params.into_inner();
    let Some(query) = params.query.filter(|q| !q.is_empty()) else {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("*/*");
        if state.config.graphql.graphiql && (accept.contains("text/html") || accept.contains("*/*"))
        {
            return HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .body(juniper::http::graphiql::graphiql_source("/graphql", None));
        }
        return bad_request("No GraphQL query found in the request");
    };
    let variables = match params.variables.as_deref().filter(|v| !v.trim().is_empty()) {
        None => Map::new(),
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(v)) => v,
            Ok(Value::Null) => Map::new(),
            _ => return bad_request("The GraphQL variables must be a JSON object"),
        },
    };
    let request = GraphqlRequest {
        query,
        operation_name: params.operation_name.filter(|s| !s.is_empty()),
        variables,
    };
    execute(&req, state, request, false).await
}

/// Runs one request and counts it (`boards_graphql_requests_total`, `..._duration_seconds`).
async fn execute(
    req: &HttpRequest,
    state: web::Data<AppState>,
    request: GraphqlRequest,
    allow_mutations: bool,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let name = request.operation_name.clone();
    let metrics = state.metrics.clone();
    let response = run(req, state, request, allow_mutations).await;
    metrics.graphql(
        name.as_deref(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn run(
    req: &HttpRequest,
    state: web::Data<AppState>,
    request: GraphqlRequest,
    allow_mutations: bool,
) -> HttpResponse {
    let request_id = request_id(req);
    let trace = request_trace(req);
    let logger = state
        .logger
        .new(o!("request_id" => request_id.clone(), "trace_id" => trace.trace_id_hex()));
    let auth = match crate::caller::authenticate(&state, req).await {
        Ok(a) => a,
        Err(e) => {
            if matches!(e, AppError::Unavailable(..)) {
                warn!(logger, "identity resolution failed"; "error" => %e);
            }
            // Like every GraphQL error, with status 200; a rate limit adds `Retry-After`.
            let mut res = HttpResponse::Ok();
            if let Some(seconds) = e.retry_after() {
                res.insert_header((header::RETRY_AFTER, seconds));
            }
            return res.json(json!({"data": null, "errors": [request_refusal(&e)]}));
        }
    };

    let prepared = match state.documents.get(
        &state.schema,
        &request.query,
        request.operation_name.as_deref(),
        !auth.is_authenticated(),
    ) {
        Ok(p) => p,
        Err(e) => return json_response(request_error(&e)),
    };
    let operation = prepared.operation.borrow_dependent();
    match operation.operation_type() {
        OperationType::Mutation if !allow_mutations => {
            return bad_request("mutations are not allowed when using GET")
        }
        OperationType::Subscription => {
            return json_response(json!({
                "data": null,
                "errors": [{"message": "Subscriptions are not supported", "extensions": {"code": "BAD_REQUEST"}}],
            }))
        }
        _ => {}
    }
    let limits = &state.config.graphql;
    let cost = prepared.cost.evaluate(&request.variables);
    if cost > limits.max_cost {
        return json_response(json!({
            "data": null,
            "errors": [{
                "message": format!(
                    "Query cost {cost} exceeds the limit of {}: ask for smaller pages (limit) or fewer fields and aliases",
                    limits.max_cost
                ),
                "extensions": {"code": "QUERY_TOO_EXPENSIVE", "cost": cost, "maxCost": limits.max_cost},
            }],
        }));
    }
    // Only a few expensive queries build their answers at once.
    let _permit = if cost > limits.expensive_cost {
        match tokio::time::timeout(EXPENSIVE_WAIT, state.expensive.acquire()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => {
                return json_response(json!({
                    "data": null,
                    "errors": [{
                        "message": "The server is busy with other large queries; try again shortly",
                        "extensions": {"code": "SERVICE_UNAVAILABLE", "cost": cost},
                    }],
                }))
            }
        }
    } else {
        None
    };
    let vars = variables::coerce(&state.schema.schema, &prepared.shapes, request.variables);
    let ctx = Context::new(
        state.clone(),
        auth,
        logger.clone(),
        Origin::new(request_id, trace),
    );
    match operation.execute(&vars, &ctx).await {
        Ok((data, errors)) => execution_response(data, &errors, &logger, limits.max_response_bytes),
        Err(e) => json_response(request_error(&e)),
    }
}

/// How long an expensive query waits for a permit.
const EXPENSIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A buffer that refuses to grow past its limit (the response size cap).
struct Capped {
    bytes: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            return Err(std::io::Error::other(TOO_LARGE));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOO_LARGE: &str = "response too large";

fn json_response(body: Value) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// A document that failed to parse or validate, or variables that do not fit.
fn request_error(err: &GraphQLError) -> Value {
    let code = match err {
        GraphQLError::ParseError(_) => "GRAPHQL_PARSE_FAILED",
        GraphQLError::ValidationError(_) => "GRAPHQL_VALIDATION_FAILED",
        _ => "BAD_REQUEST",
    };
    let mut errors =
        serde_json::to_value(err).unwrap_or_else(|_| json!([{"message": err.to_string()}]));
    if let Value::Array(items) = &mut errors {
        for item in items.iter_mut() {
            if let Value::Object(obj) = item {
                obj.insert("extensions".into(), json!({ "code": code }));
            }
        }
    }
    json!({"data": null, "errors": errors})
}

/// The response body, serialised straight from juniper's value (no intermediate JSON tree).
#[derive(serde::Serialize)]
struct Body<'a> {
    data: &'a GqlValue<BoardsScalar>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<Value>,
}

fn execution_response(
    data: GqlValue<BoardsScalar>,
    errors: &[ExecutionError<BoardsScalar>],
    logger: &Logger,
    max_bytes: usize,
) -> HttpResponse {
    let body = Body {
        data: &data,
        errors: execution_errors(errors, logger),
    };
    // Sized for a board page so the buffer rarely regrows while writing.
    let mut out = Capped {
        bytes: Vec::with_capacity(16 * 1024),
        limit: max_bytes,
    };
    // A rate-limited field tells HTTP clients when to retry too (the longest wait of them).
    let retry_after = body
        .errors
        .iter()
        .filter_map(|e| e["extensions"][RETRY_AFTER_KEY].as_u64())
        .max();
    match serde_json::to_writer(&mut out, &body) {
        Ok(()) => {
            let mut res = HttpResponse::Ok();
            if let Some(seconds) = retry_after {
                res.insert_header((header::RETRY_AFTER, seconds));
            }
            res.content_type("application/json").body(out.bytes)
        }
        Err(e) if e.is_io() => {
            drop(out);
            warn!(logger, "response over the size limit"; "limit" => max_bytes);
            json_response(json!({"data": null, "errors": [{
                "message": format!("The response would exceed {max_bytes} bytes: ask for smaller pages or fewer fields"),
                "extensions": {"code": "RESPONSE_TOO_LARGE", "maxBytes": max_bytes},
            }]}))
        }
        Err(e) => {
            error!(logger, "response serialisation failed"; "error" => %e);
            json_response(
                json!({"data": null, "errors": [{"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}),
            )
        }
    }
}

fn execution_errors(errors: &[ExecutionError<BoardsScalar>], logger: &Logger) -> Vec<Value> {
    if errors.is_empty() {
        return vec![];
    }
    errors
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or_else(|_| json!({"message": "error"}));
            if let Value::Object(obj) = &mut v {
                let ext = obj.entry("extensions").or_insert_with(|| json!({}));
                if !ext.is_object() {
                    *ext = json!({});
                }
                if let Value::Object(ext) = ext {
                    if let Some(cause) = ext.remove(CAUSE_KEY) {
                        error!(logger, "resolver failed";
                            "error" => e.error().message(),
                            "cause" => cause.as_str().unwrap_or_default().to_string(),
                            "path" => format!("{:?}", e.path()));
                    }
                    // Errors raised by juniper itself (argument coercion) concern the input.
                    ext.entry("code").or_insert_with(|| json!("BAD_USER_INPUT"));
                }
            }
            v
        })
        .collect()
}
