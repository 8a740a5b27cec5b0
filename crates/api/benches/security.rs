//! What auth and TLS cost a request: p50/p99 of `GET /api/v1/orchestrator/jobs/{id}` over
//! loopback, with the API open, with an API key, with a Basic user (bcrypt hash; verified
//! pairs are remembered), over TLS, and over TLS with an API key. One orchestrator behind
//! every server, so only the front door differs.
//!
//! `cargo bench -p bacalhau-api --bench security [-- CALLS]`

mod common;

use bacalhau_api::server::auth::{Authenticator, hash_password};
use bacalhau_api::server::{AppState, serve};
use bacalhau_api::tls::{TlsListener, self_signed};
use bacalhau_client::{ApiClient, ClientOptions, Credentials};
use bacalhau_models::parse_job_spec;
use common::{BoxError, arg, ms, percentile};
use std::sync::Arc;
use std::time::Instant;

const KEY: &str = "bench-key-0123456789abcdef";
const PASSWORD: &str = "bench password 0123";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let calls = arg(1, 1000);
    let cluster = common::start(Vec::new()).await?;
    let job = parse_job_spec(
        "Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n   Timeouts: {QueueTimeout: 3600}\n",
    )?;
    let id = cluster.client.put_job(&job, false).await?.job_id;
    let users = serde_json::json!([
        {"Alias": "key", "APIKey": KEY, "Capabilities": [{"Actions": ["read:job"]}]},
        {"Username": "basic", "Password": hash_password(PASSWORD)?, "Capabilities": [{"Actions": ["read:job"]}]}
    ]);
    let made = self_signed(&["127.0.0.1".into()])?;
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &made.ca_pem)?;

    let server = |auth: bool, tls: bool| {
        let orchestrator = Arc::clone(&cluster.orchestrator);
        let users = users.clone();
        let tls_config = made.server_config();
        async move {
            let state = Arc::new(AppState {
                orchestrator,
                node_info: Default::default(),
                config: serde_json::json!({}),
                version: Default::default(),
                auth: if auth {
                    Authenticator::from_config(&users)?
                } else {
                    Authenticator::default()
                },
                cluster: None,
                forwarder: reqwest::Client::new(),
                telemetry: Default::default(),
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            if tls {
                let listener = TlsListener::new(listener, tls_config?)?;
                tokio::spawn(serve(
                    listener,
                    state,
                    axum::Router::new(),
                    std::future::pending(),
                ));
            } else {
                tokio::spawn(serve(
                    listener,
                    state,
                    axum::Router::new(),
                    std::future::pending(),
                ));
            }
            Ok::<_, BoxError>(port)
        }
    };
    let cases: [(&str, bool, bool, Option<Credentials>); 5] = [
        ("open, HTTP", false, false, None),
        (
            "API key, HTTP",
            true,
            false,
            Some(Credentials::ApiKey(KEY.into())),
        ),
        (
            "Basic (bcrypt), HTTP",
            true,
            false,
            Some(Credentials::Basic {
                username: "basic".into(),
                password: PASSWORD.into(),
            }),
        ),
        ("open, TLS", false, true, None),
        (
            "API key, TLS",
            true,
            true,
            Some(Credentials::ApiKey(KEY.into())),
        ),
    ];
    let mut baseline = None;
    for (label, auth, tls, credentials) in cases {
        let port = server(auth, tls).await?;
        let scheme = if tls { "https" } else { "http" };
        let client = ApiClient::with_options(
            &format!("{scheme}://127.0.0.1:{port}"),
            &ClientOptions {
                credentials,
                ca_file: Some(ca.clone()),
                insecure: false,
            },
        )?;
        // Warm up: connection (and TLS session) set up, bcrypt verified once.
        for _ in 0..20 {
            client.get_job(&id, "").await?;
        }
        let mut latencies = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = Instant::now();
            client.get_job(&id, "").await?;
            latencies.push(started.elapsed());
        }
        latencies.sort();
        let p50 = ms(percentile(&latencies, 0.5));
        let p99 = ms(percentile(&latencies, 0.99));
        let base = *baseline.get_or_insert(p50);
        println!(
            "| GET job, {label}: p50 / p99 of {calls} calls (ms) | {p50:.3} / {p99:.3} | open, HTTP: {base:.3} | {:.2}× |",
            p50 / base
        );
    }
    Ok(())
}
