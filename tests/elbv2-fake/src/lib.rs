//! A stand-in for the Elastic Load Balancing v2 API (the Query protocol: form-encoded POSTs
//! with `Action` and `Version=2015-12-01`, XML answers), as an ALB router uses it: weighted
//! forward actions on listeners and rules, and target health. Every request is checked
//! against `contract/elbv2-2015-12-01.json`, an excerpt of the API model botocore publishes;
//! a request that breaks it is recorded and answered `ValidationError`, as ELB would.
//!
//! It behaves as the API reference documents: a listener, rule or target group that does
//! not exist is `ListenerNotFound`, `RuleNotFound` or `TargetGroupNotFound`; a weight outside
//! 0-999 is a `ValidationError`. A test scripts throttling (`Throttling`), server errors,
//! slowness and refusals.

mod model;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
pub use gantry_contract::{Fault, Faults};

const MODEL: &str = include_str!("../contract/elbv2-2015-12-01.json");
const NS: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";
const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012";

type Weights = Vec<(String, i64)>;

#[derive(Default)]
struct State {
    target_groups: BTreeMap<String, Vec<(String, String)>>,
    listeners: BTreeMap<String, Weights>,
    rules: BTreeMap<String, Weights>,
    refusals: Vec<String>,
    violations: Vec<String>,
    actions: Vec<String>,
}

pub struct FakeElb {
    pub url: String,
    state: Arc<Mutex<State>>,
    faults: Arc<Faults>,
}

struct Shared {
    model: model::Model,
    state: Arc<Mutex<State>>,
    faults: Arc<Faults>,
}

impl FakeElb {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let faults = Arc::new(Faults::default());
        let shared =
            Arc::new(Shared { model: model::Model::load(MODEL), state: state.clone(), faults: faults.clone() });
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let shared = shared.clone();
                async move { shared.handle(&headers, &body).await }
            }),
        );
        Self { url: gantry_contract::serve(app).await, state, faults }
    }

    /// A target group named `name`, with no targets yet; its ARN.
    pub fn target_group(&self, name: &str) -> String {
        let arn = format!("{ARN}:targetgroup/{name}/{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        self.state.lock().unwrap().target_groups.insert(arn.clone(), Vec::new());
        arn
    }

    /// A listener forwarding to `groups` with their weights; its ARN.
    pub fn listener(&self, groups: &[(&str, i64)]) -> String {
        let arn = format!("{ARN}:listener/app/web/{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let weights = groups.iter().map(|(g, w)| ((*g).to_owned(), *w)).collect();
        self.state.lock().unwrap().listeners.insert(arn.clone(), weights);
        arn
    }

    /// A rule of `listener` forwarding to `groups` with their weights; its ARN.
    pub fn rule(&self, listener: &str, groups: &[(&str, i64)]) -> String {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..16];
        let arn = format!("{}/{id}", listener.replace(":listener/", ":listener-rule/"));
        let weights = groups.iter().map(|(g, w)| ((*g).to_owned(), *w)).collect();
        self.state.lock().unwrap().rules.insert(arn.clone(), weights);
        arn
    }

    /// Sets the health of a target group's targets (`(id, state)`, `state` as ELB words it:
    /// `healthy`, `unhealthy`, `initial`...).
    pub fn set_health(&self, group: &str, targets: &[(&str, &str)]) {
        let targets = targets.iter().map(|(id, s)| ((*id).to_owned(), (*s).to_owned())).collect();
        self.state.lock().unwrap().target_groups.insert(group.to_owned(), targets);
    }

    /// A listener's (or rule's) forward weights, by target group.
    pub fn weights(&self, arn: &str) -> Weights {
        let state = self.state.lock().unwrap();
        state.listeners.get(arn).or_else(|| state.rules.get(arn)).cloned().unwrap_or_default()
    }

    /// The next modification is refused with the error shape `shape`
    /// (`InvalidConfigurationRequestException`...).
    pub fn refuse_next(&self, shape: &str) {
        self.state.lock().unwrap().refusals.push(shape.to_owned());
    }

    pub fn faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.push(faults);
    }

    /// Requests that broke the model.
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    /// Each request's `Action`, in order.
    pub fn actions(&self) -> Vec<String> {
        self.state.lock().unwrap().actions.clone()
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        uuid::Uuid::new_v4()
    );
    (status, [("content-type", "text/xml")], body).into_response()
}

fn answer(action: &str, result: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{NS}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        uuid::Uuid::new_v4()
    );
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

fn forward_xml(weights: &Weights) -> String {
    let groups: String = weights
        .iter()
        .map(|(g, w)| format!("<member><TargetGroupArn>{g}</TargetGroupArn><Weight>{w}</Weight></member>"))
        .collect();
    format!(
        "<member><Type>forward</Type><Order>1</Order><ForwardConfig><TargetGroups>{groups}</TargetGroups></ForwardConfig></member>"
    )
}

