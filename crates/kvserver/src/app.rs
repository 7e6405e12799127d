//! The application: state shared by the routes, and the HTTP server that
//! runs them on a listener the caller bound, until a shutdown signal.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_http::error::DispatchError;
use actix_http::{ConnectionType, Extensions, HttpMessage, HttpService, Protocol, Request};
use actix_tls::accept::TlsError;
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_web::rt::net::TcpStream;

use crate::early_errors::{EarlyErrors, Ledger};
use actix_service::IntoServiceFactory;
use actix_service::{ServiceFactoryExt, fn_service, map_config};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{AppConfig, Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::{App, ResponseError, web};
use anyhow::Context;
use kvcore::Store;

use crate::auth::Tokens;
use crate::backend::{Backend, EmbeddedBackend};
use crate::body::{HeldBody, Holding};
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::routes;

/// What every route can reach.
pub struct AppState {
    /// Storage, once it is recovered and serving.
    backend: OnceLock<Arc<dyn Backend>>,
    /// Request limits enforced before storage is reached.
    pub limits: RequestLimits,
    /// When the server started, for `/v1/info`.
    pub started: Instant,
    /// The metrics registry.
    pub metrics: Metrics,
    /// Accepted tokens; `None` when auth is off.
    pub tokens: Option<Arc<Tokens>>,
    /// Whether `/metrics` and `/v1/info` are served without a token.
    pub open_metrics: bool,
    /// Set to true when a graceful shutdown begins: `/v1/watch` streams,
    /// which would otherwise never finish, end at once.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// How often a quiet watch stream gets a keep-alive comment.
    pub watch_keepalive: Duration,
}

impl AppState {
    fn set_backend(&self, backend: Arc<dyn Backend>) {
        // Set once: by `build_with_backend` or when recovery finishes.
        let _ = self.backend.set(backend);
    }

    /// Storage, or 503 while it is still being recovered.
    pub fn backend(&self) -> Result<&Arc<dyn Backend>, ApiError> {
        self.backend.get().ok_or(ApiError::Unavailable)
    }

    /// Whether storage is recovered and serving.
    pub fn is_ready(&self) -> bool {
        self.backend.get().is_some()
    }
}

/// Storage being opened in the background while the server already answers
/// `/healthz` (and 503 on `/readyz`).
type Recovery = actix_web::rt::task::JoinHandle<anyhow::Result<Arc<dyn Backend>>>;

/// Limits on requests.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Longest body accepted.
    pub max_body_bytes: usize,
    /// Longest value accepted (a `/v1` body is the value).
    pub max_value_bytes: usize,
    /// How long a body may take to arrive.
    pub body_timeout: Duration,
    /// Where a listing page stops, in bytes of JSON.
    pub list_page_bytes: usize,
}

/// A server bound to its listener, ready to run.
pub struct Application {
    server: actix_web::dev::Server,
    addr: SocketAddr,
    /// `https` with TLS, `http` without.
    scheme: &'static str,
    state: web::Data<AppState>,
    shutdown_timeout: Duration,
    recovery: Option<Recovery>,
}

impl Application {
    /// Builds the server over the embedded kvcore store configured from
    /// `config`: in memory, or recovered from `config.data_dir` in the
    /// background while the server already listens. Must be called inside an
    /// actix (tokio) runtime.
    pub fn build(config: Config, listener: TcpListener) -> anyhow::Result<Application> {
        #[cfg(feature = "etcd")]
        if let crate::config::Storage::Etcd(etcd) = &config.storage {
            let (etcd, settings) = (etcd.clone(), config.clone());
            let mut app = Application::serve(config, listener)?;
            let stopping = app.state.stopping.subscribe();
            app.recovery = Some(connect_etcd(etcd, &settings, stopping));
            return Ok(app);
        }
        let mut builder = Store::builder()
            .tuning(config.tuning)
            .max_key_bytes(config.max_key_bytes)
            .max_value_bytes(config.max_value_bytes)
            .clock(config.clock.clone())
            .fsync(config.fsync)
            .on_corruption(config.on_corruption)
            .eviction(config.eviction)
            .watch_history(config.watch_history);
        if let Some(bound) = config.max_memory {
            builder = builder.max_memory(bound);
            log::info!(
                "memory: bound {bound} bytes ({:.1} MiB) of records and tables; a write over it: {}",
                bound as f64 / (1 << 20) as f64,
                config.eviction.name()
            );
        }
        let Some(dir) = config.data_dir.clone() else {
            log::warn!("storage: in memory only; data will not survive a restart (no --data-dir)");
            let backend = Arc::new(EmbeddedBackend::new(builder.build()));
            return Application::build_with_backend(config, listener, backend);
        };
        log::info!(
            "storage: recovering {} (fsync={})",
            dir.display(),
            config.fsync.name()
        );
        let fsync = config.fsync;
        let on_corruption = config.on_corruption;
        let recovery = actix_web::rt::task::spawn_blocking(move || {
            let store = builder
                .open(&dir)
                .map_err(|err| opening_failed(&dir, err, on_corruption))?;
            log_recovery(&store, fsync);
            let backend: Arc<dyn Backend> = Arc::new(EmbeddedBackend::new(store));
            Ok(backend)
        });
        let mut app = Application::serve(config, listener)?;
        app.recovery = Some(recovery);
        Ok(app)
    }

