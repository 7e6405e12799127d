//! `openapi.json` checked against kvapi, the one definition of the wire
//! format: every body kvapi writes (and kvserver answers with) is one its
//! schema allows, every property a schema documents is one kvapi writes,
//! and the header and parameter names and listing limits are kvapi's.
//!
//! The schemas are read by a small hand checker for the JSON Schema words
//! the document uses; a word it does not know fails the test rather than
//! being skipped.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actix_web::http::StatusCode;
use kvapi::{
    Deleted, Entry, ErrorBody, ErrorCode, Health, HealthStatus, Info, InfoLimits, InfoMemory,
    ListItem, ListPage, LogFigures, StoreTtl, StoreWrite, WatchEvent, WatchKind, Written,
};
use kvserver::ApiError;
use kvserver::routes::openapi::DOCUMENT;
use serde::Serialize;
use serde_json::Value;

/// Words that only describe: they constrain nothing a body could break.
const DESCRIPTIVE: &[&str] = &["description", "default", "format", "examples"];

/// The document and what each object schema saw of its properties.
struct Checker {
    document: Value,
    /// Schema location -> the property names bodies gave it.
    seen: RefCell<BTreeMap<String, BTreeSet<String>>>,
}

impl Checker {
    fn new() -> Checker {
        Checker {
            document: serde_json::from_str(DOCUMENT).expect("openapi.json is JSON"),
            seen: RefCell::default(),
        }
    }

    /// The schema at a `#/...` reference.
    fn at(&self, reference: &str) -> &Value {
        let pointer = reference.strip_prefix('#').expect("a local reference");
        self.document
            .pointer(pointer)
            .unwrap_or_else(|| panic!("openapi.json has no {reference}"))
    }

    /// Checks `body` (any kvapi type) against the schema at `reference`;
    /// panics naming every violation.
    fn check(&self, reference: &str, body: &impl Serialize, why: &str) {
        let value = serde_json::to_value(body).expect("a kvapi body serialises");
        let mut errors = Vec::new();
        self.walk(reference, self.at(reference), &value, "body", &mut errors);
        assert!(
            errors.is_empty(),
            "{why}: {value} against {reference}:\n{}",
            errors.join("\n")
        );
    }

