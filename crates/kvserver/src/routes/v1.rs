//! The REST API under `/v1`: raw values, ETags and preconditions, TTLs in the
//! query, paged listings, and server info.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kvcore::{Condition, TtlChange};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

use super::{insert_ttl, insert_value, only};
use crate::app::AppState;
use crate::auth::{Caller, Level};
use crate::body;
use crate::error::{ApiError, invalid};
use crate::query::Params;
use crate::ttl;

const KV_PREFIX: &str = "/v1/kv/";
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/kv")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .default_service(only("GET, HEAD")),
    )
    .service(
        web::resource("/v1/kv/{key:.*}")
            .route(web::put().to(put))
            .route(web::get().to(get))
            .route(web::head().to(get))
            .route(web::delete().to(remove))
            .default_service(only("PUT, GET, HEAD, DELETE")),
    )
    .service(
        web::resource("/v1/info")
            .route(web::get().to(info))
            .route(web::head().to(info))
            .default_service(only("GET, HEAD")),
    );
}

async fn put(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = path_key(&request)?;
    // Checked before the body is read: a refused client sends no value.
    caller.require(Level::Write, &key)?;
    let mut query = Params::of(&request, &["ttl", "persist"])?;
    let ttl = match (query.take("ttl"), query.take("persist").as_deref()) {
        (Some(_), Some("true")) => {
            return Err(invalid("use either ttl= or persist=true, not both"));
        }
        (Some(text), _) => TtlChange::Set(ttl::from_query(&text).map_err(invalid)?),
        (None, Some("true")) => TtlChange::Persist,
        (None, None | Some("false")) => TtlChange::Keep,
        (None, Some(other)) => {
            return Err(invalid(format!(
                "persist must be true or false, got {other:?}"
            )));
        }
    };
    let condition = write_condition(request.headers())?;
    // The body is the value, so both limits bound it: a body over the body
    // limit is refused as a body, one within it but over the value limit as
    // a value. Reading stops at whichever limit is smaller.
    let value = body::read(
        payload,
        body::declared_length(&request),
        &[
            ("request body", state.limits.max_body_bytes),
            ("value", state.limits.max_value_bytes),
        ],
        state.limits.body_timeout,
    )
    .await?;
    let written = state
        .backend()?
        .put(&key, value, ttl, condition)
        .await
        .map_err(|err| match err {
            kvcore::Error::NotFound => ApiError::PreconditionAbsent { key: key.clone() },
            err => ApiError::from_store(err, &key, StatusCode::PRECONDITION_FAILED),
        })?;
    let mut body = Map::new();
    body.insert("key".into(), json!(key));
    body.insert("version".into(), json!(written.version));
    body.insert("created".into(), json!(written.created));
    insert_ttl(&mut body, written.ttl);
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status)
        .insert_header((header::ETAG, etag(written.version)))
        .json(Value::Object(body)))
}

async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = path_key(&request)?;
    caller.require(Level::Read, &key)?;
    Params::of(&request, &[])?;
    let entry = state
        .backend()?
        .get(&key)
        .await
        .map_err(|err| ApiError::from_store(err, &key, StatusCode::CONFLICT))?
        .ok_or_else(|| ApiError::NotFound { key: key.clone() })?;
    let tag = etag(entry.version);
    if let Some(wanted) = request.headers().get(header::IF_NONE_MATCH)
        && etag_list_matches(wanted, entry.version)
    {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish());
    }
    let mut response = HttpResponse::Ok();
    response
        .content_type("application/octet-stream")
        .insert_header((header::ETAG, tag));
    if let Some(ttl) = entry.ttl {
        response.insert_header(("Kv-Ttl-Ms", ttl.as_millis().to_string()));
    }
    Ok(response.body(entry.value))
}

