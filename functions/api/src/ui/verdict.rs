//! The supply-chain verdict on a release's page: for an environment that guards its supply
//! chain, each gate and what is verified about each component's image.

use gantry_domain::model::EnvironmentState;
use gantry_domain::promotions::PolicyEvaluation;
use gantry_domain::signatures::SignatureVerdict;
use maud::{Markup, html};

use super::*;

/// The environment whose verdict the page shows: the one asked for, else the last on the
/// path that guards its supply chain; `None` when none does.
pub fn chosen<'a>(states: &'a [EnvironmentState], asked: Option<&str>) -> Option<&'a EnvironmentState> {
    let guarded = states.iter().filter(|s| s.environment.policy.guards_supply_chain());
    match asked {
        Some(id) => guarded.into_iter().find(|s| s.environment.id.to_string() == id),
        None => guarded.into_iter().next_back(),
    }
}

fn signature(verdict: &SignatureVerdict) -> Markup {
    match verdict {
        SignatureVerdict::Verified { key, .. } => html! { (badge("VERIFIED")) " " span.muted { (key) } },
        SignatureVerdict::Unsigned => badge("UNSIGNED"),
        SignatureVerdict::Refused { reasons } => html! { (badge("REFUSED")) " " span.muted { (reasons.join("; ")) } },
    }
}

/// The verdict section; `guarded` lists the environments one may pick.
pub fn section(release: &str, guarded: &[&EnvironmentState], shown: &EnvironmentState, e: &PolicyEvaluation) -> Markup {
    let allowed = e.allowed();
    html! {
        h2 #supply-chain { "Supply chain in " (shown.environment.name) " " (badge(if allowed { "ADMITTED" } else { "REFUSED" })) }
        form method="get" action={ "/ui/releases/" (release) } {
            label { "Environment " select name="verify" { @for s in guarded {
                option value=(s.environment.id) selected[s.environment.id == shown.environment.id] { (s.environment.name) }
            } } }
            " " button type="submit" { "Verify" }
        }
        @if let Some(v) = &e.supply_chain {
            table #verdicts {
                thead { tr { th { "Component" } th { "Digest" } th { "Signature" } th { "Provenance" } th { "SBOM" } th { "Vulnerabilities" } } }
                tbody { @for c in &v.components { tr {
                    td { (c.component) }
                    td.digest { (short(c.digest.as_str())) }
                    td { (signature(&c.signature)) }
                    td { @for p in &c.facts.provenance { div { (p.builder_id.as_deref().unwrap_or("?")) " @ " (p.commit.as_deref().map(short).unwrap_or_else(|| "?".into())) } } }
                    td { @for s in &c.facts.sboms { (s.format) " " } }
                    td { (c.facts.vulnerabilities.iter().filter(|x| x.severity == "critical").count()) " critical, "
                         (c.facts.vulnerabilities.len()) " in all" }
                } } }
            }
            @for d in &v.denials { p.error { (d) } }
            p.muted { "Policy " (short(v.policy.as_str())) }
        }
        @for g in e.gates.iter().filter(|g| !g.passed && g.gate != "supply_chain") { p.error { (g.gate) ": " (g.detail) } }
    }
}