    fn walk(&self, at: &str, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        let schema = schema.as_object().expect("a schema is an object");
        for (word, rule) in schema {
            let mut fail = |what: String| errors.push(format!("{path}: {what}"));
            match word.as_str() {
                "$ref" => {
                    let reference = rule.as_str().expect("$ref is a string");
                    self.walk(reference, self.at(reference), value, path, errors);
                }
                "allOf" => {
                    for (i, part) in rule.as_array().expect("allOf is a list").iter().enumerate() {
                        self.walk(&format!("{at}/allOf/{i}"), part, value, path, errors);
                    }
                }
                "type" => {
                    let types: Vec<&str> = match rule {
                        Value::String(one) => vec![one],
                        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                        _ => panic!("{at}: type is a string or a list"),
                    };
                    if !types.iter().any(|kind| is_type(value, kind)) {
                        fail(format!("{value} is not of type {types:?}"));
                    }
                }
                "const" if value != rule => fail(format!("{value} is not {rule}")),
                "enum" if !rule.as_array().expect("enum is a list").contains(value) => {
                    fail(format!("{value} is not one of {rule}"));
                }
                "minimum" | "maximum" if value.is_number() => {
                    let (bound, number) = (rule.as_f64().unwrap(), value.as_f64().unwrap());
                    if (word == "minimum" && number < bound)
                        || (word == "maximum" && number > bound)
                    {
                        fail(format!("{value} is beyond the {word} {rule}"));
                    }
                }
                "minLength" if value.is_string() => {
                    let length = value.as_str().unwrap().chars().count() as u64;
                    if length < rule.as_u64().unwrap() {
                        fail(format!("{value} is shorter than {rule}"));
                    }
                }
                "maxItems" if value.is_array() => {
                    if value.as_array().unwrap().len() as u64 > rule.as_u64().unwrap() {
                        fail(format!("more than {rule} items"));
                    }
                }
                "pattern" if value.is_string() => {
                    // The one pattern on a body: the listing cursor.
                    assert_eq!(
                        rule, "^[A-Za-z0-9_-]*$",
                        "{at}: a pattern this checker reads"
                    );
                    let text = value.as_str().unwrap();
                    if !text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        fail(format!("{value} does not match {rule}"));
                    }
                }
                "required" => {
                    for name in rule.as_array().expect("required is a list") {
                        let name = name.as_str().unwrap();
                        if value.is_object() && value.get(name).is_none() {
                            fail(format!("required property {name:?} is missing"));
                        }
                    }
                }
                "additionalProperties" => {
                    assert_eq!(
                        rule, false,
                        "{at}: only additionalProperties: false is used"
                    );
                    let declared = schema.get("properties").and_then(Value::as_object);
                    for name in value
                        .as_object()
                        .into_iter()
                        .flat_map(|object| object.keys())
                    {
                        if !declared.is_some_and(|declared| declared.contains_key(name)) {
                            fail(format!("property {name:?} is not documented"));
                        }
                    }
                }
                "properties" => {
                    let Some(object) = value.as_object() else {
                        continue;
                    };
                    let declared = rule.as_object().expect("properties is an object");
                    let given: Vec<_> = declared
                        .iter()
                        .filter_map(|(name, property)| Some((name, property, object.get(name)?)))
                        .collect();
                    // Recorded before descending, which records too.
                    self.seen
                        .borrow_mut()
                        .entry(at.to_owned())
                        .or_default()
                        .extend(given.iter().map(|(name, ..)| (*name).clone()));
                    for (name, property, inner) in given {
                        let at = format!("{at}/properties/{name}");
                        self.walk(&at, property, inner, &format!("{path}.{name}"), errors);
                    }
                }
                "items" => {
                    for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                        self.walk(
                            &format!("{at}/items"),
                            rule,
                            item,
                            &format!("{path}[{i}]"),
                            errors,
                        );
                    }
                }
                word if DESCRIPTIVE.contains(&word) => {}
                "const" | "enum" | "minimum" | "maximum" | "minLength" | "maxItems" | "pattern" => {
                }
                other => panic!("{at}: the checker does not read the schema word {other:?}"),
            }
        }
    }

    /// Every property an object schema under `prefix` documents was given
    /// by some body, so the document describes nothing kvapi never writes.
    fn assert_every_property_seen(&self, prefix: &str) {
        let seen = self.seen.borrow();
        let mut unseen = Vec::new();
        for (at, names) in seen.iter().filter(|(at, _)| at.starts_with(prefix)) {
            let declared = self.at(at)["properties"].as_object().unwrap();
            for name in declared.keys().filter(|name| !names.contains(*name)) {
                unseen.push(format!("{at}: {name}"));
            }
        }
        assert!(
            unseen.is_empty(),
            "documented but never written by kvapi:\n{}",
            unseen.join("\n")
        );
    }
}

fn is_type(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown type {other:?}"),
    }
}

const SCHEMAS: &str = "#/components/schemas/";

fn json_of(at: &str) -> String {
    format!("{at}/content/application~1json/schema")
}

