//! The supply-chain gate end to end: images pushed to the real registry, signed and attested
//! in the test with keys it makes (by an independent implementation, Python's
//! `cryptography`), judged by the default admission policy (Rego) at the request and again
//! at deploy, and the admitted release deployed onto the private dockerd. Every refusal
//! names the component and the rule.

use std::path::Path;
use std::process::Command;

use gantry_domain::access::Role;
use gantry_tests::registry::{Registry, free_port};
use serde_json::{Value, json};

use crate::support::{TestApp, docker_host, token};
use gantry_tests::cosign::{self, keygen, provenance, sbom, sign};

const BUILDER: &str = "https://ci.example/builder";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const CVE: &str = "CVE-2026-0001";
const VERDICT: &str = "query($r: ID!, $e: ID!) { evaluatePolicy(releaseId: $r, environmentId: $e) {
    allowed policy denials gates { gate passed detail }
    components { component digest signature key refusals builders commits sboms
        vulnerabilities { severity count } notAffected attestationRef } } }";
const REQUEST: &str = "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id } }";

fn attest(registry: &Registry, digest: &str, key: &Path, statements: &[Value], extra: &[&str]) {
    cosign::attest(registry, "shop/web", digest, key, statements, extra);
}

fn scan() -> Value {
    cosign::scan(CVE, "CRITICAL")
}

fn vex() -> Value {
    cosign::vex(CVE)
}

/// The evidence of a promotion: each record's kind and payload.
async fn evidence(app: &TestApp, promotion: &str) -> Vec<(String, Value)> {
    let q = "query($p: ID!) { evidence(promotionId: $p) { kind payload } }";
    let records = app.ok(q, json!({ "p": promotion })).await["evidence"].as_array().unwrap().clone();
    records.iter().map(|r| (r["kind"].as_str().unwrap().to_owned(), r["payload"].clone())).collect()
}

struct Setup {
    app: TestApp,
    registry: Registry,
    digest: String,
    release: String,
    dev: String,
    prod: String,
    container: String,
    dir: std::path::PathBuf,
}

