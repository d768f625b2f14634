//! Receiving a registry webhook: authenticate, parse, enqueue, keep the raw request.
//! Authentication and parsing come first, so a rejected request writes nothing.
//!
//! Intake is queue-first: the events are on the queue before the delivery is stored, so no
//! crash can leave a stored delivery whose events never reach ingest. The queue drops a
//! resent event within five minutes by its delivery key, and ingest applies an event twice
//! with the effect of once; the stored delivery (a conditional write) tells a replay from a
//! first delivery, so every replay gets the same answer.

use std::sync::Arc;

use chrono::Utc;
use gantry_domain::builds::{BuildRecord, Builds};
use gantry_domain::ci::{CiIntegrationId, CiIntegrations, CiProvider};
use gantry_domain::events::{Delivery, DeliveryLog, EventQueue, QueuedImageEvent};
use gantry_domain::integrations::{IntegrationRef, Integrations};
use gantry_domain::steps::Nudges;
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::{Inbound, RegistrySource, auth_scheme, ci, registry, verify};

/// What became of a webhook's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Events of a first delivery.
    pub accepted: usize,
    /// Events of a delivery received before (a replay).
    pub duplicates: usize,
}

#[derive(Clone)]
pub struct Intake {
    integrations: Integrations,
    /// CI integrations, whose own webhook secrets verify their CI webhooks.
    ci: CiIntegrations,
    deliveries: Arc<dyn DeliveryLog>,
    queue: Arc<dyn EventQueue>,
    builds: Builds,
    nudges: Nudges,
}

/// Turns a CI system's body into a build, or `None` when it reports no finished build.
type BuildParser = fn(&[u8]) -> Result<Option<BuildRecord>>;

/// The CI systems that post to `/webhooks/ci/{system}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiSource {
    /// GitHub Actions `workflow_run`, signed with the GitHub integration's secret.
    Github,
    /// GitLab `Pipeline Hook`, with the GitLab integration's `X-Gitlab-Token`.
    Gitlab,
}

impl CiSource {
    fn provider(self) -> CiProvider {
        match self {
            Self::Github => CiProvider::Github,
            Self::Gitlab => CiProvider::Gitlab,
        }
    }
}

impl Intake {
    pub fn new(
        (integrations, ci): (Integrations, CiIntegrations),
        deliveries: Arc<dyn DeliveryLog>,
        queue: Arc<dyn EventQueue>,
        builds: Builds,
        nudges: Nudges,
    ) -> Self {
        Self { integrations, ci, deliveries, queue, builds, nudges }
    }

    /// Records a CI system's build event. `Ok(false)` for a replayed delivery or an event
    /// that is not a finished build. Posted to a CI integration's own path (`integration`),
    /// it is verified with that integration's webhook secret and may bring forward the
    /// checks of steps waiting on that integration's runs, and no other's; posted to the
    /// provider's path, it is verified with a registry integration's secret and only
    /// records the build (for `requireBuildSuccess`).
    #[instrument(skip_all, fields(source = ?source), err(level = "info"))]
    pub async fn receive_ci(&self, source: CiSource, integration: Option<&str>, inbound: &Inbound<'_>) -> Result<bool> {
        let (kind, parse): (RegistrySource, BuildParser) = match source {
            CiSource::Github => (RegistrySource::Github, ci::github_workflow_run),
            CiSource::Gitlab => (RegistrySource::Gitlab, ci::gitlab_pipeline),
        };
        let scope: Option<CiIntegrationId> = match integration {
            Some(id) => {
                let (found, secret) = self.ci.webhook_receiver(id, source.provider()).await?;
                // The same scheme as the provider's registry webhooks, with this integration's secret.
                verify::authenticate(auth_scheme(kind), &secret, inbound)?;
                Some(found.id)
            }
            None => {
                self.authenticate(kind, inbound).await?;
                None
            }
        };
        if source == CiSource::Github && inbound.event.is_some_and(|e| e != "workflow_run") {
            return Ok(false);
        }
        let Some(build) = parse(inbound.body)? else { return Ok(false) };
        let delivery = inbound.delivery_id.filter(|d| !d.trim().is_empty()).map(str::to_owned).unwrap_or_else(|| {
            // Without a delivery id, the build itself is the key: its status is part of it.
            format!("{}-{:?}", build.build_id, build.status)
        });
        let key = match scope {
            Some(id) => format!("ci-{id}#{delivery}"),
            None => format!("ci-{kind}#{delivery}"),
        };
        if !self.deliveries.claim(&key).await? {
            return Ok(false);
        }
        let run_id = build.build_id.clone();
        self.builds.record(build).await?;
        // A promotion step of this integration may be waiting for this run.
        if let Some(id) = scope {
            self.nudges.nudge(id, &run_id).await;
        }
        Ok(true)
    }

    #[instrument(skip_all, fields(source = %source, integration_id, accepted, duplicates), err(level = "info"))]
    pub async fn receive(&self, source: RegistrySource, inbound: &Inbound<'_>) -> Result<Receipt> {
        let integration = self.authenticate(source, inbound).await?;
        tracing::Span::current().record("integration_id", tracing::field::display(integration.id));
        let events: Vec<QueuedImageEvent> = registry::parse(source, inbound)?
            .into_iter()
            .map(|event| QueuedImageEvent { integration_id: integration.id, event })
            .collect();
        if events.is_empty() {
            return Ok(Receipt { accepted: 0, duplicates: 0 });
        }
        let delivery = Delivery {
            key: Delivery::key_for(&events),
            integration_id: integration.id,
            events: events.len(),
            images: Delivery::images_of(&events),
            compressed_body: compress(inbound.body)?,
            received_at: Utc::now(),
        };
        self.queue.enqueue(&events).await?;
        let first = self.deliveries.record(&delivery).await?;
        let (accepted, duplicates) = if first { (events.len(), 0) } else { (0, events.len()) };
        let span = tracing::Span::current();
        span.record("accepted", accepted);
        span.record("duplicates", duplicates);
        Ok(Receipt { accepted, duplicates })
    }

    /// The integration the request proves it comes from.
    pub async fn authenticate(&self, source: RegistrySource, inbound: &Inbound<'_>) -> Result<IntegrationRef> {
        let scheme = auth_scheme(source);
        if let Some(token) = verify::presented_secret(scheme, inbound) {
            // The secret's hash is the lookup key: finding it proves the token.
            return self
                .integrations
                .by_presented_secret(source, token)
                .await?
                .ok_or_else(|| DomainError::Unauthorized(format!("no {source} integration has that secret")));
        }
        // Signed requests: try each integration of the kind (there are few).
        for (integration, secret) in self.integrations.with_secrets_of_kind(source).await? {
            if verify::authenticate(scheme, &secret, inbound).is_ok() {
                return Ok(IntegrationRef::from(&integration));
            }
        }
        // Say why, without saying which integration came closest.
        verify::authenticate(scheme, b"", inbound)?;
        Err(DomainError::Unauthorized(format!("the signature matches no {source} integration")))
    }
}

/// A compressed body larger than this is refused: it would not fit a DynamoDB item.
pub const MAX_STORED_BODY: usize = 350 * 1024;

/// The body gzip-compressed, or `Validation` when even that is too large to keep.
fn compress(body: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).map_err(DomainError::internal)?;
    let compressed = encoder.finish().map_err(DomainError::internal)?;
    if compressed.len() > MAX_STORED_BODY {
        return Err(DomainError::validation(format!(
            "the payload is too large to keep ({} bytes compressed; at most {MAX_STORED_BODY})",
            compressed.len()
        )));
    }
    Ok(compressed)
}
