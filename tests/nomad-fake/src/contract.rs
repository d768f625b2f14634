//! Nomad's OpenAPI contract, as a request checker.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

/// One declared operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    /// `(name, in)` of every declared parameter; `in` is `path`, `query` or `header`.
    params: Vec<(String, String, bool)>,
    body_schema: Option<String>,
    body_required: bool,
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
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => r.strip_prefix("#/").map_or(v, |p| p.split('/').fold(doc, |node, key| &node[key])),
        None => v,
    }
}

impl Contract {
    pub fn load(yaml: &str) -> Result<Self, String> {
        let doc: Value =
            serde_yaml_ng::from_str::<serde_json::Value>(yaml).map_err(|e| format!("contract does not parse: {e}"))?;
        let mut routes = Vec::new();
        for (path, item) in doc["paths"].as_object().ok_or("contract has no paths")? {
            let segments: Vec<String> = path.trim_matches('/').split('/').map(str::to_owned).collect();
            for (method, op) in item.as_object().into_iter().flatten() {
                if !["get", "post", "put", "delete"].contains(&method.as_str()) {
                    continue;
                }
                let params = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let p = resolve(&doc, p);
                        (
                            p["name"].as_str().unwrap_or_default().to_owned(),
                            p["in"].as_str().unwrap_or_default().to_owned(),
                            p["required"].as_bool().unwrap_or(false),
                        )
                    })
                    .collect();
                let body = op.get("requestBody").map(|b| resolve(&doc, b));
                let body_schema =
                    body.and_then(|b| b["content"]["application/json"]["schema"]["$ref"].as_str()).map(str::to_owned);
                let body_required = body.is_some_and(|b| b["required"].as_bool().unwrap_or(false));
                let id = op["operationId"].as_str().unwrap_or_default().to_owned();
                routes.push((
                    segments.clone(),
                    method.to_uppercase(),
                    Operation { id, params, body_schema, body_required },
                ));
            }
        }
        Ok(Self { doc, routes, validators: Mutex::new(HashMap::new()) })
    }

    fn validator(&self, schema_ref: &str) -> Result<std::sync::Arc<jsonschema::Validator>, String> {
        let mut cache = self.validators.lock().unwrap();
        if let Some(v) = cache.get(schema_ref) {
            return Ok(v.clone());
        }
        let schema = json!({ "$ref": schema_ref, "components": self.doc["components"] });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(&schema)
            .map_err(|e| format!("schema {schema_ref} does not compile: {e}"))?;
        let validator = std::sync::Arc::new(validator);
        cache.insert(schema_ref.to_owned(), validator.clone());
        Ok(validator)
    }

    /// Checks a request (path without the `/v1` prefix). Returns the operation and the path
    /// parameters, or why the request breaks the contract.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(Operation, HashMap<String, String>), String> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        // Literal segments win over parameters, as routers do.
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
        let (tpl, _, op) = candidates
            .iter()
            .filter(|(t, _, _)| t == best)
            .find(|(_, m, _)| m == method)
            .ok_or_else(|| format!("{method} is not declared for {path}"))?;
        let path_params: HashMap<String, String> = tpl
            .iter()
            .zip(&segments)
            .filter_map(|(t, s)| {
                t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).map(|name| (name.to_owned(), (*s).to_owned()))
            })
            .collect();
        for (name, _) in query {
            if !op.params.iter().any(|(n, i, _)| n == name && i == "query") {
                return Err(format!("query parameter {name:?} is not declared for {}", op.id));
            }
        }
        for (name, location, required) in &op.params {
            let present = match location.as_str() {
                "query" => query.iter().any(|(n, _)| n == name),
                "header" => headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)),
                _ => true,
            };
            if *required && !present {
                return Err(format!("{location} parameter {name:?} is required by {}", op.id));
            }
        }
        match (&op.body_schema, body.is_empty()) {
            (None, false) => return Err(format!("{} takes no body", op.id)),
            (Some(_), true) if op.body_required => return Err(format!("{} requires a body", op.id)),
            (Some(schema), false) => {
                let value: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
                let validator = self.validator(schema)?;
                if let Some(err) = validator.iter_errors(&value).next() {
                    return Err(format!("body breaks {schema}: {err} at {}", err.instance_path));
                }
            }
            _ => {}
        }
        Ok((op.clone(), path_params))
    }
}
