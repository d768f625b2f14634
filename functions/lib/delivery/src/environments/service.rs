//! The environments' use cases: the promotion path and its policies, and how releases stand
//! along it. Resolvers and handlers call exactly one of these.

use std::sync::Arc;

use chrono::Utc;
use tracing::instrument;

use super::{Environment, EnvironmentPolicy, EnvironmentRepository, EnvironmentState, FreezeWindow, PolicyPatch};
use super::{Repository, release_state};
use crate::admission::{AdmissionEngine, checked_policy};
use crate::error::{DomainError, Result};
use crate::ids::{EnvironmentId, ReleaseId};
use crate::values::{Name, display_text};

const DISPLAY_MAX: usize = 200;

/// Input for `createEnvironment`.
#[derive(Debug, Clone, Default)]
pub struct NewEnvironment {
    pub name: String,
    pub display_name: Option<String>,
    pub order: i64,
    pub required_approvals: Option<i64>,
    pub url: Option<String>,
    /// The Slack channel approval cards go to.
    pub slack_channel: Option<String>,
    pub policy: PolicyPatch,
    pub admission_policy: PolicySource,
}

/// Input for `updateEnvironment`.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentPatch {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub order: Option<i64>,
    pub required_approvals: Option<i64>,
    /// An empty string removes the URL.
    pub url: Option<String>,
    /// An empty string removes the channel.
    pub slack_channel: Option<String>,
    pub policy: PolicyPatch,
    pub admission_policy: PolicySource,
}

/// An admission policy as given: Rego, or an empty string to use the default.
#[derive(Debug, Clone, Default)]
pub struct PolicySource(pub Option<String>);

#[derive(Clone)]
pub struct Environments {
    repo: Arc<dyn Repository>,
    admission: Arc<dyn AdmissionEngine>,
}

impl Environments {
    pub fn new(repo: Arc<dyn Repository>, admission: Arc<dyn AdmissionEngine>) -> Self {
        Self { repo, admission }
    }

    /// The policy patch with its admission policy compiled; a policy that does not compile
    /// is refused before anything is written.
    fn compiled(&self, mut patch: PolicyPatch, source: PolicySource) -> Result<PolicyPatch> {
        if let Some(raw) = source.0 {
            patch.admission_policy = Some(checked_policy(self.admission.as_ref(), &raw)?);
        }
        Ok(patch)
    }

    #[instrument(skip_all, err(level = "info"))]
    pub async fn environments(&self) -> Result<Vec<Environment>> {
        self.repo.list_environments().await
    }

    #[instrument(skip_all, fields(environment_id = %id), err(level = "info"))]
    pub async fn environment(&self, id: EnvironmentId) -> Result<Environment> {
        self.repo.get_environment(id).await?.ok_or_else(|| DomainError::not_found("environment", id))
    }

