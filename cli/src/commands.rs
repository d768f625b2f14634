//! One function per command: resolve names, make the call, print the result.

use std::time::Duration;

use crate::client::Client;
use crate::error::{CliError, Exit, Result};
use crate::ops::*;
use crate::output::{Out, short_digest, table, word};
use crate::resolve::{component_id, environment_id, release_id};
use crate::{AgentCommand, Command, DlqCommand, EvidenceCommand, ReleaseCommand, config, progress};

async fn approve_promotion(c: &Client, out: &Out, id: String, comment: Option<String>) -> Result<()> {
    let (data, raw) = c.answer::<Approve>(approve::Variables { id, comment }).await?;
    out.print(&raw["approvePromotion"], &data.approve_promotion, |p| {
        vec![format!("{}: {} ({} of {} approvals)", p.id, word(&p.status), p.approvals.len(), p.required_approvals)]
    });
    Ok(())
}

pub async fn dispatch(command: Command, c: &Client, out: &Out, login: (String, Option<String>)) -> Result<()> {
    match command {
        Command::Login => self::login(c, login).await,
        Command::Components => components(c, out).await,
        Command::Versions { component, channel, limit } => versions(c, out, &component, channel, limit).await,
        Command::Release(ReleaseCommand::Create { name, components, ready }) => {
            create_release(c, out, name, &components, ready).await
        }
        Command::Release(ReleaseCommand::List { status, first }) => list_releases(c, out, status, first).await,
        Command::Release(ReleaseCommand::Show { release }) => show_release(c, out, &release).await,
        Command::Release(ReleaseCommand::Compare { release, other }) => compare(c, out, &release, &other).await,
        Command::Release(ReleaseCommand::Verify { release, env }) => verify_release(c, out, &release, &env).await,
        Command::Promote { release, to, comment, wait, timeout } => {
            let release_id = release_id(c, &release).await?;
            let environment_id = environment_id(c, &to).await?;
            let vars = promote::Variables { release_id, environment_id, comment };
            let p = c.run::<Promote>(vars).await?.request_promotion;
            finish(c, out, &p.id, word(&p.status), (wait, timeout)).await
        }
        Command::Approve { promotion, comment } => approve_promotion(c, out, promotion, comment).await,
        Command::Abort { promotion } => {
            let (data, raw) = c.answer::<Abort>(abort::Variables { id: promotion }).await?;
            let p = &data.abort_promotion;
            out.print(&raw["abortPromotion"], p, |p| vec![format!("{}: {}, aborting", p.id, word(&p.status))]);
            Ok(())
        }
        Command::PromoteFull { promotion } => {
            let (data, raw) = c.answer::<PromoteFull>(promote_full::Variables { id: promotion }).await?;
            let p = &data.promote_full;
            out.print(&raw["promoteFull"], p, |p| vec![format!("{}: {}, promoting in full", p.id, word(&p.status))]);
            Ok(())
        }
        Command::Reject { promotion, reason } => {
            let (data, raw) = c.answer::<Reject>(reject::Variables { id: promotion, reason }).await?;
            out.print(&raw["rejectPromotion"], &data.reject_promotion, |p| {
                vec![format!("{}: {}", p.id, word(&p.status))]
            });
            Ok(())
        }
        Command::Rollback { environment, reason, to, wait, timeout } => {
            let environment_id = environment_id(c, &environment).await?;
            let to_release_id = match to {
                Some(release) => Some(release_id(c, &release).await?),
                None => None,
            };
            let p = c.run::<Rollback>(rollback::Variables { environment_id, to_release_id, reason }).await?;
            let p = p.rollback_environment;
            finish(c, out, &p.id, word(&p.status), (wait, timeout)).await
        }
        Command::Status { environment } => status(c, out, environment.as_deref()).await,
        Command::Insights { environment, from, to } => crate::insights::show(c, out, &environment, from, to).await,
        Command::Dlq(DlqCommand::List) => crate::dlq::list(c, out).await,
        Command::Dlq(DlqCommand::Redrive { queue }) => crate::dlq::redrive(c, out, queue).await,
        Command::Evidence(EvidenceCommand::Verify { environment: Some(environment), bundle: None, .. }) => {
            verify(c, out, &environment).await
        }
        Command::Evidence(EvidenceCommand::Verify { bundle: Some(bundle), keys, .. }) => {
            crate::evidence::verify(out, &bundle, keys.as_deref())
        }
        Command::Evidence(EvidenceCommand::Verify { environment: None, bundle: None, .. }) => {
            Err(CliError::new(Exit::BadInput, "give an environment, or --bundle FILE to check a bundle offline"))
        }
        Command::Evidence(EvidenceCommand::Export { env, release, promotion, output }) => {
            let scope = crate::evidence::Scope { env, release, promotion };
            crate::evidence::export(c, scope, output.as_deref()).await
        }
        Command::Agents => agents(c, out).await,
        Command::Agent(AgentCommand::Revoke { agent }) => revoke_agent(c, out, &agent).await,
        Command::Completions { .. } => Ok(()),
    }
}

