//! Admission policies in Rego, compiled and evaluated in-process by regorus. A compiled
//! policy is kept per process by its sha256, so each evaluation clones it and sets only the
//! input; every evaluation has a time limit.

use std::num::NonZeroU32;
use std::time::Duration;

use gantry_domain::admission::{AdmissionEngine, DENY_RULE, policy_digest};
use gantry_domain::kept::Kept;
use gantry_domain::values::Digest;
use gantry_domain::{DomainError, Result};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

/// How long one evaluation may run.
const TIME_LIMIT: Duration = Duration::from_millis(250);
/// Compiled policies kept per process.
const KEPT: usize = 64;
/// The package a policy must declare.
const PACKAGE: &str = "data.gantry.admission";

#[derive(Clone)]
pub struct RegoEngine {
    compiled: Kept<Digest, Engine>,
}

impl Default for RegoEngine {
    fn default() -> Self {
        Self { compiled: Kept::new(KEPT) }
    }
}

impl RegoEngine {
    pub fn new() -> Self {
        Self::default()
    }

    /// The policy compiled, or why it does not compile.
    fn compile(&self, rego: &str) -> std::result::Result<Engine, String> {
        let digest = policy_digest(rego);
        if let Some(engine) = self.compiled.get(&digest) {
            return Ok(engine);
        }
        let mut engine = Engine::new();
        engine.set_rego_v0(false);
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: TIME_LIMIT,
            check_interval: NonZeroU32::new(64).expect("not zero"),
        });
        engine.add_policy("admission.rego".into(), rego.into()).map_err(|e| e.to_string())?;
        let packages = engine.get_packages().map_err(|e| e.to_string())?;
        if !packages.iter().any(|p| p == PACKAGE) {
            return Err("the policy must declare `package gantry.admission`".into());
        }
        self.compiled.keep(digest, engine.clone());
        Ok(engine)
    }

    fn evaluate(engine: &mut Engine, input: &serde_json::Value) -> std::result::Result<Option<Vec<String>>, String> {
        engine.set_input(Value::from_json_str(&input.to_string()).map_err(|e| e.to_string())?);
        let result = engine.eval_rule(DENY_RULE.into()).map_err(|e| e.to_string())?;
        if result == Value::Undefined {
            return Ok(None);
        }
        let json: serde_json::Value =
            serde_json::from_str(&result.to_json_str().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let reasons = json.as_array().ok_or("`deny` must be a set of strings")?;
        let mut denials = Vec::with_capacity(reasons.len());
        for reason in reasons {
            match reason {
                serde_json::Value::String(s) => denials.push(s.clone()),
                other => denials.push(other.to_string()),
            }
        }
        Ok(Some(denials))
    }
}