async fn remove(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = path_key(&request)?;
    caller.require(Level::Write, &key)?;
    Params::of(&request, &[])?;
    let (expected, must_exist) = match request.headers().get(header::IF_MATCH) {
        None => (None, false),
        Some(value) => match parse_if_match(value)? {
            IfMatch::Any => (None, true),
            IfMatch::Version(version) => (Some(version), true),
        },
    };
    state
        .backend()?
        .remove(&key, expected)
        .await
        .map_err(|err| match err {
            // With If-Match, an absent key fails the precondition (412), as
            // on PUT; without it, it is simply not found (404).
            kvcore::Error::NotFound if must_exist => {
                ApiError::PreconditionAbsent { key: key.clone() }
            }
            err => ApiError::from_store(err, &key, StatusCode::PRECONDITION_FAILED),
        })?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut query = Params::of(&request, &["prefix", "cursor", "limit", "values"])?;
    let prefix = query.take("prefix").unwrap_or_default();
    caller.require_listing(&prefix)?;
    let limit = match query.take("limit").as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(invalid(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}, got {text:?}"
                )));
            }
        },
    };
    let with_values = match query.take("values").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(invalid(format!(
                "values must be true or false, got {other:?}"
            )));
        }
    };
    let after = query
        .take("cursor")
        .as_deref()
        .map(decode_cursor)
        .transpose()?;
    let page = state
        .backend()?
        .list(&prefix, after.as_deref(), limit)
        .await
        .map_err(|err| ApiError::from_store(err, &prefix, StatusCode::CONFLICT))?;
    let items: Vec<Value> = page
        .entries
        .iter()
        .map(|entry| {
            let mut item = Map::new();
            item.insert("key".into(), json!(entry.key));
            item.insert("version".into(), json!(entry.version));
            item.insert("size".into(), json!(entry.value.len()));
            insert_ttl(&mut item, entry.ttl);
            if with_values {
                insert_value(&mut item, &entry.value);
            }
            Value::Object(item)
        })
        .collect();
    let next = page
        .next_after
        .map(|key| URL_SAFE_NO_PAD.encode(key.as_bytes()));
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next": next })))
}

async fn info(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.open_metrics {
        Caller::of(&request)?.require_admin()?;
    }
    Params::of(&request, &[])?;
    let info = state.backend()?.info().await;
    let log = info.log.map(|log| {
        json!({
            "log_bytes": log.log_bytes,
            "snapshot_bytes": log.snapshot_bytes,
            "fsyncs": log.fsyncs,
            "compactions": log.compactions,
        })
    });
    Ok(HttpResponse::Ok().json(json!({
        "name": "kvstore",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "keys": info.keys,
        "revision": info.revision,
        "expired_keys_reclaimed": info.expired_reclaimed,
        "tuning": info.tuning,
        "durability": info.durability,
        "limits": {
            "max_key_bytes": info.max_key_bytes,
            "max_value_bytes": info.max_value_bytes,
            "max_body_bytes": state.limits.max_body_bytes,
        },
        "log": log,
    })))
}

/// The key from the request path, percent-decoded. Taken from the raw path
/// rather than the router's match so that `%2F` and `/` both mean a slash.
fn path_key(request: &HttpRequest) -> Result<String, ApiError> {
    let raw = request
        .uri()
        .path()
        .strip_prefix(KV_PREFIX)
        .unwrap_or_default();
    let key = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| invalid("the key in the path is not valid UTF-8 once percent-decoded"))?;
    Ok(key.into_owned())
}

fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

enum IfMatch {
    Any,
    Version(u64),
}

fn parse_if_match(value: &HeaderValue) -> Result<IfMatch, ApiError> {
    let text = value
        .to_str()
        .map_err(|_| invalid("If-Match must be \"*\" or a quoted version like \"42\""))?
        .trim();
    if text == "*" {
        return Ok(IfMatch::Any);
    }
    parse_etag(text).map(IfMatch::Version).ok_or_else(|| {
        invalid(format!(
            "If-Match must be * or a quoted version like \"42\", got {text}"
        ))
    })
}

/// Reads `"42"` (or the weak form `W/"42"`) as version 42.
fn parse_etag(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    text.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

/// Whether an `If-None-Match` list names this version (or is `*`).
fn etag_list_matches(value: &HeaderValue, version: u64) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    text.split(',')
        .any(|tag| tag.trim() == "*" || parse_etag(tag) == Some(version))
}

/// The write's condition from `If-None-Match: *`, `If-Match: *` or
/// `If-Match: "<version>"`.
fn write_condition(headers: &HeaderMap) -> Result<Condition, ApiError> {
    let if_match = headers.get(header::IF_MATCH);
    let if_none_match = headers.get(header::IF_NONE_MATCH);
    match (if_match, if_none_match) {
        (Some(_), Some(_)) => Err(invalid(
            "use either If-Match or If-None-Match on a write, not both",
        )),
        (None, Some(value)) if value.as_bytes().trim_ascii() == b"*" => Ok(Condition::Absent),
        (None, Some(_)) => Err(invalid(
            "on a write, If-None-Match only accepts * (create only)",
        )),
        (Some(value), None) => Ok(match parse_if_match(value)? {
            IfMatch::Any => Condition::Present,
            IfMatch::Version(version) => Condition::Version(version),
        }),
        (None, None) => Ok(Condition::Always),
    }
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            invalid("cursor is not one this server handed out; pass back \"next\" as it was")
        })
}
