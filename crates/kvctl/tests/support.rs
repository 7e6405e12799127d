//! Starting servers and running kvctl.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Whether this test runs against a kvserver on etcd: it is one of the
/// modules included again under `on_etcd` in main.rs (libtest names each
/// test's thread after its path), as kvserver's own tests decide.
pub fn on_etcd() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|name| name.starts_with("on_etcd::"))
}

/// Where a test's kvservers keep their data: the embedded store, or for a
/// test on etcd an etcd member of its own, running as long as this value.
pub struct Backend {
    #[cfg(feature = "etcd")]
    etcd: Option<crate::etcd_harness::EtcdCluster>,
}

impl Backend {
    /// etcd for a test on etcd, the embedded store otherwise.
    pub fn for_this_test() -> Backend {
        Backend::on(on_etcd())
    }

    fn on(etcd: bool) -> Backend {
        #[cfg(not(feature = "etcd"))]
        assert!(!etcd, "tests on etcd need the cargo feature `etcd`");
        Backend {
            #[cfg(feature = "etcd")]
            etcd: etcd.then(|| {
                crate::etcd_harness::EtcdCluster::start(1, crate::etcd_harness::Timing::Fast)
            }),
        }
    }

    pub fn is_etcd(&self) -> bool {
        #[cfg(feature = "etcd")]
        return self.etcd.is_some();
        #[cfg(not(feature = "etcd"))]
        false
    }

    /// `config` with its storage here (on the embedded store, `config`'s
    /// own data directory or memory).
    pub fn configure(&self, config: kvserver::Config) -> kvserver::Config {
        #[cfg(feature = "etcd")]
        if let Some(cluster) = &self.etcd {
            assert!(config.data_dir.is_none(), "etcd keeps the data");
            return kvserver::Config {
                storage: cluster.storage(),
                ..config
            };
        }
        config
    }
}

/// A real kvserver, running until the test process exits (on etcd, until
/// the value is dropped, which stops its member).
pub struct Server {
    pub endpoint: String,
    _backend: Backend,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(kvserver::Config::default())
    }

    /// On etcd for a test on etcd, on the embedded store otherwise.
    pub fn start_with(config: kvserver::Config) -> Server {
        Server::start_on(Backend::for_this_test(), config)
    }

    /// On the embedded store whatever the test's name, for a setting that
    /// only the embedded store has (each caller says which).
    pub fn start_embedded(config: kvserver::Config) -> Server {
        Server::start_on(Backend::on(false), config)
    }

    fn start_on(backend: Backend, config: kvserver::Config) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
        let addr = listener.local_addr().unwrap();
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let config = backend.configure(kvserver::Config {
            workers: 1,
            ..config
        });
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = kvserver::Application::build(config, listener).unwrap();
                app.run_until(std::future::pending()).await
            })
        });
        // The listener is already bound, so connections queue until the
        // server accepts them; etcd is connected in the background, though.
        let endpoint = format!("{scheme}://{addr}");
        if backend.is_etcd() {
            wait_until_ready(&endpoint);
        }
        Server {
            endpoint,
            _backend: backend,
        }
    }

    /// Compacts the history of the etcd member of a test on etcd: a watch
    /// from before `revision` is then refused.
    #[cfg(feature = "etcd")]
    pub fn compact_etcd(&self, revision: u64) {
        let cluster = self._backend.etcd.as_ref().expect("a test on etcd");
        cluster.compact(revision);
    }

    /// kvctl aimed at this server.
    pub fn kvctl(&self, args: &[&str]) -> Kvctl {
        kvctl(args).endpoint(&self.endpoint)
    }

    /// Runs kvctl against this server and expects success.
    pub fn ok(&self, args: &[&str]) -> Outcome {
        self.kvctl(args).run().success()
    }
}

/// Waits until the kvserver at `endpoint` (plain HTTP) answers `/readyz`
/// with 200: its storage is recovered or connected.
pub fn wait_until_ready(endpoint: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !reqwest::blocking::get(format!("{endpoint}/readyz"))
        .is_ok_and(|response| response.status().is_success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{endpoint} is not ready after 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The number after "version " in a line kvctl printed.
pub fn version_in(line: &str) -> u64 {
    line.split("version ")
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no version in {line:?}"))
}

/// A server that answers every request with `response` (a whole HTTP
/// response) and hands each request it read, head and body, to the test.
pub fn fake_server(response: &'static str) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (requests, received) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let request = read_request(&stream);
            let _ = stream.write_all(response.as_bytes());
            let _ = requests.send(request);
        }
    });
    (endpoint, received)
}

/// A whole HTTP response with a JSON body.
pub fn json_response(status: &str, body: &str) -> &'static str {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    Box::leak(response.into_boxed_str())
}

/// A server that accepts connections and never answers.
pub fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(16) {
            held.push(stream);
        }
    });
    endpoint
}

/// An endpoint nothing listens on: a port bound and released.
pub fn unreachable_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn read_request(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    head + &String::from_utf8_lossy(&body)
}

/// A fresh directory for one test's files.
pub fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "kvctl-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A kvctl invocation being put together.
pub struct Kvctl {
    command: Command,
    stdin: Vec<u8>,
}

/// kvctl with `args`, no endpoint, no token, and an empty stdin.
pub fn kvctl(args: &[&str]) -> Kvctl {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kvctl"));
    command
        .args(args)
        .env_remove("KVCTL_ENDPOINT")
        .env_remove("KVCTL_TOKEN");
    Kvctl {
        command,
        stdin: Vec::new(),
    }
}

impl Kvctl {
    pub fn endpoint(mut self, endpoint: &str) -> Kvctl {
        self.command.arg("--endpoint").arg(endpoint);
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Kvctl {
        self.command.env(name, value);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Kvctl {
        self.stdin = bytes.into();
        self
    }

    /// Runs kvctl to the end with stdin, stdout and stderr piped.
    pub fn run(mut self) -> Outcome {
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting kvctl");
        let mut stdin = child.stdin.take().unwrap();
        let input = std::mem::take(&mut self.stdin);
        let writer = std::thread::spawn(move || {
            // kvctl may exit without reading it all; that's its business.
            let _ = stdin.write_all(&input);
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        Outcome {
            code: output.status.code().expect("kvctl exited by a signal"),
            stdout: output.stdout,
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }
}

/// How a kvctl run ended.
pub struct Outcome {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("code", &self.code)
            .field("stdout", &String::from_utf8_lossy(&self.stdout))
            .field("stderr", &self.stderr)
            .finish()
    }
}

impl Outcome {
    pub fn stdout(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    /// Stdout as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not one JSON document ({err}): {self:?}"))
    }

    /// Stdout as JSON Lines.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect()
    }

    /// Asserts exit 0 with nothing on stderr.
    pub fn success(self) -> Outcome {
        assert_eq!((self.code, self.stderr.as_str()), (0, ""), "{self:?}");
        self
    }

    /// Asserts a failure: `code`, nothing on stdout, and exactly one line on
    /// stderr containing every one of `needles`.
    pub fn fails(self, code: i32, needles: &[&str]) -> Outcome {
        assert_eq!(self.code, code, "exit code: {self:?}");
        assert!(self.stdout.is_empty(), "nothing on stdout: {self:?}");
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line on stderr: {self:?}"
        );
        assert!(self.stderr.starts_with("error: "), "{self:?}");
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr should say {needle:?}: {self:?}"
            );
        }
        self
    }
}
