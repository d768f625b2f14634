//! The ELBv2 API model (an excerpt of botocore's `service-2.json`) as a request checker for
//! the Query protocol: `Action` names a modelled operation, every other parameter is a path
//! through its input shape (`Name.member.N.Field`), scalars parse as their type, enums take
//! their values, and every required member of a structure given is there.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

pub struct Model(Value);

impl Model {
    pub fn load(json: &str) -> Self {
        Self(serde_json::from_str(json).expect("the ELBv2 model excerpt parses"))
    }

    fn shape(&self, name: &str) -> &Value {
        &self.0["shapes"][name]
    }

    /// The error code (`ListenerNotFound`) of an error shape.
    pub fn error_code(&self, shape: &str) -> Option<String> {
        self.shape(shape)["error"]["code"].as_str().map(str::to_owned)
    }

    /// Whether `operation` declares the error shape `shape`.
    pub fn declares_error(&self, operation: &str, shape: &str) -> bool {
        let errors = self.0["operations"][operation]["errors"].as_array().cloned().unwrap_or_default();
        errors.iter().any(|e| e["shape"] == shape)
    }

    /// Checks a request's parameters (`Action` and `Version` aside) against the operation's
    /// input shape; why it breaks the model.
    pub fn check(&self, action: &str, params: &BTreeMap<String, String>) -> Result<(), String> {
        let op = &self.0["operations"][action];
        let Some(input) = op["input"]["shape"].as_str() else {
            return Err(format!("{action} is not an operation of the model excerpt"));
        };
        for (key, value) in params {
            let path: Vec<&str> = key.split('.').collect();
            self.check_path(input, &path, value).map_err(|why| format!("{action}: parameter {key}: {why}"))?;
        }
        self.check_required(input, "", params).map_err(|why| format!("{action}: {why}"))
    }

    fn check_path(&self, shape: &str, path: &[&str], value: &str) -> Result<(), String> {
        let s = self.shape(shape);
        match (s["type"].as_str().unwrap_or_default(), path) {
            ("structure", [member, rest @ ..]) => {
                let Some(m) = s["members"][*member]["shape"].as_str() else {
                    return Err(format!("{shape} has no member {member}"));
                };
                self.check_path(m, rest, value)
            }
            ("list", ["member", index, rest @ ..]) => {
                if index.parse::<u32>().map_or(true, |i| i == 0) {
                    return Err(format!("list index {index} must be 1 or more"));
                }
                self.check_path(s["member"]["shape"].as_str().unwrap_or_default(), rest, value)
            }
            ("list", _) => Err(format!("a list ({shape}) is written Name.member.N")),
            ("structure", []) => Err(format!("{shape} is a structure, not a value")),
            (scalar, []) => self.check_scalar(shape, scalar, value),
            (other, _) => Err(format!("{shape} ({other}) has no members")),
        }
    }

    fn check_scalar(&self, shape: &str, kind: &str, value: &str) -> Result<(), String> {
        let s = self.shape(shape);
        let ok = match kind {
            "integer" | "long" => value.parse::<i64>().is_ok(),
            "boolean" => matches!(value, "true" | "false"),
            "string" => match s["enum"].as_array() {
                Some(values) => values.iter().any(|v| v == value),
                None => true,
            },
            _ => true,
        };
        if !ok {
            return Err(format!("{value:?} is not a valid {shape} ({kind})"));
        }
        if let (Some(min), true) = (s["min"].as_u64(), kind == "string")
            && (value.len() as u64) < min
        {
            return Err(format!("{shape} is shorter than {min}"));
        }
        Ok(())
    }

    /// Every required member of `shape` (at `prefix`) is given when anything under it is.
    fn check_required(&self, shape: &str, prefix: &str, params: &BTreeMap<String, String>) -> Result<(), String> {
        let s = self.shape(shape);
        match s["type"].as_str() {
            Some("structure") => {
                for required in s["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    let key = format!("{prefix}{required}");
                    if !params.keys().any(|k| k == &key || k.starts_with(&format!("{key}."))) {
                        return Err(format!("{key} is required"));
                    }
                }
                for (name, member) in s["members"].as_object().into_iter().flatten() {
                    let key = format!("{prefix}{name}");
                    if params.keys().any(|k| k.starts_with(&format!("{key}."))) {
                        self.check_required(member["shape"].as_str().unwrap_or_default(), &format!("{key}."), params)?;
                    }
                }
                Ok(())
            }
            Some("list") => {
                let indexes: BTreeSet<&str> = params
                    .keys()
                    .filter_map(|k| k.strip_prefix(&format!("{prefix}member."))?.split('.').next())
                    .collect();
                let member = s["member"]["shape"].as_str().unwrap_or_default();
                for i in indexes {
                    self.check_required(member, &format!("{prefix}member.{i}."), params)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
