//! Health and readiness (never behind auth) and metrics (an admin token
//! unless --open-metrics).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use kvapi::{Health, HealthStatus};

use super::only;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::query::Params;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(healthz))
            .route(web::head().to(healthz))
            .default_service(only("GET, HEAD")),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(readyz))
            .route(web::head().to(readyz))
            .default_service(only("GET, HEAD")),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .route(web::head().to(metrics))
            .default_service(only("GET, HEAD")),
    );
}

/// Alive: the process answers.
async fn healthz(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Params::of(&request, &[])?;
    Ok(HttpResponse::Ok().json(Health {
        status: HealthStatus::Ok,
    }))
}

/// Ready: storage is recovered and serving (for a cluster: it answers a
/// linearizable read within the timeout right now).
async fn readyz(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Params::of(&request, &[])?;
    state
        .backend()?
        .ready()
        .await
        .map_err(|err| ApiError::from_backend(err, "", StatusCode::CONFLICT))?;
    Ok(HttpResponse::Ok().json(Health {
        status: HealthStatus::Ready,
    }))
}

/// Prometheus text format.
async fn metrics(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !state.open_metrics {
        Caller::of(&request)?.require_admin()?;
    }
    Params::of(&request, &[])?;
    let text = state.metrics.render(state.backend().ok()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
