//! Carrying out a Slack command or click as the Slack user's principal.

use super::*;
use crate::access::{Action, Resource};
use crate::ports::{PageRequest, ReleaseFilter};

/// How many of the newest releases a release name is looked up among.
const NAME_LOOKUP: usize = 100;
/// At most this many environments are listed by `/gantry status`.
const STATUS_ENVIRONMENTS: usize = 20;

impl ChatOps {
    /// Carries out a Slack request and answers through its `response_url`. An unmapped
    /// Slack user is refused and nothing is done; what Gantry refuses is said to the user.
    /// Only a dependency that did not answer is an error, so the queue tries again.
    #[instrument(skip_all, fields(team = %job.team, user = %job.user), err(level = "info"))]
    pub async fn run(&self, job: ChatJob) -> Result<()> {
        let reply = match self.users.get_slack_user(&job.team, &job.user).await? {
            None => Reply::private(format!(
                "Your Slack account ({} in {}) is not mapped to a Gantry principal, so Gantry did nothing. An admin can map it with mapSlackUser.",
                job.user, job.team
            )),
            Some(mapping) => match self.act(&job.action, &mapping.principal()).await {
                Ok(reply) => reply,
                Err(err @ DomainError::Unavailable { .. }) => return Err(err),
                Err(DomainError::Internal(detail)) => {
                    tracing::error!(error = %detail, "a Slack request failed");
                    Reply::private(":x: Gantry could not do that (an internal error); try again later.")
                }
                Err(err) => Reply::private(format!(":x: {}", cards::escape(&err.to_string(), 500))),
            },
        };
        if let Err(err) = self.slack.respond(&job.response_url, &reply).await {
            // The card and the channel's notifications still say what happened.
            tracing::warn!(code = err.code(), error = %err, "the reply did not reach Slack");
        }
        Ok(())
    }

    async fn act(&self, action: &ChatAction, who: &Principal) -> Result<Reply> {
        match action {
            ChatAction::Click { approve: true, promotion } => self.decide(promotion, true, None, who).await,
            ChatAction::Click { approve: false, promotion } => self.decide(promotion, false, None, who).await,
            ChatAction::Command { command } => match command {
                Command::Help => Ok(Reply::private(command::USAGE)),
                Command::Promote { release, environment, comment } => {
                    self.promote(release, environment, comment.clone(), who).await
                }
                Command::Approve { promotion, comment } => self.decide(promotion, true, comment.clone(), who).await,
                Command::Reject { promotion, reason } => self.decide(promotion, false, reason.clone(), who).await,
                Command::Status { environment } => self.status(environment.as_deref(), who).await,
                Command::Rollback { environment, reason } => self.rollback(environment, reason.clone(), who).await,
            },
        }
    }

    async fn promote(
        &self,
        release: &str,
        environment: &str,
        comment: Option<String>,
        who: &Principal,
    ) -> Result<Reply> {
        who.require(Resource::Promotion, Action::Create)?;
        let release = self.find_release(release).await?;
        let environment = self.find_environment(environment).await?;
        let p = self.promotions.request(release.id, environment.id, (comment, None), who, false).await?;
        Ok(Reply::public(format!(
            "{} requested *{}* for *{}*: promotion `{}` is {}.",
            cards::escape(&who.subject, 128),
            release.name,
            environment.name,
            p.id,
            p.status.as_str().replace('_', " ")
        )))
    }

    async fn decide(&self, promotion: &str, approve: bool, text: Option<String>, who: &Principal) -> Result<Reply> {
        who.require(Resource::Promotion, Action::Approve)?;
        let id = PromotionId::parse(promotion)?;
        let p = if approve {
            self.promotions.approve(id, (text, None), who).await?
        } else {
            let reason = text.unwrap_or_else(|| "rejected in Slack".to_owned());
            self.promotions.reject(id, reason, who).await?
        };
        let verb = if approve { "approved" } else { "rejected" };
        Ok(Reply::private(format!(
            "You {verb} promotion `{}` ({} of {} approvals); it is {}.",
            p.id,
            p.approvals.len(),
            p.required_approvals,
            p.status.as_str().replace('_', " ")
        )))
    }

