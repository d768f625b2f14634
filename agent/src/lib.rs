//! Gantry's pull agent, as a library: the signed client of the Gantry API, the state it keeps
//! on its host, and its heartbeat and job loops. The `gantry-agent` binary runs them; the
//! scale bench runs many in one process with a stub engine.

pub mod client;
pub mod run;
pub mod state;
