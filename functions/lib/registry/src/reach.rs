//! What a registry can do, learned once per process, so a cached component costs three
//! requests: the `.sig` tag, the `.att` tag, and the referrers (the API, or the tag schema's
//! tag where the registry has no API, whose index is kept by its digest).
//!
//! oci-client hides both facts this needs: whether its referrers call fell back to the tag
//! schema, and that a registry asks for no credentials at all (it then probes `GET /v2/`
//! before every request, having no token to keep). So the registry is asked once, with
//! plain HTTP: `GET /v2/` without credentials (an answer without a challenge: open), and the
//! referrers API for the first subject (404: none). An open registry's tag digests are then
//! read with plain `HEAD`s too; any other answer leaves oci-client's path as it was.

use gantry_telemetry::SendTraced as _;
use std::time::Duration;

use gantry_domain::integrations::{RegistryAccess, RegistryCredentials};
use gantry_domain::values::Digest;
use oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE;

use crate::OciRegistry;

/// What is known of one registry (by address and credentials).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reach {
    /// It answers `GET /v2/` without asking for credentials, and none are configured.
    pub open: bool,
    /// It answers the OCI 1.1 referrers API (`None`: not known; oci-client decides).
    pub referrers_api: Option<bool>,
}

/// The Accept header of a manifest `HEAD`: every manifest and index type.
const MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The plain HTTP client the probes and an open registry's `HEAD`s use: bounded in time.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

impl OciRegistry {
    /// What the registry at `access` can do, asked once per process (the referrers API with
    /// `repository` and `digest`, the first subject it is asked about).
    pub(crate) async fn reach(&self, access: &RegistryAccess, repository: &str, digest: &Digest) -> Reach {
        let key = registry_key(access);
        if let Some(reach) = self.reach.get(&key) {
            return reach;
        }
        let Some(base) = base(access) else { return Reach::default() };
        let mut reach = Reach::default();
        if access.credentials.is_none() {
            let answer = self.http.get(format!("{base}/v2/")).send_traced().await;
            reach.open = answer.is_ok_and(|r| r.status().is_success() && !r.headers().contains_key("www-authenticate"));
        }
        let mut referrers = self.http.get(format!("{base}/v2/{repository}/referrers/{digest}"));
        referrers = match &access.credentials {
            Some(RegistryCredentials::Basic { username, password }) => referrers.basic_auth(username, Some(password)),
            Some(RegistryCredentials::Bearer { token }) => referrers.bearer_auth(token),
            None => referrers,
        };
        reach.referrers_api = match referrers.header("accept", OCI_IMAGE_INDEX_MEDIA_TYPE).send_traced().await {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => Some(false),
            Ok(r) if r.status().is_success() => Some(true),
            _ => None,
        };
        tracing::info!(url = %access.url, open = reach.open, referrers_api = ?reach.referrers_api, "registry reached");
        self.reach.keep(key, reach);
        reach
    }

    /// The digest an open registry's tag points at (`Some(None)`: no such tag), by a plain
    /// `HEAD`; `None` when the repository asks for credentials after all (oci-client's path
    /// then answers, with its token flow).
    pub(crate) async fn head_open(
        &self,
        access: &RegistryAccess,
        repository: &str,
        tag: &str,
    ) -> gantry_domain::Result<Option<Option<String>>> {
        let failed = |why: String| gantry_domain::DomainError::internal(format!("registry request failed: {why}"));
        let base = base(access).ok_or_else(|| failed(format!("{} is not http(s)://host[:port]", access.url)))?;
        let url = format!("{base}/v2/{repository}/manifests/{tag}");
        let answer =
            self.http.head(url).header("accept", MANIFESTS).send_traced().await.map_err(|e| failed(e.to_string()))?;
        match answer.status() {
            reqwest::StatusCode::NOT_FOUND => Ok(Some(None)),
            reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => Ok(None),
            status if status.is_success() => {
                let digest = answer.headers().get("docker-content-digest").and_then(|v| v.to_str().ok());
                digest.map(|d| Some(Some(d.to_owned()))).ok_or_else(|| failed("no Docker-Content-Digest".into()))
            }
            status => Err(failed(format!("HEAD {tag} answered {status}"))),
        }
    }
}

