//! The gates and decisions of a promotion, as pure functions of what the services read:
//! every rule here is unit-tested without storage.

use chrono::{DateTime, Duration, Utc};

use super::{Approval, GateResult, Promotion, PromotionStatus};
use crate::access::{Principal, Role};
use crate::error::{DomainError, Result};
use crate::model::{DeploymentStatus, Environment, EnvironmentPolicy, ReleaseEnvironmentRecord};

/// What the gates of one environment look at.
pub struct GateInputs<'a> {
    pub policy: &'a EnvironmentPolicy,
    /// The environment before this one on the path, and the release's record there.
    pub previous: Option<(&'a Environment, Option<&'a ReleaseEnvironmentRecord>)>,
    /// The release's commit, and whether CI reported a successful build of it.
    pub commit: Option<&'a str>,
    pub build_succeeded: bool,
    pub automatic: bool,
    pub now: DateTime<Utc>,
}

/// One gate's result.
pub(super) fn gate(gate: &str, passed: bool, detail: impl Into<String>) -> GateResult {
    GateResult { gate: gate.to_owned(), passed, detail: detail.into() }
}

/// Every gate the environment's policy asks for, each with why it passed or failed.
pub fn evaluate(inputs: &GateInputs<'_>) -> Vec<GateResult> {
    let policy = inputs.policy;
    let record = inputs.previous.and_then(|(_, r)| r);
    let mut gates = vec![match inputs.previous {
        None => gate("previous_environment", true, "the first environment of the path"),
        Some((p, Some(r))) if r.status == DeploymentStatus::Deployed => {
            gate("previous_environment", true, format!("deployed in {}", p.name))
        }
        Some((p, _)) => gate("previous_environment", false, format!("not deployed and healthy in {}", p.name)),
    }];
    if policy.require_build_success {
        let passed = inputs.commit.is_some() && inputs.build_succeeded;
        let detail = match (inputs.commit, passed) {
            (None, _) => "the release names no commit".to_owned(),
            (Some(sha), true) => format!("a successful build of {sha}"),
            (Some(sha), false) => format!("no successful build of {sha}"),
        };
        gates.push(gate("build_success", passed, detail));
    }
    if policy.min_soak_minutes > 0 {
        let soaked = record.and_then(|r| r.deployed_at).map(|at| inputs.now - at);
        let needed = Duration::minutes(i64::from(policy.min_soak_minutes));
        let detail = match soaked {
            Some(s) => {
                format!("{} of {} minutes in the previous environment", s.num_minutes(), policy.min_soak_minutes)
            }
            None => "not running in the previous environment".to_owned(),
        };
        gates.push(gate("min_soak", soaked.is_some_and(|s| s >= needed), detail));
    }
    if policy.manual_only {
        let detail = if inputs.automatic { "automatic promotion is not allowed here" } else { "requested by a person" };
        gates.push(gate("manual_only", !inputs.automatic, detail));
    }
    gates
}

/// `Forbidden` unless `who` holds one of the environment's approver roles.
pub fn check_approver(environment: &Environment, who: &Principal) -> Result<()> {
    if environment.policy.approver_roles.iter().any(|r| who.roles.contains(r)) {
        return Ok(());
    }
    let roles: Vec<&str> = environment.policy.approver_roles.iter().map(|r| r.as_str()).collect();
    Err(DomainError::Forbidden(format!(
        "approving in {} needs one of the roles {}",
        environment.name,
        roles.join(", ")
    )))
}

/// The promotion with `approver`'s approval added: approved once enough distinct principals
/// agree. The requester may approve only where the policy allows it, and nobody twice.
pub fn approved(
    before: &Promotion,
    policy: &EnvironmentPolicy,
    approver: &Principal,
    comment: Option<String>,
    now: DateTime<Utc>,
) -> Result<Promotion> {
    if before.requested_by == approver.subject && !policy.allow_self_approval {
        return Err(DomainError::Forbidden(format!(
            "{} requested this promotion and cannot approve it",
            approver.subject
        )));
    }
    if before.approvals.iter().any(|a| a.principal == approver.subject) {
        return Err(DomainError::conflict(format!("{} approved this promotion already", approver.subject)));
    }
    let mut after = before.clone();
    after.approvals.push(Approval { principal: approver.subject.clone(), comment, at: now });
    if after.approvals.len() as u32 >= after.required_approvals {
        after.status = PromotionStatus::Approved;
    }
    Ok(after)
}

/// What `who` may decide about a promotion in `environment`: the very rules `approve` and
/// `reject` apply (the permission, the environment's approver roles, no self-approval
/// unless allowed, one vote each), so a dashboard offers only what would be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decisions {
    pub approve: bool,
    pub reject: bool,
}

pub fn decisions(promotion: &Promotion, environment: &Environment, who: &Principal) -> Decisions {
    use crate::access::{Action, Resource};
    let may = promotion.status == PromotionStatus::PendingApproval
        && who.can(Resource::Promotion, Action::Approve)
        && check_approver(environment, who).is_ok();
    let approve = may && approved(promotion, &environment.policy, who, None, Utc::now()).is_ok();
    Decisions { approve, reject: may }
}

