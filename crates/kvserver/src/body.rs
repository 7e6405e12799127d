//! Reading request bodies: bounded in size and in time.
//!
//! actix cuts off clients that are slow to send their headers, but not those
//! that trickle a body; every body is read here, under both bounds.

use std::time::Duration;

use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::ApiError;

/// Reads the whole body, refusing one over any of `limits` and giving up
/// after `timeout`.
///
/// Each limit is `(what, bytes)`; `what` names it in the 413 (`request body`,
/// `value`). A body over several limits is refused by the first of them in
/// the order given; one read without a declared length stops at the smallest.
pub async fn read(
    mut payload: web::Payload,
    declared_length: Option<usize>,
    limits: &[(&'static str, usize)],
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = |size: usize| {
        limits
            .iter()
            .find(|&&(_, limit)| size > limit)
            .map(|&(what, limit)| ApiError::PayloadTooLarge { what, size, limit })
    };
    if let Some(err) = declared_length.and_then(too_large) {
        return Err(err);
    }
    let collect = async {
        let mut body = BytesMut::with_capacity(declared_length.unwrap_or(0));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|err| {
                ApiError::InvalidRequest(format!("the request body could not be read: {err}"))
            })?;
            if let Some(err) = too_large(body.len() + chunk.len()) {
                return Err(err);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::BodyTimeout {
            seconds: timeout.as_secs().max(1),
        }),
    }
}

/// The `Content-Length` a request declared, if any.
pub fn declared_length(request: &actix_web::HttpRequest) -> Option<usize> {
    request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
