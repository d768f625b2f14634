//! Requests to the agent API signed as an agent would sign them (RFC 9421), for tests that
//! play the agent themselves.

use gantry_signing::SigningKey;
use gantry_signing::requests::{Params, sign};

use crate::app::TestApp;

/// A POST of `body` to `path`, signed with `key` as agent `keyid`, created `created_offset`
/// seconds from now, with `nonce`.
pub async fn post(
    app: &TestApp,
    (key, keyid): (&SigningKey, &str),
    (path, body): (&str, &serde_json::Value),
    created_offset: i64,
    nonce: &str,
) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).expect("a JSON body");
    let params = Params {
        created: chrono::Utc::now().timestamp() + created_offset,
        keyid: keyid.to_owned(),
        nonce: nonce.into(),
    };
    let signed = sign(key, "POST", path, &bytes, &params);
    app.http
        .post(format!("{}{path}", app.url))
        .header("content-digest", signed.content_digest)
        .header("signature-input", signed.signature_input)
        .header("signature", signed.signature)
        .body(bytes)
        .send()
        .await
        .expect("the app answers")
}
