//! `/graphql` over HTTP: POST JSON and GET queries (contract §3.2), GraphiQL, the variable
//! pre-pass for `JSON`, auth resolved once per request, and error responses with codes.

use actix_web::{http::header, web, HttpMessage, HttpRequest, HttpResponse};
use juniper::{ExecutionError, GraphQLError, OperationType, Value as GqlValue};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use slog::{error, o, warn, Logger};

use super::{
    context::Context,
    errors::{auth_error_code, CAUSE_KEY},
    scalars::BoardsScalar,
    variables,
};
use crate::{middleware::RequestId, state::AppState};

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

async fn execute(
    req: &HttpRequest,
    state: web::Data<AppState>,
    request: GraphqlRequest,
    allow_mutations: bool,
) -> HttpResponse {
    let request_id = request_id(req);
    let logger = state.logger.new(o!("request_id" => request_id.clone()));
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let auth = match state
        .auth
        .resolve(header("authorization"), header("x-tenant"))
        .await
    {
        Ok(a) => a,
        Err(e) => {
            if matches!(e, boards_shared::auth::AuthError::Unavailable(_)) {
                warn!(logger, "identity resolution failed"; "error" => %e);
            }
            return json_response(json!({
                "data": null,
                "errors": [{"message": e.to_string(), "extensions": {"code": auth_error_code(&e)}}],
            }));
        }
    };

    let prepared = match state.documents.get(
        &state.schema,
        &request.query,
        request.operation_name.as_deref(),
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
    let vars = variables::coerce(&state.schema.schema, &prepared.shapes, request.variables);
    let ctx = Context::new(state.clone(), auth, logger.clone(), request_id);
    match operation.execute(&vars, &ctx).await {
        Ok((data, errors)) => execution_response(data, &errors, &logger),
        Err(e) => json_response(request_error(&e)),
    }
}

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
) -> HttpResponse {
    let body = Body {
        data: &data,
        errors: execution_errors(errors, logger),
    };
    // Sized for a board page so the buffer rarely regrows while writing.
    let mut bytes = Vec::with_capacity(16 * 1024);
    match serde_json::to_writer(&mut bytes, &body).map(|()| bytes) {
        Ok(bytes) => HttpResponse::Ok()
            .content_type("application/json")
            .body(bytes),
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
