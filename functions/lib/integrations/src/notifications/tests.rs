use super::*;

#[test]
fn status_changes_make_events() {
    use EventKind::*;
    use PromotionStatus as S;
    assert_eq!(events_between(None, (S::PendingApproval, 0)), [Requested]);
    assert_eq!(events_between(None, (S::Approved, 0)), [Requested, Approved]);
    let pending = (S::PendingApproval, 0);
    assert_eq!(events_between(Some(pending), (S::PendingApproval, 1)), [ApprovalRecorded]);
    assert_eq!(events_between(Some(pending), (S::Approved, 1)), [Approved]);
    assert_eq!(events_between(Some(pending), (S::Rejected, 0)), [Rejected]);
    let deploying = (S::Deploying, 1);
    assert_eq!(events_between(Some((S::Approved, 1)), deploying), [Deploying]);
    assert_eq!(events_between(Some(deploying), (S::Deployed, 1)), [Deployed]);
    assert_eq!(events_between(Some(deploying), (S::Failed, 1)), [Failed]);
    assert_eq!(events_between(Some((S::Deployed, 1)), (S::RolledBack, 1)), [RolledBack]);
    assert!(events_between(Some(deploying), deploying).is_empty(), "a step's progress is no event");
}

#[test]
fn subscriptions_want_their_events_in_their_environments() {
    let event = PromotionEvent {
        id: EventId::new(),
        kind: EventKind::Deployed,
        promotion_id: PromotionId::new(),
        environment_id: EnvironmentId::new(),
        release_id: ReleaseId::new(),
        status: PromotionStatus::Deployed,
        approvals: 0,
        required_approvals: 0,
        actor: "a".into(),
        at: Utc::now(),
    };
    let mut s = Subscription {
        id: SubscriptionId::new(),
        name: Name::parse("ops").unwrap(),
        events: vec![EventKind::Deployed],
        environment_ids: Vec::new(),
        target: SubscriptionTarget::Slack { channel: "C1".into() },
        created_by: "a".into(),
        created_at: Utc::now(),
        last_delivery: None,
    };
    assert!(s.wants(&event));
    s.environment_ids = vec![EnvironmentId::new()];
    assert!(!s.wants(&event), "another environment");
    s.environment_ids.push(event.environment_id);
    assert!(s.wants(&event));
    s.events = vec![EventKind::Failed];
    assert!(!s.wants(&event), "another event");
}

#[test]
fn targets_are_checked() {
    assert_eq!(slack_channel(" #deploys ").unwrap(), "#deploys");
    assert_eq!(slack_channel("C0123ABCD").unwrap(), "C0123ABCD");
    assert!(slack_channel("").is_err() && slack_channel("a b").is_err() && slack_channel(&"c".repeat(81)).is_err());
    assert!(webhook_url("https://hooks.example.com/gantry?x=1").is_ok());
    assert!(webhook_url("http://127.0.0.1:9000/hook").is_ok());
    assert!(webhook_url("http://localhost/hook").is_ok());
    for bad in ["http://example.com/hook", "ftp://x", "https://", "https://a b", "http://127.0.0.1.evil.com/"] {
        assert!(webhook_url(bad).is_err(), "{bad}");
    }
    assert!(webhook_url(&format!("https://a.example/{}", "x".repeat(500))).is_err());
}