#[test]
fn every_kvapi_body_is_one_its_schema_allows_and_every_documented_property_is_written() {
    let checker = Checker::new();
    let ttl = Some(Duration::from_millis(1500));
    let schema = |name: &str| format!("{SCHEMAS}{name}");

    let writes = [
        StoreTtl::Omitted,
        StoreTtl::Null,
        StoreTtl::Seconds(Duration::from_millis(500)),
    ];
    for ttl in writes {
        let write = StoreWrite {
            key: "k".into(),
            value: "v".into(),
            ttl,
        };
        checker.check(
            &json_of("#/paths/~1store/post/requestBody"),
            &write,
            "POST /store body",
        );
        checker.check(
            &json_of("#/paths/~1store/put/requestBody"),
            &write,
            "PUT /store body",
        );
    }
    checker.check(
        &schema("Entry"),
        &Entry::new("k", b"v", 1, None),
        "a text entry",
    );
    checker.check(
        &schema("Entry"),
        &Entry::new("k", &[0xff], 2, ttl),
        "a binary entry with a TTL",
    );
    checker.check(&schema("Deleted"), &Deleted::new("k"), "the delete answer");

    checker.check(
        &schema("Written"),
        &Written::new("k", 1, true, None),
        "a create",
    );
    checker.check(
        &schema("Written"),
        &Written::new("k", 2, false, ttl),
        "a replace with a TTL",
    );
    let page = ListPage {
        items: vec![
            ListItem::new("a", b"v", 1, None, false),
            ListItem::new("b", b"v", 2, ttl, true),
            ListItem::new("c", &[0xff], 3, None, true),
        ],
        next: Some("Yw".into()),
    };
    checker.check(&schema("ListPage"), &page, "a page with a next one");
    let last = ListPage {
        items: vec![],
        next: None,
    };
    checker.check(&schema("ListPage"), &last, "the last page");

    let info = |log, memory| Info {
        name: "kvstore".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        backend: "embedded".into(),
        uptime_seconds: 1,
        keys: 2,
        revision: 3,
        expired_keys_reclaimed: 4,
        tuning: "read-heavy".into(),
        durability: "everysec".into(),
        limits: InfoLimits {
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
            max_body_bytes: 2 << 20,
        },
        log,
        memory,
    };
    let unbounded = InfoMemory {
        used_bytes: 5,
        bound_bytes: None,
        eviction: "reject".into(),
        evicted_keys: 0,
    };
    let bounded = InfoMemory {
        used_bytes: 5,
        bound_bytes: Some(6),
        eviction: "evict-lru".into(),
        evicted_keys: 7,
    };
    let figures = LogFigures {
        log_bytes: 1,
        snapshot_bytes: 2,
        fsyncs: 3,
        compactions: 4,
    };
    checker.check(
        &schema("Info"),
        &info(None, unbounded.clone()),
        "info in memory",
    );
    let on_etcd = Info {
        backend: "etcd".into(),
        tuning: "none".into(),
        durability: "raft".into(),
        ..info(None, unbounded)
    };
    checker.check(&schema("Info"), &on_etcd, "info on etcd");
    checker.check(
        &schema("Info"),
        &info(Some(figures), bounded),
        "info with a data directory and a memory bound",
    );

    let health = |path: &str| json_of(&format!("#/paths/{path}/get/responses/200"));
    let ok = Health {
        status: HealthStatus::Ok,
    };
    checker.check(&health("~1healthz"), &ok, "/healthz");
    let ready = Health {
        status: HealthStatus::Ready,
    };
    checker.check(&health("~1readyz"), &ready, "/readyz");

    for code in ErrorCode::ALL {
        let body = ErrorBody::new("a sentence", code);
        checker.check(&schema("Error"), &body, code.as_str());
    }
    let helpful = ErrorBody {
        key: Some("k".into()),
        current_version: Some(Some(3)),
        limit: Some(10),
        size: Some(11),
        used: Some(9),
        oldest_revision: Some(4),
        ..ErrorBody::new("a sentence", ErrorCode::VersionMismatch)
    };
    checker.check(&schema("Error"), &helpful, "every helpful field");

    let events = [
        WatchEvent::new(1, "k", WatchKind::Put, Some(b"v"), None),
        WatchEvent::new(2, "k", WatchKind::Put, Some(&[0xff]), ttl),
        WatchEvent::new(3, "k", WatchKind::Delete, None, None),
        WatchEvent::new(4, "k", WatchKind::Expire, None, None),
    ];
    for event in &events {
        checker.check(&schema("WatchEvent"), event, event.kind.as_str());
    }

    let schemas = checker.document["components"]["schemas"]
        .as_object()
        .unwrap();
    for (name, documented) in schemas {
        if documented.get("properties").is_some() {
            let at = format!("{SCHEMAS}{name}");
            assert!(
                checker.seen.borrow().contains_key(&at),
                "no kvapi body for {at}"
            );
        }
    }
    checker.assert_every_property_seen(SCHEMAS);
    checker.assert_every_property_seen("#/paths/");
}