/// Prints where a promotion stands; with `wait`, follows it to its end first.
async fn finish(c: &Client, out: &Out, id: &str, status: String, (wait, timeout): (bool, u64)) -> Result<()> {
    if !wait {
        out.print(&serde_json::json!({ "id": id, "status": status }), &(), |_| vec![format!("{id}: {status}")]);
        return Ok(());
    }
    let (done, raw) = progress::follow(c, id, Duration::from_secs(timeout)).await?;
    out.print(&raw, &done, |p| vec![format!("{}: {}", p.id, word(&p.status))]);
    Ok(())
}

async fn login(c: &Client, (url, token): (String, Option<String>)) -> Result<()> {
    let token = token.ok_or_else(|| CliError::new(Exit::BadInput, "gantry login needs --token (or GANTRY_TOKEN)"))?;
    // A read every role may make proves the URL and the token.
    c.run::<Environments>(environments::Variables).await?;
    let path = config::save(&config::Saved { url: Some(url.clone()), token: Some(token) })?;
    eprintln!("signed in to {url}; saved in {}", path.display());
    Ok(())
}

async fn components(c: &Client, out: &Out) -> Result<()> {
    let (data, raw) = c.answer::<Components>(components::Variables).await?;
    out.print(&raw["components"], &data.components, |all| {
        let rows = all.iter().map(|x| vec![x.name.clone(), x.image_repository.clone(), x.default_channel.clone()]);
        table(&["NAME", "IMAGE", "CHANNEL"], rows.collect())
    });
    Ok(())
}

async fn agents(c: &Client, out: &Out) -> Result<()> {
    let (data, raw) = c.answer::<Agents>(agents::Variables).await?;
    out.print(&raw["agents"], &data.agents, |all| {
        let rows = all.iter().map(|a| {
            let state = if a.revoked_at.is_some() {
                "revoked"
            } else if a.online {
                "online"
            } else {
                "offline"
            };
            let host = a.host.as_ref().map(|h| format!("{}/{}", h.os, h.arch)).unwrap_or_default();
            vec![
                a.name.clone(),
                a.id.clone(),
                state.to_owned(),
                a.last_seen_at.clone().unwrap_or_default(),
                a.version.clone().unwrap_or_default(),
                host,
            ]
        });
        table(&["NAME", "ID", "STATE", "LAST SEEN", "VERSION", "HOST"], rows.collect())
    });
    Ok(())
}

/// Revokes the agent named (or with the id) `agent`.
async fn revoke_agent(c: &Client, out: &Out, agent: &str) -> Result<()> {
    let all = c.run::<Agents>(agents::Variables).await?.agents;
    let id = all
        .iter()
        .find(|a| a.id == agent || a.name == agent)
        .map(|a| a.id.clone())
        .ok_or_else(|| CliError::new(Exit::NotFound, format!("no agent is named {agent:?}")))?;
    let (data, raw) = c.answer::<RevokeAgent>(revoke_agent::Variables { id }).await?;
    out.print(&raw["revokeAgent"], &data.revoke_agent, |a| vec![format!("{} ({}): revoked", a.name, a.id)]);
    Ok(())
}

async fn versions(c: &Client, out: &Out, component: &str, channel: Option<String>, limit: i64) -> Result<()> {
    let component_id = component_id(c, component).await?;
    let vars = versions::Variables { component_id, channel, limit: Some(limit) };
    let (data, raw) = c.answer::<Versions>(vars).await?;
    out.print(&raw["componentVersions"], &data.component_versions, |all| {
        let rows =
            all.iter().map(|v| vec![v.semver.clone(), v.tag.clone(), v.channel.clone(), short_digest(&v.digest)]);
        table(&["VERSION", "TAG", "CHANNEL", "DIGEST"], rows.collect())
    });
    Ok(())
}

