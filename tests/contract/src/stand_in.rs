//! What every provider stand-in shares: the contract it checks requests against, the faults a
//! test scripts, and what it saw. A stand-in derefs to its [`StandIn`], so a test asks it for
//! `violations()` and `operations()` and gives it `faults(..)` directly.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

use crate::{Contract, Fault, Faults, Operation, Violation};

/// A request as a stand-in's handler receives it.
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// A header's value, or "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

pub struct StandIn {
    contract: Contract,
    /// The prefix every path of the API has (`/v1`), or "".
    base: &'static str,
    faults: Faults,
    violations: Mutex<Vec<Violation>>,
    operations: Mutex<Vec<String>>,
}

impl StandIn {
    /// A stand-in of the API `contract_yaml` describes, under `base`.
    pub fn new(contract_yaml: &str, base: &'static str) -> Arc<Self> {
        Arc::new(Self {
            contract: Contract::load(contract_yaml).expect("the contract loads"),
            base,
            faults: Faults::default(),
            violations: Mutex::default(),
            operations: Mutex::default(),
        })
    }

    /// Serves every request with `handle` (given this stand-in and `state`) on a random
    /// loopback port until the test ends; the base URL.
    pub async fn serve<S, F, Fut>(self: &Arc<Self>, state: S, handle: F) -> String
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(Arc<StandIn>, S, Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        crate::serve(self.router(state, handle)).await
    }

    /// As [`Self::serve`], over TLS with `config`.
    pub async fn serve_tls<S, F, Fut>(
        self: &Arc<Self>,
        state: S,
        handle: F,
        config: Arc<rustls::ServerConfig>,
    ) -> String
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(Arc<StandIn>, S, Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        crate::serve_tls(self.router(state, handle), config).await
    }

    fn router<S, F, Fut>(self: &Arc<Self>, state: S, handle: F) -> Router
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(Arc<StandIn>, S, Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let stand_in = self.clone();
        Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            handle(stand_in.clone(), state.clone(), Request { method, uri, headers, body })
        })
    }

    /// The request's operation and path parameters when it keeps to the contract; the
    /// violation, recorded, when not.
    pub fn check(&self, req: &Request) -> Result<(Operation, HashMap<String, String>), Violation> {
        let checked = self.contract.check_http(self.base, &req.method, &req.uri, &req.headers, &req.body);
        if let Err(violation) = &checked {
            self.violations.lock().unwrap().push(violation.clone());
        }
        checked
    }

    /// The provider's answer (as `answer` words it) to the next fault a test scripted, or
    /// `None` to go on.
    pub async fn fault(&self, answer: impl Fn(Fault) -> Response) -> Option<Response> {
        self.faults.meet(answer).await
    }

    /// Records an operation the stand-in answered.
    pub fn answered(&self, op: &Operation) {
        self.operations.lock().unwrap().push(op.id.clone());
    }

    /// Faults the next requests meet, one each, in order.
    pub fn faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.push(faults);
    }

    /// Requests that broke the contract, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations.lock().unwrap().clone()
    }

    /// Operation ids of the requests that kept to the contract and were answered, in order.
    pub fn operations(&self) -> Vec<String> {
        self.operations.lock().unwrap().clone()
    }
}

/// Lets a stand-in (a struct with a `stand_in: Arc<StandIn>` field) be asked for its
/// `violations()` and `operations()` and given `faults(..)` directly.
#[macro_export]
macro_rules! deref_stand_in {
    ($fake:ty) => {
        impl std::ops::Deref for $fake {
            type Target = $crate::StandIn;

            fn deref(&self) -> &$crate::StandIn {
                &self.stand_in
            }
        }
    };
}
