//! The REST API under `/v1`: raw values, ETags and preconditions, TTLs in the
//! query, paged listings, and server info.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kvapi::{
    Condition, Info, InfoLimits, InfoMemory, ListItem, LogFigures, PageWriter, Tag, Tags,
    TtlChange, WriteCondition, Written, format_etag, url,
};
use percent_encoding::percent_decode_str;

use super::only;
use crate::app::AppState;
use crate::auth::{Caller, Level};
use crate::backend::BackendError;
use crate::body;
use crate::error::{ApiError, invalid};
use crate::query::Params;

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
    super::check_addressable(&key)?;
    let mut query = Params::of(&request, &[url::TTL, url::PERSIST])?;
    let (ttl, persist) = (query.take(url::TTL), query.take(url::PERSIST));
    let ttl = match TtlChange::from_query(ttl.as_deref(), persist.as_deref()).map_err(invalid)? {
        TtlChange::Keep => kvcore::TtlChange::Keep,
        TtlChange::Set(ttl) => kvcore::TtlChange::Set(ttl),
        TtlChange::Persist => kvcore::TtlChange::Persist,
    };
    // If-None-Match is read first, so its error comes first when both
    // headers are malformed.
    let if_none_match = tags(request.headers(), &header::IF_NONE_MATCH)?;
    let if_match = tags(request.headers(), &header::IF_MATCH)?;
    let condition = match WriteCondition::from_tags(if_match, if_none_match).map_err(invalid)? {
        WriteCondition::Checked(condition) => store_condition(condition),
        WriteCondition::Never(tag) => return Err(never_matches(&state, &key, &tag).await),
    };
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
            BackendError::Store(kvcore::Error::NotFound) => {
                ApiError::PreconditionAbsent { key: key.clone() }
            }
            err => ApiError::from_backend(err, &key, StatusCode::PRECONDITION_FAILED),
        })?;
    let body = Written::new(&key, written.version, written.created, written.ttl);
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status)
        .insert_header((header::ETAG, format_etag(written.version)))
        .json(body))
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
        .map_err(|err| ApiError::from_backend(err, &key, StatusCode::CONFLICT))?
        .ok_or_else(|| ApiError::NotFound { key: key.clone() })?;
    let tag = format_etag(entry.version);
    // RFC 9110 §13.2.2: If-Match first (strong comparison), then
    // If-None-Match (weak). A missing key was a 404 above: preconditions
    // only apply to a response that would have been a 2xx.
    let if_match = tags(request.headers(), &header::IF_MATCH)?;
    let if_none_match = tags(request.headers(), &header::IF_NONE_MATCH)?;
    if let Some(Tags::List(tags)) = &if_match
        && !tags.iter().any(|tag| tag.strongly_matches(entry.version))
    {
        return Err(ApiError::VersionMismatch {
            key: key.clone(),
            message: format!(
                "If-Match names no current version of key {key:?} (a weak tag never matches); it is at version {}",
                entry.version
            ),
            current_version: Some(entry.version),
        });
    }
    let unmodified = match &if_none_match {
        None => false,
        Some(Tags::Any) => true,
        Some(Tags::List(tags)) => tags.iter().any(|tag| tag.weakly_matches(entry.version)),
    };
    if unmodified {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish());
    }
    let mut response = HttpResponse::Ok();
    response
        .content_type(kvapi::OCTET_STREAM)
        .insert_header((header::ETAG, tag));
    if let Some(ms) = kvapi::ttl_ms(entry.ttl) {
        response.insert_header((kvapi::TTL_MS, ms.to_string()));
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
    if request.headers().contains_key(header::IF_NONE_MATCH) {
        return Err(invalid(
            "DELETE does not take If-None-Match; use If-Match: \"<version>\" to delete a version",
        ));
    }
    let if_match = tags(request.headers(), &header::IF_MATCH)?;
    let (expected, must_exist) = match WriteCondition::from_if_match(if_match).map_err(invalid)? {
        None => (None, false),
        Some(WriteCondition::Checked(Condition::Version(version))) => (Some(version), true),
        Some(WriteCondition::Checked(_)) => (None, true),
        Some(WriteCondition::Never(tag)) => return Err(never_matches(&state, &key, &tag).await),
    };
    state
        .backend()?
        .remove(&key, expected)
        .await
        .map_err(|err| match err {
            // With If-Match, an absent key fails the precondition (412), as
            // on PUT; without it, it is simply not found (404).
            BackendError::Store(kvcore::Error::NotFound) if must_exist => {
                ApiError::PreconditionAbsent { key: key.clone() }
            }
            err => ApiError::from_backend(err, &key, StatusCode::PRECONDITION_FAILED),
        })?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut query = Params::of(
        &request,
        &[url::PREFIX, url::CURSOR, url::LIMIT, url::VALUES],
    )?;
    let prefix = query.take(url::PREFIX).unwrap_or_default();
    caller.require_listing(&prefix)?;
    let limit = match query.take(url::LIMIT).as_deref() {
        None => kvapi::DEFAULT_LIST_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=kvapi::MAX_LIST_LIMIT).contains(&n) => n,
            _ => {
                return Err(invalid(format!(
                    "limit must be a whole number from 1 to {}, got {text:?}",
                    kvapi::MAX_LIST_LIMIT
                )));
            }
        },
    };
    let with_values = match query.take(url::VALUES).as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(invalid(format!(
                "values must be true or false, got {other:?}"
            )));
        }
    };
    let after = query
        .take(url::CURSOR)
        .as_deref()
        .map(decode_cursor)
        .transpose()?;
    let page = state
        .backend()?
        .list(&prefix, after.as_deref(), limit)
        .await
        .map_err(|err| ApiError::from_backend(err, &prefix, StatusCode::CONFLICT))?;
    // The page is written item by item and stops at the byte budget, so a
    // listing of large values never holds more than about one budget (plus
    // one item) of JSON; the entries themselves share the store's memory.
    let budget = state.limits.list_page_bytes;
    let mut body = PageWriter::new();
    for entry in &page.entries {
        if !body.is_empty() && body.len() >= budget {
            break;
        }
        let item = ListItem::new(
            &entry.key,
            &entry.value,
            entry.version,
            entry.ttl,
            with_values,
        );
        body.push(&item)
            .map_err(|err| ApiError::Internal(err.into()))?;
    }
    let listed = body.items();
    // Stopped early at the budget: the next page starts after the last key
    // listed, exactly as it would after a shorter `limit`.
    let next_after = if listed < page.entries.len() {
        Some(page.entries[listed - 1].key.as_str())
    } else {
        page.next_after.as_deref()
    };
    let next = next_after.map(|key| URL_SAFE_NO_PAD.encode(key.as_bytes()));
    let body = body
        .finish(next.as_deref())
        .map_err(|err| ApiError::Internal(err.into()))?;
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(body))
}

