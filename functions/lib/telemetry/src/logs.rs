//! JSON log lines that name the trace and span they were written in.

use std::sync::{Arc, OnceLock};

use tracing::dispatcher::WeakDispatch;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{self, FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Where a log layer finds the subscriber it is part of, whose trace layer knows each
/// span's ids: set once the subscriber is built. (While it handles an event, tracing
/// answers "no subscriber" to a scoped subscriber's own layers.)
#[derive(Clone, Default)]
pub struct Home(Arc<OnceLock<WeakDispatch>>);

impl Home {
    pub fn set(&self, dispatch: &tracing::Dispatch) {
        let _ = self.0.set(dispatch.downgrade());
    }
}

/// One JSON object a line: `trace_id` and `span_id` when written inside a traced span of
/// `home`, an RFC 3339 UTC `timestamp`, the level, the event's fields and its span.
pub fn json_layer<S, W>(writer: W, home: Home) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let format = fmt::format().json().flatten_event(true).with_current_span(true).with_target(false);
    fmt::layer().fmt_fields(JsonFields::new()).event_format(WithTraceIds { format, home }).with_writer(writer)
}

/// A JSON event format with the ids of the event's span put first.
struct WithTraceIds<F> {
    format: F,
    home: Home,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut line = String::new();
        self.format.format_event(ctx, Writer::new(&mut line), event)?;
        let dispatch = self.home.0.get().and_then(WeakDispatch::upgrade);
        let ids =
            ctx.lookup_current().zip(dispatch).and_then(|(span, dispatch)| crate::context::ids(&span.id(), &dispatch));
        match (ids, line.strip_prefix('{')) {
            (Some((trace, span)), Some(rest)) => {
                write!(writer, "{{\"trace_id\":\"{trace}\",\"span_id\":\"{span}\",{rest}")
            }
            _ => writer.write_str(&line),
        }
    }
}