    /// Builds the server over any storage backend.
    pub fn build_with_backend(
        config: Config,
        listener: TcpListener,
        backend: Arc<dyn Backend>,
    ) -> anyhow::Result<Application> {
        let app = Application::serve(config, listener)?;
        app.state.set_backend(backend);
        Ok(app)
    }

    /// Starts serving; storage is attached when it is ready.
    fn serve(config: Config, listener: TcpListener) -> anyhow::Result<Application> {
        let addr = listener
            .local_addr()
            .context("reading the listener's address")?;
        let state = web::Data::new(AppState {
            backend: OnceLock::new(),
            limits: RequestLimits {
                max_body_bytes: config.max_body_bytes,
                max_value_bytes: config.max_value_bytes,
                body_timeout: config.body_timeout,
                list_page_bytes: config.list_page_bytes,
            },
            started: Instant::now(),
            metrics: Metrics::new().context("registering metrics")?,
            tokens: config.tokens.clone().map(Arc::new),
            open_metrics: config.open_metrics,
            stopping: tokio::sync::watch::Sender::new(false),
            watch_keepalive: config.watch_keepalive,
        });
        let app_state = state.clone();
        let per_worker = (config.max_connections / config.workers).max(1);
        // actix-web's HttpServer, spelled out on actix-server and actix-http:
        // HttpServer offers no way to set the `Expect: 100-continue` handler,
        // and a body over the limits must be refused before `100 Continue`.
        let builder = actix_server::Server::build()
            .workers(config.workers)
            .max_concurrent_connections(per_worker)
            // actix takes whole seconds; rounding up keeps its own cut-off
            // from coming before the exact one `run_until` enforces.
            .shutdown_timeout(whole_seconds_up(config.shutdown_timeout))
            // Signals are handled in `run_until`, which logs each phase.
            .disable_signals();
        // Tells open connections to finish once a graceful stop begins, as
        // HttpServer does (idle keep-alive connections close at once).
        let stopping = builder.graceful_shutdown_signal();
        let limits = state.limits;
        macro_rules! http_service {
            ($($on_connect:expr)?) => {{
                let stopping = stopping.clone();
                HttpService::build()
                    $(.on_connect_ext($on_connect))?
                    .graceful_shutdown_signal(move || {
                        let stopping = stopping.clone();
                        async move { stopping.notified().await }
                    })
                    .client_request_timeout(Duration::from_secs(5))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .h1_allow_half_closed(true)
                    .local_addr(addr)
                    .expect(fn_service(move |request: Request| async move {
                        refuse_before_continue(&request, limits).map(|()| request)
                    }))
                    .finish(map_config(
                        app(app_state.clone())
                            .into_factory()
                            .map_err(|err| err.error_response()),
                        |_| AppConfig::default(),
                    ))
            }};
        }
        let (builder, scheme) = match &config.tls {
            Some(tls) => {
                let mut tls = tls.server_config();
                // HTTP/1.1 only, as actix-http's own rustls setup offers it.
                tls.alpn_protocols.insert(0, b"http/1.1".to_vec());
                let builder = builder.listen("kvserver", listener, move || {
                    // actix-http's rustls service, with the decrypted stream
                    // wrapped as the plain one is (see early_errors).
                    Acceptor::new(tls.clone())
                        .map_init_err(|_| ())
                        .map_err(TlsError::into_service_error)
                        .and_then(fn_service(|io: TlsStream<TcpStream>| async move {
                            let _ = io.get_ref().0.set_nodelay(true);
                            let peer = io.get_ref().0.peer_addr().ok();
                            Ok::<_, TlsError<std::io::Error, DispatchError>>((
                                EarlyErrors::new(io),
                                Protocol::Http1,
                                peer,
                            ))
                        }))
                        .and_then(
                            http_service!(
                                |io: &EarlyErrors<TlsStream<TcpStream>>, data: &mut Extensions| {
                                    data.insert(io.ledger());
                                }
                            )
                            .map_err(TlsError::Service),
                        )
                });
                (builder, "https")
            }
            None => {
                let builder = builder.listen("kvserver", listener, move || {
                    // Each connection is wrapped so that actix's own early
                    // error responses get a JSON body (see early_errors).
                    fn_service(|io: TcpStream| async move {
                        let _ = io.set_nodelay(true);
                        let peer = io.peer_addr().ok();
                        Ok((EarlyErrors::new(io), Protocol::Http1, peer))
                    })
                    .and_then(http_service!(
                        |io: &EarlyErrors<TcpStream>, data: &mut Extensions| {
                            data.insert(io.ledger());
                        }
                    ))
                });
                (builder, "http")
            }
        };
        let server = builder.context("listening")?.run();
        if config.tokens.is_some() && config.tls.is_none() && !addr.ip().is_loopback() {
            log::warn!(
                "auth: tokens cross the network in clear text over plain HTTP; \
                 serve HTTPS with --tls-cert and --tls-key, or put a TLS proxy in front"
            );
        }
        Ok(Application {
            server,
            addr,
            scheme,
            state,
            shutdown_timeout: config.shutdown_timeout,
            recovery: None,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's base URL: `https://ADDR` with TLS, `http://ADDR` without.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish (within the shutdown timeout) and flushes storage.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        // Tools read the address from this line: keep it right after the scheme.
        log::info!("listening on {}://{}", self.scheme, self.addr);
        let handle = self.server.handle();
        let mut server = actix_web::rt::spawn(self.server);
        let mut recovery = self.recovery;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                finished = &mut server => {
                    finished.context("server task")?.context("server")?;
                    break;
                }
                recovered = async {
                    match recovery.as_mut() {
                        Some(task) => task.await,
                        None => std::future::pending().await,
                    }
                }, if recovery.is_some() => {
                    recovery = None;
                    match recovered.context("recovery task").and_then(|r| r) {
                        Ok(backend) => {
                            self.state.set_backend(backend);
                            log::info!("ready: storage recovered or connected; /readyz answers 200 while it serves");
                        }
                        Err(err) => {
                            handle.stop(false).await;
                            return Err(err);
                        }
                    }
                }
                () = &mut shutdown => {
                    log::info!(
                        "shutdown: no longer accepting connections; finishing in-flight requests (at most {:?})",
                        self.shutdown_timeout
                    );
                    let draining = Instant::now();
                    // Watch streams never finish by themselves: end them now
                    // (their clients reconnect elsewhere with Last-Event-ID).
                    self.state.stopping.send_replace(true);
                    // The command is sent now; the server task reports the end.
                    drop(handle.stop(true));
                    // actix only checks on draining workers once a second and
                    // takes its timeout in whole seconds, so the exact bound
                    // is kept here: past it, the server task is dropped, which
                    // stops its workers at once and drops their connections.
                    match tokio::time::timeout(self.shutdown_timeout, &mut server).await {
                        Ok(finished) => {
                            finished.context("server task")?.context("server")?;
                        }
                        Err(_) => {
                            server.abort();
                            match server.await {
                                Err(err) if err.is_cancelled() => {}
                                finished => {
                                    finished.context("server task")?.context("server")?;
                                }
                            }
                        }
                    }
                    let drained = draining.elapsed();
                    // actix gives no verdict; it only returns early when every
                    // connection finished, so running the whole timeout means
                    // some were dropped.
                    if drained >= self.shutdown_timeout {
                        log::warn!(
                            "shutdown: requests still unfinished after {drained:?} were cut off"
                        );
                    } else {
                        log::info!("shutdown: in-flight requests done after {drained:?}");
                    }
                    break;
                }
            }
        }
        if let Some(recovery) = recovery {
            // Stopped while still recovering: let recovery finish so the data
            // directory is left consistent and unlocked, then flush it. (A
            // connection to etcd still being tried gives up: `stopping`.)
            self.state.stopping.send_replace(true);
            if let Ok(Ok(backend)) = recovery.await {
                self.state.set_backend(backend);
            }
        }
        if let Ok(backend) = self.state.backend() {
            backend
                .close()
                .await
                .context("closing storage at shutdown")?;
            log::info!("shutdown: storage flushed and synced; exiting");
        }
        Ok(())
    }
}

