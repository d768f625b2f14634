//! TLS to every engine. A private dockerd started with `--tlsverify` and the Nomad stand-in
//! serving `https` and demanding a client certificate, each with certificates this test
//! generates; the TLS material is read from the emulator's Secrets Manager and SSM Parameter
//! Store. A wrong CA, a missing client certificate and an expired certificate each fail the
//! deployment with a reason that says which.

use gantry_nomad_fake::FakeNomad;
use gantry_tests::dockerd::PrivateDockerd;
use gantry_tests::pki::{Ca, Role};
use gantry_tests::{put_parameter, put_secret};
use serde_json::{Value, json};

use crate::registry::{Registry, free_port};
use crate::support::{TestApp, digest};

const ADD_TARGET: &str =
    "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// Makes `target` the only target of `env`, and promotes a new release of `components` to
/// it; the settled promotion.
async fn promote_to(app: &TestApp, env: &str, components: &Value, target: Value) -> Value {
    let targets = app.ok("query($e: ID!) { environment(id: $e) { targets { id } } }", json!({ "e": env })).await;
    for old in targets["environment"]["targets"].as_array().unwrap() {
        app.ok("mutation($id: ID!) { removeDeploymentTarget(id: $id) { id } }", json!({ "id": old["id"] })).await;
    }
    app.ok(ADD_TARGET, json!({ "e": env, "t": target })).await;
    let release = app.ready_release(&format!("release-{}", unique()), components.clone()).await;
    app.promote(&release, env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_engine_is_reached_over_tls_with_a_client_certificate() {
    let app = TestApp::spawn_with_workers().await;
    let (ca, other_ca) = (Ca::new("gantry test CA"), Ca::new("some other CA"));
    let engine = PrivateDockerd::start(Some((&ca.pem(), &ca.issue(Role::Server, &["127.0.0.1"]))));
    let endpoint = format!("tcp+tls://127.0.0.1:{}", engine.tls_port.unwrap());

    let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
    let serve_port = free_port();
    let httpd = ["httpd", "-f", "-p", &format!("127.0.0.1:{serve_port}"), "-h", "/etc"];
    let image = registry.push_with_command("demo/tls", "1.0.0", "tls 1.0.0", &httpd);
    let web = app
        .create_component_with(json!({ "name": "web", "imageRepository": format!("{}/demo/tls", registry.host()) }))
        .await;
    app.add_version(&web, "1.0.0", &image).await;
    let release = json!([{ "componentId": web, "version": "1.0.0" }]);
    let env = app.create_environment("dev", 10).await;

    let id = unique();
    let client = ca.issue(Role::Client, &["gantry-deployer"]);
    let tls = json!({
        "caRef": put_secret(&format!("gantry-test/{id}/ca"), &ca.pem()).await,
        "certRef": put_parameter(&format!("/gantry-test/{id}/cert"), &client.cert).await,
        "keyRef": put_secret(&format!("gantry-test/{id}/key"), &client.key).await,
    });
    let container = format!("gantry-tls-{id}");
    let target = |name: &str, tls: Value| {
        json!({ "name": name, "type": "DOCKER", "docker": {
            "endpoint": endpoint, "tls": tls, "containerName": container, "componentId": web, "networkMode": "host" } })
    };

    let deployed = promote_to(&app, &env, &release, target("tls-host", tls.clone())).await;
    assert_eq!(deployed["status"], "DEPLOYED", "{deployed:#}");
    let running = engine.docker(&["inspect", "-f", "{{.State.Running}} {{.Config.Image}}", &container]);
    assert_eq!(running, format!("true {}/demo/tls@{image}", registry.host()), "the container runs on the TLS engine");
    let served = reqwest::get(format!("http://127.0.0.1:{serve_port}/gantry-build")).await.unwrap().text().await;
    assert_eq!(served.unwrap(), "tls 1.0.0");

    // Gantry trusts only the target's CA: an engine certificate from another CA is refused.
    let wrong_ca =
        with(&tls, json!({ "caRef": put_secret(&format!("gantry-test/{id}/other-ca"), &other_ca.pem()).await }));
    let failed = promote_to(&app, &env, &release, target("wrong-ca", wrong_ca)).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason
            .contains("TLS to the Docker Engine failed: the engine's certificate is not signed by the CA in tls.caRef"),
        "{reason}"
    );

    // The engine refuses an expired client certificate, and a client certificate it did not sign.
    for (label, leaf) in [
        ("expired", ca.issue_expired(Role::Client, &["gantry-deployer"])),
        ("foreign", other_ca.issue(Role::Client, &["gantry-deployer"])),
    ] {
        let refs = json!({
            "caRef": tls["caRef"],
            "certRef": put_secret(&format!("gantry-test/{id}/{label}-cert"), &leaf.cert).await,
            "keyRef": put_secret(&format!("gantry-test/{id}/{label}-key"), &leaf.key).await,
        });
        let failed = promote_to(&app, &env, &release, target(label, refs)).await;
        assert_eq!(failed["status"], "FAILED", "{label}: {failed:#}");
        let reason = failed["reason"].as_str().unwrap();
        assert!(
            reason.contains("TLS to the Docker Engine failed: the engine refused the client certificate"),
            "{label}: {reason}"
        );
    }

    // A reference that names nothing fails the deployment and says which.
    let missing =
        json!({ "caRef": "secretsmanager:gantry-test/none", "certRef": tls["certRef"], "keyRef": tls["keyRef"] });
    let failed = promote_to(&app, &env, &release, target("missing", missing)).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    assert!(failed["reason"].as_str().unwrap().contains("tls.caRef: there is no secret"), "{failed:#}");
    // Nothing the secrets hold is ever shown.
    let shown =
        app.ok("query { environments { targets { docker { tls { caRef certRef keyRef } } } } }", json!({})).await;
    assert!(!shown.to_string().contains("BEGIN"), "{shown}");
}

/// `base` with the fields of `changes` set (or, when null, removed).
fn with(base: &Value, changes: Value) -> Value {
    let mut merged = base.as_object().unwrap().clone();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    Value::Object(merged)
}

#[tokio::test]
async fn plaintext_docker_beyond_loopback_is_refused_when_the_target_is_added() {
    let app = TestApp::spawn().await;
    let env = app.create_environment("dev", 10).await;
    let web = app.create_component("web").await;
    let docker = |endpoint: &str, tls: Value| json!({ "name": "h", "type": "DOCKER", "docker": { "endpoint": endpoint, "tls": tls, "containerName": "web", "componentId": web } });
    let refs = json!({ "caRef": "secretsmanager:ca", "certRef": "ssm:/cert", "keyRef": "env:DOCKER_KEY" });
    for (target, why) in [
        (docker("tcp://10.0.0.5:2375", Value::Null), "anyone who can reach an unencrypted Engine API has root"),
        (docker("tcp://127.0.0.1.nip.io:2375", Value::Null), "anyone who can reach an unencrypted Engine API has root"),
        (docker("tcp+tls://10.0.0.5:2376", Value::Null), "give tls { caRef, certRef, keyRef }"),
        (
            docker("tcp+tls://10.0.0.5:2376", json!({ "caRef": "secretsmanager:ca" })),
            "needs a client certificate and key",
        ),
        (
            docker(
                "tcp+tls://10.0.0.5:2376",
                json!({ "caRef": "env:GANTRY_JWT_SECRET", "certRef": "ssm:/c", "keyRef": "ssm:/k" }),
            ),
            "env:DOCKER_<NAME>",
        ),
        (docker("tcp://127.0.0.1:2375", refs.clone()), "write tcp+tls://"),
    ] {
        let message = app.assert_rejected("BAD_USER_INPUT", ADD_TARGET, json!({ "e": env, "t": target })).await;
        assert!(message.contains(why), "{message}");
    }
    let nomad = json!({ "name": "n", "type": "NOMAD", "nomad": { "address": "http://nomad.internal:4646", "jobId": "shop",
        "tasks": [{ "name": "server", "componentId": web }] } });
    let message = app.assert_rejected("BAD_USER_INPUT", ADD_TARGET, json!({ "e": env, "t": nomad })).await;
    assert!(message.contains("must use https://"), "{message}");
    let targets = app.ok("query($e: ID!) { environment(id: $e) { targets { id } } }", json!({ "e": env })).await;
    assert_eq!(targets["environment"]["targets"], json!([]), "nothing was written");
    // A TLS endpoint with its references is taken, and shown by reference.
    let added = app
        .ok(
            "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { docker { endpoint tls { caRef certRef keyRef serverName } } } }",
            json!({ "e": env, "t": docker("tcp+tls://docker.internal:2376", refs.clone()) }),
        )
        .await;
    let mut shown = refs.clone();
    shown["serverName"] = Value::Null;
    assert_eq!(added["addDeploymentTarget"]["docker"]["tls"], shown);
}

fn nomad_job() -> Value {
    json!({ "ID": "shop", "Name": "shop", "Type": "service", "Datacenters": ["dc1"],
            "TaskGroups": [{ "Name": "shop", "Count": 1, "Tasks": [
                { "Name": "server", "Driver": "docker", "Config": { "image": "registry.example.com/acme/api:0.9" } } ] }] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomad_is_reached_with_a_private_ca_a_client_certificate_and_a_server_name() {
    let app = TestApp::spawn_with_workers().await;
    let ca = Ca::new("nomad CA");
    let id = unique();
    // As Nomad's own certificates: the server's names its role, not the address it is reached at.
    let server = ca.issue(Role::Server, &["server.global.nomad"]);
    let nomad = FakeNomad::start_tls(gantry_tests::pki::server_config(&server, Some(&ca))).await;
    nomad.seed_job(nomad_job());
    let expired = FakeNomad::start_tls(gantry_tests::pki::server_config(
        &ca.issue_expired(Role::Server, &["server.global.nomad"]),
        Some(&ca),
    ))
    .await;
    expired.seed_job(nomad_job());

    let api = app.create_component("api").await;
    app.add_version(&api, "1.0.0", &digest("api-1.0.0")).await;
    let release = json!([{ "componentId": api, "version": "1.0.0" }]);
    let env = app.create_environment("dev", 10).await;
    let client = ca.issue(Role::Client, &["gantry-deployer"]);
    let ca_ref = put_secret(&format!("gantry-test/{id}/nomad-ca"), &ca.pem()).await;
    let full = json!({
        "caRef": ca_ref,
        "certRef": put_parameter(&format!("/gantry-test/{id}/nomad-cert"), &client.cert).await,
        "keyRef": put_secret(&format!("gantry-test/{id}/nomad-key"), &client.key).await,
        "serverName": "server.global.nomad",
    });
    let target = |address: &str, tls: Value| {
        json!({ "name": "nomad", "type": "NOMAD", "nomad": { "address": address, "jobId": "shop", "tls": tls,
            "tasks": [{ "name": "server", "componentId": api }] } })
    };

    let deployed = promote_to(&app, &env, &release, target(&nomad.url, full.clone())).await;
    assert_eq!(deployed["status"], "DEPLOYED", "{deployed:#}");
    assert_eq!(nomad.job_versions("shop").len(), 2, "registered over mutual TLS");
    assert!(nomad.violations().is_empty(), "{:?}", nomad.violations());

    for (label, address, tls, why) in [
        (
            "no client certificate",
            &nomad.url,
            json!({ "caRef": ca_ref, "serverName": "server.global.nomad" }),
            "the engine requires a client certificate (set tls.certRef and tls.keyRef)",
        ),
        (
            "no server name",
            &nomad.url,
            with(&full, json!({ "serverName": null })),
            "the engine's certificate does not name this host (set tls.serverName",
        ),
        ("expired server certificate", &expired.url, full.clone(), "the engine's certificate has expired"),
    ] {
        let failed = promote_to(&app, &env, &release, target(address, tls)).await;
        assert_eq!(failed["status"], "FAILED", "{label}: {failed:#}");
        let reason = failed["reason"].as_str().unwrap();
        assert!(reason.contains(&format!("TLS to the Nomad API failed: {why}")), "{label}: {reason}");
    }
    assert_eq!(nomad.job_versions("shop").len(), 2, "nothing was registered without a verified connection");
    assert_eq!(expired.job_versions("shop").len(), 1);
}
