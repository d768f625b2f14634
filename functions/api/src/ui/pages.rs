//! The environments × releases matrix, and a release's page with its compare.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gantry_domain::ids::ReleaseId;
use gantry_domain::model::{DeploymentStatus, Environment, EnvironmentState, Release};
use gantry_domain::ports::ReleaseFilter;
use maud::{Markup, html};
use serde::Deserialize;

use super::*;

/// Releases shown in the matrix, newest first.
const MATRIX_RELEASES: i64 = 20;

fn status_word(status: DeploymentStatus) -> &'static str {
    match status {
        DeploymentStatus::NotDeployed => "",
        DeploymentStatus::Deploying => "DEPLOYING",
        DeploymentStatus::Deployed => "DEPLOYED",
        DeploymentStatus::Failed => "FAILED",
        DeploymentStatus::RolledBack => "ROLLED_BACK",
        DeploymentStatus::Superseded => "SUPERSEDED",
    }
}

/// `GET /ui`: what runs where. A row per release (the newest 20), a column per environment,
/// each cell the release's status there; above it, each environment's running components
/// by digest.
pub async fn matrix(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    signed_in(&state, &headers, async |_| {
        let mut environments = state.environments.environments().await?;
        environments.sort_by_key(|e| e.order);
        let releases = state.catalog.releases(ReleaseFilter::default(), Some(MATRIX_RELEASES), None).await?;
        let releases: Vec<Release> = releases.items.into_iter().map(|(_, r)| r).collect();
        let ids: Vec<ReleaseId> = releases.iter().map(|r| r.id).collect();
        let states = state.environments.release_states(&ids).await?;
        Ok(("Matrix".to_owned(), matrix_body(&environments, &releases, &states)))
    })
    .await
}

fn matrix_body(
    environments: &[Environment],
    releases: &[Release],
    states: &std::collections::HashMap<ReleaseId, Vec<EnvironmentState>>,
) -> Markup {
    let running = |e: &Environment| {
        releases.iter().find(|r| {
            states
                .get(&r.id)
                .is_some_and(|s| s.iter().any(|x| x.environment.id == e.id && x.status == DeploymentStatus::Deployed))
        })
    };
    html! {
        h1 { "What runs where" }
        table #matrix {
            thead { tr {
                th { "Release" }
                @for e in environments {
                    th {
                        (e.name) " " a.muted href={ "/ui/environments/" (e.id) "/evidence" } { "evidence" }
                        " " a.muted href={ "/ui/environments/" (e.id) "/insights" } { "insights" }
                    }
                }
            } }
            tbody {
                @for r in releases {
                    tr {
                        td { a href={ "/ui/releases/" (r.id) } { (r.name) } " " (badge(r.status.as_str())) }
                        @for e in environments {
                            @let word = states.get(&r.id).and_then(|s| s.iter().find(|x| x.environment.id == e.id)).map(|x| status_word(x.status)).unwrap_or("");
                            td { @if word.is_empty() { span.cell-empty { "·" } } @else { (badge(word)) } }
                        }
                    }
                }
            }
        }
        @if releases.is_empty() { p.muted { "No releases yet." } }
        h2 { "Running components, by digest" }
        table #running {
            thead { tr { th { "Environment" } th { "Release" } th { "Components" } } }
            tbody {
                @for e in environments {
                    tr {
                        td { (e.name) }
                        @match running(e) {
                            Some(r) => {
                                td { a href={ "/ui/releases/" (r.id) } { (r.name) } }
                                td { @for c in &r.components { div { (c.component_name) " " (c.version) " " span.digest { (short(c.digest.as_str())) } } } }
                            }
                            None => { td.cell-empty { "nothing deployed" } td {} }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct CompareQuery {
    compare: Option<String>,
    /// The environment whose supply-chain verdict is shown.
    verify: Option<String>,
}

/// `GET /ui/releases/{id}[?compare=<other id>]`: components, where it runs, its manifest,
/// and what differs from another release.
pub async fn release(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<CompareQuery>,
) -> Response {
    signed_in(&state, &headers, async |session| {
        let release = state.catalog.release(ReleaseId::parse(&id)?).await?;
        let where_ = state.environments.release_state(release.id).await?;
        let others = state.catalog.releases(ReleaseFilter::default(), Some(MATRIX_RELEASES), None).await?;
        let compared = match query.compare.as_deref().filter(|c| !c.is_empty()) {
            Some(other) => Some(state.catalog.compare_releases(ReleaseId::parse(other)?, release.id).await?),
            None => None,
        };
        let manifest = state.promotions.release_manifest(&release).await?;
        let others: Vec<Release> = others.items.into_iter().map(|(_, r)| r).filter(|r| r.id != release.id).collect();
        let verdict = match super::verdict::chosen(&where_, query.verify.as_deref()) {
            Some(shown) => {
                let e = state.promotions.evaluate_policy(release.id, shown.environment.id, &session.principal).await?;
                let guarded: Vec<&EnvironmentState> =
                    where_.iter().filter(|s| s.environment.policy.guards_supply_chain()).collect();
                Some(super::verdict::section(&release.id.to_string(), &guarded, shown, &e))
            }
            None => None,
        };
        let body = release_body(&release, &where_, &others, compared.as_ref(), &manifest);
        Ok((release.name.to_string(), html! { (body) @if let Some(v) = verdict { (v) } }))
    })
    .await
}

fn release_body(
    release: &Release,
    where_: &[EnvironmentState],
    others: &[Release],
    compared: Option<&gantry_domain::model::ReleaseComparison>,
    manifest: &serde_json::Value,
) -> Markup {
    html! {
        h1 { "Release " (release.name) " " (badge(release.status.as_str())) }
        p.muted { "Created by " (release.created_by) " at " (release.created_at.format("%Y-%m-%d %H:%M UTC")) }
        table #components {
            thead { tr { th { "Component" } th { "Version" } th { "Channel" } th { "Image" } } }
            tbody { @for c in &release.components { tr {
                td { (c.component_name) } td { (c.version) } td { (c.channel.as_str()) }
                td.digest { (c.image) "@" (c.digest.as_str()) }
            } } }
        }
        h2 { "Environments" }
        table { tbody { @for s in where_ { tr {
            td { (s.environment.name) }
            td { @let w = status_word(s.status); @if w.is_empty() { span.cell-empty { "not deployed" } } @else { (badge(w)) } }
        } } } }
        h2 { "Compare" }
        form method="get" action={ "/ui/releases/" (release.id) } {
            label { "From " select name="compare" { @for o in others { option value=(o.id) { (o.name) } } } }
            " " button type="submit" { "Compare" }
        }
        @if let Some(diff) = compared {
            table #compare {
                thead { tr { th { "Component" } th { "Change" } th { "Digest" } } }
                tbody {
                    @for c in &diff.changed { tr { td { (c.component) } td { (c.from_version) " → " (c.to_version) } td.digest { (short(c.from_digest.as_str())) " → " (short(c.to_digest.as_str())) } } }
                    @for c in &diff.added { tr { td { (c.component_name) } td { "added" } td {} } }
                    @for c in &diff.removed { tr { td { (c.component_name) } td { "removed" } td {} } }
                }
            }
            @if diff.changed.is_empty() && diff.added.is_empty() && diff.removed.is_empty() { p.muted { "No differences." } }
        }
        h2 { "Manifest" }
        pre { (serde_json::to_string_pretty(manifest).unwrap_or_default()) }
    }
}
