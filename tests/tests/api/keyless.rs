//! Keyless signatures end to end: a Fulcio-like CA and a Rekor-like log made in the test
//! (Python's `cryptography`, independent of Gantry's code), their `trusted_root.json` held by
//! the environment, images signed with ten-minute certificates naming a CI workflow, and the
//! signatures judged offline through a promotion: the identity and issuer, the chain, the
//! log's signed promise, and the admission policy's demand for a log entry.

use gantry_tests::cosign::{attest_keyless, provenance, sbom, sign_keyless, sigstore_root};
use gantry_tests::registry::{Registry, free_port};
use serde_json::{Value, json};

use crate::support::TestApp;

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const WORKFLOW: &str = "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.0.0";
const PATTERN: &str = r"https://github\.com/acme/shop/\.github/workflows/release\.yml@refs/tags/v.*";
const VERDICT: &str = "query($r: ID!, $e: ID!) { evaluatePolicy(releaseId: $r, environmentId: $e) {
    allowed denials components { signature key refusals builders sboms
        certificate { subject issuer rekorLogIndex loggedAt } } } }";
const REQUEST: &str = "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id status } }";
const SET: &str = "mutation($e: ID!, $i: UpdateEnvironmentInput!) { updateEnvironment(id: $e, input: $i) {
    signingIdentities { name issuer subject subjectRegexp } guardsSupplyChain } }";
/// The default policy's signature and log rules, without its provenance and SBOM ones.
const POLICY: &str = r#"package gantry.admission
import rego.v1
deny contains msg if {
	some c in input.components
	c.signature.verdict != "verified"
	msg := sprintf("%s: not signed by a trusted key or identity (rule signature)", [c.component])
}
deny contains msg if {
	some c in input.components
	c.signature.identity
	not c.signature.log
	msg := sprintf("%s: signed by %s without a transparency-log entry (rule tlog)", [c.component, c.signature.identity.subject])
}
"#;

