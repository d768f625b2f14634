//! How Gantry reaches an engine it deploys to. A Docker Engine is reached on a local socket,
//! over TLS with a client certificate, or in plaintext only on loopback: a plaintext Engine
//! API gives root on its host to anyone who can reach it. A Nomad API is reached over
//! `https`, optionally with a private CA, a client certificate and the server name its
//! certificate carries. TLS material and tokens are named by reference (`env:`, `ssm:`,
//! `secretsmanager:`) and read by the worker when it deploys; Gantry never stores them.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{DomainError, Result};

/// TLS for an engine connection: the CA that signs the engine's certificate, and the client
/// certificate and key Gantry presents. Each is a secret reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineTls {
    /// PEM certificates of the CA(s) the engine's certificate must chain to. Only these are
    /// trusted for this engine, not the system's roots.
    pub ca_ref: String,
    /// The PEM client certificate (chain) presented to the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_ref: Option<String>,
    /// The PEM private key of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ref: Option<String>,
    /// The name the engine's certificate must carry when it differs from the address's host
    /// (Nomad's `server.<region>.nomad`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// A parsed Docker Engine endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerEndpoint {
    /// A local socket.
    Unix(String),
    /// Plaintext HTTP, on loopback only.
    Plain { host: String, port: u16 },
    /// HTTPS with a client certificate (`tcp+tls://` or `https://`).
    Tls { host: String, port: u16 },
}

const PLAINTEXT_REFUSED: &str = "is plaintext tcp:// to a host that is not loopback: anyone who can reach \
    an unencrypted Engine API has root on its host. Use tcp+tls://host:port with tls { caRef, certRef, keyRef } \
    (dockerd --tlsverify), or a unix:/// socket";

impl DockerEndpoint {
    /// `endpoint` and its `tls` checked together: a socket takes no TLS, plaintext `tcp://`
    /// is for loopback only, and a TLS endpoint needs a CA, a client certificate and a key.
    pub fn parse(endpoint: &str, tls: Option<&EngineTls>) -> Result<Self> {
        let shown: String = endpoint.chars().take(80).collect();
        let refuse = |why: &str| DomainError::validation(format!("docker endpoint {shown:?} {why}"));
        if endpoint.len() > 512 || !endpoint.chars().all(|c| c.is_ascii_graphic()) {
            return Err(refuse("must be at most 512 printable characters"));
        }
        let url = Url::parse(endpoint)
            .map_err(|_| refuse("must be unix:///path, tcp+tls://host:port, or tcp://host:port on loopback"))?;
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
            return Err(refuse("must not carry user info, a query or a fragment"));
        }
        if url.scheme() == "unix" {
            if url.host_str().is_some_and(|h| !h.is_empty()) || url.path().len() < 2 {
                return Err(refuse("must be unix:///absolute/path"));
            }
            if tls.is_some() {
                return Err(refuse("is a local socket: it takes no tls"));
            }
            return Ok(Self::Unix(url.path().to_owned()));
        }
        let (Some(_), Some(port)) = (url.host(), url.port()) else {
            return Err(refuse("must name a host and a port"));
        };
        if !matches!(url.path(), "" | "/") || port == 0 {
            return Err(refuse("must be scheme://host:port, without a path"));
        }
        let name = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
        match url.scheme() {
            "tcp" if tls.is_some() => Err(refuse("is plaintext: with tls, write tcp+tls://host:port")),
            "tcp" if crate::outbound::is_loopback(&url) => Ok(Self::Plain { host: name, port }),
            "tcp" => Err(refuse(PLAINTEXT_REFUSED)),
            "tcp+tls" | "https" => {
                let Some(tls) = tls else {
                    return Err(refuse("uses TLS: give tls { caRef, certRef, keyRef }"));
                };
                if tls.cert_ref.is_none() || tls.key_ref.is_none() {
                    return Err(refuse(
                        "needs a client certificate and key (certRef and keyRef), as dockerd --tlsverify demands",
                    ));
                }
                tls.check("DOCKER_")?;
                Ok(Self::Tls { host: name, port })
            }
            other => Err(refuse(&format!("has the scheme {other}: use unix, tcp+tls or https"))),
        }
    }
}