/// `name=1.4.0`, `name=sha256:…` or `name=channel:rc`.
fn pin(raw: &str) -> Result<(String, create_release::ReleaseComponentInput)> {
    let bad = || {
        CliError::new(
            Exit::BadInput,
            format!("--component {raw:?} must be name=version, name=sha256:… or name=channel:<channel>"),
        )
    };
    let (name, what) = raw.split_once('=').filter(|(n, w)| !n.is_empty() && !w.is_empty()).ok_or_else(bad)?;
    let mut input = create_release::ReleaseComponentInput {
        component_id: String::new(),
        version: None,
        digest: None,
        channel: None,
    };
    if what.starts_with("sha256:") {
        input.digest = Some(what.to_owned());
    } else if let Some(channel) = what.strip_prefix("channel:") {
        input.channel = Some(channel.to_owned());
    } else {
        input.version = Some(what.to_owned());
    }
    Ok((name.to_owned(), input))
}

async fn create_release(c: &Client, out: &Out, name: String, pins: &[String], ready: bool) -> Result<()> {
    let known = c.run::<Components>(components::Variables).await?.components;
    let mut inputs = Vec::new();
    for raw in pins {
        let (component, mut input) = pin(raw)?;
        let found = known.iter().find(|k| k.name == component || k.id == component);
        input.component_id = found
            .map(|k| k.id.clone())
            .ok_or_else(|| CliError::new(Exit::NotFound, format!("no component {component:?}")))?;
        inputs.push(input);
    }
    let input = create_release::CreateReleaseInput {
        name,
        display_name: None,
        components: inputs,
        source_ref: None,
        metadata: None,
    };
    let (data, mut raw) = c.answer::<CreateRelease>(create_release::Variables { input }).await?;
    let release = data.create_release;
    let mut status = word(&release.status);
    if ready {
        let marked = c.run::<MarkReady>(mark_ready::Variables { id: release.id.clone() }).await?.update_release;
        status = word(&marked.status);
        raw["createRelease"]["status"] = serde_json::Value::String(status.clone());
    }
    out.print(&raw["createRelease"], &release, |r| {
        let mut lines = vec![format!("{} {} ({status})", r.id, r.name)];
        let rows =
            r.components.iter().map(|x| vec![x.component_name.clone(), x.version.clone(), short_digest(&x.digest)]);
        lines.extend(table(&["COMPONENT", "VERSION", "DIGEST"], rows.collect()));
        lines
    });
    Ok(())
}

async fn list_releases(c: &Client, out: &Out, status: Option<String>, first: i64) -> Result<()> {
    let status = status
        .map(|s| serde_json::from_value::<releases::ReleaseStatus>(serde_json::Value::String(s.to_uppercase())))
        .transpose()
        .map_err(|_| {
            CliError::new(Exit::BadInput, "--status must be DRAFT, READY, PROMOTING, DEPLOYED or DEPRECATED")
        })?;
    let (data, raw) = c.answer::<Releases>(releases::Variables { status, first: Some(first) }).await?;
    out.print(&raw["releases"], &data.releases, |page| {
        let rows = page.edges.iter().map(|e| {
            let r = &e.node;
            vec![r.name.clone(), word(&r.status), r.component_count.to_string(), r.created_at.clone(), r.id.clone()]
        });
        table(&["NAME", "STATUS", "COMPONENTS", "CREATED", "ID"], rows.collect())
    });
    Ok(())
}

async fn show_release(c: &Client, out: &Out, release: &str) -> Result<()> {
    let id = release_id(c, release).await?;
    let (data, raw) = c.answer::<Release>(release::Variables { id }).await?;
    out.print(&raw["release"], &data.release, |r| {
        let mut lines =
            vec![format!("{} {} ({}), by {} at {}", r.id, r.name, word(&r.status), r.created_by, r.created_at)];
        let rows = r
            .components
            .iter()
            .map(|x| vec![x.component_name.clone(), x.version.clone(), x.channel.clone(), x.image_ref.clone()]);
        lines.extend(table(&["COMPONENT", "VERSION", "CHANNEL", "IMAGE"], rows.collect()));
        lines.push(String::new());
        let rows = r.state.environments.iter().map(|e| vec![e.environment_name.clone(), word(&e.status)]);
        lines.extend(table(&["ENVIRONMENT", "STATUS"], rows.collect()));
        lines
    });
    Ok(())
}

async fn compare(c: &Client, out: &Out, release: &str, other: &str) -> Result<()> {
    let (id, other_id) = (release_id(c, release).await?, release_id(c, other).await?);
    let (data, raw) = c.answer::<Compare>(compare::Variables { id, other_id }).await?;
    out.print(&raw["compareReleases"], &data.compare_releases, |d| {
        let mut rows: Vec<Vec<String>> = d
            .changed
            .iter()
            .map(|x| {
                vec![
                    x.component.clone(),
                    format!("{} → {}", x.from_version, x.to_version),
                    format!("{} → {}", short_digest(&x.from_digest), short_digest(&x.to_digest)),
                ]
            })
            .collect();
        rows.extend(d.added.iter().map(|x| vec![x.component_name.clone(), "added".into(), String::new()]));
        rows.extend(d.removed.iter().map(|x| vec![x.component_name.clone(), "removed".into(), String::new()]));
        table(&["COMPONENT", "VERSION", "DIGEST"], rows)
    });
    Ok(())
}

