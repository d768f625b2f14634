use super::*;

fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
}

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn base() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GANTRY_TABLE", "t"),
        ("GANTRY_EVENTS_QUEUE_URL", "http://q"),
        ("GANTRY_DEPLOY_QUEUE_URL", "http://d"),
        ("GANTRY_NOTIFY_QUEUE_URL", "http://n"),
        ("GANTRY_DATA_KEY", KEY),
        ("GANTRY_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("GANTRY_EVIDENCE_KEY", "fedcba9876543210fedcba9876543210"),
    ]
}

fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
    let mut pairs = base();
    pairs.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    pairs.extend_from_slice(extra);
    Config::from_lookup(env(&pairs))
}

#[test]
fn agent_queue_prefixes_fit_sqs_queue_names() {
    assert_eq!(with(&[]).unwrap().agent_queue_prefix, "gantry-agent-");
    assert_eq!(with(&[("GANTRY_AGENT_QUEUE_PREFIX", "prod_agents-")]).unwrap().agent_queue_prefix, "prod_agents-");
    for bad in ["a.b", "with space", "x12345678901234567890123456789012345678901"] {
        let err = with(&[("GANTRY_AGENT_QUEUE_PREFIX", bad)]).unwrap_err().to_string();
        assert!(err.contains("GANTRY_AGENT_QUEUE_PREFIX") && err.contains("at most 40"), "{err}");
    }
}

#[test]
fn required_settings() {
    assert_eq!(Config::from_lookup(env(&[])).unwrap_err().to_string(), "GANTRY_TABLE must be set");
    assert!(with(&[("GANTRY_TABLE", " ")]).is_err());
    assert_eq!(
        with(&[("GANTRY_EVENTS_QUEUE_URL", "")]).unwrap_err().to_string(),
        "GANTRY_EVENTS_QUEUE_URL must be set"
    );
    let bad_key = with(&[("GANTRY_DATA_KEY", "c2hvcnQ=")]).unwrap_err().to_string();
    assert!(
        bad_key.contains("GANTRY_DATA_KEY") && !bad_key.contains("c2hvcnQ"),
        "names the setting, hides the value: {bad_key}"
    );
    assert_eq!(with(&[]).unwrap().data_key.len(), 32);
    assert!(with(&[("GANTRY_JWT_SECRET", "short")]).is_err());
    assert_eq!(with(&[]).unwrap().deploy_timeout_seconds, 600);
    assert_eq!(with(&[("GANTRY_DEPLOY_TIMEOUT_SECONDS", "30")]).unwrap().deploy_timeout_seconds, 30);
    assert!(with(&[("GANTRY_DEPLOY_TIMEOUT_SECONDS", "0")]).is_err());
    assert!(with(&[("GANTRY_DEPLOY_TIMEOUT_SECONDS", "soon")]).is_err());
    assert!(with(&[("GANTRY_OIDC_ISSUER", "https://idp")]).is_err(), "OIDC settings come together");
    let jwks = include_str!("../../../../tests/fixtures/keys/jwks.json");
    let oidc =
        with(&[("GANTRY_OIDC_ISSUER", "https://idp"), ("GANTRY_OIDC_AUDIENCE", "gantry"), ("GANTRY_OIDC_JWKS", jwks)]);
    assert!(oidc.unwrap().oidc.is_some());
    let bad =
        with(&[("GANTRY_OIDC_ISSUER", "https://idp"), ("GANTRY_OIDC_AUDIENCE", "gantry"), ("GANTRY_OIDC_JWKS", "{}")]);
    assert!(bad.is_err());
}

#[test]
fn slack_settings() {
    let none = with(&[]).unwrap();
    assert!(none.slack_signing_secret.is_none() && none.slack_bot_token.is_none());
    assert_eq!(none.slack_api_url, "https://slack.com/api");
    let set = with(&[
        ("GANTRY_SLACK_SIGNING_SECRET", "0123456789abcdef"),
        ("GANTRY_SLACK_BOT_TOKEN", "xoxb-1"),
        ("GANTRY_SLACK_API_URL", "http://127.0.0.1:9/api/"),
    ])
    .unwrap();
    assert_eq!(set.slack_signing_secret.as_deref(), Some(&b"0123456789abcdef"[..]));
    assert_eq!(
        (set.slack_bot_token.as_deref(), set.slack_api_url.as_str()),
        (Some("xoxb-1"), "http://127.0.0.1:9/api")
    );
    let short = with(&[("GANTRY_SLACK_SIGNING_SECRET", "short")]).unwrap_err().to_string();
    assert!(short.contains("GANTRY_SLACK_SIGNING_SECRET") && !short.contains("short\""), "{short}");
    for refused in ["slack.com/api", "http://slack.example/api", "https://user:pw@slack.com/api", "ftp://slack.com"] {
        assert!(with(&[("GANTRY_SLACK_API_URL", refused)]).is_err(), "{refused}");
    }
    assert_eq!(
        with(&[("GANTRY_PUBLIC_URL", "https://gantry.example/")]).unwrap().public_url.as_deref(),
        Some("https://gantry.example")
    );
    for refused in ["gantry.example", "https://", "http://[bad", "https://u:p@gantry.example", "javascript:alert(1)"] {
        assert!(with(&[("GANTRY_PUBLIC_URL", refused)]).is_err(), "{refused}");
    }
    let err = with(&[("GANTRY_OIDC_CLIENT_ID", "gantry")]).unwrap_err().to_string();
    assert_eq!(err, "GANTRY_OIDC_ISSUER must be set", "sign-in needs the OIDC settings");
    assert_eq!(
        with(&[("GANTRY_NOTIFY_QUEUE_URL", "")]).unwrap_err().to_string(),
        "GANTRY_NOTIFY_QUEUE_URL must be set"
    );
}