#[tokio::test]
async fn keyless_signatures_are_judged_offline_by_identity_chain_and_log() {
    let app = TestApp::spawn().await;
    let registry = Registry::start(free_port(), "http://127.0.0.1:9/unused", "unused");
    app.create_integration("local", "DISTRIBUTION", &format!("http://{}", registry.host())).await;
    let digest = registry.push("shop/web", "1.0.0", "web 1.0.0");
    let dir = std::env::temp_dir().join(format!("gantry-keyless-{}", uuid::Uuid::new_v4().simple()));
    let stranger = dir.join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    let root = sigstore_root(&dir);
    sigstore_root(&stranger);
    let web = app
        .create_component_with(json!({ "name": "web", "imageRepository": format!("{}/shop/web", registry.host()) }))
        .await;
    app.add_version(&web, "1.0.0", &digest).await;
    let env = app.create_environment("prod", 10).await;
    identities_are_checked_when_set(&app, &env, &root).await;
    let release = app.ready_release("web-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let vars = json!({ "r": release, "e": env });
    let dry = || async { app.ok(VERDICT, vars.clone()).await["evaluatePolicy"].clone() };
    let sign = |signer: &std::path::Path, who: (&str, &str), extra: &[&str]| {
        sign_keyless(&registry, "shop/web", &digest, signer, who, extra);
    };
    let refusal = |dry: &Value| dry["components"][0]["refusals"].to_string();

    assert_eq!(dry().await["components"][0]["signature"], "UNSIGNED");
    for (signer, who, extra, why) in [
        (
            &dir,
            ("https://github.com/evil/shop/.github/workflows/release.yml@refs/tags/v1", ISSUER),
            &[][..],
            "not a trusted identity",
        ),
        (&dir, (WORKFLOW, "https://accounts.google.com"), &[][..], "not a trusted identity"),
        (&dir, (WORKFLOW, ISSUER), &["--tamper-set"][..], "its SET is not the log's signature"),
        (&stranger, (WORKFLOW, ISSUER), &["--no-bundle"][..], "does not chain to a trusted CA"),
    ] {
        sign(signer, who, extra);
        let said = dry().await;
        assert_eq!(said["allowed"], false);
        assert!(refusal(&said).contains(why), "{why}: {said:#}");
        let refused = app.assert_rejected("CONFLICT", REQUEST, vars.clone()).await;
        assert!(refused.contains("web: not signed by a trusted key or identity (rule signature)"), "{refused}");
    }

    // Signed by the workflow, but with no log entry: the policy asks for one.
    sign(&dir, (WORKFLOW, ISSUER), &["--no-bundle"]);
    let said = dry().await;
    assert_eq!(said["components"][0]["signature"], "VERIFIED", "{said:#}");
    assert_eq!(said["components"][0]["certificate"]["rekorLogIndex"], Value::Null);
    let refused = app.assert_rejected("CONFLICT", REQUEST, vars.clone()).await;
    assert!(refused.contains(&format!("web: signed by {WORKFLOW} without a transparency-log entry (rule tlog)")));

    // Signed and logged: admitted, and the evidence names the identity and the entry.
    sign(&dir, (WORKFLOW, ISSUER), &[]);
    let said = dry().await;
    assert_eq!(said["allowed"], true, "{said:#}");
    let component = &said["components"][0];
    assert_eq!(component["key"], "release-workflow");
    assert_eq!(
        (&component["certificate"]["subject"], &component["certificate"]["issuer"]),
        (&json!(WORKFLOW), &json!(ISSUER))
    );
    let index = component["certificate"]["rekorLogIndex"].as_u64().unwrap();
    assert!(component["certificate"]["loggedAt"].as_str().unwrap().starts_with("20"));
    let requested = app.ok(REQUEST, vars.clone()).await["requestPromotion"].clone();
    let q = "query($p: ID!) { evidence(promotionId: $p) { kind payload } }";
    let records = app.ok(q, json!({ "p": requested["id"] })).await["evidence"].clone();
    let check = records.as_array().unwrap().iter().find(|r| r["kind"] == "gate_evaluation").unwrap();
    let sealed = &check["payload"]["supplyChain"]["components"][0]["signature"];
    assert_eq!(sealed["identity"], json!({ "subject": WORKFLOW, "issuer": ISSUER }), "{check:#}");
    assert_eq!(sealed["log"]["logIndex"], json!(index), "{check:#}");
    let manifest = app.ok("query($id: ID!) { release(id: $id) { manifest } }", json!({ "id": release })).await;
    let signature = &manifest["release"]["manifest"]["manifest"]["signatures"][0];
    assert_eq!((&signature["key_id"], &signature["rekor_log_index"]), (&json!(WORKFLOW), &json!(index)));
    assert!(signature["signed_at"].as_str().unwrap().ends_with('Z'), "{signature:#}");
    keyless_attestations(&app, &registry, (&digest, &vars), (&dir, &stranger)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Attestations in keyless Sigstore bundles (as `actions/attest-build-provenance` stores
/// them): those the workflow made stand, others are refused, each saying why.
async fn keyless_attestations(
    app: &TestApp,
    registry: &Registry,
    (digest, vars): (&str, &Value),
    (dir, stranger): (&std::path::Path, &std::path::Path),
) {
    let statements = [provenance("https://github.com/actions/runner", "0123456789abcdef"), sbom()];
    let attest = |signer: &std::path::Path, who: (&str, &str), extra: &[&str]| {
        attest_keyless(registry, ("shop/web", digest), signer, who, &statements, extra);
    };
    let facts = || async { app.ok(VERDICT, vars.clone()).await["evaluatePolicy"]["components"][0].clone() };
    for (signer, who, extra, why) in [
        (
            dir,
            ("https://github.com/evil/shop/.github/workflows/release.yml@refs/tags/v1", ISSUER),
            &[][..],
            "a keyless attestation by https://github.com/evil/shop/.github/workflows/release.yml@refs/tags/v1",
        ),
        (
            stranger,
            (WORKFLOW, ISSUER),
            &[][..],
            "a keyless attestation: its transparency-log bundle does not verify: its log is not in the trust root",
        ),
    ] {
        attest(signer, who, extra);
        let said = facts().await;
        assert_eq!((&said["builders"], &said["sboms"]), (&json!([]), &json!([])), "{said:#}");
        assert!(said["refusals"].to_string().contains(why), "{why}: {said:#}");
    }
    attest(dir, (WORKFLOW, ISSUER), &[]);
    let said = facts().await;
    assert_eq!(said["builders"], json!(["https://github.com/actions/runner"]), "{said:#}");
    assert_eq!(said["sboms"], json!(["spdx"]));
    assert_eq!(said["refusals"], json!([]));
}

/// Identities need a trust root; a bad one, a bad pattern or a bad issuer is refused with
/// nothing written; then the environment trusts the release workflow under `root`.
async fn identities_are_checked_when_set(app: &TestApp, env: &str, root: &str) {
    let identity = json!({ "name": "release-workflow", "issuer": ISSUER, "subjectRegexp": PATTERN });
    for (input, why) in [
        (json!({ "signingIdentities": [identity] }), "need a sigstoreTrustRoot"),
        (json!({ "signingIdentities": [identity], "sigstoreTrustRoot": "{}" }), "names no certificate authority"),
        (
            json!({ "signingIdentities": [{ "name": "x", "issuer": ISSUER, "subjectRegexp": "(" }], "sigstoreTrustRoot": root }),
            "subjectRegexp does not compile",
        ),
        (
            json!({ "signingIdentities": [{ "name": "x", "issuer": "http://issuer.example", "subject": "a@b" }], "sigstoreTrustRoot": root }),
            "https URL",
        ),
        (
            json!({ "signingIdentities": [identity, identity], "sigstoreTrustRoot": root }),
            "names release-workflow twice",
        ),
    ] {
        let said = app.assert_rejected("BAD_USER_INPUT", SET, json!({ "e": env, "i": input })).await;
        assert!(said.contains(why), "{why}: {said}");
    }
    let q = "query($e: ID!) { environment(id: $e) { signingIdentities { name } sigstoreTrustRoot guardsSupplyChain } }";
    let kept = app.ok(q, json!({ "e": env })).await;
    assert_eq!(
        kept["environment"],
        json!({ "signingIdentities": [], "sigstoreTrustRoot": null, "guardsSupplyChain": false })
    );

    let set =
        app.ok(SET, json!({ "e": env, "i": { "signingIdentities": [identity], "sigstoreTrustRoot": root } })).await;
    assert_eq!(set["updateEnvironment"]["guardsSupplyChain"], true);
    assert_eq!(set["updateEnvironment"]["signingIdentities"][0]["subjectRegexp"], PATTERN);
    // The admission policy is set on its own, compiled first.
    let policy =
        "mutation($e: ID!, $p: String!) { setEnvironmentPolicy(environmentId: $e, policy: $p) { admissionPolicy } }";
    let said = app.assert_rejected("BAD_USER_INPUT", policy, json!({ "e": env, "p": "package other" })).await;
    assert!(said.contains("gantry.admission"), "{said}");
    let set = app.ok(policy, json!({ "e": env, "p": POLICY })).await;
    assert_eq!(set["setEnvironmentPolicy"]["admissionPolicy"], POLICY.trim());
}
