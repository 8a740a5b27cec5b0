//! A typed client of Bacalhau's v1 REST API (`ApiClient`), the API's request and response
//! models (`apimodels`), and client-side TLS (`tls`). It depends on the job model and an HTTP
//! client only: no server, store or engine code comes with it.

pub mod apimodels;
pub mod client;
pub mod tls;

pub use client::{ApiClient, ClientError, ClientOptions, Credentials};
