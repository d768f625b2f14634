//! Serving a router outside Lambda (the devserver, the tests). Unlike `axum::serve`, a
//! connection that does not finish sending its headers within the limit is closed, so
//! slow-header clients cannot hold connections open; slow bodies meet the request time
//! limit of [`crate::layers::harden`].

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Serves `app` on `listener` until `shutdown` completes; each connection must send a
/// request's headers within `header_timeout`.
pub async fn serve(listener: TcpListener, app: Router, header_timeout: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            if let Err(err) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %err, "connection closed");
            }
        });
    }
}