#[test]
fn the_errors_kvserver_answers_are_those_their_responses_document() {
    let checker = Checker::new();
    let responses = "#/components/responses/";
    let key = || "k".to_owned();
    let cases = [
        (
            ApiError::NotFound { key: key() },
            format!("{responses}NotFound"),
        ),
        (
            ApiError::PreconditionAbsent { key: key() },
            format!("{responses}PreconditionFailed"),
        ),
        (
            ApiError::VersionMismatch {
                key: key(),
                message: "key \"k\" is at version 3".into(),
                current_version: Some(3),
            },
            format!("{responses}PreconditionFailed"),
        ),
        (
            ApiError::VersionMismatch {
                key: key(),
                message: "key \"k\" does not exist".into(),
                current_version: None,
            },
            format!("{responses}PreconditionFailed"),
        ),
        (
            ApiError::AlreadyExists {
                key: key(),
                current_version: 3,
                status: StatusCode::PRECONDITION_FAILED,
            },
            format!("{responses}PreconditionFailed"),
        ),
        (
            ApiError::AlreadyExists {
                key: key(),
                current_version: 3,
                status: StatusCode::CONFLICT,
            },
            "#/paths/~1store/post/responses/409".to_owned(),
        ),
        (
            ApiError::PayloadTooLarge {
                what: "value",
                size: 11,
                limit: 10,
            },
            format!("{responses}PayloadTooLarge"),
        ),
        (
            ApiError::InvalidRequest("bad".into()),
            format!("{responses}BadRequest"),
        ),
        (
            ApiError::InsufficientStorage {
                needed: 80,
                used: 1000,
                bound: 1024,
            },
            format!("{responses}InsufficientStorage"),
        ),
        (
            ApiError::BodyTimeout { seconds: 10 },
            format!("{responses}RequestTimeout"),
        ),
        (ApiError::Unavailable, format!("{responses}Unavailable")),
        (
            ApiError::Compacted {
                requested: 1,
                oldest: 4,
            },
            format!("{responses}Compacted"),
        ),
        (
            ApiError::Unauthorized {
                message: "no token".into(),
            },
            format!("{responses}Unauthorized"),
        ),
        (
            ApiError::Forbidden {
                message: "read only".into(),
            },
            format!("{responses}Forbidden"),
        ),
        (
            ApiError::Internal(anyhow_error()),
            format!("{responses}Internal"),
        ),
    ];
    for (error, response) in cases {
        checker.check(&json_of(&response), &error.body(), &format!("{error:?}"));
    }
}

fn anyhow_error() -> anyhow::Error {
    std::io::Error::other("disk on fire").into()
}

#[test]
fn header_and_parameter_names_and_listing_limits_are_kvapis() {
    let checker = Checker::new();
    let headers = checker.document["components"]["headers"]
        .as_object()
        .unwrap();
    for name in [kvapi::ETAG, kvapi::TTL_MS] {
        assert!(
            headers.contains_key(name),
            "the {name} header is documented"
        );
    }
    // The ETag's documented shape is what kvapi writes.
    assert_eq!(headers[kvapi::ETAG]["schema"]["pattern"], "^\"[0-9]+\"$");
    let etag = kvapi::format_etag(46);
    let digits = etag
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'));
    assert!(digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())));

    let mut parameters = BTreeSet::new();
    collect_parameters(&checker.document, &mut parameters);
    let conditions = [kvapi::Condition::Absent, kvapi::Condition::Present];
    for (name, _) in conditions.iter().filter_map(|condition| condition.header()) {
        assert!(
            parameters.contains(&("header".into(), name.into())),
            "{name} is documented"
        );
    }
    let changes = [
        kvapi::TtlChange::Set(Duration::from_secs(1)),
        kvapi::TtlChange::Persist,
    ];
    for (name, _) in changes.iter().filter_map(|change| change.query()) {
        assert!(
            parameters.contains(&("query".into(), name.into())),
            "{name}= is documented"
        );
    }
    use kvapi::url;
    for name in [
        url::KEY,
        url::TTL,
        url::PERSIST,
        url::PREFIX,
        url::CURSOR,
        url::LIMIT,
        url::VALUES,
        url::FROM,
    ] {
        assert!(
            parameters.contains(&("query".into(), name.into())),
            "?{name}= is documented"
        );
    }
    let paths = checker.document["paths"].as_object().unwrap();
    let key_path = format!("{}{{key}}", url::KV_KEY_PREFIX);
    for path in [
        url::STORE,
        url::KV,
        &key_path,
        url::INFO,
        url::HEALTHZ,
        url::READYZ,
        url::WATCH,
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    let limit = &checker.document["components"]["parameters"]["Limit"]["schema"];
    assert_eq!(limit["default"], kvapi::DEFAULT_LIST_LIMIT);
    assert_eq!(limit["maximum"], kvapi::MAX_LIST_LIMIT);
    let items = &checker.at(&format!("{SCHEMAS}ListPage"))["properties"]["items"];
    assert_eq!(items["maxItems"], kvapi::MAX_LIST_LIMIT);
}

/// `(in, name)` of every parameter object in the document.
fn collect_parameters(value: &Value, found: &mut BTreeSet<(String, String)>) {
    match value {
        Value::Object(object) => {
            if let (Some(Value::String(place)), Some(Value::String(name))) =
                (object.get("in"), object.get("name"))
            {
                found.insert((place.clone(), name.clone()));
            }
            object
                .values()
                .for_each(|inner| collect_parameters(inner, found));
        }
        Value::Array(list) => list
            .iter()
            .for_each(|inner| collect_parameters(inner, found)),
        _ => {}
    }
}
