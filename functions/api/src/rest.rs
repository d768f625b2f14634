//! The REST endpoints CI systems call, as `ci-cd-integration.md` gives them:
//! `POST /api/v1/releases`, `POST /api/v1/ci-events/build-complete` and
//! `POST /api/v1/webhooks/ci-status`. Each takes `Authorization: Bearer <token>`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_domain::DomainError;
use gantry_domain::access::{Action, Principal, Resource};
use gantry_domain::builds::BuildRecord;
use gantry_domain::service::{Actor, NewRelease};
use gantry_platform::AppState;
use gantry_platform::http::{HttpError, header};
use serde::Deserialize;
use serde_json::json;

async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    resource: Resource,
    action: Action,
) -> Result<Principal, HttpError> {
    let principal = state.auth.authenticate(header(headers, "authorization")).await?;
    principal.require(resource, action)?;
    Ok(principal)
}

fn body<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, HttpError> {
    serde_json::from_slice(bytes).map_err(|e| HttpError(DomainError::validation(format!("the body is not valid: {e}"))))
}

/// The CI guide's body: the `createRelease` input, with `sourceRef.type` (`git`, the only
/// kind) and `commit` for `commitSha`.
pub async fn create_release(State(state): State<Arc<AppState>>, headers: HeaderMap, bytes: Bytes) -> Response {
    let run = async {
        let principal = authorize(&state, &headers, Resource::Release, Action::Create).await?;
        let mut input: serde_json::Value = body(&bytes)?;
        if let Some(source) = input.get_mut("sourceRef").and_then(|s| s.as_object_mut())
            && let Some(kind) = source.remove("type")
            && kind != "git"
        {
            return Err(HttpError(DomainError::validation(format!("sourceRef.type {kind} is not supported; use git"))));
        }
        let release = NewRelease::from_json(input)?;
        let created = state.catalog.create_release(release, &Actor(principal.subject)).await?;
        Ok::<_, HttpError>((StatusCode::CREATED, Json(created)).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn record_build(
    state: &AppState,
    headers: &HeaderMap,
    parse: fn(&[u8]) -> Result<BuildRecord, DomainError>,
    bytes: &[u8],
) -> Response {
    let run = async {
        authorize(state, headers, Resource::Build, Action::Create).await?;
        let build = parse(bytes)?;
        let outcome = state.builds.record(build.clone()).await?;
        let skipped: Vec<_> =
            outcome.skipped.iter().map(|(name, why)| json!({ "artifact": name, "reason": why })).collect();
        let answer = json!({ "build": build, "versionMaps": outcome.version_maps.len(), "skipped": skipped });
        Ok::<_, HttpError>((StatusCode::CREATED, Json(answer)).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `201` with the build record; tagged artifacts become version maps.
pub async fn build_complete(State(state): State<Arc<AppState>>, headers: HeaderMap, bytes: Bytes) -> Response {
    record_build(&state, &headers, gantry_gateway::ci::build_complete, &bytes).await
}

/// `201` with the build record.
pub async fn ci_status(State(state): State<Arc<AppState>>, headers: HeaderMap, bytes: Bytes) -> Response {
    record_build(&state, &headers, gantry_gateway::ci::jenkins_status, &bytes).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateServiceAccount {
    name: String,
    description: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    permissions: Vec<PermissionBody>,
    expires_in: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionBody {
    resource: String,
    action: String,
}

/// `201` with `{"success": true, "data": {id, name, token, expiresAt}}`, as the CI guide shows;
/// the token is in this answer only.
pub async fn create_service_account(State(state): State<Arc<AppState>>, headers: HeaderMap, bytes: Bytes) -> Response {
    let run = async {
        let principal = authorize(&state, &headers, Resource::ServiceAccount, Action::Create).await?;
        let input: CreateServiceAccount = body(&bytes)?;
        let roles = input.roles.iter().map(|r| r.parse()).collect::<Result<Vec<_>, DomainError>>()?;
        let permissions = input
            .permissions
            .iter()
            .map(|p| Ok(gantry_domain::access::Permission { resource: p.resource.parse()?, action: p.action.parse()? }))
            .collect::<Result<Vec<_>, DomainError>>()?;
        let new = gantry_domain::accounts::NewServiceAccount {
            name: input.name,
            description: input.description,
            roles,
            permissions,
            expires_in: input.expires_in,
        };
        let (account, token) = state.accounts.create(new, &principal).await?;
        let data = json!({ "id": account.id, "name": account.name, "token": token, "expiresAt": account.expires_at });
        Ok::<_, HttpError>((StatusCode::CREATED, Json(json!({ "success": true, "data": data }))).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// The public keys evidence is signed with (JWKS), for anyone to check records with; no
/// token, and caches may keep it five minutes (a rotated key appears at its first record).
pub async fn evidence_keys(State(state): State<Arc<AppState>>) -> Response {
    match state.evidence_keys.jwks().await {
        Ok(jwks) => (
            [
                (axum::http::header::CONTENT_TYPE, "application/jwk-set+json"),
                (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
            ],
            Json(jwks),
        )
            .into_response(),
        Err(err) => HttpError(err).into_response(),
    }
}
