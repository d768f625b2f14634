//! What an image's verified in-toto attestations say, summarised into the facts admission
//! policies read: SLSA provenance (builder, source repository, commit), SBOMs (SPDX or
//! CycloneDX), vulnerability scans (cosign's vuln predicate holding Trivy's or Grype's
//! report, or a plain list) and OpenVEX statements. Pure functions of the statements.

use serde::Serialize;
use serde_json::Value;

/// An in-toto Statement whose envelope verified under a trusted key and names the image.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedStatement {
    /// The trusted key it verified under.
    pub key: String,
    pub predicate_type: String,
    pub predicate: Value,
}

/// The attestations stored for an image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attestations {
    pub statements: Vec<VerifiedStatement>,
    /// Why each attestation that does not stand was refused.
    pub refused: Vec<String>,
    /// Where they are stored (`oci://host/repository:sha256-<hex>.att`), when any is.
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub builder_id: Option<String>,
    pub source_repository: Option<String>,
    pub commit: Option<String>,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sbom {
    /// `spdx` or `cyclonedx`.
    pub format: String,
    pub packages: usize,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vulnerability {
    pub id: String,
    /// Lower case: `critical`, `high`, `medium`, `low` or `unknown`.
    pub severity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VexStatement {
    pub vulnerability: String,
    /// OpenVEX's status: `not_affected`, `affected`, `fixed` or `under_investigation`.
    pub status: String,
    pub justification: Option<String>,
}

/// The facts an admission policy reads about one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFacts {
    pub provenance: Vec<Provenance>,
    pub sboms: Vec<Sbom>,
    pub vulnerabilities: Vec<Vulnerability>,
    pub vex: Vec<VexStatement>,
    /// Attestations stored and refused, and why.
    pub refused: Vec<String>,
}

/// Findings and statements read from one image, at most.
const MAX_ITEMS: usize = 5000;

/// What a predicate type says a statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Predicate {
    Provenance,
    Spdx,
    CycloneDx,
    Vulnerabilities,
    Vex,
}

/// The kind of statement a predicate type (an `https` URI) names, judged by its parsed host
/// and path; `None` for any other.
fn predicate(kind: &str) -> Option<Predicate> {
    let uri = url::Url::parse(kind).ok().filter(|u| u.scheme() == "https")?;
    let path = uri.path();
    let kind = match uri.host_str()? {
        "slsa.dev" if matches!(path, "/provenance/v1" | "/provenance/v0.2") => Predicate::Provenance,
        "spdx.dev" if path.starts_with("/Document") => Predicate::Spdx,
        "cyclonedx.org" if path.starts_with("/bom") => Predicate::CycloneDx,
        "cosign.sigstore.dev" if path.starts_with("/attestation/vuln/v1") => Predicate::Vulnerabilities,
        "in-toto.io" if path.starts_with("/attestation/vulns") => Predicate::Vulnerabilities,
        "openvex.dev" if path.starts_with("/ns") => Predicate::Vex,
        _ => return None,
    };
    Some(kind)
}

/// The facts the statements give.
pub fn summarize(attestations: &Attestations) -> ImageFacts {
    let mut facts = ImageFacts { refused: attestations.refused.clone(), ..Default::default() };
    for s in &attestations.statements {
        let count = |field: &str| s.predicate.get(field).and_then(Value::as_array).map_or(0, Vec::len);
        let sbom = |format: &str, packages| Sbom { format: format.into(), packages, key: s.key.clone() };
        match predicate(&s.predicate_type) {
            Some(Predicate::Provenance) => facts.provenance.push(provenance(&s.predicate, &s.key)),
            Some(Predicate::Spdx) => facts.sboms.push(sbom("spdx", count("packages"))),
            Some(Predicate::CycloneDx) => facts.sboms.push(sbom("cyclonedx", count("components"))),
            Some(Predicate::Vulnerabilities) => facts.vulnerabilities.extend(vulnerabilities(&s.predicate)),
            Some(Predicate::Vex) => facts.vex.extend(vex(&s.predicate)),
            None => {}
        }
    }
    facts.vulnerabilities.sort_by(|a, b| (&a.id, &a.severity).cmp(&(&b.id, &b.severity)));
    facts.vulnerabilities.dedup();
    facts.vulnerabilities.truncate(MAX_ITEMS);
    facts.vex.truncate(MAX_ITEMS);
    facts
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer).and_then(Value::as_str).map(str::to_owned)
}

