//! Reading request bodies: bounded in size and in time.
//!
//! actix cuts off clients that are slow to send their headers, but not those
//! that trickle a body; every body is read here, under both bounds.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{self, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

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
        // Memory follows what arrived, never the declared length alone: a
        // client may declare the limit and send nothing. A body in one
        // chunk (most of them) is kept as it came, without a copy.
        let mut first: Option<Bytes> = None;
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|err| {
                ApiError::InvalidRequest(format!("the request body could not be read: {err}"))
            })?;
            let arrived = first.as_ref().map_or(0, Bytes::len) + body.len() + chunk.len();
            if let Some(err) = too_large(arrived) {
                return Err(err);
            }
            match first.take() {
                None if body.is_empty() => first = Some(chunk),
                earlier => {
                    if let Some(earlier) = earlier {
                        body.reserve(arrived);
                        body.extend_from_slice(&earlier);
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| body.freeze()))
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::BodyTimeout {
            seconds: timeout.as_secs().max(1),
        }),
    }
}

/// A chunked request body, shared between the handler that reads it and the
/// response that must outlive it.
///
/// actix closes the connection after a response whose request body was not
/// read to the end only while that body's reader is alive; once the reader
/// is dropped (as every handler that answers early does), actix instead
/// drains the rest of a *chunked* body, for as long as the client sends it,
/// and forever if the client stalls: such clients would hold connections
/// (and `--max-connections` slots) without end. So for a chunked request the
/// reader is held by the response body ([`Holding`]) until it has been sent;
/// a body read to its end is not affected, and the connection is kept alive.
pub struct HeldBody {
    _payload: Rc<RefCell<dev::Payload>>,
}

impl HeldBody {
    /// For a chunked request, swaps its body for a reader of the shared one
    /// and returns the hold; other requests are left as they are.
    pub fn take_if_chunked(request: &mut ServiceRequest) -> Option<HeldBody> {
        let chunked = request
            .headers()
            .get_all(header::TRANSFER_ENCODING)
            .any(|value| value.as_bytes().to_ascii_lowercase().ends_with(b"chunked"));
        if !chunked {
            return None;
        }
        let (_, payload) = request.parts_mut();
        let shared = Rc::new(RefCell::new(std::mem::replace(payload, dev::Payload::None)));
        let reader: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(Shared(shared.clone()));
        request.set_payload(dev::Payload::from(reader));
        Some(HeldBody { _payload: shared })
    }
}

/// The handler's side of a [`HeldBody`].
struct Shared(Rc<RefCell<dev::Payload>>);

impl Stream for Shared {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Only this task polls the payload, so the borrow never overlaps.
        Pin::new(&mut *self.0.borrow_mut()).poll_next(cx)
    }
}

/// A response body that keeps a [`HeldBody`] until it has been sent.
pub struct Holding {
    body: BoxBody,
    _held: Option<HeldBody>,
}

impl Holding {
    /// `body`, holding `held` (if any) until it ends.
    pub fn new(body: BoxBody, held: Option<HeldBody>) -> Holding {
        Holding { body, _held: held }
    }
}

impl MessageBody for Holding {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
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