/// The promotion cancelled by `who`: its requester or an admin, before deployment starts.
pub fn cancelled(before: &Promotion, who: &Principal) -> Result<Promotion> {
    if before.requested_by != who.subject && !who.roles.contains(&Role::Admin) {
        return Err(DomainError::Forbidden("only the requester or an admin can cancel a promotion".into()));
    }
    if !matches!(before.status, PromotionStatus::PendingApproval | PromotionStatus::Approved) {
        return Err(DomainError::conflict(format!(
            "promotion {} is {} and cannot be cancelled",
            before.id,
            before.status.as_str()
        )));
    }
    let mut after = before.clone();
    after.status = PromotionStatus::Cancelled;
    after.reason = Some(format!("cancelled by {}", who.subject));
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;
    use crate::fixtures::{environment, principal, promotion};
    use crate::ids::{EnvironmentId, ReleaseId};

    fn record(env: EnvironmentId, status: DeploymentStatus, minutes_ago: i64) -> ReleaseEnvironmentRecord {
        let at = Utc::now() - Duration::minutes(minutes_ago);
        ReleaseEnvironmentRecord {
            release_id: ReleaseId::new(),
            environment_id: env,
            status,
            deployed_at: Some(at),
            updated_at: at,
        }
    }

    fn inputs<'a>(
        policy: &'a EnvironmentPolicy,
        previous: Option<(&'a Environment, Option<&'a ReleaseEnvironmentRecord>)>,
    ) -> GateInputs<'a> {
        GateInputs { policy, previous, commit: None, build_succeeded: false, automatic: false, now: Utc::now() }
    }

    fn passed(gates: &[GateResult]) -> Vec<(&str, bool)> {
        gates.iter().map(|g| (g.gate.as_str(), g.passed)).collect()
    }

    #[test]
    fn the_previous_environment_must_run_the_release() {
        let policy = EnvironmentPolicy::default();
        assert_eq!(passed(&evaluate(&inputs(&policy, None))), [("previous_environment", true)]);
        let dev = environment("dev", 10, 0, EnvironmentPolicy::default());
        let failed = record(dev.id, DeploymentStatus::Failed, 5);
        let deployed = record(dev.id, DeploymentStatus::Deployed, 5);
        for (rec, ok) in [(None, false), (Some(&failed), false), (Some(&deployed), true)] {
            let gates = evaluate(&inputs(&policy, Some((&dev, rec))));
            assert_eq!(passed(&gates), [("previous_environment", ok)], "{gates:?}");
        }
    }

    #[test]
    fn build_soak_and_manual_gates_follow_the_policy() {
        let policy = EnvironmentPolicy {
            require_build_success: true,
            min_soak_minutes: 30,
            manual_only: true,
            ..Default::default()
        };
        let dev = environment("dev", 10, 0, EnvironmentPolicy::default());
        let young = record(dev.id, DeploymentStatus::Deployed, 10);
        let soaked = record(dev.id, DeploymentStatus::Deployed, 45);
        let mut i = inputs(&policy, Some((&dev, Some(&young))));
        i.automatic = true;
        let gates = evaluate(&i);
        let names: Vec<_> = passed(&gates);
        assert_eq!(
            names,
            [("previous_environment", true), ("build_success", false), ("min_soak", false), ("manual_only", false)]
        );
        assert_eq!(gates[1].detail, "the release names no commit");
        assert!(gates[2].detail.starts_with("10 of 30 minutes"), "{}", gates[2].detail);
        let sha = "0123456789abcdef0123456789abcdef01234567";
        i.commit = Some(sha);
        assert_eq!(evaluate(&i)[1].detail, format!("no successful build of {sha}"));
        let i = GateInputs {
            commit: Some(sha),
            build_succeeded: true,
            automatic: false,
            ..inputs(&policy, Some((&dev, Some(&soaked))))
        };
        assert!(evaluate(&i).iter().all(|g| g.passed), "{:?}", evaluate(&i));
    }

    #[test]
    fn approvals_count_distinct_principals_and_respect_self_approval() {
        let policy = EnvironmentPolicy::default();
        let before = promotion("alice", 2);
        let bob = principal("bob", &[Role::Approver]);
        let err = approved(&before, &policy, &principal("alice", &[Role::Approver]), None, Utc::now()).unwrap_err();
        assert!(matches!(err, DomainError::Forbidden(_)), "{err:?}");
        let once = approved(&before, &policy, &bob, Some("ok".into()), Utc::now()).unwrap();
        assert_eq!((once.status, once.approvals.len()), (PromotionStatus::PendingApproval, 1));
        assert!(matches!(approved(&once, &policy, &bob, None, Utc::now()), Err(DomainError::Conflict(_))));
        let twice = approved(&once, &policy, &principal("carol", &[Role::Admin]), None, Utc::now()).unwrap();
        assert_eq!(twice.status, PromotionStatus::Approved);
        let lenient = EnvironmentPolicy { allow_self_approval: true, ..Default::default() };
        assert!(approved(&promotion("alice", 1), &lenient, &principal("alice", &[]), None, Utc::now()).is_ok());
    }

    #[test]
    fn only_approver_roles_may_decide() {
        let prod =
            environment("prod", 30, 1, EnvironmentPolicy { approver_roles: vec![Role::Admin], ..Default::default() });
        assert!(check_approver(&prod, &principal("a", &[Role::Admin])).is_ok());
        let err = check_approver(&prod, &principal("b", &[Role::Approver, Role::Viewer])).unwrap_err();
        assert_eq!(err.to_string(), "approving in prod needs one of the roles admin");
    }

    #[test]
    fn cancelling_is_for_the_requester_or_an_admin_before_deployment() {
        let before = promotion("alice", 1);
        assert!(matches!(cancelled(&before, &principal("bob", &[Role::Approver])), Err(DomainError::Forbidden(_))));
        let by_admin = cancelled(&before, &principal("root", &[Role::Admin])).unwrap();
        assert_eq!(
            (by_admin.status, by_admin.reason.as_deref()),
            (PromotionStatus::Cancelled, Some("cancelled by root"))
        );
        let mut deploying = before.clone();
        deploying.status = PromotionStatus::Deploying;
        assert!(matches!(cancelled(&deploying, &principal("alice", &[])), Err(DomainError::Conflict(_))));
    }
}