impl AdmissionEngine for RegoEngine {
    fn check(&self, rego: &str) -> Result<()> {
        let mut engine = self.compile(rego).map_err(|e| DomainError::validation(format!("admissionPolicy: {e}")))?;
        // On an empty input the package's document must hold `deny` (an empty set, even).
        engine.set_input(
            Value::from_json_str(r#"{"components": []}"#).map_err(|e| DomainError::internal(e.to_string()))?,
        );
        let defines_deny = match engine.eval_query(PACKAGE.into(), false) {
            Ok(results) => {
                results.result.iter().flat_map(|r| &r.expressions).any(|x| x.value["deny"] != Value::Undefined)
            }
            // A rule that fails on an empty input may well hold on a real one.
            Err(_) => true,
        };
        if !defines_deny {
            return Err(DomainError::validation("admissionPolicy: the policy defines no `deny` rule"));
        }
        Ok(())
    }

    fn denials(&self, rego: &str, input: &serde_json::Value) -> Result<Vec<String>> {
        let fail = |e: String| {
            tracing::warn!(error = %e, "admission policy failed");
            DomainError::Unresolvable(format!("the admission policy could not be evaluated: {e}"))
        };
        let mut engine = self.compile(rego).map_err(fail)?;
        Ok(Self::evaluate(&mut engine, input).map_err(fail)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_are_checked_and_give_their_reasons() {
        let engine = RegoEngine::new();
        let rego = "package gantry.admission\nimport rego.v1\ndeny contains m if { some c in input.components; not c.ok; m := sprintf(\"%s: not ok\", [c.name]) }";
        engine.check(rego).unwrap();
        let input = json!({ "components": [{ "name": "a", "ok": true }, { "name": "b", "ok": false }] });
        assert_eq!(engine.denials(rego, &input).unwrap(), ["b: not ok"]);
        for (bad, why) in [
            ("package gantry.admission\ndeny contains", "admissionPolicy:"),
            ("package other\nimport rego.v1\ndeny contains 1 if true", "package gantry.admission"),
            ("package gantry.admission\nimport rego.v1\nallow := true", "no `deny` rule"),
        ] {
            let err = engine.check(bad).map(|()| bad).unwrap_err();
            assert!(matches!(&err, DomainError::Validation(m) if m.contains(why)), "{bad}: {err:?}");
        }
    }

    /// A component as the default policy wants it, from a trusted builder.
    fn admitted(repository: Option<&str>) -> serde_json::Value {
        json!({
            "release": { "sourceRef": { "repository": repository, "commitSha": "abc" } },
            "environment": { "trustedBuilders": ["b"] },
            "components": [{ "component": "web", "signature": { "verdict": "verified", "key": "k" },
                "provenance": [{ "builderId": "b", "sourceRepository": "https://git.example/acme/shop.git", "commit": "abc" }],
                "sboms": [{ "format": "spdx" }], "vulnerabilities": [{ "id": "CVE-1", "severity": "critical" }],
                "vex": [{ "vulnerability": "CVE-1", "status": "not_affected" }] }]
        })
    }

    #[test]
    fn the_default_policy_compiles_and_names_each_rule() {
        use gantry_domain::admission::DEFAULT_POLICY;
        let engine = RegoEngine::new();
        engine.check(DEFAULT_POLICY).unwrap();
        for repository in [None, Some("acme/shop"), Some("https://git.example/acme/shop")] {
            let denied = engine.denials(DEFAULT_POLICY, &admitted(repository)).unwrap();
            assert!(denied.is_empty(), "{repository:?}: {denied:?}");
        }
        // A keyless signature with its log entry stands.
        let mut keyless = admitted(None);
        keyless["components"][0]["signature"]["identity"] =
            json!({ "subject": "ci@acme.example", "issuer": "https://i" });
        keyless["components"][0]["signature"]["log"] = json!({ "logIndex": 7, "integratedTime": 1, "logId": "ab" });
        assert_eq!(engine.denials(DEFAULT_POLICY, &keyless).unwrap(), Vec::<String>::new());
        type Change = fn(&mut serde_json::Value);
        let cases: [(&str, Change); 8] = [
            ("signature", |i| i["components"][0]["signature"] = json!({ "verdict": "unsigned" })),
            ("tlog", |i| {
                i["components"][0]["signature"]["identity"] =
                    json!({ "subject": "ci@acme.example", "issuer": "https://issuer.example" })
            }),
            ("provenance", |i| i["components"][0]["provenance"] = json!([])),
            ("builder", |i| i["environment"]["trustedBuilders"] = json!(["other"])),
            ("source", |i| i["release"]["sourceRef"]["commitSha"] = json!("def")),
            ("source", |i| i["release"]["sourceRef"]["repository"] = json!("evil-acme/shop")),
            ("sbom", |i| i["components"][0]["sboms"] = json!([])),
            ("vulnerabilities", |i| i["components"][0]["vex"] = json!([])),
        ];
        for (rule, change) in cases {
            let mut input = admitted(Some("acme/shop"));
            change(&mut input);
            let denied = engine.denials(DEFAULT_POLICY, &input).unwrap();
            assert_eq!(denied.len(), 1, "{rule}: {denied:?}");
            assert!(denied[0].starts_with("web: ") && denied[0].ends_with(&format!("(rule {rule})")), "{denied:?}");
        }
    }

    #[test]
    fn a_policy_that_runs_too_long_is_stopped() {
        let engine = RegoEngine::new();
        let rego = "package gantry.admission\nimport rego.v1\ndeny contains x if { some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); x := i * j; x < 0 }";
        let started = std::time::Instant::now();
        let err = engine.denials(rego, &json!({})).unwrap_err();
        assert!(matches!(err, DomainError::Unresolvable(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }
}