impl Shared {
    async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let mut params: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let action = params.remove("Action").unwrap_or_default();
        let version = params.remove("Version").unwrap_or_default();
        self.state.lock().unwrap().actions.push(action.clone());
        let signed = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let checked =
            if !signed.starts_with("AWS4-HMAC-SHA256 ") || !signed.contains("/elasticloadbalancing/aws4_request") {
                Err("the request is not signed with SigV4 for elasticloadbalancing".to_owned())
            } else if version != "2015-12-01" {
                Err(format!("Version {version:?} is not 2015-12-01"))
            } else {
                self.model.check(&action, &params)
            };
        if let Err(why) = checked {
            self.state.lock().unwrap().violations.push(why.clone());
            return error(StatusCode::BAD_REQUEST, "ValidationError", &why);
        }
        let fault = self.faults.meet(|fault| match fault {
            Fault::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "internal failure"),
            _ => error(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded"),
        });
        if let Some(response) = fault.await {
            return response;
        }
        match action.as_str() {
            "ModifyListener" => self.modify(&action, &params, "ListenerArn", "DefaultActions"),
            "ModifyRule" => self.modify(&action, &params, "RuleArn", "Actions"),
            "DescribeTargetHealth" => self.health(&params),
            other => {
                error(StatusCode::BAD_REQUEST, "ValidationError", &format!("{other} is modelled but not simulated"))
            }
        }
    }

    /// The error an operation answers with its error shape `shape`.
    fn refuse(&self, action: &str, shape: &str, message: &str) -> Response {
        let code = self.model.error_code(shape).unwrap_or_else(|| shape.to_owned());
        assert!(self.model.declares_error(action, shape), "{action} does not declare {shape}");
        error(StatusCode::BAD_REQUEST, &code, message)
    }

    fn modify(&self, action: &str, params: &BTreeMap<String, String>, key: &str, actions: &str) -> Response {
        let arn = params.get(key).cloned().unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        let (known, missing) = if key == "RuleArn" {
            (state.rules.contains_key(&arn), "RuleNotFoundException")
        } else {
            (state.listeners.contains_key(&arn), "ListenerNotFoundException")
        };
        if !known {
            return self.refuse(action, missing, &format!("{key} {arn} not found"));
        }
        if let Some(shape) = state.refusals.pop() {
            return self.refuse(action, &shape, "the load balancer refused the configuration");
        }
        let prefix = format!("{actions}.member.1.");
        if params.get(&format!("{prefix}Type")).map(String::as_str) != Some("forward") {
            return error(StatusCode::BAD_REQUEST, "ValidationError", "only forward actions are simulated");
        }
        let mut weights = Weights::new();
        for i in 1.. {
            let group = format!("{prefix}ForwardConfig.TargetGroups.member.{i}.");
            let Some(tg) = params.get(&format!("{group}TargetGroupArn")) else { break };
            let weight = params.get(&format!("{group}Weight")).map_or(Ok(1), |w| w.parse::<i64>());
            match weight {
                Ok(w) if (0..=999).contains(&w) => weights.push((tg.clone(), w)),
                _ => return error(StatusCode::BAD_REQUEST, "ValidationError", "Weight must be between 0 and 999"),
            }
            if !state.target_groups.contains_key(tg) {
                return self.refuse(action, "TargetGroupNotFoundException", &format!("target group {tg} not found"));
            }
        }
        let xml = forward_xml(&weights);
        if key == "RuleArn" {
            state.rules.insert(arn.clone(), weights);
            answer(action, &format!("<Rules><member><RuleArn>{arn}</RuleArn><Actions>{xml}</Actions></member></Rules>"))
        } else {
            state.listeners.insert(arn.clone(), weights);
            let listener =
                format!("<member><ListenerArn>{arn}</ListenerArn><DefaultActions>{xml}</DefaultActions></member>");
            answer(action, &format!("<Listeners>{listener}</Listeners>"))
        }
    }

    fn health(&self, params: &BTreeMap<String, String>) -> Response {
        let arn = params.get("TargetGroupArn").cloned().unwrap_or_default();
        let state = self.state.lock().unwrap();
        let Some(targets) = state.target_groups.get(&arn) else {
            return self.refuse(
                "DescribeTargetHealth",
                "TargetGroupNotFoundException",
                "One or more target groups not found",
            );
        };
        let members: String = targets
            .iter()
            .map(|(id, s)| format!("<member><Target><Id>{id}</Id><Port>80</Port></Target><TargetHealth><State>{s}</State></TargetHealth></member>"))
            .collect();
        answer("DescribeTargetHealth", &format!("<TargetHealthDescriptions>{members}</TargetHealthDescriptions>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_excerpt_checks_query_parameters() {
        let model = model::Model::load(MODEL);
        let params = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let tg = "DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.";
        let good = params(&[
            ("ListenerArn", "arn:x"),
            ("DefaultActions.member.1.Type", "forward"),
            (&format!("{tg}TargetGroupArn"), "arn:tg"),
            (&format!("{tg}Weight"), "25"),
        ]);
        assert_eq!(model.check("ModifyListener", &good), Ok(()));
        for (pairs, why) in [
            (vec![("ListenerArn", "arn:x"), ("DefaultActions.member.1.Type", "teleport")], "not a valid"),
            (vec![("ListenerArn", "arn:x"), ("DefaultActions.member.1.Type", "forward"), ("Bogus", "1")], "no member"),
            (vec![("DefaultActions.member.1.Type", "forward")], "ListenerArn is required"),
            (vec![("ListenerArn", "arn:x"), ("DefaultActions.1.Type", "forward")], "Name.member.N"),
            (vec![("ListenerArn", "arn:x"), ("DefaultActions.member.1.Order", "first")], "not a valid"),
        ] {
            let err = model.check("ModifyListener", &params(&pairs)).unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        }
        assert!(model.check("DeleteLoadBalancer", &BTreeMap::new()).unwrap_err().contains("not an operation"));
        assert_eq!(model.error_code("ListenerNotFoundException").as_deref(), Some("ListenerNotFound"));
    }
}