/// Every route, for one worker.
fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<Holding>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .configure(routes::configure)
        .default_service(web::to(routes::no_route))
        .wrap_fn(|mut request, service| {
            let started = Instant::now();
            let held = HeldBody::take_if_chunked(&mut request);
            let ledger = request.conn_data::<Ledger>().cloned();
            let head_only = request.method() == Method::HEAD;
            let response = service.call(request);
            async move {
                let response = response.await;
                // Every response goes on the wire, an error turned into one too.
                if let Some(ledger) = ledger {
                    ledger.record(head_only);
                }
                let response = response?;
                let elapsed = started.elapsed();
                record(&response, elapsed);
                log_request(&response, elapsed);
                Ok(response.map_body(|_, body| Holding::new(body, held)))
            }
        })
}

/// The answer to `Expect: 100-continue` with a declared length over the
/// limits: the 413 goes out instead of `100 Continue`, so the client never
/// sends the body. The limits are those the route applies (a `/v1` value
/// is bounded by the value limit too).
fn refuse_before_continue(
    request: &Request,
    limits: RequestLimits,
) -> Result<(), actix_http::Response<BoxBody>> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    let Some(size) = declared else {
        return Ok(());
    };
    let value_limit = (request.method() == Method::PUT && request.path().starts_with("/v1/kv/"))
        .then_some(("value", limits.max_value_bytes));
    let over = [("request body", limits.max_body_bytes)]
        .into_iter()
        .chain(value_limit)
        .find(|&(_, limit)| size > limit);
    match over {
        Some((what, limit)) => {
            if let Some(ledger) = request.conn_data::<Ledger>() {
                ledger.record(false);
            }
            let refusal = ApiError::PayloadTooLarge { what, size, limit };
            let mut response = refusal.error_response();
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            Err(response.into())
        }
        None => Ok(()),
    }
}

