//! Bacalhau's v1 REST API server.
//!
//! [`server::router`] maps upstream's `/api/v1` routes onto an
//! [`Orchestrator`](bacalhau_orchestrator::Orchestrator); the request and response bodies
//! ([`apimodels`]) and the typed client that speaks the same wire format live in
//! `bacalhau-client`.
//! [`results`] serves a compute node's locally published results.
//! The web UI's pages live in `bacalhau-webui`, which depends on this crate; the binary hands
//! them to [`server::serve`], which puts them behind the same layers (auth first) as the API.
//! Only this crate serves HTTP: errors become upstream's error JSON in one place
//! (`server/error.rs`). Start at `server/mod.rs`.

pub mod node_channel;
pub mod node_quic;
pub mod results;
pub mod server;
pub mod telemetry;
pub mod tls;

// The API's bodies are the client's models: one definition for both ends.
pub use bacalhau_client::apimodels;
