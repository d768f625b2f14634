//! Evidence signatures. With `GANTRY_EVIDENCE_SIGNING_KEY`, each new record is a DSSE
//! envelope over its in-toto Statement signed by an asymmetric key (Ed25519 held here, or a
//! P-256 key in KMS that signs and never leaves), named by its JWK thumbprint; the key is
//! registered in the evidence key set the first time it signs, so records it signed stay
//! verifiable after it is replaced. Without it, and for records made before it, HS256 JWS
//! under `GANTRY_EVIDENCE_KEY`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_auth::JwsEvidenceSigner;
use gantry_domain::evidence::{
    EvidenceKey, EvidenceKeys, EvidenceRecord, EvidenceSigner, RecordSignature, statement_payload,
};
use gantry_domain::{DomainError, Result};
use gantry_signing::{PublicKey, SigningKey, dsse, jwk};
use tokio::sync::{OnceCell, RwLock};

use crate::agents::Kms;
use crate::config::JobSigning;

/// Where new records' signatures come from.
enum Current {
    Legacy,
    Key(SigningKey),
    Kms(Kms),
}

pub struct EvidenceSigning {
    legacy: JwsEvidenceSigner,
    current: Current,
    keys: Arc<dyn EvidenceKeys>,
    /// The current key's id and public half, once registered.
    registered: OnceCell<(String, PublicKey)>,
    /// Every registered key by id, read from the key set when a record names one not seen.
    known: RwLock<HashMap<String, PublicKey>>,
}

impl EvidenceSigning {
    /// `legacy` is the HS256 secret; `signing` the configured key, if any; `limit` bounds
    /// each KMS request.
    pub fn new(
        legacy: &[u8],
        signing: Option<&JobSigning>,
        keys: Arc<dyn EvidenceKeys>,
        limit: std::time::Duration,
    ) -> Self {
        let current = match signing {
            None => Current::Legacy,
            Some(JobSigning::Key(der)) => SigningKey::from_pkcs8(der).map_or(Current::Legacy, Current::Key),
            Some(JobSigning::Kms(key)) => Current::Kms(Kms::new(key, limit)),
        };
        Self {
            legacy: JwsEvidenceSigner::new(legacy),
            current,
            keys,
            registered: OnceCell::new(),
            known: RwLock::new(HashMap::new()),
        }
    }

    /// The current key's id, registering it in the key set the first time.
    async fn current_key(&self) -> Result<&(String, PublicKey)> {
        self.registered
            .get_or_try_init(|| async {
                let public = match &self.current {
                    Current::Key(key) => key.public(),
                    Current::Kms(kms) => kms.public().await?.clone(),
                    Current::Legacy => return Err(DomainError::internal("no evidence-signing key")),
                };
                let key_id = jwk::thumbprint(&public);
                let key = EvidenceKey {
                    key_id: key_id.clone(),
                    jwk: jwk::to_jwk(&public),
                    registered_at: chrono::Utc::now(),
                };
                self.keys.register_evidence_key(&key).await?;
                tracing::info!(key_id = %key_id, "evidence-signing key registered");
                Ok((key_id, public))
            })
            .await
    }

    /// The public key `key_id` names, from the key set.
    async fn key(&self, key_id: &str) -> Result<Option<PublicKey>> {
        if let Some(key) = self.known.read().await.get(key_id) {
            return Ok(Some(key.clone()));
        }
        let mut known = self.known.write().await;
        for key in self.keys.evidence_keys().await? {
            if let Ok(public) = jwk::from_jwk(&key.jwk) {
                known.insert(key.key_id, public);
            }
        }
        Ok(known.get(key_id).cloned())
    }
}

/// The evidence signer `config` asks for, over `repo`'s key set, and that key set.
pub fn signing(
    config: &crate::Config,
    repo: &Arc<gantry_store::DynamoRepository>,
) -> (Arc<dyn EvidenceSigner>, gantry_domain::evidence::EvidenceKeySet) {
    let keys: Arc<dyn EvidenceKeys> = repo.clone();
    let signer = EvidenceSigning::new(
        &config.evidence_key,
        config.evidence_signing.as_ref(),
        keys.clone(),
        config.aws_timeout(),
    );
    (Arc::new(signer), gantry_domain::evidence::EvidenceKeySet::new(keys))
}

/// What a record's DSSE signature signs: the PAE of its Statement.
fn signed_bytes(record: &EvidenceRecord) -> Result<Vec<u8>> {
    Ok(dsse::pae(dsse::IN_TOTO, &statement_payload(record)?))
}

#[async_trait]
impl EvidenceSigner for EvidenceSigning {
    async fn sign(&self, record: &EvidenceRecord) -> Result<RecordSignature> {
        // A record's DSSE signature is an envelope's over its Statement.
        match self.sign_envelope(dsse::IN_TOTO, &statement_payload(record)?).await? {
            Some((key_id, signature)) => {
                Ok(RecordSignature { signature: STANDARD.encode(signature), key_id: Some(key_id) })
            }
            None => Ok(RecordSignature { signature: self.legacy.sign(&record.id, &record.hash)?, key_id: None }),
        }
    }

    async fn sign_envelope(&self, payload_type: &str, payload: &[u8]) -> Result<Option<(String, Vec<u8>)>> {
        let message = dsse::pae(payload_type, payload);
        let signature = match &self.current {
            Current::Legacy => return Ok(None),
            Current::Key(key) => key.sign(&message),
            Current::Kms(kms) => kms.sign(&message).await?,
        };
        let (key_id, _) = self.current_key().await?;
        Ok(Some((key_id.clone(), signature)))
    }

    async fn verify(&self, record: &EvidenceRecord) -> Result<bool> {
        let Some(key_id) = &record.key_id else { return Ok(self.legacy.verify(&record.signature, &record.hash)) };
        let Some(key) = self.key(key_id).await? else { return Ok(false) };
        let Ok(signature) = STANDARD.decode(&record.signature) else { return Ok(false) };
        Ok(key.verify(&signed_bytes(record)?, &signature))
    }
}
