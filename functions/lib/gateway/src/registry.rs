//! Registry payloads into [`ImageEvent`]s. Each parser reads only the fields it needs, so
//! unknown fields never break it, and no input makes it panic (see the property tests).

use gantry_domain::DomainError;
use gantry_domain::values::Digest;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use crate::{ImageAction, ImageEvent, Inbound, MANIFEST_MEDIA_TYPES, RegistrySource};

/// Parses a verified webhook from `source` into image events. Events that make no version
/// (pulls, blob pushes, untagged child manifests, failed ECR actions) are dropped, so the
/// result may be empty.
pub fn parse(source: RegistrySource, inbound: &Inbound<'_>) -> Result<Vec<ImageEvent>, DomainError> {
    match source {
        RegistrySource::Distribution => distribution(inbound.body),
        RegistrySource::Github => github(inbound),
        RegistrySource::Harbor => harbor(inbound.body),
        RegistrySource::Dockerhub => dockerhub(inbound.body),
        RegistrySource::Quay => quay(inbound.body),
        RegistrySource::Ecr => ecr(inbound.body),
        RegistrySource::Gitlab => {
            Err(DomainError::validation("GitLab integrations post pipeline events to /webhooks/ci/gitlab"))
        }
    }
}

fn json<T: DeserializeOwned>(source: RegistrySource, body: &[u8]) -> Result<T, DomainError> {
    serde_json::from_slice(body).map_err(|e| DomainError::validation(format!("{source} payload is not valid: {e}")))
}

/// A digest claim from a payload: kept when well-formed, dropped otherwise (it is only a hint).
fn hint(raw: Option<&str>) -> Option<Digest> {
    raw.and_then(|d| Digest::parse(d).ok())
}