/// `duration` in whole seconds, rounded up.
fn whole_seconds_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Why the data directory could not be opened. A log damaged before its
/// end also names the flag that starts anyway: the operator reading this is
/// the one who decides whether to accept the loss.
fn opening_failed(
    dir: &std::path::Path,
    err: kvcore::Error,
    on_corruption: kvcore::OnCorruption,
) -> anyhow::Error {
    // Damage in the records: every log starts with an 8-byte header, and a
    // header refused at offset 0 (a newer format, a snapshot's magic) is not
    // something cutting records mends.
    let damaged_log = matches!(&err, kvcore::Error::Corrupt { file, offset, .. }
        if *offset > 0 && file.extension().is_some_and(|extension| extension == "kvlog"));
    let opening = format!("opening data directory {}", dir.display());
    if damaged_log && on_corruption == kvcore::OnCorruption::Refuse {
        return anyhow::anyhow!(
            "{opening}: {err}; to start anyway, cutting the log at that record and losing it and every later one, \
             pass --truncate-corrupt-log"
        );
    }
    anyhow::Error::new(err).context(opening)
}

/// Logs what recovery found.
fn log_recovery(store: &Store, fsync: kvcore::Fsync) {
    let Some(report) = store.recovery() else {
        return;
    };
    if let Some(torn) = &report.torn_tail {
        // With `always` a synced record is never torn by a crash: a damaged
        // last record may be one that was acknowledged.
        let level = match fsync {
            kvcore::Fsync::Always => log::Level::Error,
            _ => log::Level::Warn,
        };
        log::log!(
            level,
            "recovery: cut {} off {} at offset {} ({} bytes dropped)",
            torn.reason,
            torn.file.display(),
            torn.offset,
            torn.bytes_dropped
        );
    }
    if let Some(cut) = &report.truncated_corruption {
        log::warn!(
            "recovery: --truncate-corrupt-log cut {} at offset {}: {} ({} bytes dropped, later log files included); revisions continue above anything found beyond the cut",
            cut.file.display(),
            cut.offset,
            cut.reason,
            cut.bytes_dropped
        );
    }
    log::info!(
        "recovery: {} keys from {} snapshot and {} log records ({} expired while down) in {:?}; revision {}",
        report.keys,
        report.snapshot_records,
        report.log_records,
        report.expired_dropped,
        report.duration,
        report.revision
    );
}

