//! The promotion queue with Approve and Reject, and a promotion's page, whose status and
//! deployments update live.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use gantry_domain::access::{Action, Resource};
use gantry_domain::deployments::Deployment;
use gantry_domain::ids::PromotionId;
use gantry_domain::ports::ReleaseFilter;
use gantry_domain::promotions::{Promotion, PromotionStatus};
use maud::{Markup, html};
use std::collections::HashMap;

use super::session::{Session, posted};
use super::*;

fn word(status: PromotionStatus) -> String {
    status.as_str().to_uppercase()
}

/// The names of the newest releases, for labelling rows without a read per row.
async fn release_names(state: &AppState) -> Result<std::collections::HashMap<String, String>, DomainError> {
    let page = state.catalog.releases(ReleaseFilter::default(), Some(100), None).await?;
    Ok(page.items.into_iter().map(|(_, r)| (r.id.to_string(), r.name.to_string())).collect())
}

/// `GET /ui/promotions`: every promotion awaiting approval, by environment.
pub async fn queue(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    signed_in(&state, &headers, async |session| {
        let mut environments = state.environments.environments().await?;
        environments.sort_by_key(|e| e.order);
        let pending = pending_by_environment(&state, &environments).await?;
        let names = release_names(&state).await?;
        let body = html! {
            h1 { "Promotions awaiting approval" }
            table #queue {
                thead { tr { th { "Environment" } th { "Release" } th { "Requested by" } th { "Approvals" } th { "Decide" } } }
                tbody {
                    @for (environment, promotions) in environments.iter().zip(&pending) {
                        @for p in promotions {
                            tr data-promotion=(p.id) {
                                td { (environment.name) }
                                td { a href={ "/ui/promotions/" (p.id) } { (names.get(&p.release_id.to_string()).cloned().unwrap_or_else(|| p.release_id.to_string())) } }
                                td { (p.requested_by) }
                                td { (p.approvals.len()) " of " (p.required_approvals) }
                                td { (decide(session, p, environment)) }
                            }
                        }
                    }
                }
            }
            @if pending.iter().all(Vec::is_empty) { p.muted { "Nothing awaits approval." } }
        };
        Ok(("Promotions".to_owned(), body))
    })
    .await
}

/// The pending promotions of each environment (at most 20 each), one query per environment.
async fn pending_by_environment(
    state: &AppState,
    environments: &[gantry_domain::model::Environment],
) -> Result<Vec<Vec<Promotion>>, DomainError> {
    let mut all = Vec::with_capacity(environments.len());
    for e in environments {
        let page = state.promotions.list(e.id, Some(PromotionStatus::PendingApproval), Some(20), None).await?;
        all.push(page.items.into_iter().map(|(_, p)| p).collect());
    }
    Ok(all)
}

/// Approve and Reject, each only for a principal whose decision the API would accept
/// (roles, approver roles, self-approval, votes already cast); a note otherwise.
fn decide(session: &Session, p: &Promotion, environment: &gantry_domain::model::Environment) -> Markup {
    if p.status != PromotionStatus::PendingApproval {
        return html! {};
    }
    let may = gantry_domain::promotions::gates::decisions(p, environment, &session.principal);
    if !may.approve && !may.reject {
        return html! { span.muted { "approvers decide" } };
    }
    html! {
        div.actions {
            @if may.approve {
                form method="post" action={ "/ui/promotions/" (p.id) "/approve" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button.approve type="submit" { "Approve" }
                }
            } @else {
                span.muted { "you may not approve this one" }
            }
            form method="post" action={ "/ui/promotions/" (p.id) "/reject" } {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="text" name="reason" placeholder="reason" required maxlength="2000";
                button.reject type="submit" { "Reject" }
            }
        }
    }
}

/// The part of a promotion's page that updates live: status, approvals, deployments.
fn status_section(p: &Promotion, deployments: &[Deployment], agents: &HashMap<String, String>) -> Markup {
    // A deployment handed to a pull agent is leased to `agent:<id>`.
    let agent = |d: &Deployment| {
        let id = d.lease_owner.as_deref()?.strip_prefix("agent:")?;
        Some(agents.get(id).cloned().unwrap_or_else(|| id.to_owned()))
    };
    html! {
        p { "Status " span #promotion-status { (badge(&word(p.status))) } " · " (p.approvals.len()) " of " (p.required_approvals) " approvals" }
        @if let Some(reason) = &p.reason {
            @if matches!(p.status, PromotionStatus::Failed | PromotionStatus::Rejected) { p.error { (reason) } } @else { p.muted { (reason) } }
        }
        @if !p.approvals.is_empty() {
            p { "Approved by " @for (i, a) in p.approvals.iter().enumerate() { @if i > 0 { ", " } (a.principal) } }
        }
        @if deployments.is_empty() { p.muted { "No deployments (yet)." } } @else {
            table #deployments {
                thead { tr { th { "Target" } th { "Agent" } th { "State" } th { "Attempt" } th { "Traffic" } th { "Message" } } }
                tbody { @for d in deployments { tr {
                    td { (d.target_name) }
                    td { @if let Some(name) = agent(d) { a href="/ui/agents" { (name) } } }
                    td { (badge(&d.state.as_str().to_uppercase())) } td { (d.attempt) }
                    td.traffic { (traffic(d)) }
                    td { (d.message.clone().unwrap_or_default()) }
                } } }
            }
        }
    }
}

