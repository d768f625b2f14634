//! `--wait`: follows a promotion until it ends, printing each change of it and of its
//! deployments to stderr as it happens.

use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::{CliError, Exit, Result};
use crate::ops::{Progress, progress};
use crate::output::word;

/// The promotion once it has ended, or an error when it ended badly or `timeout` ran out.
pub async fn follow(
    client: &Client,
    id: &str,
    timeout: Duration,
) -> Result<(progress::ProgressPromotion, serde_json::Value)> {
    let started = Instant::now();
    let mut shown = String::new();
    let mut steps_shown: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    loop {
        let (data, raw) = client.answer::<Progress>(progress::Variables { id: id.to_owned() }).await?;
        let p = data.promotion;
        let line = summary(&p);
        if line != shown {
            eprintln!("[{:>4}s] {line}", started.elapsed().as_secs());
            shown = line;
        }
        for d in &p.deployments {
            let seen = steps_shown.entry(d.target_name.clone()).or_default();
            for step in d.traffic_steps.iter().skip(*seen) {
                eprintln!("[{:>4}s] {}", started.elapsed().as_secs(), traffic_line(&d.target_name, step));
            }
            *seen = d.traffic_steps.len().max(*seen);
        }
        match word(&p.status).as_str() {
            "DEPLOYED" => return Ok((p, raw["promotion"].clone())),
            "FAILED" | "REJECTED" | "CANCELLED" | "ROLLED_BACK" => {
                let why = p.reason.clone().unwrap_or_default();
                return Err(CliError::new(
                    Exit::PromotionFailed,
                    format!("promotion {id} is {}: {why}", word(&p.status)),
                ));
            }
            _ => {}
        }
        if started.elapsed() >= timeout {
            return Err(CliError::new(
                Exit::Unavailable,
                format!("promotion {id} is still {} after {}s", word(&p.status), timeout.as_secs()),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `web: 25% of requests on the new version, HOLDING (paused for 60s)`.
fn traffic_line(target: &str, step: &progress::ProgressPromotionDeploymentsTrafficSteps) -> String {
    format!("{target}: {}% of requests on the new version, {} ({})", step.weight, word(&step.verdict), step.detail)
}

/// `shop-1.2 → prod: DEPLOYING  web RUNNING, api SUCCEEDED`.
fn summary(p: &progress::ProgressPromotion) -> String {
    let mut line = format!("{} → {}: {}", p.release.name, p.environment.name, word(&p.status));
    if word(&p.status) == "PENDING_APPROVAL" {
        line.push_str(&format!(" ({} of {} approvals)", p.approvals.len(), p.required_approvals));
    }
    let deployments: Vec<String> = p
        .deployments
        .iter()
        .map(|d| match &d.message {
            Some(m) if word(&d.state) == "FAILED" => format!("{} {} ({m})", d.target_name, word(&d.state)),
            _ => format!("{} {}", d.target_name, word(&d.state)),
        })
        .collect();
    if !deployments.is_empty() {
        line.push_str("  ");
        line.push_str(&deployments.join(", "));
    }
    line
}