/// Connects to etcd in the background, retrying until it answers (only a
/// cluster with auth is contacted at once: the login needs it) or the
/// server is stopping, while the server already answers `/healthz` and 503
/// on `/readyz`.
#[cfg(feature = "etcd")]
fn connect_etcd(
    etcd: crate::backend::EtcdConfig,
    config: &Config,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> Recovery {
    use crate::backend::EtcdBackend;
    let (clock, max_key_bytes, max_value_bytes) = (
        config.clock.clone(),
        config.max_key_bytes,
        config.max_value_bytes,
    );
    log::info!(
        "storage: etcd at {} under prefix {:?} (timeout {:?})",
        etcd.endpoints.join(","),
        etcd.prefix,
        etcd.timeout
    );
    actix_web::rt::spawn(async move {
        loop {
            match EtcdBackend::connect(&etcd, clock.clone(), max_key_bytes, max_value_bytes).await {
                Ok(backend) => {
                    let backend: Arc<dyn Backend> = Arc::new(backend);
                    return Ok(backend);
                }
                Err(err) => log::warn!("storage: {err}; trying again in 1s"),
            }
            // A stop ends the attempts: a server that never connected has
            // nothing to flush, and etcd may never answer.
            tokio::select! {
                () = actix_web::rt::time::sleep(Duration::from_secs(1)) => {}
                _ = stopping.wait_for(|stopping| *stopping) => {
                    anyhow::bail!("stopped before etcd was connected")
                }
            }
        }
    })
}

/// Counts a finished request in the metrics.
fn record(response: &ServiceResponse, elapsed: Duration) {
    let request = response.request();
    if let Some(state) = request.app_data::<web::Data<AppState>>() {
        let route = request.match_pattern();
        state.metrics.observe(
            request.method(),
            route.as_deref().unwrap_or("unmatched"),
            response.status().as_u16(),
            elapsed,
        );
    }
}

/// The request log's target: `RUST_LOG=info,kvserver::request=warn` turns
/// the request lines off and keeps the rest.
pub const REQUEST_LOG: &str = "kvserver::request";

/// One line per request: peer address, method, path (no query string: it
/// could carry a key's value in a future API), status, body bytes, duration.
/// Never a body, never a header value.
fn log_request(response: &ServiceResponse, elapsed: Duration) {
    if !log::log_enabled!(target: REQUEST_LOG, log::Level::Info) {
        return;
    }
    let request = response.request();
    let peer = request.peer_addr().map(|addr| addr.ip());
    let peer: &dyn std::fmt::Display = match &peer {
        Some(ip) => ip,
        None => &"-",
    };
    let bytes = match response.response().body().size() {
        BodySize::Sized(bytes) => bytes,
        BodySize::None | BodySize::Stream => 0,
    };
    log::info!(
        target: REQUEST_LOG,
        "{peer} \"{} {}\" {} {bytes} {:.3}ms",
        request.method(),
        request.path(),
        response.status().as_u16(),
        elapsed.as_secs_f64() * 1000.0
    );
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C), logging which arrived.
///
/// The handlers are installed when this is called, not when the future is
/// first polled: `run_until` logs "listening" before polling it, and a signal
/// in between would otherwise kill the process instead of draining it. Call
/// it inside the runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            log::error!("could not install signal handlers; stop the server with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => log::info!("shutdown: SIGTERM received"),
            _ = int.recv() => log::info!("shutdown: SIGINT received"),
        }
    }
}
