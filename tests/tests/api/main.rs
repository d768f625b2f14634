//! End-to-end tests: the GraphQL API over HTTP, against DynamoDB on the local emulator.
//! Each test gets its own table, so they run in parallel.

use gantry_tests::app as support;

mod abuse;
mod admission;
mod agents;
mod alb;
mod analysis;
mod auth;
mod browser;
mod canary;
mod ci;
mod ci_integrations;
mod components;
mod compose;
mod crash;
mod dashboard;
mod deployments;
mod docker;
mod ecs;
mod efficiency;
mod engine_tls;
mod environments;
mod evidence_bundles;
mod evidence_keys;
mod freeze;
mod http;
mod inputs;
mod keyless;
mod mesh;
mod path;
mod promotions;
mod queue;
mod registry;
mod releases;
mod reports;
mod rollbacks;
mod signatures;
mod slack;
mod steps;
mod takeover;
mod targets;
mod timeouts;
mod traffic;
mod versions;
mod webhooks;
