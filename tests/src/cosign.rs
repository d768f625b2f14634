//! Keys, signatures and attestations made as cosign stores them, by an implementation
//! independent of Gantry's (`fixtures/cosign-sign.py`: Python's `cryptography` and the
//! registry's HTTP API), and the in-toto predicates the supply-chain tests attest.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::registry::Registry;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cosign-sign.py");

fn run(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("python3").arg(SCRIPT).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A new ECDSA P-256 key at `path`; its public PEM.
pub fn keygen(path: &Path) -> String {
    run(&["keygen".as_ref(), path.as_os_str()])
}

/// Signs `digest` in `repo` with the key at `key`, replacing its stored signatures;
/// `extra` is `--names <digest>` or `--tamper`.
pub fn sign(registry: &Registry, repo: &str, digest: &str, key: &Path, extra: &[&str]) {
    let host = registry.host();
    let mut args: Vec<&std::ffi::OsStr> = vec!["sign".as_ref(), host.as_ref(), repo.as_ref(), digest.as_ref()];
    args.push(key.as_os_str());
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    run(&args);
}

/// Replaces the attestations of `digest` in `repo` with `statements` (each a
/// `{predicateType, predicate}`), signed with `key`; `extra` may be `--referrers`.
pub fn attest(registry: &Registry, repo: &str, digest: &str, key: &Path, statements: &[Value], extra: &[&str]) {
    let file = key.with_extension(format!("{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, serde_json::to_vec(statements).unwrap()).unwrap();
    let host = registry.host();
    let mut args: Vec<&std::ffi::OsStr> = vec!["attest".as_ref(), host.as_ref(), repo.as_ref(), digest.as_ref()];
    args.extend([key.as_os_str(), file.as_os_str()]);
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    run(&args);
    let _ = std::fs::remove_file(&file);
}

/// SLSA provenance v1 by `builder` of `commit` of `git.example/acme/shop`.
pub fn provenance(builder: &str, commit: &str) -> Value {
    json!({ "predicateType": "https://slsa.dev/provenance/v1", "predicate": {
        "buildDefinition": { "buildType": "https://ci.example/build/v1", "externalParameters": {},
            "resolvedDependencies": [{ "uri": "git+https://git.example/acme/shop@refs/heads/main",
                "digest": { "gitCommit": commit } }] },
        "runDetails": { "builder": { "id": builder }, "metadata": {} } } })
}

/// An SPDX 2.3 SBOM of one package.
pub fn sbom() -> Value {
    json!({ "predicateType": "https://spdx.dev/Document", "predicate": {
        "spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "web",
        "packages": [{ "SPDXID": "SPDXRef-busybox", "name": "busybox", "versionInfo": "1.36" }] } })
}

/// A Trivy scan (cosign's vuln predicate) finding `cve` at `severity`, and a medium one.
pub fn scan(cve: &str, severity: &str) -> Value {
    json!({ "predicateType": "https://cosign.sigstore.dev/attestation/vuln/v1", "predicate": {
        "scanner": { "uri": "pkg:github/aquasecurity/trivy", "version": "0.50.0", "result": {
            "SchemaVersion": 2, "Results": [{ "Target": "web", "Vulnerabilities": [
                { "VulnerabilityID": cve, "Severity": severity },
                { "VulnerabilityID": "CVE-2026-0002", "Severity": "MEDIUM" }] }] } },
        "metadata": { "scanStartedOn": "2026-12-01T00:00:00Z", "scanFinishedOn": "2026-12-01T00:00:10Z" } } })
}

/// An OpenVEX document saying the image is not affected by `cve`.
pub fn vex(cve: &str) -> Value {
    json!({ "predicateType": "https://openvex.dev/ns/v0.2.0", "predicate": {
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://acme.example/vex/1", "author": "acme",
        "timestamp": "2026-12-02T00:00:00Z", "version": 1, "statements": [{
            "vulnerability": { "name": cve }, "products": [{ "@id": "pkg:oci/web" }],
            "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path" }] } })
}

/// A Fulcio-like CA and a Rekor-like log key made in `dir`; the Sigstore `trusted_root.json`
/// naming them.
pub fn sigstore_root(dir: &Path) -> String {
    run(&["sigstore-root".as_ref(), dir.as_os_str()])
}

/// Signs `digest` in `repo` keylessly, replacing its stored signatures: a fresh key with a
/// ten-minute certificate from `dir`'s CA naming `subject` and `issuer`, logged in `dir`'s
/// log; `extra` may be `--no-bundle` or `--tamper-set`.
pub fn sign_keyless(
    registry: &Registry,
    repo: &str,
    digest: &str,
    dir: &Path,
    (subject, issuer): (&str, &str),
    extra: &[&str],
) {
    let host = registry.host();
    let mut args: Vec<&std::ffi::OsStr> = vec!["sign-keyless".as_ref(), host.as_ref(), repo.as_ref(), digest.as_ref()];
    args.extend([dir.as_os_str(), subject.as_ref(), issuer.as_ref()]);
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    run(&args);
}

/// Replaces the referrers of `digest` in `repo` with one manifest of keyless Sigstore
/// bundles of `statements`, each signed with a fresh key certified by `dir`'s CA for
/// `subject` and `issuer` and logged in `dir`'s log; `extra` may be `--no-log`.
pub fn attest_keyless(
    registry: &Registry,
    (repo, digest): (&str, &str),
    dir: &Path,
    (subject, issuer): (&str, &str),
    statements: &[Value],
    extra: &[&str],
) {
    let file = dir.join(format!("{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, serde_json::to_vec(statements).unwrap()).unwrap();
    let host = registry.host();
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["attest-keyless".as_ref(), host.as_ref(), repo.as_ref(), digest.as_ref()];
    args.extend([dir.as_os_str(), subject.as_ref(), issuer.as_ref(), file.as_os_str()]);
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    run(&args);
    let _ = std::fs::remove_file(&file);
}