fn non_empty(raw: Option<String>) -> Option<String> {
    raw.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// An id for payloads that carry none: the body's hash, and the event's place in it.
fn body_id(body: &[u8], index: usize) -> String {
    format!("{}-{index}", &hex::encode(Sha256::digest(body))[..32])
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

// ----- CNCF distribution -----

#[derive(Deserialize)]
struct DistributionEnvelope {
    events: Vec<DistributionEvent>,
}

#[derive(Deserialize)]
struct DistributionEvent {
    id: String,
    action: String,
    target: DistributionTarget,
    request: Option<DistributionRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DistributionTarget {
    media_type: Option<String>,
    digest: Option<String>,
    repository: String,
    url: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct DistributionRequest {
    host: Option<String>,
}

fn distribution(body: &[u8]) -> Result<Vec<ImageEvent>, DomainError> {
    let envelope: DistributionEnvelope = json(RegistrySource::Distribution, body)?;
    let mut out = Vec::new();
    for e in envelope.events {
        let tag = non_empty(e.target.tag);
        let action = match (e.action.as_str(), &tag, e.target.media_type.as_deref()) {
            ("push", Some(_), Some(media)) if MANIFEST_MEDIA_TYPES.contains(&media) => ImageAction::Pushed,
            // A delete sends one event with the digest only and one with the tag only.
            ("delete", Some(_), _) => ImageAction::TagDeleted,
            _ => continue,
        };
        let registry = e.request.and_then(|r| r.host).or_else(|| e.target.url.as_deref().and_then(host_of));
        out.push(ImageEvent {
            source: RegistrySource::Distribution,
            delivery_id: e.id,
            action,
            registry,
            repository: e.target.repository,
            tag,
            digest: hint(e.target.digest.as_deref()),
            media_type: e.target.media_type,
        });
    }
    Ok(out)
}

// ----- GitHub Packages -----

#[derive(Deserialize)]
struct GithubEnvelope {
    action: String,
    #[serde(alias = "package")]
    registry_package: GithubPackage,
}

#[derive(Deserialize)]
struct GithubPackage {
    name: String,
    namespace: Option<String>,
    ecosystem: Option<String>,
    package_type: Option<String>,
    owner: Option<GithubOwner>,
    package_version: GithubVersion,
}

#[derive(Deserialize)]
struct GithubOwner {
    login: String,
}

#[derive(Deserialize)]
struct GithubVersion {
    version: String,
    container_metadata: Option<GithubContainer>,
}

#[derive(Deserialize)]
struct GithubContainer {
    tag: Option<GithubTag>,
}

#[derive(Deserialize)]
struct GithubTag {
    name: Option<String>,
}

fn github(inbound: &Inbound<'_>) -> Result<Vec<ImageEvent>, DomainError> {
    if let Some(event) = inbound.event
        && event != "registry_package"
        && event != "package"
    {
        return Ok(Vec::new());
    }
    let delivery_id = inbound
        .delivery_id
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| DomainError::validation("github webhook lacks X-GitHub-Delivery"))?;
    let envelope: GithubEnvelope = json(RegistrySource::Github, inbound.body)?;
    let package = envelope.registry_package;
    let is_container = [package.ecosystem.as_deref(), package.package_type.as_deref()]
        .into_iter()
        .flatten()
        .any(|t| t.eq_ignore_ascii_case("docker") || t.eq_ignore_ascii_case("container"));
    if !is_container || !matches!(envelope.action.as_str(), "published" | "updated") {
        return Ok(Vec::new());
    }
    let owner = package
        .owner
        .map(|o| o.login)
        .or_else(|| package.namespace.as_deref().and_then(|n| n.split('/').next()).map(str::to_owned))
        .ok_or_else(|| DomainError::validation("github package names no owner"))?;
    let tag = non_empty(package.package_version.container_metadata.and_then(|m| m.tag).and_then(|t| t.name));
    Ok(vec![ImageEvent {
        source: RegistrySource::Github,
        delivery_id: delivery_id.to_owned(),
        action: ImageAction::Pushed,
        registry: Some("ghcr.io".to_owned()),
        repository: format!("{}/{}", owner.to_ascii_lowercase(), package.name.to_ascii_lowercase()),
        tag,
        digest: hint(Some(&package.package_version.version)),
        media_type: None,
    }])
}

// ----- Harbor -----

#[derive(Deserialize)]
struct HarborEnvelope {
    #[serde(rename = "type")]
    kind: String,
    event_data: HarborData,
}

#[derive(Deserialize)]
struct HarborData {
    resources: Vec<HarborResource>,
    repository: HarborRepository,
}

#[derive(Deserialize)]
struct HarborResource {
    digest: Option<String>,
    tag: Option<String>,
    resource_url: Option<String>,
}

#[derive(Deserialize)]
struct HarborRepository {
    repo_full_name: String,
}

fn harbor(body: &[u8]) -> Result<Vec<ImageEvent>, DomainError> {
    let envelope: HarborEnvelope = json(RegistrySource::Harbor, body)?;
    let action = match envelope.kind.as_str() {
        "PUSH_ARTIFACT" => ImageAction::Pushed,
        "DELETE_ARTIFACT" => ImageAction::TagDeleted,
        _ => return Ok(Vec::new()),
    };
    let repository = envelope.event_data.repository.repo_full_name;
    Ok(envelope
        .event_data
        .resources
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let tag = non_empty(r.tag);
            (action == ImageAction::Pushed || tag.is_some()).then(|| ImageEvent {
                source: RegistrySource::Harbor,
                delivery_id: body_id(body, i),
                action,
                registry: r.resource_url.as_deref().and_then(host_of),
                repository: repository.clone(),
                tag,
                digest: hint(r.digest.as_deref()),
                media_type: None,
            })
        })
        .collect())
}

// ----- Docker Hub -----

#[derive(Deserialize)]
struct DockerhubEnvelope {
    push_data: DockerhubPush,
    repository: DockerhubRepository,
}

#[derive(Deserialize)]
struct DockerhubPush {
    tag: Option<String>,
    pushed_at: Option<serde_json::Number>,
}

#[derive(Deserialize)]
struct DockerhubRepository {
    repo_name: String,
}

fn dockerhub(body: &[u8]) -> Result<Vec<ImageEvent>, DomainError> {
    let envelope: DockerhubEnvelope = json(RegistrySource::Dockerhub, body)?;
    let Some(tag) = non_empty(envelope.push_data.tag) else {
        return Ok(Vec::new());
    };
    let repo = envelope.repository.repo_name;
    // Official images are `library/<name>` in the registry.
    let repository = if repo.contains('/') { repo.clone() } else { format!("library/{repo}") };
    let pushed_at = envelope.push_data.pushed_at.map(|n| n.to_string()).unwrap_or_default();
    Ok(vec![ImageEvent {
        source: RegistrySource::Dockerhub,
        delivery_id: format!("{repo}:{tag}@{pushed_at}"),
        action: ImageAction::Pushed,
        registry: Some("docker.io".to_owned()),
        repository,
        tag: Some(tag),
        digest: None,
        media_type: None,
    }])
}

// ----- Quay -----

#[derive(Deserialize)]
struct QuayEnvelope {
    repository: String,
    docker_url: Option<String>,
    #[serde(default)]
    updated_tags: Vec<String>,
}

fn quay(body: &[u8]) -> Result<Vec<ImageEvent>, DomainError> {
    let envelope: QuayEnvelope = json(RegistrySource::Quay, body)?;
    let registry = envelope.docker_url.as_deref().and_then(host_of).or_else(|| Some("quay.io".to_owned()));
    Ok(envelope
        .updated_tags
        .into_iter()
        .filter_map(|t| non_empty(Some(t)))
        .enumerate()
        .map(|(i, tag)| ImageEvent {
            source: RegistrySource::Quay,
            delivery_id: body_id(body, i),
            action: ImageAction::Pushed,
            registry: registry.clone(),
            repository: envelope.repository.clone(),
            tag: Some(tag),
            digest: None,
            media_type: None,
        })
        .collect())
}

// ----- Amazon ECR (EventBridge) -----

#[derive(Deserialize)]
struct EcrEnvelope {
    id: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    account: Option<String>,
    region: Option<String>,
    detail: EcrDetail,
}

#[derive(Deserialize)]
struct EcrDetail {
    result: Option<String>,
    #[serde(rename = "repository-name")]
    repository_name: String,
    #[serde(rename = "image-digest")]
    image_digest: Option<String>,
    #[serde(rename = "image-tag")]
    image_tag: Option<String>,
    #[serde(rename = "action-type")]
    action_type: String,
}

fn ecr(body: &[u8]) -> Result<Vec<ImageEvent>, DomainError> {
    let envelope: EcrEnvelope = json(RegistrySource::Ecr, body)?;
    let d = envelope.detail;
    if envelope.detail_type != "ECR Image Action" || d.result.as_deref() != Some("SUCCESS") {
        return Ok(Vec::new());
    }
    let tag = non_empty(d.image_tag);
    let action = match (d.action_type.as_str(), &tag) {
        ("PUSH", Some(_)) => ImageAction::Pushed,
        ("DELETE", Some(_)) => ImageAction::TagDeleted,
        _ => return Ok(Vec::new()),
    };
    let registry = match (envelope.account, envelope.region) {
        (Some(account), Some(region)) => Some(format!("{account}.dkr.ecr.{region}.amazonaws.com")),
        _ => None,
    };
    Ok(vec![ImageEvent {
        source: RegistrySource::Ecr,
        delivery_id: envelope.id,
        action,
        registry,
        repository: d.repository_name,
        tag,
        digest: hint(d.image_digest.as_deref()),
        media_type: None,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A captured request: `{path, headers, body}` or a bare body.
    fn sample(name: &str) -> (Vec<u8>, serde_json::Value) {
        let path = format!("{}/../../../tests/fixtures/samples/{name}", env!("CARGO_MANIFEST_DIR"));
        let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        match raw.get("body") {
            Some(serde_json::Value::String(body)) => (body.clone().into_bytes(), raw["headers"].clone()),
            Some(body) => (serde_json::to_vec(body).unwrap(), raw["headers"].clone()),
            None => (serde_json::to_vec(&raw).unwrap(), serde_json::Value::Null),
        }
    }

    fn parse_body(source: RegistrySource, body: &[u8]) -> Vec<ImageEvent> {
        parse(source, &Inbound { body, delivery_id: Some("d-1"), ..Default::default() }).unwrap()
    }

    #[test]
    fn distribution_tagged_push() {
        let (body, headers) = sample("registry/distribution-push-tagged.with-headers.json");
        assert_eq!(headers["Authorization"], "Bearer test-token");
        let events = parse_body(RegistrySource::Distribution, &body);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.delivery_id, "cc8c504c-f499-4e63-ab6e-59ca9b81b9a5");
        assert_eq!(e.action, ImageAction::Pushed);
        assert_eq!(e.image_repository(), "127.0.0.1:15000/demo/web");
        assert_eq!(e.tag.as_deref(), Some("1.0"));
        assert_eq!(
            e.digest.as_ref().unwrap().as_str(),
            "sha256:c766317cc562d467ef0ea4058a0d825e6c18a8cad80c113904ad40c004980b27"
        );
    }

    #[test]
    fn distribution_oci_index_push() {
        let (body, _) = sample("registry/distribution-push-oci-index.json");
        let events = parse_body(RegistrySource::Distribution, &body);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].media_type.as_deref(), Some("application/vnd.oci.image.index.v1+json"));
        assert_eq!(events[0].tag.as_deref(), Some("multi"));
    }

    #[test]
    fn distribution_pulls_are_ignored_and_deletes_kept() {
        let (body, _) = sample("registry/distribution-pull.json");
        assert!(parse_body(RegistrySource::Distribution, &body).is_empty());
        let (body, _) = sample("registry/distribution-delete-tag.json");
        let events = parse_body(RegistrySource::Distribution, &body);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, ImageAction::TagDeleted);
        assert_eq!(events[0].tag.as_deref(), Some("2.0"));
        assert_eq!(events[0].digest, None);
    }

    #[test]
    fn distribution_ignores_blobs_and_untagged_children() {
        let body = br#"{"events":[
            {"id":"a","action":"push","target":{"mediaType":"application/octet-stream","repository":"r","digest":"sha256:00","tag":"x"}},
            {"id":"b","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"r"}},
            {"id":"c","action":"delete","target":{"repository":"r","digest":"sha256:00"}}]}"#;
        assert!(parse_body(RegistrySource::Distribution, body).is_empty());
    }

    #[test]
    fn github_package_published() {
        let (body, _) = sample("github/registry_package.published.docker.json");
        let events = parse(
            RegistrySource::Github,
            &Inbound {
                body: &body,
                delivery_id: Some("72d3162e"),
                event: Some("registry_package"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.delivery_id, "72d3162e");
        assert_eq!(e.image_repository(), "ghcr.io/codertocat/hello-world-npm");
        assert_eq!(e.tag, None, "an empty tag name is no tag");
        assert_eq!(
            e.digest.as_ref().unwrap().as_str(),
            "sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498"
        );
        // Without a delivery id there is nothing to deduplicate on.
        assert!(parse(RegistrySource::Github, &Inbound { body: &body, ..Default::default() }).is_err());
        // Other GitHub events are not image events.
        let other = Inbound { body: &body, delivery_id: Some("x"), event: Some("ping"), ..Default::default() };
        assert!(parse(RegistrySource::Github, &other).unwrap().is_empty());
    }

    #[test]
    fn harbor_push() {
        let body = br#"{"type":"PUSH_ARTIFACT","occur_at":1680000000,"operator":"admin","event_data":{
            "resources":[{"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","tag":"v1.2.0",
                          "resource_url":"harbor.example.com/library/app:v1.2.0"}],
            "repository":{"name":"app","namespace":"library","repo_full_name":"library/app","repo_type":"private"}}}"#;
        let events = parse_body(RegistrySource::Harbor, body);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].image_repository(), "harbor.example.com/library/app");
        assert_eq!(events[0].tag.as_deref(), Some("v1.2.0"));
        assert!(events[0].digest.is_some());
        assert_eq!(parse_body(RegistrySource::Harbor, body)[0].delivery_id, events[0].delivery_id, "stable ids");
        let scan = br#"{"type":"SCANNING_COMPLETED","event_data":{"resources":[],"repository":{"repo_full_name":"library/app"}}}"#;
        assert!(parse_body(RegistrySource::Harbor, scan).is_empty());
    }

    #[test]
    fn dockerhub_push() {
        let body = br#"{"callback_url":"https://registry.hub.docker.com/u/acme/web/hook/abc/","push_data":{"pushed_at":1417566161,"pusher":"ci","tag":"2.0.1"},
                        "repository":{"repo_name":"acme/web","namespace":"acme","name":"web"}}"#;
        let events = parse_body(RegistrySource::Dockerhub, body);
        assert_eq!(events[0].image_repository(), "docker.io/acme/web");
        assert_eq!(events[0].tag.as_deref(), Some("2.0.1"));
        assert_eq!(events[0].delivery_id, "acme/web:2.0.1@1417566161");
        let official = br#"{"push_data":{"tag":"1"},"repository":{"repo_name":"nginx"}}"#;
        assert_eq!(parse_body(RegistrySource::Dockerhub, official)[0].repository, "library/nginx");
    }

    #[test]
    fn quay_push() {
        let body = br#"{"repository":"acme/api","namespace":"acme","name":"api","docker_url":"quay.io/acme/api","homepage":"https://quay.io/repository/acme/api","updated_tags":["1.0.0","latest"]}"#;
        let events = parse_body(RegistrySource::Quay, body);
        let tags: Vec<_> = events.iter().map(|e| e.tag.clone().unwrap()).collect();
        assert_eq!(tags, ["1.0.0", "latest"]);
        assert_eq!(events[0].image_repository(), "quay.io/acme/api");
        assert_ne!(events[0].delivery_id, events[1].delivery_id);
    }

    #[test]
    fn ecr_image_action() {
        let body = br#"{"version":"0","id":"13cde686-328b-6117-af20-0e5566167482","detail-type":"ECR Image Action","source":"aws.ecr",
            "account":"123456789012","time":"2019-11-16T01:54:34Z","region":"us-west-2","resources":[],
            "detail":{"result":"SUCCESS","repository-name":"my-repository-name",
                      "image-digest":"sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd","action-type":"PUSH","image-tag":"v1.0.0"}}"#;
        let events = parse_body(RegistrySource::Ecr, body);
        assert_eq!(events[0].delivery_id, "13cde686-328b-6117-af20-0e5566167482");
        assert_eq!(events[0].image_repository(), "123456789012.dkr.ecr.us-west-2.amazonaws.com/my-repository-name");
        let failed = String::from_utf8_lossy(body).replace("SUCCESS", "FAILURE");
        assert!(parse_body(RegistrySource::Ecr, failed.as_bytes()).is_empty());
    }

    #[test]
    fn malformed_bodies_are_validation_errors() {
        for source in RegistrySource::ALL {
            for body in [&b"{not json"[..], b"[]", b"{}", b"null"] {
                let err = parse(
                    source,
                    &Inbound { body, delivery_id: Some("d"), event: Some("registry_package"), ..Default::default() },
                )
                .unwrap_err();
                assert_eq!(err.code(), "BAD_USER_INPUT", "{source} {}", String::from_utf8_lossy(body));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes never panic a parser.
        #[test]
        fn parsers_never_panic_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            for source in RegistrySource::ALL {
                let _ = parse(source, &Inbound { body: &body, delivery_id: Some("d"), ..Default::default() });
            }
        }

        /// Well-formed JSON with the right keys but arbitrary values never panics either.
        #[test]
        fn parsers_never_panic_on_shaped_json(
            action in "[a-z]{0,8}", media in ".{0,40}", repo in ".{0,40}", tag in ".{0,20}", digest in ".{0,80}", url in ".{0,40}",
        ) {
            let bodies = [
                serde_json::json!({"events":[{"id":"x","action":action,"target":{"mediaType":media,"repository":repo,"tag":tag,"digest":digest,"url":url}}]}),
                serde_json::json!({"action":action,"registry_package":{"name":repo,"namespace":url,"ecosystem":"docker","package_version":{"version":digest,"container_metadata":{"tag":{"name":tag}}}}}),
                serde_json::json!({"type":"PUSH_ARTIFACT","event_data":{"resources":[{"digest":digest,"tag":tag,"resource_url":url}],"repository":{"repo_full_name":repo}}}),
                serde_json::json!({"push_data":{"tag":tag},"repository":{"repo_name":repo}}),
                serde_json::json!({"repository":repo,"docker_url":url,"updated_tags":[tag]}),
                serde_json::json!({"id":"x","detail-type":"ECR Image Action","account":action,"region":url,"detail":{"result":"SUCCESS","repository-name":repo,"image-digest":digest,"action-type":"PUSH","image-tag":tag}}),
            ];
            for (source, body) in RegistrySource::ALL.into_iter().zip(bodies) {
                let bytes = serde_json::to_vec(&body).unwrap();
                let _ = parse(source, &Inbound { body: &bytes, delivery_id: Some("d"), event: Some("package"), ..Default::default() });
            }
        }
    }
}
