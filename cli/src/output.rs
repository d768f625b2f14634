//! How results are printed: a plain table for people, or the API's data as JSON.

use serde::Serialize;

pub struct Out {
    pub json: bool,
}

impl Out {
    /// Prints `raw` (the API's data) as JSON with `--json`, else the lines `human` makes of
    /// `data`.
    pub fn print<T>(&self, raw: &serde_json::Value, data: &T, human: impl FnOnce(&T) -> Vec<String>) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(raw).unwrap_or_default());
        } else {
            for line in human(data) {
                println!("{line}");
            }
        }
    }
}

/// An enum's GraphQL name (`PENDING_APPROVAL`), or a scalar as text.
pub fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut lines = vec![line(header.iter().map(|h| (*h).to_owned()).collect())];
    lines.extend(rows.into_iter().map(line));
    lines
}

/// The status matrix: a row per component, a column per environment, each cell the version
/// and digest that runs there; then each environment's release and latest promotion.
pub fn matrix(envs: &[crate::ops::environments::EnvironmentsEnvironments]) -> Vec<String> {
    let mut components: Vec<String> = envs
        .iter()
        .flat_map(|e| e.current_release.iter().flat_map(|r| r.components.iter().map(|c| c.component_name.clone())))
        .collect();
    components.sort();
    components.dedup();
    let mut header = vec!["COMPONENT"];
    header.extend(envs.iter().map(|e| e.name.as_str()));
    let mut rows: Vec<Vec<String>> = components
        .iter()
        .map(|name| {
            let mut row = vec![name.clone()];
            row.extend(envs.iter().map(|e| {
                let found =
                    e.current_release.as_ref().and_then(|r| r.components.iter().find(|c| &c.component_name == name));
                found.map_or_else(|| "-".to_owned(), |c| format!("{} {}", c.version, short_digest(&c.digest)))
            }));
            row
        })
        .collect();
    let mut release = vec!["(release)".to_owned()];
    release.extend(envs.iter().map(|e| e.current_release.as_ref().map_or_else(|| "-".to_owned(), |r| r.name.clone())));
    let mut latest = vec!["(latest promotion)".to_owned()];
    latest.extend(envs.iter().map(|e| {
        e.history.first().map_or_else(|| "-".to_owned(), |p| format!("{} {}", p.release.name, word(&p.status)))
    }));
    rows.push(release);
    rows.push(latest);
    table(&header, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_digests_shorten() {
        let lines =
            table(&["NAME", "V"], vec![vec!["web".into(), "1.0.0".into()], vec!["checkout".into(), "2".into()]]);
        assert_eq!(lines, ["NAME      V", "web       1.0.0", "checkout  2"]);
        assert_eq!(short_digest(&format!("sha256:{}", "ab".repeat(32))), "sha256:abababababab");
    }
}
