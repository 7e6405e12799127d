//! HTTP routes, one file per API: the seed's `/store`, the `/v1` REST API,
//! the `/v1/watch` change feed, and the operational endpoints.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

pub mod openapi;
pub mod ops;
pub mod seed;
pub mod v1;
pub mod watch;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    seed::configure(cfg);
    v1::configure(cfg);
    watch::configure(cfg);
    ops::configure(cfg);
    openapi::configure(cfg);
}

/// Refuses to create the keys `.` and `..`: no URL path can address them
/// (clients normalise them away), so they could be written but never read
/// back over `/v1` (README, "Keys in paths"). kvcore itself accepts them.
pub fn check_addressable(key: &str) -> Result<(), ApiError> {
    match key {
        "." | ".." => Err(ApiError::InvalidRequest(format!(
            "the key {key:?} cannot be addressed in a URL path (clients normalise it away), \
             so it cannot be created"
        ))),
        _ => Ok(()),
    }
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
