//! End to end against the deployed stack: `infra/template.yaml` on the local emulator with
//! every function running as a native Lambda (`scripts/deploy-local.sh up`, which `make test`
//! runs first). Requests go through Function URLs, events through the queues' event source
//! mappings, and what the functions log is read back from the emulator's CloudWatch Logs.

mod support;

mod agents;
mod alarms;
mod deploy;
mod graphql;
mod init;
mod poison;
mod registry;
mod slack;
