//! A provider's OpenAPI description as a request checker, for the stand-ins tests run
//! against: a request must name a declared path and method, use only declared query
//! parameters, carry the required ones, give path parameters of the declared type, and send
//! a body its schema accepts (inline or `$ref`, resolved against the description).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Value, json};

mod faults;
mod stand_in;

pub use faults::{Fault, Faults};
pub use stand_in::{Request, StandIn};

/// One declared operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    /// `(name, in, required)` of every declared parameter; `in` is `path`, `query` or `header`.
    params: Vec<(String, String, bool)>,
    /// Path parameters declared as integers.
    integer_params: Vec<String>,
    body_schema: Option<Value>,
    body_required: bool,
    /// `(name, required)` of its `formData` parameters, when it consumes a form (Swagger 2).
    form: Option<Vec<(String, bool)>>,
}

/// A request that breaks the contract, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub method: String,
    pub path: String,
    pub reason: String,
}

pub struct Contract {
    doc: Value,
    /// `(path template segments, method) -> operation`.
    routes: Vec<(Vec<String>, String, Operation)>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => r.strip_prefix("#/").map_or(v, |p| p.split('/').fold(doc, |node, key| &node[key])),
        None => v,
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

impl Contract {
    pub fn load(yaml: &str) -> Result<Self, String> {
        let doc: Value =
            serde_yaml_ng::from_str::<serde_json::Value>(yaml).map_err(|e| format!("contract does not parse: {e}"))?;
        let mut routes = Vec::new();
        for (path, item) in doc["paths"].as_object().ok_or("contract has no paths")? {
            let segments: Vec<String> = path.trim_matches('/').split('/').map(str::to_owned).collect();
            for (method, op) in item.as_object().into_iter().flatten() {
                if METHODS.contains(&method.as_str()) {
                    routes.push((segments.clone(), method.to_uppercase(), operation(&doc, op)));
                }
            }
        }
        Ok(Self { doc, routes, validators: Mutex::new(HashMap::new()) })
    }

    fn validator(&self, op: &Operation, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let mut cache = self.validators.lock().unwrap();
        if let Some(v) = cache.get(&op.id) {
            return Ok(v.clone());
        }
        // The schema sits beside the description's components (OpenAPI 3) and definitions
        // (Swagger 2), so `#/components/...` and `#/definitions/...` resolve.
        let mut root = json!({ "allOf": [schema] });
        for key in ["components", "definitions"] {
            if let Some(found) = self.doc.get(key) {
                root[key] = found.clone();
            }
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(&root)
            .map_err(|e| format!("the body schema of {} does not compile: {e}", op.id))?;
        let validator = Arc::new(validator);
        cache.insert(op.id.clone(), validator.clone());
        Ok(validator)
    }

    /// Checks a request (its path relative to the API's base). Returns the operation and the
    /// path parameters, or why the request breaks the contract.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(Operation, HashMap<String, String>), String> {
        let (tpl, op) = self.route(method, path)?;
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let path_params: HashMap<String, String> = tpl
            .iter()
            .zip(&segments)
            .filter_map(|(t, s)| {
                t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).map(|name| (name.to_owned(), (*s).to_owned()))
            })
            .collect();
        for name in &op.integer_params {
            if path_params.get(name).is_some_and(|v| v.parse::<i64>().is_err()) {
                return Err(format!("path parameter {name:?} of {} must be an integer", op.id));
            }
        }
        check_params(op, query, headers)?;
        match &op.form {
            Some(fields) => check_form(op, fields, headers, body)?,
            None => self.check_body(op, body)?,
        }
        Ok((op.clone(), path_params))
    }

    /// Checks a request as a stand-in's handler receives it, its path under `base` (the
    /// API's prefix, such as `/v1`, or empty); a violation says what broke.
    pub fn check_http(
        &self,
        base: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(Operation, HashMap<String, String>), Violation> {
        let path = uri.path();
        let violation = |reason: String| Violation { method: method.to_string(), path: path.to_owned(), reason };
        let rest =
            path.strip_prefix(base).ok_or_else(|| violation(format!("every path of this API starts with {base}")))?;
        let query = query_pairs(uri.query());
        let headers: Vec<(String, String)> =
            headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
        self.check(method.as_str(), rest, &query, &headers, body).map_err(violation)
    }

    /// The operation a method and path name; literal segments win over parameters, as
    /// routers do.
    fn route(&self, method: &str, path: &str) -> Result<(&Vec<String>, &Operation), String> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut candidates: Vec<_> = self
            .routes
            .iter()
            .filter(|(tpl, _, _)| {
                tpl.len() == segments.len() && tpl.iter().zip(&segments).all(|(t, s)| t.starts_with('{') || t == s)
            })
            .collect();
        candidates.sort_by_key(|(tpl, _, _)| tpl.iter().filter(|t| t.starts_with('{')).count());
        let Some(best) = candidates.first().map(|(tpl, _, _)| tpl) else {
            return Err(format!("no path {path} in the contract"));
        };
        candidates
            .iter()
            .filter(|(t, _, _)| t == best)
            .find(|(_, m, _)| m == method)
            .map(|(t, _, op)| (t, op))
            .ok_or_else(|| format!("{method} is not declared for {path}"))
    }

