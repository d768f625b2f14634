//! Requesting a promotion, and the gates that decide whether it may go ahead.

use super::*;

impl Promotions {
    /// Requests a promotion of `release` into `environment`.
    #[instrument(skip_all, fields(release_id = %release_id, environment_id = %environment_id), err)]
    pub async fn request(
        &self,
        release_id: ReleaseId,
        environment_id: EnvironmentId,
        comment: Option<String>,
        requester: &Principal,
        automatic: bool,
    ) -> Result<Promotion> {
        let comment = long_text("comment", comment, 2000)?;
        let release =
            self.repo.get_release(release_id).await?.ok_or_else(|| DomainError::not_found("release", release_id))?;
        let environments = self.repo.list_environments().await?;
        let environment = environments
            .iter()
            .find(|e| e.id == environment_id)
            .cloned()
            .ok_or_else(|| DomainError::not_found("environment", environment_id))?;
        if release.status == ReleaseStatus::Deprecated {
            return Err(DomainError::conflict(format!(
                "release {} is deprecated and cannot be promoted",
                release.name
            )));
        }
        if release.status == ReleaseStatus::Draft {
            return Err(DomainError::conflict(format!("release {} is a draft; mark it READY first", release.name)));
        }
        let previous = environments.iter().filter(|e| e.order < environment.order).max_by_key(|e| e.order);
        let gates = self.evaluate(&release, &environment, previous, automatic).await?;
        if let Some(failed) = gates.iter().find(|g| !g.passed) {
            return Err(DomainError::conflict(format!("gate {} did not pass: {}", failed.gate, failed.detail)));
        }
        let now = Utc::now();
        let mut promotion = Promotion {
            id: PromotionId::new(),
            release_id,
            environment_id,
            status: PromotionStatus::PendingApproval,
            requested_by: requester.subject.clone(),
            comment,
            automatic,
            gates,
            approvals: Vec::new(),
            required_approvals: environment.required_approvals,
            reason: None,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        if promotion.required_approvals == 0 {
            promotion.status = PromotionStatus::Approved;
        }
        let drafts = vec![
            self.draft(
                &promotion,
                "request",
                &requester.subject,
                json!({ "release": release.name, "environment": environment.name, "comment": promotion.comment, "automatic": automatic }),
            ),
            self.draft(&promotion, "gate_evaluation", "gantry", json!({ "gates": promotion.gates, "status": promotion.status.as_str() })),
        ];
        self.create(&promotion, drafts).await?;
        tracing::info!(promotion_id = %promotion.id, status = promotion.status.as_str(), "promotion requested");
        if promotion.status == PromotionStatus::Approved {
            return self.begin(promotion).await;
        }
        Ok(promotion)
    }

    /// The gates of `environment` for `release`; every one is evaluated and recorded.
    pub(super) async fn evaluate(
        &self,
        release: &Release,
        environment: &Environment,
        previous: Option<&Environment>,
        automatic: bool,
    ) -> Result<Vec<GateResult>> {
        let policy = &environment.policy;
        let mut gates = Vec::new();
        let records = self.repo.release_environment_records(release.id).await?;
        let previous_record = previous.and_then(|p| records.iter().find(|r| r.environment_id == p.id));
        gates.push(match previous {
            None => gate("previous_environment", true, "the first environment of the path"),
            Some(p) => match previous_record {
                Some(r) if r.status == DeploymentStatus::Deployed => {
                    gate("previous_environment", true, format!("deployed in {}", p.name))
                }
                _ => gate("previous_environment", false, format!("not deployed and healthy in {}", p.name)),
            },
        });
        if policy.require_build_success {
            let commit = release.source_ref.as_ref().and_then(|s| s.commit_sha.clone());
            let passed = match &commit {
                Some(sha) => match self.builds.for_commit(sha).await {
                    Ok(builds) => builds.iter().any(|b| b.status == BuildStatus::Success),
                    Err(DomainError::Validation(_)) => false,
                    Err(err) => return Err(err),
                },
                None => false,
            };
            let detail = match (&commit, passed) {
                (None, _) => "the release names no commit".to_owned(),
                (Some(sha), true) => format!("a successful build of {sha}"),
                (Some(sha), false) => format!("no successful build of {sha}"),
            };
            gates.push(gate("build_success", passed, detail));
        }
        if policy.min_soak_minutes > 0 {
            let soaked = previous_record.and_then(|r| r.deployed_at).map(|at| Utc::now() - at);
            let needed = Duration::minutes(i64::from(policy.min_soak_minutes));
            let passed = soaked.is_some_and(|s| s >= needed);
            let detail = match soaked {
                Some(s) => {
                    format!("{} of {} minutes in the previous environment", s.num_minutes(), policy.min_soak_minutes)
                }
                None => "not running in the previous environment".to_owned(),
            };
            gates.push(gate("min_soak", passed, detail));
        }
        if policy.manual_only {
            gates.push(gate(
                "manual_only",
                !automatic,
                if automatic { "automatic promotion is not allowed here" } else { "requested by a person" },
            ));
        }
        Ok(gates)
    }
}
