use serde_json::Value;

use super::*;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get(jenkins: &FakeJenkins, path: &str) -> (u16, Value) {
    let res =
        client().get(format!("{}{path}", jenkins.url)).basic_auth("gantry", Some("api-token")).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn queue(jenkins: &FakeJenkins, job: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{}/job/{job}/buildWithParameters", jenkins.url))
        .basic_auth("gantry", Some("api-token"))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_build_goes_through_the_queue_and_ends_as_scripted() {
    let jenkins = FakeJenkins::start("gantry", "api-token").await;
    jenkins.add_job("smoke");
    jenkins.script([BuildOutcome::Fail]);
    let queued = queue(&jenkins, "smoke", &[("GANTRY_ENVIRONMENT", "staging"), ("SUITE", "a b&c")]).await;
    assert_eq!(queued.status().as_u16(), 201);
    let location = queued.headers()["location"].to_str().unwrap().to_owned();
    let item = location.trim_end_matches('/').rsplit('/').next().unwrap().to_owned();
    assert_eq!(jenkins.builds()[0].parameters[1], ("SUITE".to_owned(), "a b&c".to_owned()));

    let path = format!("/queue/item/{item}/api/json");
    assert!(get(&jenkins, &path).await.1["executable"].is_null(), "waiting for an executor first");
    let number = get(&jenkins, &path).await.1["executable"]["number"].as_u64().unwrap();
    let build = format!("/job/smoke/{number}/api/json");
    assert_eq!(get(&jenkins, &build).await.1["building"], true);
    let done = get(&jenkins, &build).await.1;
    assert_eq!((done["building"].as_bool(), done["result"].as_str()), (Some(false), Some("FAILURE")));
    assert!(jenkins.violations().is_empty());
}

#[tokio::test]
async fn requests_are_checked_and_signed_in() {
    let jenkins = FakeJenkins::start("gantry", "api-token").await;
    jenkins.add_job("smoke");
    let json_body = client()
        .post(format!("{}/job/smoke/buildWithParameters", jenkins.url))
        .basic_auth("gantry", Some("api-token"))
        .json(&serde_json::json!({ "A": "1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status().as_u16(), 400, "a JSON body is not a form");
    assert_eq!(get(&jenkins, "/job/smoke/last/api/json").await.0, 400, "a build number is a number");
    assert_eq!(get(&jenkins, "/job/smoke/api/json").await.0, 400, "not in the contract");
    assert_eq!(jenkins.violations().len(), 3, "{:#?}", jenkins.violations());
    let wrong = client().get(format!("{}/queue/item/1/api/json", jenkins.url)).basic_auth("gantry", Some("nope"));
    assert_eq!(wrong.send().await.unwrap().status().as_u16(), 401);
    assert_eq!(queue(&jenkins, "missing", &[]).await.status().as_u16(), 404);
    jenkins.faults([Fault::ServerError]);
    assert_eq!(queue(&jenkins, "smoke", &[]).await.status().as_u16(), 502);
    assert_eq!(queue(&jenkins, "smoke", &[]).await.status().as_u16(), 201);
}
