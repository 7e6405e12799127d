//! The seed API at `/store`, kept exactly as the Python demo served it:
//! JSON bodies `{"key", "value", "ttl"?}` and `?key=` queries.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use kvapi::{Deleted, Entry, StoreTtl, StoreWrite, url};
use kvcore::{Condition, TtlChange};

use super::only;
use crate::app::AppState;
use crate::auth::{Caller, Level};
use crate::body;
use crate::error::{ApiError, invalid};
use crate::query::Params;

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
    Params::of(request, &[url::KEY])?
        .take(url::KEY)
        .ok_or_else(|| invalid("missing query parameter \"key\" (e.g. /store?key=P)"))
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
        StoreTtl::Seconds(ttl) => TtlChange::Set(ttl),
        StoreTtl::Omitted | StoreTtl::Null => TtlChange::Keep,
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
        StoreTtl::Omitted => TtlChange::Keep,
        StoreTtl::Null => TtlChange::Persist,
        StoreTtl::Seconds(ttl) => TtlChange::Set(ttl),
    };
    respond(&state, write, ttl, Condition::Present, StatusCode::OK).await
}

async fn respond(
    state: &AppState,
    write: StoreWrite<'static>,
    ttl: TtlChange,
    condition: Condition,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    super::check_addressable(&write.key)?;
    // from_json reads owned strings, so this moves the value, no copy.
    let value = Bytes::from(write.value.into_owned());
    let written = state
        .backend()?
        .put(&write.key, value.clone(), ttl, condition)
        .await
        .map_err(|err| ApiError::from_backend(err, &write.key, StatusCode::CONFLICT))?;
    let entry = Entry::new(&write.key, &value, written.version, written.ttl);
    Ok(HttpResponse::build(status).json(entry))
}

async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = query_key(&request)?;
    caller.require(Level::Read, &key)?;
    match state.backend()?.get(&key).await {
        Ok(Some(entry)) => Ok(HttpResponse::Ok().json(Entry::new(
            &entry.key,
            &entry.value,
            entry.version,
            entry.ttl,
        ))),
        Ok(None) => Err(ApiError::NotFound { key }),
        Err(err) => Err(ApiError::from_backend(err, &key, StatusCode::CONFLICT)),
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
        .map_err(|err| ApiError::from_backend(err, &key, StatusCode::CONFLICT))?;
    Ok(HttpResponse::Ok().json(Deleted::new(&key)))
}

/// Reads and checks a write body. Any Content-Type is accepted as long as
/// the body is JSON: curl's `-d` without `-H` sends a form type.
async fn read_write(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<StoreWrite<'static>, ApiError> {
    Params::of(request, &[])?;
    let bytes = body::read(
        payload,
        body::declared_length(request),
        &[("request body", state.limits.max_body_bytes)],
        state.limits.body_timeout,
    )
    .await?;
    StoreWrite::from_json(&bytes).map_err(invalid)
}
