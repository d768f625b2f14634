//! Receiving a registry webhook: authenticate, parse, drop duplicates, keep the raw event,
//! enqueue. Authentication and parsing come first, so a rejected request writes nothing.

use std::sync::Arc;

use chrono::Utc;
use gantry_domain::builds::{BuildRecord, Builds};
use gantry_domain::events::{Delivery, DeliveryLog, EventQueue, QueuedImageEvent, Recorded};
use gantry_domain::integrations::{Integrations, RegistryIntegration};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::{Inbound, RegistrySource, auth_scheme, ci, registry, verify};

/// What became of a webhook's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Events queued by this request.
    pub accepted: usize,
    /// Events seen and queued before.
    pub duplicates: usize,
}

#[derive(Clone)]
pub struct Intake {
    integrations: Integrations,
    deliveries: Arc<dyn DeliveryLog>,
    queue: Arc<dyn EventQueue>,
    builds: Builds,
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

impl Intake {
    pub fn new(
        integrations: Integrations,
        deliveries: Arc<dyn DeliveryLog>,
        queue: Arc<dyn EventQueue>,
        builds: Builds,
    ) -> Self {
        Self { integrations, deliveries, queue, builds }
    }

    /// Records a CI system's build event. `Ok(false)` for a replayed delivery or an event
    /// that is not a finished build.
    #[instrument(skip_all, fields(source = ?source), err)]
    pub async fn receive_ci(&self, source: CiSource, inbound: &Inbound<'_>) -> Result<bool> {
        let (kind, parse): (RegistrySource, BuildParser) = match source {
            CiSource::Github => (RegistrySource::Github, ci::github_workflow_run),
            CiSource::Gitlab => (RegistrySource::Gitlab, ci::gitlab_pipeline),
        };
        self.authenticate(kind, inbound).await?;
        if source == CiSource::Github && inbound.event.is_some_and(|e| e != "workflow_run") {
            return Ok(false);
        }
        let Some(build) = parse(inbound.body)? else { return Ok(false) };
        let delivery = inbound.delivery_id.filter(|d| !d.trim().is_empty()).map(str::to_owned).unwrap_or_else(|| {
            // Without a delivery id, the build itself is the key: its status is part of it.
            format!("{}-{:?}", build.build_id, build.status)
        });
        if !self.deliveries.claim(&format!("ci-{kind}#{delivery}")).await? {
            return Ok(false);
        }
        self.builds.record(build).await?;
        Ok(true)
    }

    #[instrument(skip_all, fields(source = %source, integration_id, accepted, duplicates), err)]
    pub async fn receive(&self, source: RegistrySource, inbound: &Inbound<'_>) -> Result<Receipt> {
        let integration = self.authenticate(source, inbound).await?;
        tracing::Span::current().record("integration_id", tracing::field::display(integration.id));
        let events = registry::parse(source, inbound)?;
        let received_at = Utc::now();
        let mut to_queue = Vec::new();
        let mut duplicates = 0;
        for event in events {
            let queued = QueuedImageEvent { integration_id: integration.id, event };
            let delivery = Delivery { queued: queued.clone(), raw_body: inbound.body.to_vec(), received_at };
            match self.deliveries.record(&delivery).await? {
                // A delivery stored but not queued (the queue failed last time) is queued now;
                // the queue's own deduplication keeps it to one message.
                Recorded::New | Recorded::Duplicate { enqueued: false } => to_queue.push(queued),
                Recorded::Duplicate { enqueued: true } => duplicates += 1,
            }
        }
        if !to_queue.is_empty() {
            self.queue.enqueue(&to_queue).await?;
            for queued in &to_queue {
                self.deliveries.mark_enqueued(queued).await?;
            }
        }
        let span = tracing::Span::current();
        span.record("accepted", to_queue.len());
        span.record("duplicates", duplicates);
        Ok(Receipt { accepted: to_queue.len(), duplicates })
    }

    /// The integration the request proves it comes from.
    pub async fn authenticate(&self, source: RegistrySource, inbound: &Inbound<'_>) -> Result<RegistryIntegration> {
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
                return Ok(integration);
            }
        }
        // Say why, without saying which integration came closest.
        verify::authenticate(scheme, b"", inbound)?;
        Err(DomainError::Unauthorized(format!("the signature matches no {source} integration")))
    }
}
