//! GraphiQL, served whole by the API itself: the page, Gantry's script and the vendored
//! GraphiQL and React builds (see `assets/README.md`). Nothing is loaded from elsewhere, so
//! the page works offline and behind any URL prefix.

use std::io::Read as _;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

const PAGE: &str = include_str!("../assets/graphiql.html");

/// `(name, content type, gzipped?, bytes)` of every asset under `/graphiql/`.
const ASSETS: &[(&str, &str, bool, &[u8])] = &[
    ("gantry-graphiql.js", "text/javascript; charset=utf-8", false, include_bytes!("../assets/gantry-graphiql.js")),
    ("gantry-graphiql.css", "text/css; charset=utf-8", false, include_bytes!("../assets/gantry-graphiql.css")),
    (
        "vendor/graphiql.min.js",
        "text/javascript; charset=utf-8",
        true,
        include_bytes!("../assets/vendor/graphiql.min.js.gz"),
    ),
    (
        "vendor/graphiql.min.css",
        "text/css; charset=utf-8",
        true,
        include_bytes!("../assets/vendor/graphiql.min.css.gz"),
    ),
    (
        "vendor/react.production.min.js",
        "text/javascript; charset=utf-8",
        true,
        include_bytes!("../assets/vendor/react.production.min.js.gz"),
    ),
    (
        "vendor/react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        true,
        include_bytes!("../assets/vendor/react-dom.production.min.js.gz"),
    ),
];

/// `GET /graphql`: the page.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /graphiql/{*path}`: an asset, gzipped for clients that accept it (every browser),
/// inflated for the rest; 404 for anything else.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, content_type, gzipped, bytes)) = ASSETS.iter().find(|(name, ..)| *name == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if !gzipped {
        return (response_headers, *bytes).into_response();
    }
    if accepts_gzip(&headers) {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        return (response_headers, *bytes).into_response();
    }
    let mut plain = Vec::new();
    match flate2::read::GzDecoder::new(*bytes).read_to_end(&mut plain) {
        Ok(_) => (response_headers, plain).into_response(),
        Err(err) => {
            tracing::error!(error = %err, asset = %path, "a vendored asset does not inflate");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            // `q=0` (or `q=0.0`, `q=0.000`) refuses a coding.
            let refused = parts.any(|p| {
                p.split_once('=')
                    .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>() == Ok(0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&with("gzip, deflate, br")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("gzip; q=0.000, br")));
        assert!(accepts_gzip(&with("gzip;q=0.001")));
        assert!(!accepts_gzip(&with("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn every_asset_the_page_names_is_served() {
        for src in PAGE.split('"').filter(|s| s.starts_with("graphiql/")) {
            let name = src.trim_start_matches("graphiql/");
            assert!(ASSETS.iter().any(|(n, ..)| *n == name), "{name} is served");
        }
        assert!(!PAGE.contains("//"), "the page loads nothing from another origin");
        for (name, _, gzipped, bytes) in ASSETS {
            if *gzipped {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(*bytes).read_to_end(&mut plain).unwrap();
                assert!(plain.len() > bytes.len(), "{name} inflates");
            }
        }
    }
}