async fn info(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.open_metrics {
        Caller::of(&request)?.require_admin()?;
    }
    Params::of(&request, &[])?;
    let info = state
        .backend()?
        .info()
        .await
        .map_err(|err| ApiError::from_backend(err, "", StatusCode::CONFLICT))?;
    Ok(HttpResponse::Ok().json(Info {
        name: "kvstore".into(),
        backend: info.backend.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: state.started.elapsed().as_secs(),
        keys: info.keys as u64,
        revision: info.revision,
        expired_keys_reclaimed: info.expired_reclaimed,
        tuning: info.tuning.into(),
        durability: info.durability.into(),
        limits: InfoLimits {
            max_key_bytes: info.max_key_bytes as u64,
            max_value_bytes: info.max_value_bytes as u64,
            max_body_bytes: state.limits.max_body_bytes as u64,
        },
        log: info.log.map(|log| LogFigures {
            log_bytes: log.log_bytes,
            snapshot_bytes: log.snapshot_bytes,
            fsyncs: log.fsyncs,
            compactions: log.compactions,
        }),
        memory: InfoMemory {
            used_bytes: info.memory.used,
            bound_bytes: info.memory.bound,
            eviction: info.memory.eviction.into(),
            evicted_keys: info.memory.evicted,
        },
    }))
}

/// The key from the request path, percent-decoded. Taken from the raw path
/// rather than the router's match so that `%2F` and `/` both mean a slash.
fn path_key(request: &HttpRequest) -> Result<String, ApiError> {
    let raw = request
        .uri()
        .path()
        .strip_prefix(url::KV_KEY_PREFIX)
        .unwrap_or_default();
    let key = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| invalid("the key in the path is not valid UTF-8 once percent-decoded"))?;
    Ok(key.into_owned())
}

/// `If-Match` or `If-None-Match`, every line of it, as one list; `None`
/// when absent. A malformed header is a 400 naming it.
fn tags(headers: &HeaderMap, name: &HeaderName) -> Result<Option<Tags>, ApiError> {
    let shown = if *name == header::IF_MATCH {
        kvapi::IF_MATCH
    } else {
        kvapi::IF_NONE_MATCH
    };
    let lines = headers.get_all(name).map(|line| line.to_str().ok());
    Tags::from_lines(shown, lines).map_err(invalid)
}

/// The store's condition for a write's.
fn store_condition(condition: Condition) -> kvcore::Condition {
    match condition {
        Condition::Always => kvcore::Condition::Always,
        Condition::Absent => kvcore::Condition::Absent,
        Condition::Present => kvcore::Condition::Present,
        Condition::Version(version) => kvcore::Condition::Version(version),
    }
}

/// The 412 for an `If-Match` tag that matches no version, naming the
/// key's current version (or the key's absence).
async fn never_matches(state: &AppState, key: &str, tag: &Tag) -> ApiError {
    let current = match state.backend() {
        Ok(backend) => backend.get(key).await.ok().flatten(),
        Err(err) => return err,
    };
    match current {
        None => ApiError::PreconditionAbsent {
            key: key.to_owned(),
        },
        Some(entry) => ApiError::VersionMismatch {
            key: key.to_owned(),
            message: if tag.weak {
                format!(
                    "If-Match {tag} is a weak tag, which never matches (RFC 9110 strong comparison); key {key:?} is at version {}",
                    entry.version
                )
            } else {
                format!(
                    "If-Match {tag} names no version; key {key:?} is at version {}",
                    entry.version
                )
            },
            current_version: Some(entry.version),
        },
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