    async fn rollback(&self, environment: &str, reason: Option<String>, who: &Principal) -> Result<Reply> {
        who.require(Resource::Promotion, Action::Approve)?;
        let environment = self.find_environment(environment).await?;
        let reason = reason.unwrap_or_else(|| "rolled back from Slack".to_owned());
        let p = self.promotions.rollback(environment.id, None, reason, who).await?;
        Ok(Reply::public(format!(
            "{} is rolling *{}* back: promotion `{}`.",
            cards::escape(&who.subject, 128),
            environment.name,
            p.id
        )))
    }

    /// What each environment runs and what is on its way there, lowest first.
    async fn status(&self, environment: Option<&str>, who: &Principal) -> Result<Reply> {
        who.require(Resource::Promotion, Action::Read)?;
        let mut environments = match environment {
            Some(name) => vec![self.find_environment(name).await?],
            None => self.repo.list_environments().await?,
        };
        environments.sort_by_key(|e| e.order);
        environments.truncate(STATUS_ENVIRONMENTS);
        let latest = futures::future::try_join_all(
            environments.iter().map(|e| self.promotions.list(e.id, None, Some(10), None)),
        )
        .await?;
        let mut lines = Vec::new();
        for (environment, page) in environments.iter().zip(latest) {
            let promotions: Vec<_> = page.items.into_iter().map(|(_, p)| p).collect();
            let deployed = promotions.iter().find(|p| p.status == PromotionStatus::Deployed);
            let active = promotions.iter().find(|p| p.status.is_active());
            let mut line = format!("*{}*: ", environment.name);
            line.push_str(&match deployed {
                Some(p) => format!("runs {}", self.release_name(p.release_id).await?),
                None => "runs nothing Gantry deployed".to_owned(),
            });
            if let Some(p) = active {
                let name = self.release_name(p.release_id).await?;
                line.push_str(&format!("; {name} is {} (`{}`)", p.status.as_str().replace('_', " "), p.id));
            }
            lines.push(line);
        }
        if lines.is_empty() {
            lines.push("There are no environments yet.".to_owned());
        }
        Ok(Reply::private(lines.join("\n")))
    }

    async fn release_name(&self, id: crate::ids::ReleaseId) -> Result<String> {
        Ok(self.repo.get_release(id).await?.map_or_else(|| id.to_string(), |r| r.name.to_string()))
    }

    /// A release by id, or by name among the newest releases.
    async fn find_release(&self, raw: &str) -> Result<Release> {
        if let Ok(id) = crate::ids::ReleaseId::parse(raw) {
            return self.repo.get_release(id).await?.ok_or_else(|| DomainError::not_found("release", id));
        }
        let page = PageRequest { first: NAME_LOOKUP, after: None };
        let newest = self.repo.list_releases(ReleaseFilter::default(), &page).await?;
        newest.items.into_iter().map(|(_, r)| r).find(|r| r.name.as_str() == raw).ok_or_else(|| {
            DomainError::NotFound(format!(
                "no release named {:?} among the newest {NAME_LOOKUP}; give its id",
                raw.chars().take(80).collect::<String>()
            ))
        })
    }

    /// An environment by name or id.
    async fn find_environment(&self, raw: &str) -> Result<Environment> {
        let environments = self.repo.list_environments().await?;
        let id = crate::ids::EnvironmentId::parse(raw).ok();
        environments.into_iter().find(|e| e.name.as_str() == raw || Some(e.id) == id).ok_or_else(|| {
            DomainError::NotFound(format!("no environment named {:?}", raw.chars().take(80).collect::<String>()))
        })
    }
}