/// SLSA v1 (`runDetails.builder.id`, the first resolved dependency with a commit) or v0.2
/// (`builder.id`, the first material with one). A git URI's `git+` and `@ref` are dropped.
fn provenance(p: &Value, key: &str) -> Provenance {
    let sources = p
        .pointer("/buildDefinition/resolvedDependencies")
        .or_else(|| p.get("materials"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let source = sources.iter().find(|d| commit_of(d).is_some());
    let repository = source.and_then(|d| d.get("uri")).and_then(Value::as_str).map(|uri| {
        let uri = uri.strip_prefix("git+").unwrap_or(uri);
        uri.split_once('@').map_or(uri, |(repo, _)| repo).to_owned()
    });
    Provenance {
        builder_id: text(p, "/runDetails/builder/id").or_else(|| text(p, "/builder/id")),
        source_repository: repository,
        commit: source.and_then(commit_of),
        key: key.to_owned(),
    }
}

fn commit_of(dependency: &Value) -> Option<String> {
    text(dependency, "/digest/gitCommit").or_else(|| text(dependency, "/digest/sha1"))
}

/// Findings from `scanner.result`: Trivy's report (`Results[].Vulnerabilities[]`), Grype's
/// (`matches[].vulnerability`), or a list of `{id, severity}`.
fn vulnerabilities(p: &Value) -> Vec<Vulnerability> {
    let result = p.pointer("/scanner/result").unwrap_or(&Value::Null);
    let finding = |id: Option<&Value>, severity: Option<&Value>| {
        Some(Vulnerability {
            id: id?.as_str()?.to_owned(),
            severity: severity.and_then(Value::as_str).unwrap_or("unknown").to_ascii_lowercase(),
        })
    };
    let items = |v: Option<&Value>| v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().to_vec();
    let mut found = Vec::new();
    for r in items(result.get("Results")) {
        for v in items(r.get("Vulnerabilities")) {
            found.extend(finding(v.get("VulnerabilityID"), v.get("Severity")));
        }
    }
    for m in items(result.get("matches")) {
        found.extend(finding(m.pointer("/vulnerability/id"), m.pointer("/vulnerability/severity")));
    }
    for v in items(Some(result)) {
        found.extend(finding(v.get("id"), v.get("severity")));
    }
    found.truncate(MAX_ITEMS);
    found
}

/// OpenVEX statements: the vulnerability's name (or `@id`), status and justification.
fn vex(p: &Value) -> Vec<VexStatement> {
    let statements = p.get("statements").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    statements
        .iter()
        .take(MAX_ITEMS)
        .filter_map(|s| {
            let v = s.get("vulnerability")?;
            let name = v.as_str().map(str::to_owned).or_else(|| text(v, "/name")).or_else(|| text(v, "/@id"))?;
            Some(VexStatement {
                vulnerability: name,
                status: s.get("status")?.as_str()?.to_owned(),
                justification: text(s, "/justification"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stated(kind: &str, predicate: Value) -> VerifiedStatement {
        VerifiedStatement { key: "ci".into(), predicate_type: kind.into(), predicate }
    }

    #[test]
    fn provenance_of_either_slsa_version_names_builder_repository_and_commit() {
        let v1 = json!({ "buildDefinition": { "resolvedDependencies": [
                { "uri": "git+https://github.com/acme/shop@refs/heads/main", "digest": { "gitCommit": "abc" } }] },
            "runDetails": { "builder": { "id": "https://github.com/actions/runner" } } });
        let v02 = json!({ "builder": { "id": "https://ci.example/builder" },
            "materials": [{ "uri": "pkg:x" }, { "uri": "git+https://git.example/shop.git", "digest": { "sha1": "def" } }] });
        let facts = summarize(&Attestations {
            statements: vec![
                stated("https://slsa.dev/provenance/v1", v1),
                stated("https://slsa.dev/provenance/v0.2", v02),
            ],
            ..Default::default()
        });
        let got: Vec<_> = facts
            .provenance
            .iter()
            .map(|p| (p.builder_id.as_deref(), p.source_repository.as_deref(), p.commit.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Some("https://github.com/actions/runner"), Some("https://github.com/acme/shop"), Some("abc")),
                (Some("https://ci.example/builder"), Some("https://git.example/shop.git"), Some("def")),
            ]
        );
    }

    #[test]
    fn sboms_scans_and_vex_are_read_in_each_documented_shape() {
        let trivy = json!({ "scanner": { "result": { "Results": [{ "Vulnerabilities": [
            { "VulnerabilityID": "CVE-1", "Severity": "CRITICAL" }, { "VulnerabilityID": "CVE-2", "Severity": "LOW" }] }] } } });
        let grype = json!({ "scanner": { "result": { "matches": [{ "vulnerability": { "id": "CVE-1", "severity": "Critical" } }] } } });
        let plain = json!({ "scanner": { "result": [{ "id": "GHSA-x", "severity": "high" }] } });
        let openvex = json!({ "statements": [
            { "vulnerability": { "name": "CVE-1" }, "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path" },
            { "vulnerability": "CVE-2", "status": "affected" }, { "status": "fixed" }] });
        let facts = summarize(&Attestations {
            statements: vec![
                stated("https://spdx.dev/Document", json!({ "packages": [{}, {}] })),
                stated("https://cyclonedx.org/bom/v1.5", json!({ "components": [{}] })),
                stated("https://cosign.sigstore.dev/attestation/vuln/v1", trivy),
                stated("https://cosign.sigstore.dev/attestation/vuln/v1", grype),
                stated("https://in-toto.io/attestation/vulns/v0.1", plain),
                stated("https://openvex.dev/ns/v0.2.0", openvex),
                stated("https://example.com/unknown", json!({})),
                // Judged by the parsed host: neither names SPDX.
                stated("https://spdx.dev.example.com/Document", json!({ "packages": [{}] })),
                stated("http://spdx.dev/Document", json!({ "packages": [{}] })),
            ],
            refused: vec!["an attestation: no trusted key verifies it".into()],
            reference: None,
        });
        let sboms: Vec<_> = facts.sboms.iter().map(|s| (s.format.as_str(), s.packages)).collect();
        assert_eq!(sboms, [("spdx", 2), ("cyclonedx", 1)]);
        let vulns: Vec<_> = facts.vulnerabilities.iter().map(|v| (v.id.as_str(), v.severity.as_str())).collect();
        assert_eq!(vulns, [("CVE-1", "critical"), ("CVE-2", "low"), ("GHSA-x", "high")], "the same finding once");
        let vex: Vec<_> = facts.vex.iter().map(|v| (v.vulnerability.as_str(), v.status.as_str())).collect();
        assert_eq!(vex, [("CVE-1", "not_affected"), ("CVE-2", "affected")]);
        assert_eq!(facts.refused.len(), 1);
    }
}