/// Where a steered deployment's requests are: the new version's weight, with the verdict
/// and detail of its latest traffic step.
fn traffic(d: &Deployment) -> Markup {
    let Some(step) = d.traffic_steps.last() else { return html! {} };
    let verdict = serde_json::to_value(step.verdict).ok().and_then(|v| v.as_str().map(str::to_uppercase));
    html! {
        meter min="0" max="100" value=(step.weight) title=(step.detail) {}
        " " span.weight data-weight=(step.weight) { (step.weight) "% new" }
        " " (badge(&verdict.unwrap_or_default()))
    }
}

/// A promotion, its deployments, and the names of the agents that applied any of them (one
/// Query of the agents, only when an agent did).
async fn load(
    state: &AppState,
    id: &str,
) -> Result<(Promotion, Vec<Deployment>, HashMap<String, String>), DomainError> {
    let id = PromotionId::parse(id)?;
    let promotion = state.promotions.get(id).await?;
    let deployments = state.promotions.deployments(id).await?;
    let mut agents = HashMap::new();
    if deployments.iter().any(|d| d.lease_owner.as_deref().is_some_and(|o| o.starts_with("agent:"))) {
        agents = state.agents.list().await?.into_iter().map(|a| (a.id.to_string(), a.name.to_string())).collect();
    }
    Ok((promotion, deployments, agents))
}

/// `GET /ui/promotions/{id}`.
pub async fn show(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    signed_in(&state, &headers, async |session| {
        let (p, deployments, agents) = load(&state, &id).await?;
        let release = state.catalog.release(p.release_id).await?;
        let environment = state.environments.environment(p.environment_id).await?;
        let body = html! {
            h1 { "Promotion of " a href={ "/ui/releases/" (release.id) } { (release.name) } " to " (environment.name) }
            p.muted { "Requested by " (p.requested_by) " at " (p.created_at.format("%Y-%m-%d %H:%M:%S UTC")) " · " code { (p.id) } }
            div #live data-live={ "/ui/promotions/" (p.id) "/live" } { (status_section(&p, &deployments, &agents)) }
            (decide(session, &p, &environment))
            h2 { "Gates" }
            table { tbody { @for g in &p.gates { tr { td { (g.gate) } td { (badge(if g.passed { "PASSED" } else { "FAILED" })) } td { (g.detail) } } } } }
            p { a href={ "/ui/environments/" (environment.id) "/evidence" } { "Evidence of " (environment.name) } }
        };
        Ok(("Promotion".to_owned(), body))
    })
    .await
}

/// `GET /ui/promotions/{id}/live`: the live part alone, for the page's script.
pub async fn live(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(err) = super::session::session(&state, &headers).await {
        return (gantry_platform::http::status(&err), err.public_message()).into_response();
    }
    match load(&state, &id).await {
        Ok((p, deployments, agents)) => page(StatusCode::OK, status_section(&p, &deployments, &agents)),
        Err(err) => (gantry_platform::http::status(&err), err.public_message()).into_response(),
    }
}

/// `POST /ui/promotions/{id}/approve`: approves as the signed-in principal, then shows the
/// promotion.
pub async fn approve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    decide_post(&state, &headers, &id, &body, true).await
}

pub async fn reject(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    decide_post(&state, &headers, &id, &body, false).await
}

async fn decide_post(state: &AppState, headers: &HeaderMap, id: &str, body: &[u8], approve: bool) -> Response {
    let form = form(body);
    let session = match posted(state, headers, &form).await {
        Ok(session) => session,
        Err(err) => return error_page(&err, None),
    };
    let decided = async {
        session.principal.require(Resource::Promotion, Action::Approve)?;
        let promotion = PromotionId::parse(id)?;
        if approve {
            state.promotions.approve(promotion, (None, None), &session.principal).await
        } else {
            let reason = field(&form, "reason").unwrap_or_default().to_owned();
            state.promotions.reject(promotion, reason, &session.principal).await
        }
    };
    match decided.await {
        Ok(p) => Redirect::to(&format!("/ui/promotions/{}", p.id)).into_response(),
        Err(err) => error_page(&err, session.who()),
    }
}