async fn setup() -> Setup {
    let app = TestApp::spawn_with_workers().await;
    let registry = Registry::start(free_port(), "http://127.0.0.1:9/unused", "unused");
    app.create_integration("local", "DISTRIBUTION", &format!("http://{}", registry.host())).await;
    let port = free_port();
    let httpd = ["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h", "/etc"];
    let digest = registry.push_with_command("shop/web", "1.0.0", "web 1.0.0", &httpd);
    let dir = std::env::temp_dir().join(format!("gantry-admission-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = json!([{ "name": "release", "pem": keygen(&dir.join("release.pem")) }]);
    keygen(&dir.join("other.pem"));
    let web = app
        .create_component_with(json!({ "name": "web", "imageRepository": format!("{}/shop/web", registry.host()) }))
        .await;
    app.add_version(&web, "1.0.0", &digest).await;
    let guarded = |name: &str, order: i64, approvals: i64| {
        json!({ "name": name, "order": order, "requiredApprovals": approvals, "signingKeys": keys,
            "trustedBuilders": [BUILDER] })
    };
    let dev = app.create_environment_with(guarded("dev", 10, 0)).await;
    let prod = app.create_environment_with(guarded("prod", 20, 1)).await;
    let container = format!("gantry-test-admitted-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let target = json!({ "name": "host-1", "type": "DOCKER", "docker": {
        "endpoint": docker_host(), "containerName": container, "componentId": web, "networkMode": "host" } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;
    let release = app
        .ready_release_with(json!({ "name": "web-1.0.0", "components": [{ "componentId": web, "version": "1.0.0" }],
            "sourceRef": { "repository": "acme/shop", "commitSha": COMMIT } }))
        .await;
    Setup { app, registry, digest, release, dev, prod, container, dir }
}

impl Setup {
    /// Asserts the request is refused with `rules` (each `web: ... (rule r)`), and that the
    /// dry run says the same; returns the dry run.
    async fn refused(&self, rules: &[&str]) -> Value {
        let vars = json!({ "r": self.release, "e": self.dev });
        let said = self.app.assert_rejected("CONFLICT", REQUEST, vars.clone()).await;
        assert!(said.starts_with("gate supply_chain did not pass: web: "), "{said}");
        let dry = self.app.ok(VERDICT, vars).await["evaluatePolicy"].clone();
        assert_eq!(dry["allowed"], false, "{dry:#}");
        for rule in rules {
            assert!(said.contains(&format!("(rule {rule})")), "{rule}: {said}");
            let denied = dry["denials"].as_array().unwrap().iter().any(|d| d.as_str().unwrap().contains(rule));
            assert!(denied, "{rule}: {dry:#}");
        }
        dry
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_admission_policy_refuses_each_broken_promise_and_admits_a_release_that_keeps_them() {
    let s = setup().await;
    let (key, other) = (s.dir.join("release.pem"), s.dir.join("other.pem"));
    let d = s.digest.clone();
    let elsewhere = s.registry.push("shop/web", "2.0.0", "web 2.0.0");

    // Signatures: none, another key's, one made for another image, a tampered one.
    let dry = s.refused(&["signature", "provenance", "sbom"]).await;
    assert_eq!(dry["components"][0]["signature"], "UNSIGNED");
    for (signer, extra, why) in [
        (&other, &[][..], "no trusted key verifies it"),
        (&key, &["--names", elsewhere.as_str()][..], "it signs another image"),
        (&key, &["--tamper"][..], "no trusted key verifies it"),
    ] {
        sign(&s.registry, "shop/web", &d, signer, extra);
        let dry = s.refused(&["signature"]).await;
        assert_eq!(dry["components"][0]["signature"], "REFUSED");
        assert!(dry["components"][0]["refusals"][0].as_str().unwrap().contains(why), "{why}: {dry:#}");
    }
    sign(&s.registry, "shop/web", &d, &key, &[]);

    // Attestations: signed by another key, a builder not on the list, another commit, no SBOM,
    // a critical vulnerability.
    attest(&s.registry, &d, &other, &[provenance(BUILDER, COMMIT), sbom()], &[]);
    let dry = s.refused(&["provenance", "sbom"]).await;
    assert!(dry["components"][0]["refusals"][0].as_str().unwrap().contains("no trusted key verifies it"));
    attest(&s.registry, &d, &key, &[provenance("https://evil.example/builder", COMMIT), sbom()], &[]);
    s.refused(&["builder"]).await;
    let stale = "fedcba9876543210fedcba9876543210fedcba98";
    attest(&s.registry, &d, &key, &[provenance(BUILDER, stale), sbom()], &[]);
    let dry = s.refused(&["source"]).await;
    assert_eq!(dry["components"][0]["commits"], json!([stale]));
    attest(&s.registry, &d, &key, &[provenance(BUILDER, COMMIT)], &[]);
    s.refused(&["sbom"]).await;
    attest(&s.registry, &d, &key, &[provenance(BUILDER, COMMIT), sbom(), scan()], &[]);
    let dry = s.refused(&["vulnerabilities"]).await;
    assert!(dry["denials"][0].as_str().unwrap().contains(CVE), "{dry:#}");

    // The same vulnerability with VEX `not_affected`, stored as an OCI 1.1 referrer: admitted.
    attest(&s.registry, &d, &key, &[provenance(BUILDER, COMMIT), sbom(), scan(), vex()], &["--referrers"]);
    let vars = json!({ "r": s.release, "e": s.dev });
    let dry = s.app.ok(VERDICT, vars).await["evaluatePolicy"].clone();
    assert_eq!(dry["allowed"], true, "{dry:#}");
    let web = &dry["components"][0];
    assert_eq!((web["signature"].clone(), web["key"].clone()), (json!("VERIFIED"), json!("release")));
    assert_eq!((web["builders"].clone(), web["sboms"][0].clone()), (json!([BUILDER, BUILDER]), json!("spdx")));
    assert_eq!(web["notAffected"], json!([CVE]));
    let referrer = format!("oci://{}/shop/web@sha256:", s.registry.host());
    assert!(web["attestationRef"].as_str().unwrap().starts_with(&referrer), "{web:#}");

    let deployed = s.app.promote(&s.release, &s.dev).await;
    assert_eq!(deployed["status"], "DEPLOYED", "{deployed:#}");
    let running = Command::new("docker")
        .args(["-H", &docker_host(), "inspect", "-f", "{{.Config.Image}}", &s.container])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&running.stdout).contains(&d), "the admitted digest runs");
    let records = evidence(&s.app, deployed["id"].as_str().unwrap()).await;
    let sealed = |kind: &str| records.iter().find(|(k, _)| k == kind).map(|(_, p)| p.clone()).unwrap();
    for kind in ["gate_evaluation", "deployment_started"] {
        let decision = sealed(kind)["supplyChain"].clone();
        assert_eq!(decision["admitted"], true, "{kind}: {decision:#}");
        assert_eq!(decision["policy"], dry["policy"], "the policy's sha256");
        let facts = &decision["components"][0];
        assert_eq!(facts["signature"], json!({ "verdict": "verified", "key": "release" }));
        assert_eq!((facts["builders"][0].clone(), facts["commits"][0].clone()), (json!(BUILDER), json!(COMMIT)));
        assert_eq!(facts["vulnerabilities"], json!({ "critical": 1, "medium": 1 }));
        assert_eq!(facts["vexNotAffected"], json!([CVE]));
    }

    manifest_names_the_supply_chain(&s).await;
    refused_at_deploy_once_the_key_is_replaced(&s).await;

    let _ = Command::new("docker").args(["-H", &docker_host(), "rm", "-f", &s.container]).output();
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// The production manifest names each service's attestations and SBOM and lists the image
/// signatures that verify under production's keys, and still validates against the schema
/// (formats included).
async fn manifest_names_the_supply_chain(s: &Setup) {
    let q = "query($id: ID!) { release(id: $id) { manifest } environment(id: $e) { signingKeys { fingerprint } } }";
    let q = q.replace("($id: ID!)", "($id: ID!, $e: ID!)");
    let data = s.app.ok(&q, json!({ "id": s.release, "e": s.prod })).await;
    let doc = &data["release"]["manifest"];
    let schema: Value =
        serde_json::from_str(include_str!("../../../docs/schemas/production-release-manifest.schema.json")).unwrap();
    let mut strict = schema["definitions"]["ReleaseManifest"].clone();
    strict["definitions"] = schema["definitions"].clone();
    let validator = jsonschema::options().should_validate_formats(true).build(&strict).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc["manifest"]).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc:#}");
    let web = &doc["manifest"]["services"][0];
    let attestations = web["attestation_ref"].as_str().unwrap();
    assert!(attestations.starts_with(&format!("oci://{}/shop/web", s.registry.host())), "{web:#}");
    assert_eq!(web["sbom_ref"], format!("{attestations}#spdx"));
    let signature = &doc["manifest"]["signatures"][0];
    assert_eq!(signature["signature_type"], "cosign");
    assert_eq!(signature["key_id"], data["environment"]["signingKeys"][0]["fingerprint"]);
    assert!(!signature["signature"].as_str().unwrap().is_empty());
}

/// The key is replaced between the request and the approval: refused at deploy, sealed.
async fn refused_at_deploy_once_the_key_is_replaced(s: &Setup) {
    let requested = s.app.request_promotion(&s.release, &s.prod).await;
    assert_eq!(requested["status"], "PENDING_APPROVAL");
    let id = requested["id"].as_str().unwrap();
    let set =
        "mutation($e: ID!, $k: [SigningKeyInput!]) { updateEnvironment(id: $e, input: { signingKeys: $k }) { id } }";
    let other_pem = keygen(&s.dir.join("third.pem"));
    s.app.ok(set, json!({ "e": s.prod, "k": [{ "name": "third", "pem": other_pem }] })).await;
    let approve = "mutation($id: ID!) { approvePromotion(id: $id) { status reason } }";
    let (_, approved) = s.app.gql_as(Some(&token("alice", &[Role::Approver])), approve, json!({ "id": id })).await;
    let approved = &approved["data"]["approvePromotion"];
    assert_eq!(approved["status"], "FAILED", "{approved:#}");
    let reason = approved["reason"].as_str().unwrap();
    assert!(reason.starts_with("gate supply_chain did not pass at deploy: web: "), "{reason}");
    assert!(reason.contains("web: not signed by a trusted key (rule signature)"), "{reason}");
    let records = evidence(&s.app, id).await;
    let kinds: Vec<&str> = records.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["request", "gate_evaluation", "approval", "supply_chain_check"]);
    assert_eq!(records[3].1["admitted"], false);
    assert_eq!(records[3].1["components"][0]["signature"]["verdict"], "refused");
    assert_eq!(s.app.promotion(id).await["deployments"], json!([]), "nothing deployed");
}

/// A key kept in Secrets Manager is read when signatures are checked; one that is not there
/// fails the gate, naming the key.
async fn keys_given_by_reference(s: &Setup) {
    const KEYS: &str =
        "mutation($e: ID!, $k: [SigningKeyInput!]) { updateEnvironment(id: $e, input: { signingKeys: $k }) {
        signingKeys { name pem keyRef fingerprint } } }";
    let q = "query($e: ID!) { environment(id: $e) { signingKeys { name pem } } }";
    let inline = s.app.ok(q, json!({ "e": s.prod })).await["environment"]["signingKeys"].clone();
    let name = format!("gantry/keys/{}", uuid::Uuid::new_v4().simple());
    let reference = gantry_tests::put_secret(&name, inline[0]["pem"].as_str().unwrap()).await;
    let by_ref = json!([{ "name": "release", "keyRef": reference }]);
    let set = s.app.ok(KEYS, json!({ "e": s.dev, "k": by_ref })).await;
    let shown = json!([{ "name": "release", "pem": null, "keyRef": reference, "fingerprint": null }]);
    assert_eq!(set["updateEnvironment"]["signingKeys"], shown);
    let dry = s.app.ok(VERDICT, json!({ "r": s.release, "e": s.dev })).await["evaluatePolicy"].clone();
    assert_eq!(
        (dry["allowed"].clone(), dry["components"][0]["key"].clone()),
        (json!(true), json!("release")),
        "{dry:#}"
    );

    // The production manifest names a key given by reference by where it is kept.
    s.app.ok(KEYS, json!({ "e": s.prod, "k": by_ref })).await;
    let manifest = s.app.ok("query($id: ID!) { release(id: $id) { manifest } }", json!({ "id": s.release })).await;
    assert_eq!(manifest["release"]["manifest"]["manifest"]["signatures"][0]["key_id"], reference);
    s.app.ok(KEYS, json!({ "e": s.prod, "k": inline })).await;

    let missing = json!([{ "name": "release", "keyRef": format!("{reference}-gone") }]);
    s.app.ok(KEYS, json!({ "e": s.dev, "k": missing })).await;
    let dry = s.app.ok(VERDICT, json!({ "r": s.release, "e": s.dev })).await["evaluatePolicy"].clone();
    let gate = dry["gates"].as_array().unwrap().iter().find(|g| g["gate"] == "supply_chain").unwrap().clone();
    assert_eq!(gate["passed"], false);
    assert!(gate["detail"].as_str().unwrap().starts_with("signing key release: there is no secret"), "{gate:#}");
    for (bad, why) in [
        (json!([{ "name": "k", "pem": inline[0]["pem"], "keyRef": reference }]), "exactly one of pem and keyRef"),
        (json!([{ "name": "k" }]), "exactly one of pem and keyRef"),
        (json!([{ "name": "k", "keyRef": "env:GANTRY_DATA_KEY" }]), "env:COSIGN_<NAME>"),
    ] {
        let said = s.app.assert_rejected("BAD_USER_INPUT", KEYS, json!({ "e": s.dev, "k": bad })).await;
        assert!(said.contains(why), "{why}: {said}");
    }
    s.app.ok(KEYS, json!({ "e": s.dev, "k": inline })).await;
}

