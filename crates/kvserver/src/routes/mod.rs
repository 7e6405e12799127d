//! HTTP routes, one file per API: the seed's `/store`, the `/v1` REST API,
//! and the operational endpoints.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::backend::StoredEntry;
use crate::error::ApiError;

pub mod openapi;
pub mod ops;
pub mod seed;
pub mod v1;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    seed::configure(cfg);
    v1::configure(cfg);
    ops::configure(cfg);
    openapi::configure(cfg);
}

/// Refuses to create the keys `.` and `..`: no URL path can address them
/// (clients normalise them away), so they could be written but never read
/// back over `/v1` (PRODUCT.md §3). kvcore itself accepts them.
pub fn check_addressable(key: &str) -> Result<(), ApiError> {
    match key {
        "." | ".." => Err(ApiError::InvalidRequest(format!(
            "the key {key:?} cannot be addressed in a URL path (clients normalise it away), \
             so it cannot be created"
        ))),
        _ => Ok(()),
    }
}

/// Puts a value into a JSON object: as a string when it is UTF-8, otherwise
/// base64 with `"encoding": "base64"`.
pub fn insert_value(object: &mut Map<String, Value>, value: &[u8]) {
    match std::str::from_utf8(value) {
        Ok(text) => {
            object.insert("value".into(), json!(text));
        }
        Err(_) => {
            object.insert("value".into(), json!(STANDARD.encode(value)));
            object.insert("encoding".into(), json!("base64"));
        }
    }
}

/// Adds `ttl_ms` when there is a deadline.
pub fn insert_ttl(object: &mut Map<String, Value>, ttl: Option<std::time::Duration>) {
    if let Some(ttl) = ttl {
        object.insert("ttl_ms".into(), json!(ttl.as_millis() as u64));
    }
}

/// The entry JSON of the seed API: `{"key", "value", "version", "ttl_ms"?}`.
pub fn entry_json(entry: &StoredEntry) -> Value {
    let mut object = Map::new();
    object.insert("key".into(), json!(entry.key));
    insert_value(&mut object, &entry.value);
    object.insert("version".into(), json!(entry.version));
    insert_ttl(&mut object, entry.ttl);
    Value::Object(object)
}

/// The answer for a path no route serves.
pub async fn no_route(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute {
        method: request.method().to_string(),
        path: request.path().to_owned(),
    })
}

/// The default service of a resource that serves only the `allow` methods
/// (e.g. `"GET, HEAD"`): 405 with an `Allow` header.
pub fn only(allow: &'static str) -> actix_web::Route {
    web::to(move |request: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
            method: request.method().to_string(),
            path: request.path().to_owned(),
            allow,
        })
    })
}
