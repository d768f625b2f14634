//! Test builders shared by the domain's unit tests (the catalogue has its own).

use chrono::Utc;

use crate::ids::ReleaseId;
use crate::values::Name;

/// An environment at `order` with `policy`, needing `approvals`.
pub fn environment(
    name: &str,
    order: u32,
    approvals: u32,
    policy: crate::model::EnvironmentPolicy,
) -> crate::model::Environment {
    let now = Utc::now();
    crate::model::Environment {
        id: crate::ids::EnvironmentId::new(),
        name: Name::parse(name).unwrap(),
        display_name: None,
        order,
        required_approvals: approvals,
        policy,
        url: None,
        steps: Vec::new(),
        freeze_windows: Vec::new(),
        slack_channel: None,
        created_at: now,
        updated_at: now,
        revision: 1,
    }
}

/// A principal with `roles`.
pub fn principal(subject: &str, roles: &[crate::access::Role]) -> crate::access::Principal {
    crate::access::Principal::new(subject, roles.to_vec(), Vec::new())
}

/// A promotion requested by `requester`, pending `approvals` approvals.
pub fn promotion(requester: &str, approvals: u32) -> crate::promotions::Promotion {
    let now = Utc::now();
    crate::promotions::Promotion {
        id: crate::ids::PromotionId::new(),
        release_id: ReleaseId::new(),
        environment_id: crate::ids::EnvironmentId::new(),
        status: crate::promotions::PromotionStatus::PendingApproval,
        requested_by: requester.into(),
        comment: None,
        automatic: false,
        gates: Vec::new(),
        approvals: Vec::new(),
        required_approvals: approvals,
        reason: None,
        steps: Vec::new(),
        reports_to_ci: false,
        created_at: now,
        updated_at: now,
        revision: 1,
    }
}
