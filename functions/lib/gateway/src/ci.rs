//! CI payloads into build records: GitHub `workflow_run`, GitLab `Pipeline Hook`, Jenkins
//! status posts and Gantry's own `build-complete` event.

use chrono::{DateTime, Utc};
use gantry_domain::DomainError;
use gantry_domain::builds::{BuildArtifact, BuildRecord, BuildStatus, TestResults, commit_sha};
use gantry_domain::values::Digest;
use serde::Deserialize;
use serde::de::DeserializeOwned;

fn json<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, DomainError> {
    serde_json::from_slice(body).map_err(|e| DomainError::validation(format!("{what} is not valid: {e}")))
}

fn record(source: &str, build_id: String, commit: &str, status: BuildStatus) -> Result<BuildRecord, DomainError> {
    Ok(BuildRecord {
        source: source.to_owned(),
        build_id,
        commit_sha: commit_sha(commit)?,
        status,
        pipeline: None,
        url: None,
        test_results: None,
        artifacts: Vec::new(),
        recorded_at: Utc::now(),
        committed_at: None,
    })
}

#[derive(Deserialize)]
struct WorkflowRunEvent {
    action: String,
    workflow_run: WorkflowRun,
}

#[derive(Deserialize)]
struct WorkflowRun {
    id: u64,
    name: Option<String>,
    head_sha: String,
    conclusion: Option<String>,
    html_url: Option<String>,
    head_commit: Option<Commit>,
}

/// A commit as GitHub's and GitLab's events carry it: its time is where lead time starts.
#[derive(Deserialize)]
struct Commit {
    timestamp: Option<DateTime<Utc>>,
}

/// A completed GitHub Actions run; `None` for runs still going (`requested`, `in_progress`).
pub fn github_workflow_run(body: &[u8]) -> Result<Option<BuildRecord>, DomainError> {
    let event: WorkflowRunEvent = json("the workflow_run payload", body)?;
    if event.action != "completed" {
        return Ok(None);
    }
    let run = event.workflow_run;
    let status = BuildStatus::parse(run.conclusion.as_deref().unwrap_or("failure"))?;
    let mut build = record("github", run.id.to_string(), &run.head_sha, status)?;
    build.pipeline = run.name.filter(|n| !n.is_empty());
    build.url = run.html_url;
    build.committed_at = run.head_commit.and_then(|c| c.timestamp);
    Ok(Some(build))
}

#[derive(Deserialize)]
struct PipelineHook {
    object_kind: String,
    object_attributes: PipelineAttributes,
    project: Option<GitlabProject>,
    commit: Option<Commit>,
}

