//! Bacalhau's v1 REST API: the axum server and a typed client for it.
//!
//! [`server::router`] maps upstream's `/api/v1` routes onto an
//! [`Orchestrator`](bacalhau_orchestrator::Orchestrator); [`client::ApiClient`] speaks the same
//! wire format for the CLI and tests. [`apimodels`] holds the request and response bodies.
//! [`results`] serves a compute node's locally published results.
//! Only this crate serves HTTP: errors become upstream's error JSON in one place
//! (`server/error.rs`). Start at `server/mod.rs`.

pub mod apimodels;
pub mod client;
pub mod node_channel;
pub mod results;
pub mod server;
pub mod tls;
pub mod ui;

pub use client::{ApiClient, ClientError, ClientOptions, Credentials};