/// An environment's own policy replaces the default; one that does not compile is refused
/// and changes nothing; an empty one restores the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environments_own_policy_is_compiled_when_set_and_decides() {
    let s = setup().await;
    sign(&s.registry, "shop/web", &s.digest, &s.dir.join("release.pem"), &[]);
    let set = "mutation($e: ID!, $p: String) { updateEnvironment(id: $e, input: { admissionPolicy: $p }) {
        admissionPolicy guardsSupplyChain } }";
    let said = s
        .app
        .assert_rejected("BAD_USER_INPUT", set, json!({ "e": s.dev, "p": "package gantry.admission\ndeny contains" }))
        .await;
    assert!(said.starts_with("admissionPolicy: "), "{said}");
    let said = s
        .app
        .assert_rejected(
            "BAD_USER_INPUT",
            set,
            json!({ "e": s.dev, "p": "package elsewhere\nimport rego.v1\ndeny contains 1 if false" }),
        )
        .await;
    assert!(said.contains("package gantry.admission"), "{said}");
    let q = "query($e: ID!) { environment(id: $e) { admissionPolicy } }";
    assert_eq!(s.app.ok(q, json!({ "e": s.dev })).await["environment"]["admissionPolicy"], Value::Null, "unchanged");

    let signed_only = "package gantry.admission\nimport rego.v1\n\ndeny contains msg if {\n\tsome c in input.components\n\tc.signature.verdict != \"verified\"\n\tmsg := sprintf(\"%s: unsigned (rule signed)\", [c.component])\n}\n";
    let set_policy = s.app.ok(set, json!({ "e": s.dev, "p": signed_only })).await;
    assert_eq!(set_policy["updateEnvironment"]["admissionPolicy"], signed_only.trim());
    let dry = s.app.ok(VERDICT, json!({ "r": s.release, "e": s.dev })).await["evaluatePolicy"].clone();
    assert_eq!(dry["allowed"], true, "signed is enough under this policy: {dry:#}");
    keys_given_by_reference(&s).await;
    let default = s.app.ok(set, json!({ "e": s.dev, "p": "" })).await;
    assert_eq!(default["updateEnvironment"], json!({ "admissionPolicy": null, "guardsSupplyChain": true }));
    s.refused(&["provenance", "sbom"]).await;

    // The release's page shows the verdict per component: the last guarded environment's,
    // or the one picked.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let session = crate::dashboard::sign_in(&s.app, &http, &token("vera", &[Role::Viewer])).await;
    let page = format!("/ui/releases/{}", s.release);
    let (code, html) = crate::dashboard::ui(&s.app, &http, &session, &page).await;
    assert_eq!(code, 200, "{html}");
    for shown in ["Supply chain in prod", "VERIFIED", "web: no verified provenance (rule provenance)"] {
        assert!(html.contains(shown), "{shown}: {html}");
    }
    let (_, html) = crate::dashboard::ui(&s.app, &http, &session, &format!("{page}?verify={}", s.dev)).await;
    assert!(html.contains("Supply chain in dev"), "{html}");
    let _ = std::fs::remove_dir_all(&s.dir);
}
