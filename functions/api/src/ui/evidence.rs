//! An environment's evidence chain, newest first, with the result of verifying all of it
//! and the key that signed each record.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gantry_domain::values::EnvironmentId;
use maud::html;

use super::*;

/// Records shown on the page.
const SHOWN: i64 = 50;

/// `GET /ui/environments/{id}/evidence`.
pub async fn page(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    signed_in(&state, &headers, async |_| {
        let id = EnvironmentId::parse(&id)?;
        let environment = state.environments.environment(id).await?;
        let report = state.promotions.verify_evidence(id).await?;
        let records = state.promotions.environment_evidence(id, Some(SHOWN), None).await?.items;
        let verdict = if report.valid { "valid" } else { "broken" };
        let body = html! {
            h1 { "Evidence of " (environment.name) }
            p #verification {
                span class={ "status " (verdict) } { (verdict) }
                " · " (report.checked) " records checked: hashes, links and signatures"
                " · " a href="/.well-known/gantry/evidence-keys.json" { "public keys" }
                @if let Some(broken) = report.first_broken { " · first broken record " code { (broken) } }
                @if report.truncated { " · the newest records are missing" }
            }
            table #evidence {
                thead { tr { th { "#" } th { "Kind" } th { "Actor" } th { "At" } th { "Hash" } th { "Signed by" } } }
                tbody { @for (_, r) in &records { tr {
                    td { (r.seq) } td { (r.kind) } td { (r.actor) }
                    td { (r.at.format("%Y-%m-%d %H:%M:%S")) }
                    td.digest { (short(&r.hash)) }
                    td.key { @match &r.key_id {
                        Some(key) => code title="key id (JWK thumbprint) in /.well-known/gantry/evidence-keys.json" { (key) },
                        None => "HS256 (Gantry's secret)",
                    } }
                } } }
            }
        };
        Ok(("Evidence".to_owned(), body))
    })
    .await
}
