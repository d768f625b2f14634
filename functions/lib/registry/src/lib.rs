//! Reading OCI registries with oci-client: tag → digest (HEAD, with the Accept headers for
//! Docker v2 manifests and manifest lists and OCI manifests and indexes, so the digest is
//! the one the registry stores, never a converted schema1 one), tag listing, and the cosign
//! signatures stored for a digest (`signatures`). It reads; what a digest means for a
//! release is the domain's.

mod attestations;
mod judge;
mod reach;
mod signatures;

use async_trait::async_trait;
use gantry_domain::integrations::{RegistryAccess, RegistryCredentials, RegistryReader};
use gantry_domain::kept::Kept;
use gantry_domain::signatures::TrustedKey;
use gantry_domain::values::Digest;
use gantry_domain::{DomainError, Result};
use gantry_signing::PublicKey;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tracing::instrument;

/// Tags are listed in pages of this many.
const TAG_PAGE: usize = 1000;
/// And no more than this many are read.
const MAX_TAGS: usize = 10_000;

/// Verified manifests kept per process, of each kind.
const KEPT: usize = 4096;

/// What one stored manifest said of one image under one set of keys.
type KeptBy<V> = Kept<(String, Digest), V>;

/// Reads registries. What it verified is kept per stored manifest digest (and image and key
/// set): a manifest named by its digest cannot change, so only the tag's digest is asked again.
#[derive(Clone)]
pub struct OciRegistry {
    clients: Kept<Digest, Client>,
    kept_signatures: KeptBy<gantry_domain::signatures::SignatureVerdict>,
    kept_attestations: KeptBy<attestations::Verified>,
    /// Referrers indexes of the tag schema, by their digests.
    kept_indexes: Kept<String, oci_client::manifest::OciImageIndex>,
    /// What each registry can do (see `reach`).
    reach: Kept<Digest, reach::Reach>,
    http: reqwest::Client,
}

impl Default for OciRegistry {
    fn default() -> Self {
        Self {
            clients: Kept::new(64),
            kept_signatures: Kept::new(KEPT),
            kept_attestations: Kept::new(KEPT),
            kept_indexes: Kept::new(KEPT),
            reach: Kept::new(64),
            http: reach::http(),
        }
    }
}

impl OciRegistry {
    pub fn new() -> Self {
        Self::default()
    }
}

impl OciRegistry {
    /// The registry's `host[:port]`, as its URL parses, and a client for it: one per address
    /// and credentials, kept, since a client holds its connections and the tokens the
    /// registry gave it.
    pub(crate) fn connect(&self, access: &RegistryAccess) -> Result<(String, Client)> {
        let bad = || DomainError::internal(format!("registry url {} is not http(s)://host[:port]", access.url));
        let url = url::Url::parse(&access.url).map_err(|_| bad())?;
        let protocol = match url.scheme() {
            "http" => ClientProtocol::Http,
            "https" => ClientProtocol::Https,
            _ => return Err(bad()),
        };
        let name = url.host_str().ok_or_else(bad)?;
        let host = url.port().map_or_else(|| name.to_owned(), |port| format!("{name}:{port}"));
        let client = self
            .clients
            .get_or_keep(reach::registry_key(access), || Client::new(ClientConfig { protocol, ..Default::default() }));
        Ok((host, client))
    }
}

pub(crate) fn auth(access: &RegistryAccess) -> RegistryAuth {
    match &access.credentials {
        None => RegistryAuth::Anonymous,
        Some(RegistryCredentials::Basic { username, password }) => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
        Some(RegistryCredentials::Bearer { token }) => RegistryAuth::Bearer(token.clone()),
    }
}

pub(crate) fn failure(err: OciDistributionError) -> DomainError {
    DomainError::internal(format!("registry request failed: {err}"))
}

/// The keys, parsed: a key that is not a P-256 `PUBLIC KEY` is a configuration error.
pub(crate) fn trusted(keys: &[TrustedKey]) -> Result<Vec<(String, PublicKey)>> {
    keys.iter()
        .map(|k| {
            PublicKey::from_pem(&k.pem).map(|p| (k.name.clone(), p)).map_err(|_| {
                DomainError::validation(format!("trusted key {} is not an ECDSA P-256 PEM public key", k.name))
            })
        })
        .collect()
}

pub(crate) fn not_found(err: &OciDistributionError) -> bool {
    match err {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                oci_client::errors::OciErrorCode::ManifestUnknown | oci_client::errors::OciErrorCode::NameUnknown
            )
        }),
        _ => false,
    }
}

#[async_trait]
impl RegistryReader for OciRegistry {
    #[instrument(skip_all, fields(otel.kind = "client", url = %access.url, repository = repository, tag = tag), err(level = "info"))]
    async fn digest_of(&self, access: &RegistryAccess, repository: &str, tag: &str) -> Result<Option<Digest>> {
        let (host, client) = self.connect(access)?;
        let reference = Reference::with_tag(host, repository.to_owned(), tag.to_owned());
        match client.fetch_manifest_digest(&reference, &auth(access)).await {
            Ok(digest) => Digest::parse(&digest)
                .map(Some)
                .map_err(|_| DomainError::internal(format!("registry answered digest {digest:?}"))),
            Err(err) if not_found(&err) => Ok(None),
            Err(err) => Err(failure(err)),
        }
    }

    #[instrument(skip_all, fields(otel.kind = "client", url = %access.url, repository = repository), err(level = "info"))]
    async fn tags(&self, access: &RegistryAccess, repository: &str) -> Result<Vec<String>> {
        let (host, client) = self.connect(access)?;
        let reference = Reference::with_tag(host, repository.to_owned(), "latest".to_owned());
        let auth = auth(access);
        let mut tags: Vec<String> = Vec::new();
        loop {
            let last = tags.last().cloned();
            let page = client.list_tags(&reference, &auth, Some(TAG_PAGE), last.as_deref()).await.map_err(failure)?;
            let count = page.tags.len();
            tags.extend(page.tags);
            if count < TAG_PAGE || tags.len() >= MAX_TAGS {
                return Ok(tags);
            }
        }
    }
}
