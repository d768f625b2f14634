//! Environments: the promotion path and its policies.

use super::*;

impl Catalog {
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
            policy: EnvironmentPolicy::default().patched(input.policy)?,
            url: input.url.as_deref().map(Environment::url).transpose()?.flatten(),
            steps: Vec::new(),
            freeze_windows: Vec::new(),
            slack_channel: input.slack_channel.as_deref().map(crate::model::slack_channel).transpose()?,
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
                named => Some(crate::model::slack_channel(named)?),
            };
        }
        after.policy = before.policy.patched(patch.policy)?;
        after.updated_at = Utc::now();
        after.revision = before.revision + 1;
        self.repo.update_environment(&before, &after).await?;
        Ok(after)
    }

    /// Replaces an environment's freeze windows (an empty list removes them).
    #[instrument(skip_all, fields(environment_id = %id, windows = windows.len()), err(level = "info"))]
    pub async fn set_freeze_windows(&self, id: EnvironmentId, windows: Vec<FreezeWindow>) -> Result<Environment> {
        let windows = crate::model::freeze::check_windows(windows)?;
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

    // ----- helpers -----
}

/// Applies `change` to an environment and stores it over the revision read.
pub(crate) async fn revise_environment(
    repo: &dyn crate::ports::Repository,
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
