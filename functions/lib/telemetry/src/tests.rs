use std::sync::{Arc, Mutex};

use super::*;

/// A subscriber as [`init`] builds it, without export, writing JSON lines to `lines`.
fn subscriber(lines: &Arc<Mutex<Vec<u8>>>) -> tracing::Dispatch {
    let sink = lines.clone();
    let traces = tracing_opentelemetry::layer()
        .with_tracer(SdkTracerProvider::builder().build().tracer("test"))
        .with_filter(filter_fn(traced));
    let home = Home::default();
    let lines = json_layer(move || Sink(sink.clone()), home.clone()).with_filter(log_filter(None));
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(traces).with(lines));
    home.set(&dispatch);
    dispatch
}

fn lines(bytes: &Mutex<Vec<u8>>) -> Vec<serde_json::Value> {
    let bytes = bytes.lock().unwrap();
    bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}

#[test]
fn json_lines_carry_a_timestamp_and_inside_a_span_its_trace_and_span_ids() {
    let written = Arc::new(Mutex::new(Vec::new()));
    let traceparent = tracing::dispatcher::with_default(&subscriber(&written), || {
        tracing::info!(promotion_id = "p-1", "promotion written");
        let span = tracing::info_span!("settle", promotion_id = "p-1");
        let _entered = span.enter();
        tracing::info!("inside");
        traceparent().unwrap()
    });
    let lines = lines(&written);
    let at = lines[0]["timestamp"].as_str().unwrap_or_default();
    assert!(chrono_like(at), "an RFC 3339 UTC time: {}", lines[0]);
    assert_eq!(
        (lines[0]["message"].as_str(), lines[0]["promotion_id"].as_str()),
        (Some("promotion written"), Some("p-1"))
    );
    assert!(lines[0].get("trace_id").is_none(), "outside any span there is no trace: {}", lines[0]);
    // traceparent: 00-<32 hex trace id>-<16 hex span id>-01
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(lines[1]["trace_id"].as_str(), Some(parts[1]), "{}", lines[1]);
    assert_eq!(lines[1]["span_id"].as_str(), Some(parts[2]), "{}", lines[1]);
    assert_eq!(lines[1]["span"]["name"].as_str(), Some("settle"));
}

fn chrono_like(at: &str) -> bool {
    at.len() >= 20 && at.as_bytes()[4] == b'-' && at.as_bytes()[10] == b'T' && at.ends_with('Z')
}

#[test]
fn a_received_traceparent_is_continued_and_a_malformed_one_starts_a_new_trace() {
    let written = Arc::new(Mutex::new(Vec::new()));
    tracing::dispatcher::with_default(&subscriber(&written), || {
        let sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let handler = tracing::info_span!("message");
        follow(&handler, Some(sent));
        let ours = traceparent_of(&handler).unwrap();
        assert!(ours.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{ours}");
        assert!(!ours.contains("00f067aa0ba902b7"), "the handler's span is a child, with an id of its own");
        let child = handler.in_scope(|| tracing::info_span!("store"));
        assert!(traceparent_of(&child).unwrap().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));

        for bad in ["", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f35-00f0-01"] {
            let fresh = tracing::info_span!("message");
            follow(&fresh, Some(bad));
            let own = traceparent_of(&fresh).unwrap();
            assert!(!own.contains("4bf92f3577b34da6a3ce929d0e0e4736") && own.len() == 55, "{bad:?} gave {own}");
        }
    });
}

#[test]
fn sdk_operations_and_our_spans_are_traced_and_the_sdk_internals_are_not() {
    let span = |target: &'static str, level: Level, fields: &'static [&'static str]| {
        tracing::Metadata::new(
            "s",
            target,
            level,
            None,
            None,
            None,
            tracing::field::FieldSet::new(fields, tracing::callsite::Identifier(&CALLSITE)),
            tracing::metadata::Kind::SPAN,
        )
    };
    assert!(traced(&span("gantry_store::promotions", Level::INFO, &[])));
    assert!(traced(&span("aws_sdk_dynamodb::operation::put_item", Level::DEBUG, &["rpc.method"])));
    assert!(!traced(&span("aws_smithy_runtime::client::orchestrator", Level::DEBUG, &["attempt"])));
    assert!(!traced(&span("gantry_store::promotions", Level::DEBUG, &[])));
}

struct Callsite;
static CALLSITE: Callsite = Callsite;
impl tracing::callsite::Callsite for Callsite {
    fn set_interest(&self, _: tracing::subscriber::Interest) {}
    fn metadata(&self) -> &tracing::Metadata<'_> {
        unimplemented!("not registered")
    }
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn log_filter_directives() {
    let filter = log_filter(Some("warn,gantry_store=debug"));
    assert!(filter.would_enable("gantry_store", &Level::DEBUG));
    assert!(!filter.would_enable("gantry_store", &Level::TRACE));
    assert!(!filter.would_enable("hyper", &Level::INFO));
    assert!(filter.would_enable("hyper", &Level::WARN));
    let default = log_filter(None);
    assert!(default.would_enable("anything", &Level::INFO) && !default.would_enable("anything", &Level::DEBUG));
    let unparsable = log_filter(Some("gantry=[{bad}]"));
    assert!(unparsable.would_enable("gantry", &Level::INFO) && !unparsable.would_enable("gantry", &Level::DEBUG));
}
