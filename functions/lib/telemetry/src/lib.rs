//! Traces. Every span carries a W3C trace context: one trace follows a webhook or a
//! promotion across functions, through the `traceparent` SQS message attribute and HTTP
//! header, and every log line written inside a span names its trace and span. Spans are
//! exported over OTLP/HTTP (protobuf) only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set;
//! otherwise no exporter, client or thread is built.

mod context;
mod logs;
mod outgoing;

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{Targets, filter_fn};
use tracing_subscriber::prelude::*;

pub use context::{TRACEPARENT, follow, traceparent, traceparent_of};
pub use logs::{Home, json_layer};
pub use outgoing::{SendTraced, client_span, execute, inject, record_status};

/// The provider whose spans are exported; set once, only when exporting.
static EXPORTING: OnceLock<SdkTracerProvider> = OnceLock::new();

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line, with the trace and span ids (Lambda).
    Json,
    /// Compact human-readable lines (a terminal).
    Pretty,
}

/// What [`init`] sets up.
pub struct Setup<'a> {
    pub logs: LogFormat,
    /// `RUST_LOG`-style level-and-target directives for the log lines.
    pub directives: Option<&'a str>,
    /// The `service.name` of exported spans unless `OTEL_SERVICE_NAME` says otherwise.
    pub service: &'a str,
    /// Export spans over OTLP/HTTP, configured by the standard `OTEL_EXPORTER_OTLP_*`
    /// variables.
    pub export: bool,
}

/// Installs the global subscriber: log lines filtered by `directives` (`info` when unset
/// or unparsable), and spans with trace context, exported when `setup.export`.
pub fn init(setup: Setup<'_>) {
    let provider = if setup.export {
        match exporting_provider(setup.service) {
            Ok(provider) => {
                let _ = EXPORTING.set(provider.clone());
                provider
            }
            Err(err) => {
                eprintln!("traces will not be exported: {err}");
                SdkTracerProvider::builder().build()
            }
        }
    } else {
        // Spans get ids (for log lines and propagation) and are then dropped.
        SdkTracerProvider::builder().build()
    };
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("gantry"))
        .with_error_events_to_status(true)
        .with_filter(filter_fn(traced));
    let home = Home::default();
    let lines = match setup.logs {
        LogFormat::Json => json_layer(std::io::stdout, home.clone()).with_filter(log_filter(setup.directives)).boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_target(false)
            .with_filter(log_filter(setup.directives))
            .boxed(),
    };
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(vec![traces.boxed(), lines]));
    home.set(&dispatch);
    let _ = tracing::dispatcher::set_global_default(dispatch);
}

/// Exports every span not yet exported and waits for the collector's answer (bounded by
/// `OTEL_EXPORTER_OTLP_TIMEOUT`). A Lambda function calls it before it answers an
/// invocation: a frozen environment exports nothing. Without export it does nothing.
pub async fn flush() {
    let Some(provider) = EXPORTING.get().cloned() else { return };
    match tokio::task::spawn_blocking(move || provider.force_flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "spans were not exported"),
        Err(err) => tracing::warn!(error = %err, "exporting spans stopped"),
    }
}

/// What becomes part of a trace: Gantry's spans (info and up), each AWS SDK operation's
/// span (`DynamoDB.PutItem`, `SQS.SendMessageBatch`: the SDK makes them at debug level, with
/// `rpc.method`), and warnings and errors as span events.
fn traced(meta: &Metadata<'_>) -> bool {
    if meta.is_span() {
        *meta.level() <= Level::INFO
            || (meta.target().starts_with("aws_sdk_") && meta.fields().field("rpc.method").is_some())
    } else {
        *meta.level() <= Level::WARN
    }
}

/// A batch exporter to `OTEL_EXPORTER_OTLP_ENDPOINT`, with the SDK's own reading of the
/// other `OTEL_*` variables (headers, timeout, batch sizes, resource attributes).
fn exporting_provider(service: &str) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()?;
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource(service)).build())
}

/// `service.name`: `OTEL_SERVICE_NAME` (or `service.name` in `OTEL_RESOURCE_ATTRIBUTES`)
/// when set, else `service`; and in Lambda, `faas.name`: the function's name.
fn resource(service: &str) -> Resource {
    let named = |var: &str, needle: &str| std::env::var(var).is_ok_and(|v| v.contains(needle));
    let mut builder = Resource::builder();
    if !(named("OTEL_SERVICE_NAME", "") || named("OTEL_RESOURCE_ATTRIBUTES", "service.name=")) {
        builder = builder.with_service_name(service.to_owned());
    }
    if let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        builder = builder.with_attribute(opentelemetry::KeyValue::new("faas.name", function));
    }
    builder.build()
}

/// Level-and-target directives, without the regular expressions of `EnvFilter`, so a
/// function links no regex engine for its logs.
fn log_filter(directives: Option<&str>) -> Targets {
    directives.and_then(|d| d.parse().ok()).unwrap_or_else(|| Targets::new().with_default(Level::INFO))
}

#[cfg(test)]
mod tests;
