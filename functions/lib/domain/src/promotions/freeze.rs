//! Freeze windows at the points a promotion would start deploying: its request (when it needs
//! no approval, or for its gates) and its last approval. A freeze refuses with the window and
//! its end, sealed as `freeze_refused` evidence; an approver may override it with a reason,
//! sealed as `freeze_override` beside the decision it lets through.

use super::*;
use crate::model::freeze::freeze_at;

impl Promotions {
    /// `Ok(None)` when `environment` is not frozen; the override's evidence payload when an
    /// approver overrides the freeze in force; `Conflict` (with the refusal sealed) otherwise.
    pub(super) async fn check_freeze(
        &self,
        environment: &Environment,
        (release, promotion): (ReleaseId, Option<PromotionId>),
        who: &Principal,
        override_reason: Option<String>,
    ) -> Result<Option<serde_json::Value>> {
        let Some(freeze) = freeze_at(&environment.freeze_windows, Utc::now()) else { return Ok(None) };
        let described =
            json!({ "window": freeze.window.name, "until": freeze.until, "timeZone": freeze.window.time_zone });
        if let Some(reason) = override_reason {
            let reason = required_reason(reason)?;
            if gates::check_approver(environment, who).is_err() {
                return Err(DomainError::Forbidden(format!(
                    "only an approver of {} may override its freeze",
                    environment.name
                )));
            }
            let mut payload = described;
            payload["reason"] = json!(reason);
            return Ok(Some(payload));
        }
        let refusal = EvidenceDraft {
            environment_id: environment.id,
            promotion_id: promotion,
            release_id: Some(release),
            kind: "freeze_refused",
            actor: who.subject.clone(),
            payload: described,
        };
        self.with_evidence(environment.id, vec![refusal], |records, head| async move {
            self.evidence.append_evidence(EvidenceAppend { records: &records, head: head.as_ref() }).await
        })
        .await?;
        Err(DomainError::conflict(format!(
            "{} is frozen ({}) until {}; an approver may override the freeze with a reason",
            environment.name,
            freeze.window.name,
            freeze.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )))
    }
}