/// A component's signature verdict and who signed: the key, or a keyless certificate's
/// identity, issuer and log index.
fn signed_by(x: &evaluate_policy::EvaluatePolicyEvaluatePolicyComponents) -> String {
    let by = match (&x.certificate, &x.key) {
        (Some(c), _) => {
            let logged = c.rekor_log_index.map(|i| format!(", log #{i}")).unwrap_or_default();
            format!(" ({} via {}{logged})", c.subject, c.issuer)
        }
        (None, Some(key)) => format!(" ({key})"),
        (None, None) => String::new(),
    };
    format!("{}{by}", word(&x.signature))
}

/// The dry run of a promotion: each gate, then each component's verified facts.
async fn verify_release(c: &Client, out: &Out, release: &str, environment: &str) -> Result<()> {
    let (release_id, environment_id) = (release_id(c, release).await?, environment_id(c, environment).await?);
    let (data, raw) = c.answer::<EvaluatePolicy>(evaluate_policy::Variables { release_id, environment_id }).await?;
    let verdict = data.evaluate_policy;
    out.print(&raw["evaluatePolicy"], &verdict, |v| {
        let allowed = if v.allowed { "may be promoted" } else { "may NOT be promoted" };
        let mut lines = vec![format!("{release} → {environment}: {allowed}")];
        let gates = v
            .gates
            .iter()
            .map(|g| vec![g.gate.clone(), (if g.passed { "pass" } else { "FAIL" }).into(), g.detail.clone()]);
        lines.extend(table(&["GATE", "", "DETAIL"], gates.collect()));
        if let Some(policy) = &v.policy {
            lines.push(String::new());
            lines.push(format!("admission policy {}", short_digest(policy)));
            let rows = v.components.iter().map(|x| {
                let vulns: Vec<String> =
                    x.vulnerabilities.iter().map(|s| format!("{} {}", s.count, s.severity)).collect();
                vec![
                    x.component.clone(),
                    short_digest(&x.digest),
                    signed_by(x),
                    x.builders.join(" "),
                    x.sboms.join(" "),
                    vulns.join(", "),
                ]
            });
            lines.extend(table(
                &["COMPONENT", "DIGEST", "SIGNATURE", "BUILDER", "SBOM", "VULNERABILITIES"],
                rows.collect(),
            ));
            lines.extend(v.denials.iter().map(|d| format!("denied: {d}")));
        }
        lines
    });
    if verdict.allowed {
        Ok(())
    } else {
        Err(CliError::new(Exit::Refused, format!("{release} may not be promoted into {environment}")))
    }
}

async fn verify(c: &Client, out: &Out, environment: &str) -> Result<()> {
    let environment_id = environment_id(c, environment).await?;
    let (data, raw) = c.answer::<VerifyEvidence>(verify_evidence::Variables { environment_id }).await?;
    let report = data.verify_evidence_chain;
    out.print(&raw["verifyEvidenceChain"], &report, |r| {
        let verdict = if r.valid { "valid" } else { "BROKEN" };
        let mut line = format!("evidence chain of {environment}: {verdict}, {} records checked", r.checked);
        if let Some(broken) = &r.first_broken_record_id {
            line.push_str(&format!("; first broken record {broken}"));
        }
        vec![line]
    });
    if report.valid {
        Ok(())
    } else {
        Err(CliError::new(Exit::Refused, format!("the evidence chain of {environment} does not verify")))
    }
}

/// Components by environment: each cell the version and digest that runs there.
async fn status(c: &Client, out: &Out, only: Option<&str>) -> Result<()> {
    let (data, raw) = c.answer::<Environments>(environments::Variables).await?;
    let mut envs = data.environments;
    let mut raw_envs: Vec<serde_json::Value> = raw["environments"].as_array().cloned().unwrap_or_default();
    if let Some(wanted) = only {
        envs.retain(|e| e.name == wanted || e.id == wanted);
        raw_envs.retain(|e| e["name"] == wanted || e["id"] == wanted);
        if envs.is_empty() {
            return Err(CliError::new(Exit::NotFound, format!("no environment {wanted:?}")));
        }
    }
    envs.sort_by_key(|e| e.order);
    raw_envs.sort_by_key(|e| e["order"].as_i64());
    out.print(&serde_json::Value::Array(raw_envs), &envs, |envs| crate::output::matrix(envs));
    Ok(())
}