impl OciRegistry {
    /// The digest `tag` in `repository` points at (`None`: no such tag): a plain `HEAD` on an
    /// open registry, oci-client's otherwise. `digest` is the image's, should the registry
    /// be asked about for the first time.
    pub(crate) async fn tag_digest(
        &self,
        (access, client, host): (&RegistryAccess, &oci_client::Client, &str),
        repository: &str,
        digest: &Digest,
        tag: &str,
    ) -> gantry_domain::Result<Option<String>> {
        if self.reach(access, repository, digest).await.open
            && let Some(found) = self.head_open(access, repository, tag).await?
        {
            return Ok(found);
        }
        let tagged = oci_client::Reference::with_tag(host.to_owned(), repository.to_owned(), tag.to_owned());
        match client.fetch_manifest_digest(&tagged, &crate::auth(access)).await {
            Ok(stored) => Ok(Some(stored)),
            Err(err) if crate::not_found(&err) => Ok(None),
            Err(err) => Err(crate::failure(err)),
        }
    }

    /// The referrers of the image at `digest`: the API's answer, or, on a registry known to
    /// have none, the index the referrers tag schema's tag points at (kept by its digest).
    pub(crate) async fn referrers(
        &self,
        (access, client, host): (&RegistryAccess, &oci_client::Client, &str),
        repository: &str,
        digest: &Digest,
    ) -> gantry_domain::Result<oci_client::manifest::OciImageIndex> {
        let subject = oci_client::Reference::with_digest(host.to_owned(), repository.to_owned(), digest.to_string());
        if self.reach(access, repository, digest).await.referrers_api != Some(false) {
            return client.pull_referrers(&subject, None).await.map_err(crate::failure);
        }
        let tag = digest.as_str().replace(':', "-");
        let Some(index) = self.tag_digest((access, client, host), repository, digest, &tag).await? else {
            return Ok(empty_index());
        };
        if let Some(kept) = self.kept_indexes.get(&index) {
            return Ok(kept);
        }
        let reference = oci_client::Reference::with_digest(host.to_owned(), repository.to_owned(), index.clone());
        let raw = match client.pull_manifest_raw(&reference, &crate::auth(access), &[OCI_IMAGE_INDEX_MEDIA_TYPE]).await
        {
            Ok((raw, _)) => raw,
            Err(err) if crate::not_found(&err) => return Ok(empty_index()),
            Err(err) => return Err(crate::failure(err)),
        };
        // Not an index (the tag holds something else): no referrers, as the schema says.
        let parsed: oci_client::manifest::OciImageIndex =
            serde_json::from_slice(&raw).unwrap_or_else(|_| empty_index());
        self.kept_indexes.keep(index, parsed.clone());
        Ok(parsed)
    }
}

fn empty_index() -> oci_client::manifest::OciImageIndex {
    oci_client::manifest::OciImageIndex {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_INDEX_MEDIA_TYPE.to_owned()),
        manifests: Vec::new(),
        artifact_type: None,
        annotations: None,
    }
}

/// `scheme://host[:port]` of the registry, as its URL parses.
fn base(access: &RegistryAccess) -> Option<String> {
    let url = url::Url::parse(&access.url).ok()?;
    let host = url.host_str()?;
    matches!(url.scheme(), "http" | "https")
        .then(|| format!("{}://{}{}", url.scheme(), host, url.port().map(|p| format!(":{p}")).unwrap_or_default()))
}

/// Names a registry by its address and credentials: what a client and a `Reach` are kept by.
pub(crate) fn registry_key(access: &RegistryAccess) -> Digest {
    let credentials = serde_json::to_string(&access.credentials).unwrap_or_default();
    Digest::of(format!("{}\n{credentials}", access.url).as_bytes())
}
