//! Property tests: every verifier (Slack's signed requests, GitHub's HMAC signatures,
//! GitLab's token, registries' bearer tokens and path secrets) takes arbitrary header values
//! without panicking, and refuses anything it cannot verify with `UNAUTHENTICATED`. Numbers
//! read from headers are checked arithmetic, at the ends of their range too.

use proptest::prelude::*;

use crate::slack::{SlackInbound, sign, verify};
use crate::verify::authenticate;
use crate::{AuthScheme, Inbound};

const SECRET: &[u8] = b"a-secret-of-thirty-two-characters";
const SCHEMES: [AuthScheme; 4] =
    [AuthScheme::AuthorizationHeader, AuthScheme::HmacSha256, AuthScheme::PathSecret, AuthScheme::GitlabToken];

/// Header values: arbitrary text, numbers at their ends, and near-misses of the real forms.
fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        any::<i64>().prop_map(|n| n.to_string()),
        Just(i64::MIN.to_string()),
        Just(i64::MAX.to_string()),
        "(v0=|sha256=|Bearer )[0-9a-f]{0,70}",
        "[0-9]{19,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Arbitrary timestamps and signatures: refused, never a panic, never an overflow.
    #[test]
    fn slack_refuses_what_it_cannot_verify(timestamp in header(), signature in header(), now in any::<i64>(),
                                           body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let inbound = SlackInbound { body: &body, timestamp: Some(&timestamp), signature: Some(&signature) };
        if let Err(err) = verify(SECRET, &inbound, now) {
            prop_assert_eq!(err.code(), "UNAUTHENTICATED");
        } else {
            prop_assert_eq!(signature, sign(SECRET, &timestamp, &body), "only the right signature passes");
        }
    }

    /// Correctly signed at any time: accepted exactly within five minutes of now.
    #[test]
    fn slack_signed_requests_pass_only_in_their_window(at in any::<i64>(), now in any::<i64>()) {
        let timestamp = at.to_string();
        let signature = sign(SECRET, &timestamp, b"text=help");
        let inbound = SlackInbound { body: b"text=help", timestamp: Some(&timestamp), signature: Some(&signature) };
        let near = now.checked_sub(at).and_then(i64::checked_abs).is_some_and(|skew| skew <= 300);
        match verify(SECRET, &inbound, now) {
            Ok(()) => prop_assert!(near),
            Err(err) => prop_assert!(!near && err.code() == "UNAUTHENTICATED"),
        }
    }

    /// Every webhook scheme refuses arbitrary headers and path secrets.
    #[test]
    fn webhook_schemes_refuse_arbitrary_headers(authorization in header(), signature in header(),
                                                 token in header(), path in header(),
                                                 body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let inbound = Inbound {
            body: &body,
            authorization: Some(&authorization),
            signature_256: Some(&signature),
            gitlab_token: Some(&token),
            path_secret: Some(&path),
            ..Default::default()
        };
        for scheme in SCHEMES {
            let err = authenticate(scheme, SECRET, &inbound).unwrap_err();
            prop_assert_eq!(err.code(), "UNAUTHENTICATED", "{:?}", scheme);
        }
    }
}
