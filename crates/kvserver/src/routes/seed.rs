//! The seed API at `/store`, kept exactly as the Python demo served it:
//! JSON bodies `{"key", "value", "ttl"?}` and `?key=` queries.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use kvcore::{Condition, TtlChange};
use serde_json::{Map, Value, json};

use super::{entry_json, only};
use crate::app::AppState;
use crate::auth::{Caller, Level};
use crate::backend::StoredEntry;
use crate::body;
use crate::error::{ApiError, invalid};
use crate::query::Params;
use crate::ttl;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/store")
            .route(web::post().to(create))
            .route(web::get().to(get))
            .route(web::head().to(get))
            .route(web::put().to(update))
            .route(web::delete().to(remove))
            .default_service(only("POST, GET, HEAD, PUT, DELETE")),
    );
}

/// The `key` of `?key=K`, the only parameter `GET` and `DELETE` take.
fn query_key(request: &HttpRequest) -> Result<String, ApiError> {
    Params::of(request, &["key"])?
        .take("key")
        .ok_or_else(|| invalid("missing query parameter \"key\" (e.g. /store?key=P)"))
}

/// A parsed seed write body.
struct SeedWrite {
    key: String,
    value: String,
    ttl: TtlField,
}

/// The `ttl` field: omitted, `null`, or seconds.
enum TtlField {
    Omitted,
    Null,
    Seconds(std::time::Duration),
}

async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let write = read_write(&state, &request, payload).await?;
    caller.require(Level::Write, &write.key)?;
    let ttl = match write.ttl {
        TtlField::Seconds(ttl) => TtlChange::Set(ttl),
        TtlField::Omitted | TtlField::Null => TtlChange::Keep,
    };
    respond(&state, write, ttl, Condition::Absent, StatusCode::CREATED).await
}

async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let write = read_write(&state, &request, payload).await?;
    caller.require(Level::Write, &write.key)?;
    let ttl = match write.ttl {
        TtlField::Omitted => TtlChange::Keep,
        TtlField::Null => TtlChange::Persist,
        TtlField::Seconds(ttl) => TtlChange::Set(ttl),
    };
    respond(&state, write, ttl, Condition::Present, StatusCode::OK).await
}

async fn respond(
    state: &AppState,
    write: SeedWrite,
    ttl: TtlChange,
    condition: Condition,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    super::check_addressable(&write.key)?;
    let value = Bytes::from(write.value);
    let written = state
        .backend()?
        .put(&write.key, value.clone(), ttl, condition)
        .await
        .map_err(|err| ApiError::from_store(err, &write.key, StatusCode::CONFLICT))?;
    let entry = StoredEntry {
        key: write.key,
        value,
        version: written.version,
        ttl: written.ttl,
    };
    Ok(HttpResponse::build(status).json(entry_json(&entry)))
}

async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = query_key(&request)?;
    caller.require(Level::Read, &key)?;
    match state.backend()?.get(&key).await {
        Ok(Some(entry)) => Ok(HttpResponse::Ok().json(entry_json(&entry))),
        Ok(None) => Err(ApiError::NotFound { key }),
        Err(err) => Err(ApiError::from_store(err, &key, StatusCode::CONFLICT)),
    }
}

async fn remove(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = query_key(&request)?;
    caller.require(Level::Write, &key)?;
    state
        .backend()?
        .remove(&key, None)
        .await
        .map_err(|err| ApiError::from_store(err, &key, StatusCode::CONFLICT))?;
    Ok(HttpResponse::Ok().json(json!({ "key": key, "deleted": true })))
}

/// Reads and checks a write body. Any Content-Type is accepted as long as
/// the body is JSON: curl's `-d` without `-H` sends a form type.
async fn read_write(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<SeedWrite, ApiError> {
    Params::of(request, &[])?;
    let bytes = body::read(
        payload,
        body::declared_length(request),
        &[("request body", state.limits.max_body_bytes)],
        state.limits.body_timeout,
    )
    .await?;
    parse_write(&bytes)
}

fn parse_write(bytes: &[u8]) -> Result<SeedWrite, ApiError> {
    const SHAPE: &str = r#"{"key": "...", "value": "...", "ttl": seconds (optional)}"#;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(format!(
            "request body is empty: expected a JSON object {SHAPE}"
        )));
    }
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|err| invalid(format!("request body is not valid JSON: {err}")))?;
    let Value::Object(mut object) = json else {
        return Err(invalid(format!(
            "request body must be a JSON object {SHAPE}, got {}",
            kind(&json)
        )));
    };
    if let Some(unknown) = object
        .keys()
        .find(|name| !matches!(name.as_str(), "key" | "value" | "ttl"))
    {
        return Err(invalid(format!(
            "unknown field {unknown:?}: expected only \"key\", \"value\" and \"ttl\""
        )));
    }
    let key = string_field(&mut object, "key")?;
    let value = string_field(&mut object, "value")?;
    let ttl = match object.remove("ttl") {
        None => TtlField::Omitted,
        Some(Value::Null) => TtlField::Null,
        Some(Value::Number(_)) => {
            // `Value` holds the number as a float by now; read its text
            // again so the TTL is exact (a second parse, only with a ttl).
            let text = ttl_text(bytes)?;
            TtlField::Seconds(ttl::from_seconds(&text).map_err(invalid)?)
        }
        Some(other) => {
            return Err(invalid(format!(
                "\"ttl\" must be a number of seconds, got {}",
                kind(&other)
            )));
        }
    };
    Ok(SeedWrite { key, value, ttl })
}

/// The text of the body's `"ttl"` number, as the client wrote it.
fn ttl_text(bytes: &[u8]) -> Result<String, ApiError> {
    #[derive(serde::Deserialize)]
    struct TtlOnly<'a> {
        #[serde(borrow)]
        ttl: &'a serde_json::value::RawValue,
    }
    serde_json::from_slice::<TtlOnly>(bytes)
        .map(|only| only.ttl.get().to_owned())
        .map_err(|_| invalid("\"ttl\" is given more than once"))
}

fn string_field(object: &mut Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match object.remove(name) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(invalid(format!(
            "{name:?} must be a JSON string, got {}",
            kind(&other)
        ))),
        None => Err(invalid(format!("missing field {name:?}"))),
    }
}

/// How a person would name a JSON value's type.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
