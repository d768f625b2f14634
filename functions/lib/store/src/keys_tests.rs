use super::*;

#[test]
fn semver_keys_sort_like_semver_precedence() {
    // Ascending precedence, as semver.org's examples and the tricky cases give it.
    let ordered = [
        "0.9.0",
        "1.0.0-0",
        "1.0.0-1",
        "1.0.0-10",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc",
        "1.0.0-rc.1",
        "1.0.0-rc-x",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
        "10.0.0",
    ];
    let versions: Vec<semver::Version> = ordered.iter().map(|v| v.parse().unwrap()).collect();
    for pair in versions.windows(2) {
        assert!(pair[0] < pair[1], "fixture out of order: {} {}", pair[0], pair[1]);
        let (a, b) = (semver_sort_key(&pair[0]), semver_sort_key(&pair[1]));
        assert!(a < b, "{} must sort before {}: {a:?} vs {b:?}", pair[0], pair[1]);
    }
    // With the id appended, one semver never sorts into another's range.
    let key = |v: &str| format!("{}#{}", semver_sort_key(&v.parse().unwrap()), VersionMapId::new());
    assert!(key("1.0.0-rc") < key("1.0.0-rc.1"));
    assert!(key("1.0.0-rc.1") < key("1.0.0"));
}

#[test]
fn build_metadata_has_no_precedence() {
    let a: semver::Version = "1.0.0+a".parse().unwrap();
    let b: semver::Version = "1.0.0+b".parse().unwrap();
    assert_eq!(semver_sort_key(&a), semver_sort_key(&b));
}

#[test]
fn created_keys_sort_by_time() {
    let early = "2026-01-01T00:00:00.5Z".parse().unwrap();
    let late = "2026-01-01T00:00:01Z".parse().unwrap();
    assert!(created_sort_key(early, ReleaseId::new()) < created_sort_key(late, ReleaseId::new()));
}
