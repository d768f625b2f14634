//! The pull agents: online or not, when last seen, version and host, labels.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;

use super::*;

/// `GET /ui/agents`.
pub async fn page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    signed_in(&state, &headers, async |_| {
        let mut agents = state.agents.list().await?;
        agents.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        let now = chrono::Utc::now();
        let offline_after = state.agents.offline_after();
        let body = html! {
            h1 { "Agents" }
            @if agents.is_empty() {
                p.muted { "No agents yet. Create an enrollment token with createAgentEnrollment, then run gantry-agent enroll on the host." }
            } @else {
                table #agents {
                    thead { tr { th { "Name" } th { "State" } th { "Last seen" } th { "Version" } th { "Host" } th { "Docker" } th { "Labels" } } }
                    tbody { @for a in &agents {
                        @let word = if a.revoked_at.is_some() { "REVOKED" } else if a.online(now, offline_after) { "ONLINE" } else { "OFFLINE" };
                        tr {
                            td { (a.name) br; code.muted { (a.id) } }
                            td { (badge(word)) }
                            td { (a.last_seen_at.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()) }
                            td { (a.facts.as_ref().map(|f| f.version.clone()).unwrap_or_default()) }
                            td { (a.facts.as_ref().map(|f| format!("{}/{}", f.os, f.arch)).unwrap_or_default()) }
                            td { (a.facts.as_ref().and_then(|f| f.docker_version.clone()).unwrap_or_default()) }
                            td { @for (k, v) in &a.labels { code { (k) "=" (v) } " " } }
                        }
                    } }
                }
            }
        };
        Ok(("Agents".to_owned(), body))
    })
    .await
}
