//! W3C trace context (`traceparent`) in and out of spans: what a queued message or an
//! outgoing request carries, and what a handler continues.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{SpanId, TraceContextExt as _, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The header and SQS message attribute that carries a trace context.
pub const TRACEPARENT: &str = "traceparent";

/// A carrier of just the `traceparent` value.
struct Carrier(Option<String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        if key == TRACEPARENT {
            self.0 = Some(value);
        }
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        if key == TRACEPARENT { self.0.as_deref() } else { None }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

/// The `traceparent` of `span`: its trace, with it as the parent. None when the span has no
/// trace context (it is disabled, or tracing is not set up).
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let mut carrier = Carrier(None);
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.0
}

/// The `traceparent` of the current span.
pub fn traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// Makes `span`, not yet entered, continue the trace a received `traceparent` names. A
/// missing or malformed value leaves `span` the root of a trace of its own.
pub fn follow(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else { return };
    let parent = TraceContextPropagator::new().extract(&Carrier(Some(value.to_owned())));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The trace and span ids of the span `id` of `dispatch`, when it has a trace context.
pub(crate) fn ids(id: &tracing::span::Id, dispatch: &tracing::Dispatch) -> Option<(TraceId, SpanId)> {
    let context = tracing_opentelemetry::get_otel_context(id, dispatch)?;
    let span = context.span();
    let span = span.span_context();
    span.is_valid().then(|| (span.trace_id(), span.span_id()))
}