#[derive(Deserialize)]
struct PipelineAttributes {
    id: u64,
    sha: String,
    status: String,
    url: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct GitlabProject {
    path_with_namespace: Option<String>,
}

/// A GitLab pipeline event.
pub fn gitlab_pipeline(body: &[u8]) -> Result<Option<BuildRecord>, DomainError> {
    let hook: PipelineHook = json("the Pipeline Hook payload", body)?;
    if hook.object_kind != "pipeline" {
        return Ok(None);
    }
    let a = hook.object_attributes;
    let mut build = record("gitlab", a.id.to_string(), &a.sha, BuildStatus::parse(&a.status)?)?;
    build.pipeline = a.name.or_else(|| hook.project.and_then(|p| p.path_with_namespace));
    build.url = a.url;
    build.committed_at = hook.commit.and_then(|c| c.timestamp);
    Ok(Some(build))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuildComplete {
    build_id: String,
    status: String,
    commit: String,
    #[serde(default)]
    artifacts: Vec<ArtifactBody>,
    test_results: Option<TestResults>,
    build_url: Option<String>,
    pipeline: Option<String>,
    committed_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct ArtifactBody {
    name: String,
    digest: String,
    repository: String,
    tag: Option<String>,
}

/// `POST /api/v1/ci-events/build-complete`.
pub fn build_complete(body: &[u8]) -> Result<BuildRecord, DomainError> {
    let b: BuildComplete = json("the build-complete body", body)?;
    let mut build = record("ci", b.build_id, &b.commit, BuildStatus::parse(&b.status)?)?;
    build.test_results = b.test_results;
    build.url = b.build_url;
    build.pipeline = b.pipeline;
    build.committed_at = b.committed_at;
    build.artifacts = b
        .artifacts
        .into_iter()
        .map(|a| {
            Ok(BuildArtifact { name: a.name, repository: a.repository, digest: Digest::parse(&a.digest)?, tag: a.tag })
        })
        .collect::<Result<_, DomainError>>()?;
    Ok(build)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JenkinsStatus {
    build_id: String,
    status: String,
    commit: String,
    job: Option<String>,
    url: Option<String>,
    committed_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/webhooks/ci-status`, as the Jenkinsfile in the CI guide sends it.
pub fn jenkins_status(body: &[u8]) -> Result<BuildRecord, DomainError> {
    let j: JenkinsStatus = json("the ci-status body", body)?;
    let mut build = record("jenkins", j.build_id, &j.commit, BuildStatus::parse(&j.status)?)?;
    build.pipeline = j.job;
    build.url = j.url;
    build.committed_at = j.committed_at;
    Ok(build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_sample() {
        let path = format!(
            "{}/../../../tests/fixtures/samples/github/workflow_run.completed.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read(path).unwrap();
        let build = github_workflow_run(&body).unwrap().unwrap();
        assert_eq!(build.commit_sha, "3484a3fb816e0859fd6e1cea078d76385ff50625");
        assert_eq!(build.build_id, "289782451");
        assert_eq!(build.status, BuildStatus::Success);
        assert_eq!(build.committed_at, Some("2020-10-05T16:32:07Z".parse().unwrap()), "head_commit.timestamp");
        let requested = String::from_utf8(body).unwrap().replacen("\"completed\"", "\"requested\"", 1);
        assert!(github_workflow_run(requested.as_bytes()).unwrap().is_none());
    }

    #[test]
    fn gitlab_pipeline_hook() {
        let body = br#"{"object_kind":"pipeline","object_attributes":{"id":31,"sha":"bcbb5ec396a2c0f828686f14fac9b80b780504f2","status":"failed","ref":"main"},"project":{"path_with_namespace":"acme/api"},
            "commit":{"id":"bcbb5ec396a2c0f828686f14fac9b80b780504f2","timestamp":"2016-08-12T17:23:21+02:00"}}"#;
        let build = gitlab_pipeline(body).unwrap().unwrap();
        assert_eq!(build.committed_at, Some("2016-08-12T15:23:21Z".parse().unwrap()), "the commit's time, in UTC");
        assert_eq!((build.build_id.as_str(), build.status), ("31", BuildStatus::Failure));
        assert_eq!(build.pipeline.as_deref(), Some("acme/api"));
    }

    #[test]
    fn build_complete_and_jenkins() {
        let body = br#"{"integrationId":"x","buildId":"12345","status":"success","commit":"0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
            "artifacts":[{"name":"myapp","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","repository":"registry.example.com/myorg/myapp","tag":"v1.2.0"}],
            "testResults":{"passed":150,"failed":0,"skipped":5}}"#;
        let build = build_complete(body).unwrap();
        assert_eq!(build.test_results, Some(TestResults { passed: 150, failed: 0, skipped: 5 }));
        assert_eq!(build.artifacts[0].tag.as_deref(), Some("v1.2.0"));
        let bad = String::from_utf8_lossy(body).replace("sha256:1111", "sha256:zz11");
        assert_eq!(build_complete(bad.as_bytes()).unwrap_err().code(), "BAD_USER_INPUT");
        let jenkins = jenkins_status(
            br#"{"buildId":"7","status":"success","commit":"0a1b2c3d4e5f60718293a4b5c6d7e8f901234567","committedAt":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(jenkins.committed_at, Some("2026-01-01T00:00:00Z".parse().unwrap()));
        assert!(jenkins_status(br#"{"buildId":"7","status":"success","commit":"0a1b2c3d4e5f60718293a4b5c6d7e8f901234567","committedAt":"yesterday"}"#).is_err());
        assert_eq!(jenkins.source, "jenkins");
        assert!(jenkins_status(br#"{"buildId":"7","status":"success","commit":"nothex!"}"#).is_err());
    }
}