    fn check_body(&self, op: &Operation, body: &[u8]) -> Result<(), String> {
        match (&op.body_schema, body.is_empty()) {
            (None, false) => Err(format!("{} takes no body", op.id)),
            (Some(_), true) if op.body_required => Err(format!("{} requires a body", op.id)),
            (Some(schema), false) => {
                let value: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
                match self.validator(op, schema)?.iter_errors(&value).next() {
                    Some(err) => Err(format!("body breaks {}: {err} at {}", op.id, err.instance_path)),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

fn operation(doc: &Value, op: &Value) -> Operation {
    let declared: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().map(|p| resolve(doc, p)).collect();
    let params = declared
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["in"].as_str().unwrap_or_default().to_owned(),
                p["required"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    // OpenAPI 3 types a parameter under `schema`; Swagger 2 on the parameter itself.
    let integer_params = declared
        .iter()
        .filter(|p| p["in"] == "path" && (p["schema"]["type"] == "integer" || p["type"] == "integer"))
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let (body_schema, body_required) = match op.get("requestBody").map(|b| resolve(doc, b)) {
        Some(b) => (b["content"]["application/json"]["schema"].clone(), b["required"].as_bool().unwrap_or(false)),
        // Swagger 2: the body is a parameter `in: body`.
        None => match declared.iter().find(|p| p["in"] == "body") {
            Some(p) => (p["schema"].clone(), p["required"].as_bool().unwrap_or(false)),
            None => (Value::Null, false),
        },
    };
    let consumes_form = op["consumes"].as_array().is_some_and(|c| c.iter().any(|t| t == FORM));
    let form = consumes_form.then(|| {
        declared
            .iter()
            .filter(|p| p["in"] == "formData")
            .map(|p| (p["name"].as_str().unwrap_or_default().to_owned(), p["required"].as_bool().unwrap_or(false)))
            .collect()
    });
    Operation {
        id: op["operationId"].as_str().unwrap_or_default().to_owned(),
        params,
        integer_params,
        body_schema: Some(body_schema).filter(|s| !s.is_null()),
        body_required,
        form,
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A form body: sent as one, with every required field. Fields the
/// description does not name are let through (Jenkins takes a job's own parameters).
fn check_form(
    op: &Operation,
    fields: &[(String, bool)],
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(), String> {
    let content_type = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.as_str());
    if !body.is_empty() && !content_type.is_some_and(|t| t.starts_with(FORM)) {
        return Err(format!("{} takes a body of {FORM}", op.id));
    }
    let sent = form_pairs(body);
    match fields.iter().find(|(name, required)| *required && !sent.iter().any(|(n, _)| n == name)) {
        Some((name, _)) => Err(format!("form field {name:?} is required by {}", op.id)),
        None => Ok(()),
    }
}

/// The decoded pairs of a form body.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn check_params(op: &Operation, query: &[(String, String)], headers: &[(String, String)]) -> Result<(), String> {
    for (name, _) in query {
        if !op.params.iter().any(|(n, i, _)| n == name && i == "query") {
            return Err(format!("query parameter {name:?} is not declared for {}", op.id));
        }
    }
    for (name, location, required) in &op.params {
        let present = match location.as_str() {
            "query" => query.iter().any(|(n, _)| n == name),
            "header" => headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)),
            // Path parameters are matched by the route; the body is checked on its own.
            _ => true,
        };
        if *required && !present {
            return Err(format!("{location} parameter {name:?} is required by {}", op.id));
        }
    }
    Ok(())
}

pub use rustls;

/// Serves a stand-in over TLS with `config` (which may demand a client certificate) on a
/// random loopback port until the test ends; its base URL, `https://127.0.0.1:<port>`. A
/// handshake the configuration refuses ends that connection.
pub async fn serve_tls(app: axum::Router, config: std::sync::Arc<rustls::ServerConfig>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("https://{}", listener.local_addr().expect("a bound port"));
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(stream).into_fallible().await {
                    Ok(tls) => tls,
                    // A refused handshake (its alert sent): what the client sent meanwhile is
                    // read before closing, so the close is a FIN after the alert, not a reset
                    // that could reach the client before it reads the alert.
                    Err((_, mut stream)) => {
                        use tokio::io::AsyncReadExt;
                        let mut buf = [0u8; 4096];
                        let drain = async { while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {} };
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
                        return;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    url
}

/// Serves a stand-in on a random loopback port until the test ends; its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("a bound port"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the stand-in serves") });
    url
}

/// The query pairs of a URI's query string (undecoded; tests send plain values).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}