/// A Nomad API address with its TLS: `https://host:port`, or `http://` on loopback only (an
/// ACL token would otherwise cross the network in clear).
pub fn check_nomad(address: &str, tls: Option<&EngineTls>) -> Result<Url> {
    let url = crate::outbound::parse("Nomad address", address, 512)?;
    if url.port_or_known_default().is_none() || !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(DomainError::validation(format!("Nomad address {address:?} must be http(s)://host:port")));
    }
    if let Some(tls) = tls {
        if url.scheme() != "https" {
            return Err(DomainError::validation("Nomad tls needs an https:// address"));
        }
        tls.check("NOMAD_")?;
    }
    Ok(url)
}

impl EngineTls {
    /// Every reference well-formed; a certificate and a key together or not at all; a DNS
    /// server name.
    pub fn check(&self, env_prefix: &str) -> Result<()> {
        check_secret_ref("tls.caRef", &self.ca_ref, env_prefix)?;
        match (&self.cert_ref, &self.key_ref) {
            (Some(cert), Some(key)) => {
                check_secret_ref("tls.certRef", cert, env_prefix)?;
                check_secret_ref("tls.keyRef", key, env_prefix)?;
            }
            (None, None) => {}
            _ => return Err(DomainError::validation("tls.certRef and tls.keyRef go together: give both or neither")),
        }
        if let Some(name) = &self.server_name {
            let ok = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|l| {
                    !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !ok {
                return Err(DomainError::validation(format!(
                    "tls.serverName {:?} must be a DNS name",
                    name.chars().take(80).collect::<String>()
                )));
            }
        }
        Ok(())
    }
}

/// A secret reference: `env:<PREFIX>NAME` (only variables with the engine's prefix, so a
/// target cannot name the worker's own secrets), `ssm:/path` or `secretsmanager:name`.
pub fn check_secret_ref(field: &str, reference: &str, env_prefix: &str) -> Result<()> {
    let name_ok = |rest: &str, extra: &str| {
        !rest.is_empty() && rest.len() <= 512 && rest.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    let ok = if let Some(name) = reference.strip_prefix("env:") {
        name.len() > env_prefix.len() && name.starts_with(env_prefix) && name_ok(name, "_")
    } else if let Some(path) = reference.strip_prefix("ssm:") {
        path.starts_with('/') && name_ok(path, "/_.-")
    } else if let Some(name) = reference.strip_prefix("secretsmanager:") {
        name_ok(name, "/_+=.@-")
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        let shown: String = reference.chars().take(80).collect();
        Err(DomainError::validation(format!(
            "{field} {shown:?} must be env:{env_prefix}<NAME>, ssm:/path or secretsmanager:name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(cert: bool) -> EngineTls {
        EngineTls {
            ca_ref: "secretsmanager:gantry/docker/ca".into(),
            cert_ref: cert.then(|| "ssm:/gantry/docker/cert".into()),
            key_ref: cert.then(|| "env:DOCKER_KEY".into()),
            server_name: None,
        }
    }

    #[test]
    fn docker_endpoints_are_judged_by_their_parsed_host() {
        assert_eq!(
            DockerEndpoint::parse("unix:///run/docker.sock", None).unwrap(),
            DockerEndpoint::Unix("/run/docker.sock".into())
        );
        for loopback in ["tcp://127.0.0.1:2375", "tcp://localhost:2375", "tcp://[::1]:2375", "tcp://127.9.9.9:1"] {
            assert!(matches!(DockerEndpoint::parse(loopback, None), Ok(DockerEndpoint::Plain { .. })), "{loopback}");
        }
        let refused = DockerEndpoint::parse("tcp://10.0.0.5:2375", None).unwrap_err().to_string();
        assert!(refused.contains("root on its host") && refused.contains("tcp+tls://"), "{refused}");
        for sneaky in ["tcp://127.0.0.1.evil.example:2375", "tcp://localhost.example:2375", "tcp://user@127.0.0.1:2375"]
        {
            assert!(DockerEndpoint::parse(sneaky, None).is_err(), "{sneaky}");
        }
        assert!(matches!(
            DockerEndpoint::parse("tcp+tls://docker.internal:2376", Some(&tls(true))),
            Ok(DockerEndpoint::Tls { .. })
        ));
        assert!(matches!(
            DockerEndpoint::parse("https://10.0.0.5:2376", Some(&tls(true))),
            Ok(DockerEndpoint::Tls { .. })
        ));
        for (endpoint, tls, why) in [
            ("tcp+tls://10.0.0.5:2376", None, "give tls"),
            ("tcp+tls://10.0.0.5:2376", Some(tls(false)), "client certificate"),
            ("tcp://127.0.0.1:2375", Some(tls(true)), "write tcp+tls"),
            ("unix:///run/docker.sock", Some(tls(true)), "no tls"),
            ("tcp+tls://10.0.0.5", Some(tls(true)), "a port"),
            ("http://10.0.0.5:2375", None, "scheme http"),
            ("unix://", None, "absolute"),
            ("tcp://host", None, "a port"),
        ] {
            let err = DockerEndpoint::parse(endpoint, tls.as_ref()).unwrap_err().to_string();
            assert!(err.contains(why), "{endpoint}: {err}");
        }
    }

    #[test]
    fn secret_references_name_only_the_engines_variables() {
        for ok in ["env:DOCKER_CA", "ssm:/gantry/ca", "secretsmanager:gantry/docker-ca"] {
            assert!(check_secret_ref("tls.caRef", ok, "DOCKER_").is_ok(), "{ok}");
        }
        for bad in
            ["env:GANTRY_JWT_SECRET", "env:DOCKER_", "ssm:relative", "secretsmanager:", "-----BEGIN", "file:/etc/ca"]
        {
            let err = check_secret_ref("tls.caRef", bad, "DOCKER_").unwrap_err().to_string();
            assert!(err.contains("tls.caRef") && err.contains("env:DOCKER_<NAME>"), "{bad}: {err}");
        }
    }

    #[test]
    fn nomad_addresses_and_tls() {
        assert!(check_nomad("http://127.0.0.1:4646", None).is_ok());
        assert!(check_nomad("https://nomad.internal:4646", None).is_ok());
        let plain = check_nomad("http://nomad.internal:4646", None).unwrap_err().to_string();
        assert!(plain.contains("https://"), "{plain}");
        let named = EngineTls {
            ca_ref: "env:NOMAD_CACERT".into(),
            cert_ref: Some("ssm:/gantry/nomad/cert".into()),
            key_ref: Some("secretsmanager:gantry/nomad/key".into()),
            server_name: Some("server.global.nomad".into()),
        };
        assert!(check_nomad("https://10.0.0.7:4646", Some(&named)).is_ok());
        let ca_only = EngineTls { cert_ref: None, key_ref: None, ..named.clone() };
        assert!(check_nomad("https://10.0.0.7:4646", Some(&ca_only)).is_ok());
        let docker_var = EngineTls { ca_ref: "env:DOCKER_CA".into(), ..ca_only };
        assert!(check_nomad("https://10.0.0.7:4646", Some(&docker_var)).is_err(), "only NOMAD_ variables");
        assert!(check_nomad("http://127.0.0.1:4646", Some(&named)).is_err(), "tls needs https");
        let half = EngineTls { key_ref: None, ..named.clone() };
        assert!(check_nomad("https://10.0.0.7:4646", Some(&half)).unwrap_err().to_string().contains("go together"));
        let bad_name = EngineTls { server_name: Some("server..nomad".into()), ..named };
        assert!(check_nomad("https://10.0.0.7:4646", Some(&bad_name)).unwrap_err().to_string().contains("DNS name"));
    }
}
