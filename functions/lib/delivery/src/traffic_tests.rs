use super::*;

fn haproxy(admin: &str, strategy: Strategy) -> Traffic {
    let slot = |server: &str, port: &str| Slot {
        server: server.into(),
        env: BTreeMap::from([("PORT".into(), port.into())]),
        workload: None,
    };
    Traffic {
        router: RouterConfig::Haproxy {
            admin: admin.into(),
            backend: "web".into(),
            slots: vec![slot("blue", "18081"), slot("green", "18082")],
            ab_map: Some("/etc/haproxy/ab.map".into()),
        },
        strategy,
    }
}

fn pause(weight: u8, seconds: u32) -> CanaryStep {
    CanaryStep { set_weight: weight, pause_seconds: Some(seconds), analysis: None }
}

fn canary(steps: Vec<CanaryStep>) -> Strategy {
    Strategy::Canary { steps }
}

#[test]
fn routers_are_reached_on_this_host_only() {
    let steps = || canary(vec![pause(5, 10), pause(50, 10)]);
    for ok in ["unix:///run/haproxy/admin.sock", "tcp://127.0.0.1:9999", "tcp://localhost:9999", "tcp://[::1]:1"] {
        assert!(haproxy(ok, steps()).check().is_ok(), "{ok}");
    }
    for bad in [
        "tcp://10.0.0.5:9999",
        "tcp://127.0.0.1.evil.example:9999",
        "tcp://127.0.0.1",
        "http://127.0.0.1:9999",
        "unix://",
        "tcp://user@127.0.0.1:9999",
        "/run/haproxy.sock",
    ] {
        assert!(haproxy(bad, steps()).check().is_err(), "{bad}");
    }
}

#[test]
fn canary_steps_climb_and_each_holds_a_pause_or_an_analysis() {
    let admin = "unix:///run/haproxy.sock";
    assert!(haproxy(admin, canary(vec![pause(5, 1), pause(25, 1), pause(100, 1)])).check().is_ok());
    for (steps, why) in [
        (vec![], "1 to"),
        (vec![pause(50, 1), pause(25, 1)], "never go down"),
        (vec![pause(0, 1)], "1-100"),
        (vec![pause(101, 1)], "1-100"),
        (vec![pause(5, 0)], "a pause"),
        (vec![pause(5, MAX_PAUSE_SECONDS + 1)], "a pause"),
        (vec![CanaryStep { set_weight: 5, pause_seconds: None, analysis: None }], "a pause"),
        ((1..=11).map(|w| pause(w, 1)).collect(), "1 to"),
    ] {
        let err = haproxy(admin, canary(steps)).check().unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn slots_and_ab_tests_are_checked() {
    let admin = "unix:///run/haproxy.sock";
    let ab = |name: &str, value: &str| Strategy::AbTest {
        matcher: Matcher { source: MatchSource::Header, name: name.into(), value: value.into() },
        max_seconds: 600,
    };
    assert!(haproxy(admin, ab("X-Canary", "yes")).check().is_ok());
    for (name, value) in [("", "yes"), ("X Canary", "yes"), ("X-Canary", "a;b"), ("X-Canary", "\"")] {
        assert!(haproxy(admin, ab(name, value)).check().is_err(), "{name:?} {value:?}");
    }
    let mut no_map = haproxy(admin, ab("X-Canary", "yes"));
    let RouterConfig::Haproxy { ab_map, slots, .. } = &mut no_map.router else { unreachable!() };
    *ab_map = None;
    slots[1].server = "blue".into();
    let err = no_map.check().unwrap_err().to_string();
    assert!(err.contains("same server"), "{err}");
    let RouterConfig::Haproxy { slots, .. } = &mut no_map.router else { unreachable!() };
    slots[1].server = "green".into();
    assert!(no_map.check().unwrap_err().to_string().contains("abMap"));
    let mut one = haproxy(admin, Strategy::BlueGreen);
    let RouterConfig::Haproxy { slots, .. } = &mut one.router else { unreachable!() };
    slots.pop();
    assert!(one.check().unwrap_err().to_string().contains("exactly two"));
}

#[test]
fn a_change_is_named_by_its_commands() {
    let change = RouterChange::new("haproxy", vec!["set server web/green weight 5".into()]);
    let again = RouterChange::new("haproxy", vec!["set server web/green weight 5".into()]);
    assert_eq!(change.sha256, again.sha256);
    assert_ne!(change.sha256, RouterChange::new("haproxy", vec!["set server web/green weight 6".into()]).sha256);
    assert!(change.sha256.starts_with("sha256:"));
}

#[test]
fn an_alb_names_its_listener_rule_and_target_groups_by_arn() {
    let arn =
        |kind: &str| format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:{kind}/app/web/50dc6c495c0c9188");
    let slot = |tg: &str, service: &str| Slot {
        server: arn(&format!("targetgroup/{tg}")),
        env: BTreeMap::new(),
        workload: Some(service.into()),
    };
    let alb = |listener: String, strategy: Strategy| Traffic {
        router: RouterConfig::Alb {
            listener_arn: listener,
            rule_arn: None,
            slots: vec![slot("blue", "web-blue"), slot("green", "web-green")],
        },
        strategy,
    };
    assert!(alb(arn("listener"), canary(vec![pause(10, 5)])).check().is_ok());
    assert!(alb(arn("listener"), Strategy::BlueGreen).check().is_ok());
    for bad in [arn("targetgroup"), "listener/app/web".into(), "arn:aws:ecs:us-east-1:1:listener/x".into()] {
        let err = alb(bad.clone(), Strategy::BlueGreen).check().unwrap_err().to_string();
        assert!(err.contains("listenerArn"), "{bad}: {err}");
    }
    let ab = Strategy::AbTest {
        matcher: Matcher { source: MatchSource::Cookie, name: "canary".into(), value: "1".into() },
        max_seconds: 60,
    };
    assert!(alb(arn("listener"), ab).check().unwrap_err().to_string().contains("HAProxy"));
}

#[test]
fn consul_is_reached_over_https_or_loopback_with_a_consul_token() {
    let slot =
        |subset: &str| Slot { server: subset.into(), env: BTreeMap::new(), workload: Some(format!("web-{subset}")) };
    let consul = |address: &str, token: Option<&str>, service: &str| Traffic {
        router: RouterConfig::Consul {
            address: address.into(),
            token_ref: token.map(Into::into),
            service: service.into(),
            slots: vec![slot("blue"), slot("green")],
        },
        strategy: canary(vec![pause(10, 5)]),
    };
    assert!(consul("https://consul.internal:8501", Some("env:CONSUL_HTTP_TOKEN"), "web").check().is_ok());
    assert!(consul("http://127.0.0.1:8500", None, "web").check().is_ok());
    for (address, token, service, why) in [
        ("http://10.0.0.5:8500", None, "web", "https"),
        ("https://consul:8501/v1", None, "web", "host:port"),
        ("https://consul:8501", Some("env:NOMAD_TOKEN"), "web", "tokenRef"),
        ("https://consul:8501", None, "Web", "a-z"),
    ] {
        let err = consul(address, token, service).check().unwrap_err().to_string();
        assert!(err.contains(why), "{address} {service}: {err}");
    }
}