    #[instrument(skip_all, err(level = "info"))]
    pub async fn create_environment(&self, input: NewEnvironment) -> Result<Environment> {
        let now = Utc::now();
        let environment = Environment {
            id: EnvironmentId::new(),
            name: Name::parse(&input.name)?,
            display_name: display_text("displayName", input.display_name, DISPLAY_MAX)?,
            order: order(input.order)?,
            required_approvals: approvals(input.required_approvals.unwrap_or(0))?,
            policy: EnvironmentPolicy::default().patched(self.compiled(input.policy, input.admission_policy)?)?,
            url: input.url.as_deref().map(Environment::url).transpose()?.flatten(),
            steps: Vec::new(),
            freeze_windows: Vec::new(),
            slack_channel: input.slack_channel.as_deref().map(crate::notifications::slack_channel).transpose()?,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        self.repo.create_environment(&environment).await?;
        tracing::info!(environment_id = %environment.id, "environment created");
        Ok(environment)
    }

    #[instrument(skip_all, fields(environment_id = %id), err(level = "info"))]
    pub async fn update_environment(&self, id: EnvironmentId, patch: EnvironmentPatch) -> Result<Environment> {
        let before = self.environment(id).await?;
        let mut after = before.clone();
        if let Some(name) = patch.name {
            after.name = Name::parse(&name)?;
        }
        if patch.display_name.is_some() {
            after.display_name = display_text("displayName", patch.display_name, DISPLAY_MAX)?;
        }
        if let Some(o) = patch.order {
            after.order = order(o)?;
        }
        if let Some(a) = patch.required_approvals {
            after.required_approvals = approvals(a)?;
        }
        if let Some(url) = patch.url {
            after.url = Environment::url(&url)?;
        }
        if let Some(channel) = patch.slack_channel {
            after.slack_channel = match channel.trim() {
                "" => None,
                named => Some(crate::notifications::slack_channel(named)?),
            };
        }
        after.policy = before.policy.patched(self.compiled(patch.policy, patch.admission_policy)?)?;
        after.updated_at = Utc::now();
        after.revision = before.revision + 1;
        self.repo.update_environment(&before, &after).await?;
        Ok(after)
    }

    /// Replaces an environment's freeze windows (an empty list removes them).
    #[instrument(skip_all, fields(environment_id = %id, windows = windows.len()), err(level = "info"))]
    pub async fn set_freeze_windows(&self, id: EnvironmentId, windows: Vec<FreezeWindow>) -> Result<Environment> {
        let windows = super::freeze::check_windows(windows)?;
        let after = revise_environment(self.repo.as_ref(), id, |e| e.freeze_windows = windows).await?;
        tracing::info!("freeze windows set");
        Ok(after)
    }

    #[instrument(skip_all, fields(environment_id = %id), err(level = "info"))]
    pub async fn delete_environment(&self, id: EnvironmentId) -> Result<Environment> {
        let environment = self.environment(id).await?;
        self.repo.delete_environment(&environment).await?;
        tracing::info!("environment deleted");
        Ok(environment)
    }

    #[instrument(skip_all, fields(release_id = %id), err(level = "info"))]
    pub async fn release_state(&self, id: ReleaseId) -> Result<Vec<EnvironmentState>> {
        self.repo.get_release(id).await?.ok_or_else(|| DomainError::not_found("release", id))?;
        let (environments, records) =
            futures::try_join!(self.repo.list_environments(), self.repo.release_environment_records(id))?;
        Ok(release_state(environments, &records))
    }

    /// The state of many releases in every environment: one read of the environments and
    /// batched reads of the records, however many releases there are.
    #[instrument(skip_all, fields(releases = ids.len()), err(level = "info"))]
    pub async fn release_states(
        &self,
        ids: &[ReleaseId],
    ) -> Result<std::collections::HashMap<ReleaseId, Vec<EnvironmentState>>> {
        let environments = self.repo.list_environments().await?;
        let environment_ids: Vec<EnvironmentId> = environments.iter().map(|e| e.id).collect();
        let records = self.repo.release_environment_records_of(ids, &environment_ids).await?;
        Ok(ids
            .iter()
            .map(|id| {
                let mine: Vec<_> = records.iter().filter(|r| r.release_id == *id).cloned().collect();
                (*id, release_state(environments.clone(), &mine))
            })
            .collect())
    }
}

/// Applies `change` to an environment and stores it over the revision read.
pub async fn revise_environment(
    repo: &dyn EnvironmentRepository,
    id: EnvironmentId,
    change: impl FnOnce(&mut Environment),
) -> Result<Environment> {
    let before = repo.get_environment(id).await?.ok_or_else(|| DomainError::not_found("environment", id))?;
    let mut after = before.clone();
    change(&mut after);
    after.updated_at = Utc::now();
    after.revision = before.revision + 1;
    repo.update_environment(&before, &after).await?;
    Ok(after)
}

fn order(raw: i64) -> Result<u32> {
    u32::try_from(raw)
        .ok()
        .filter(|o| *o <= 1_000_000)
        .ok_or_else(|| DomainError::validation(format!("order must be between 0 and 1000000, not {raw}")))
}

fn approvals(raw: i64) -> Result<u32> {
    let max = Environment::MAX_REQUIRED_APPROVALS;
    u32::try_from(raw)
        .ok()
        .filter(|a| *a <= max)
        .ok_or_else(|| DomainError::validation(format!("requiredApprovals must be between 0 and {max}, not {raw}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_numbers_are_bounded() {
        assert_eq!(order(0).unwrap(), 0);
        assert!(order(-1).is_err());
        assert!(approvals(11).is_err());
        assert_eq!(approvals(2).unwrap(), 2);
    }
}
