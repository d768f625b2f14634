//! Prints a token Gantry accepts, for a person or a script driving a local stack:
//! `mint-token [SUBJECT] [HOURS]` signs an admin token for SUBJECT (`local-admin`) valid for
//! HOURS (12, at most 168) with `GANTRY_JWT_SECRET`, `GANTRY_JWT_ISSUER` and
//! `GANTRY_JWT_AUDIENCE` (both `gantry` by default), as the deployed functions read them.

use gantry_auth::LocalIssuer;
use gantry_domain::access::Role;

fn main() {
    if let Err(message) = mint() {
        eprintln!("mint-token: {message}");
        std::process::exit(2);
    }
}

fn mint() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "local-admin".to_owned());
    let hours: i64 = match args.next() {
        None => 12,
        Some(h) => h.parse().ok().filter(|h| (1..=168).contains(h)).ok_or("HOURS is a whole number from 1 to 168")?,
    };
    let secret = std::env::var("GANTRY_JWT_SECRET").map_err(|_| "GANTRY_JWT_SECRET must be set")?;
    if secret.len() < 32 {
        return Err("GANTRY_JWT_SECRET must be at least 32 bytes".to_owned());
    }
    let setting = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "gantry".into());
    let issuer = LocalIssuer::new(secret.as_bytes(), setting("GANTRY_JWT_ISSUER"), setting("GANTRY_JWT_AUDIENCE"));
    let expires = chrono::Utc::now() + chrono::Duration::hours(hours);
    let token = issuer.sign(&subject, &[Role::Admin], &[], expires, None).map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}
