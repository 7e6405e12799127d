//! The OpenAPI 3.1 document of every route, served at `GET /openapi.json`.
//!
//! The document is hand-written JSON (`crates/kvserver/openapi.json`), so it
//! can say what code cannot: which status each operation answers and why.
//! The tests below keep it in step with the routes, and
//! `tests/schemathesis/run.sh` checks real responses against it.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};

use super::only;
use crate::error::ApiError;
use crate::query::Params;

/// The document, embedded at build time.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/openapi.json")
            .route(web::get().to(document))
            .route(web::head().to(document))
            .default_service(only("GET, HEAD")),
    );
}

async fn document(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Params::of(&request, &[])?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(DOCUMENT))
}

#[cfg(test)]
mod tests {
    //! The document and the routes describe the same API: every documented
    //! operation is served, and every route the app serves is documented.

    use std::collections::BTreeSet;
    use std::net::{SocketAddr, TcpListener};
    use std::path::Path;

    use reqwest::Method;
    use serde_json::Value;

    use super::DOCUMENT;
    use crate::{Application, Config};

    /// Every method a route could be registered for.
    const METHODS: [&str; 8] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
    ];

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON")
    }

    /// `(METHOD, /path/{param})` for every operation of the document.
    fn documented_operations() -> BTreeSet<(String, String)> {
        let document = document();
        let paths = document["paths"].as_object().expect("paths is an object");
        let mut operations = BTreeSet::new();
        for (path, item) in paths {
            for method in item.as_object().expect("a path item is an object").keys() {
                let upper = method.to_ascii_uppercase();
                if METHODS.contains(&upper.as_str()) {
                    operations.insert((upper, path.clone()));
                }
            }
        }
        operations
    }

    /// Starts the real app on a free port, in its own thread and runtime.
    /// The server lives until the test process exits.
    fn spawn_app() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
        let addr = listener.local_addr().expect("local address");
        let config = Config {
            workers: 1,
            max_connections: 64,
            ..Config::default()
        };
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(config, listener).expect("building the app");
                app.run_until(std::future::pending()).await
            })
        });
        // The listener is already bound: requests wait in its backlog until
        // the server accepts them.
        addr
    }

    /// A concrete path for a templated one: `{key}` becomes a key with an
    /// encoded slash in it.
    fn concrete(path: &str) -> String {
        let mut out = String::new();
        let mut rest = path;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').expect("a closed {param}") + open;
            out.push_str("sync%2Fcheck");
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Whether any route matches the path: the app's default service answers
    /// a path no route matches with a 404 saying "no route for ...".
    fn routed(client: &reqwest::blocking::Client, url: &str) -> bool {
        let response = client
            .get(url)
            .send()
            .unwrap_or_else(|err| panic!("GET {url}: {err}"));
        if response.status() != 404 {
            return true;
        }
        let body: Value = response.json().unwrap_or(Value::Null);
        !body["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("no route for")
    }

    /// `(METHOD, /path)` for every method the app serves on a documented
    /// path. On a routed path, a method no route serves gets the resource's
    /// 405; anything else (a 404 for a missing key included) comes from a
    /// route.
    fn served_operations(paths: &BTreeSet<String>) -> BTreeSet<(String, String)> {
        let addr = spawn_app();
        let client = reqwest::blocking::Client::new();
        let mut operations = BTreeSet::new();
        for path in paths {
            let url = format!("http://{addr}{}", concrete(path));
            if !routed(&client, &url) {
                continue;
            }
            for method in METHODS {
                let response = client
                    .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
                    .send()
                    .unwrap_or_else(|err| panic!("{method} {url}: {err}"));
                if response.status() != 405 {
                    operations.insert((method.to_owned(), path.clone()));
                }
            }
        }
        operations
    }

    /// Every path literal given to `resource(`, `scope(`, `.route(` or a
    /// route macro in `src/`, outside test modules, with `{name:regex}`
    /// written as `{name}`. A path that is not a literal fails the test: it
    /// would hide a route from this check.
    fn registered_paths() -> BTreeSet<String> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = BTreeSet::new();
        for file in rust_files(&src) {
            let text = std::fs::read_to_string(&file).expect("reading a source file");
            // Test modules sit at the end of a file and register nothing.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (marker, at) in registrations(code) {
                let after = &code[at + marker.len()..];
                let literal = after
                    .strip_prefix('"')
                    .and_then(|rest| rest.split_once('"'))
                    .map(|(literal, _)| literal)
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: `{marker}` without a string literal path; \
                             write the path as a literal so the OpenAPI sync test sees it",
                            file.display()
                        )
                    });
                paths.insert(without_regexes(literal));
            }
        }
        paths
    }

    /// Where a path is registered: each marker and its byte offset.
    fn registrations(code: &str) -> Vec<(&'static str, usize)> {
        const MARKERS: [&str; 11] = [
            "web::resource(",
            "web::scope(",
            "Resource::new(",
            "Scope::new(",
            ".route(\"",
            "#[get(",
            "#[post(",
            "#[put(",
            "#[delete(",
            "#[patch(",
            "#[route(",
        ];
        let mut found = Vec::new();
        for marker in MARKERS {
            // `.route("` has its quote in the marker; step back onto it.
            let marker = marker.strip_suffix('"').unwrap_or(marker);
            found.extend(code.match_indices(marker).map(|(at, _)| (marker, at)));
        }
        found.retain(|(marker, at)| {
            // `.route(web::get()...)` on a resource adds a method, not a path.
            *marker != ".route(" || code[at + marker.len()..].starts_with('"')
        });
        found
    }

    fn without_regexes(path: &str) -> String {
        let mut out = String::new();
        let mut in_param = false;
        let mut skipping = false;
        for c in path.chars() {
            match c {
                '{' => in_param = true,
                '}' => {
                    in_param = false;
                    skipping = false;
                }
                ':' if in_param => skipping = true,
                _ => {}
            }
            if !skipping {
                out.push(c);
            }
        }
        out
    }

    fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).expect("reading src/") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                files.extend(rust_files(&path));
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
        files
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_reference_resolved() {
        let document = document();
        assert_eq!(document["openapi"], "3.1.0");
        let mut refs = Vec::new();
        collect_refs(&document, &mut refs);
        assert!(!refs.is_empty(), "the document uses its components");
        for reference in refs {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{reference} is not a local reference"));
            assert!(
                document.pointer(pointer).is_some(),
                "{reference} points at nothing"
            );
        }
    }

    #[test]
    fn every_link_names_a_documented_operation() {
        let document = document();
        let mut operation_ids = BTreeSet::new();
        let mut linked = Vec::new();
        for item in document["paths"].as_object().expect("paths").values() {
            for operation in item.as_object().expect("a path item").values() {
                if let Some(id) = operation["operationId"].as_str() {
                    assert!(operation_ids.insert(id), "operationId {id} is used twice");
                }
                let responses = operation["responses"].as_object().into_iter().flatten();
                for (_, response) in responses {
                    let links = response["links"].as_object().into_iter().flatten();
                    for (name, link) in links {
                        linked.push((name.clone(), link["operationId"].as_str().unwrap_or("")));
                    }
                }
            }
        }
        assert!(
            !linked.is_empty(),
            "the document links operations for stateful tests"
        );
        for (name, target) in linked {
            assert!(
                operation_ids.contains(target),
                "link {name} targets {target:?}, which no operation is"
            );
        }
    }

    fn collect_refs(value: &Value, refs: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (name, inner) in object {
                    match (name.as_str(), inner) {
                        ("$ref", Value::String(reference)) => refs.push(reference.clone()),
                        _ => collect_refs(inner, refs),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
            _ => {}
        }
    }

    #[test]
    fn every_route_path_in_the_source_is_documented_and_every_documented_path_is_registered() {
        let documented: BTreeSet<String> = documented_operations()
            .into_iter()
            .map(|(_, path)| path)
            .collect();
        let registered = registered_paths();
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        let unregistered: Vec<_> = documented.difference(&registered).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from openapi.json: {undocumented:?}"
        );
        assert!(
            unregistered.is_empty(),
            "documented paths no source file registers: {unregistered:?}"
        );
    }

    #[test]
    fn the_app_serves_exactly_the_documented_operations() {
        let documented = documented_operations();
        let paths = documented.iter().map(|(_, path)| path.clone()).collect();
        let served = served_operations(&paths);
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "the app serves operations openapi.json does not document: {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "openapi.json documents operations the app does not serve: {unserved:?}"
        );
    }

    #[test]
    fn openapi_json_serves_the_document() {
        let addr = spawn_app();
        let response = reqwest::blocking::get(format!("http://{addr}/openapi.json"))
            .expect("GET /openapi.json");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "served as JSON"
        );
        let served: Value = response.json().expect("a JSON body");
        assert_eq!(served, document());
    }
}