#[test]
fn time_limits_and_cors_origins() {
    let defaults = with(&[]).unwrap();
    assert_eq!((defaults.request_timeout_ms, defaults.aws_timeout_ms), (10_000, 5_000));
    assert!(defaults.cors_origins.is_empty());
    assert_eq!(with(&[("GANTRY_AWS_TIMEOUT_MS", "750")]).unwrap().aws_timeout().as_millis(), 750);
    for bad in ["0", "99", "1000000", "soon"] {
        assert!(with(&[("GANTRY_REQUEST_TIMEOUT_MS", bad)]).is_err(), "{bad}");
    }
    let origins = with(&[("GANTRY_CORS_ORIGINS", "https://a.example, http://localhost:3000,")]).unwrap();
    assert_eq!(origins.cors_origins, ["https://a.example", "http://localhost:3000"]);
    for bad in ["*", "a.example", "https://a.example/path", "ftp://a.example", "https://"] {
        let err = with(&[("GANTRY_CORS_ORIGINS", bad)]).unwrap_err().to_string();
        assert!(err.contains("GANTRY_CORS_ORIGINS"), "{bad}: {err}");
    }
    let many: &'static str = Box::leak(vec!["https://a.example"; 21].join(",").into_boxed_str());
    assert!(with(&[("GANTRY_CORS_ORIGINS", many)]).is_err());
}

#[test]
fn traces_are_exported_only_to_a_collector_url_that_parses() {
    assert_eq!(with(&[]).unwrap().otlp_endpoint, None);
    assert_eq!(with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]).unwrap().otlp_endpoint, None);
    let local = with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318/")]).unwrap();
    assert_eq!(local.otlp_endpoint.as_deref(), Some("http://localhost:4318"));
    for bad in ["localhost:4318", "grpc://collector:4317", "http://", "https://u:p@collector.example"] {
        let err = with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]).unwrap_err().to_string();
        assert!(err.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT has an invalid value"), "{bad}: {err}");
    }
}

#[test]
fn log_format_defaults_by_runtime() {
    assert_eq!(with(&[]).unwrap().log_format, LogFormat::Pretty);
    assert_eq!(with(&[("AWS_LAMBDA_FUNCTION_NAME", "api")]).unwrap().log_format, LogFormat::Json);
    assert_eq!(with(&[("GANTRY_LOG_FORMAT", "json")]).unwrap().log_format, LogFormat::Json);
    assert!(with(&[("GANTRY_LOG_FORMAT", "xml")]).is_err());
}

#[test]
fn the_job_signing_key_is_pkcs8_pem_or_base64_and_never_shown() {
    const DER: &str = "MC4CAQAwBQYDK2VwBCIEIJBe0KJ+yNQm7wIlQdlrnOcJz9cXwXj/V+y7HnUaLQ8n";
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJBe0KJ+yNQm7wIlQdlrnOcJz9cXwXj/V+y7HnUaLQ8n\n-----END PRIVATE KEY-----\n";
    let from_base64 = with(&[("GANTRY_JOB_SIGNING_KEY", DER)]).unwrap().job_signing;
    let from_pem = with(&[("GANTRY_JOB_SIGNING_KEY", pem)]).unwrap().job_signing;
    assert!(from_base64.is_some());
    assert_eq!(from_base64, from_pem);
    assert!(with(&[]).unwrap().job_signing.is_none());
    let kms = with(&[("GANTRY_JOB_SIGNING_KEY", "kms:alias/gantry-jobs")]).unwrap().job_signing;
    assert!(kms == Some(JobSigning::Kms("alias/gantry-jobs".into())));
    let err = with(&[("GANTRY_JOB_SIGNING_KEY", "kms:")]).unwrap_err().to_string();
    assert!(err.contains("KMS key id"), "{err}");
    for bad in ["not-base64!", "AAAA", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"] {
        let err = with(&[("GANTRY_JOB_SIGNING_KEY", bad)]).unwrap_err().to_string();
        assert!(err.contains("GANTRY_JOB_SIGNING_KEY") && err.contains("(hidden)") && !err.contains(bad), "{err}");
    }
}
