//! The node channel over QUIC: the orchestrator's endpoint and the compute node's dialer.
//!
//! Why a second transport beside the WebSocket: an orchestrator holds one TCP socket, so one
//! file descriptor, per connected node, and a process's open-file limit caps how many nodes
//! it can serve. A QUIC endpoint serves every node through one UDP socket; each node still
//! has a connection of its own (TLS 1.3, flow control, loss recovery). The endpoint listens on
//! the API's port number, over UDP, when `Orchestrator.QUIC.Enabled` is set; a node dials
//! `quic://HOST:PORT`.
//!
//! On the wire: the node opens one bidirectional stream and both sides write frames on it,
//! each a 4-byte big-endian length and the frame's JSON (the same JSON as the WebSocket's
//! text messages). The ALPN protocol is [`ALPN`].
//!
//! A restarted orchestrator answers its predecessor's connections with stateless resets that
//! the nodes accept: the reset tokens, and the check on connection IDs that lets a packet reach
//! the reset, are keyed from a secret kept in its data directory ([`reset_key`]). So a node's
//! next packet after the restart is answered with a reset and the node dials again at once,
//! instead of waiting out the idle timeout.

use bacalhau_channel::{BUFFER, ConnectError, Connector, Link, Serve};
use bacalhau_orchestrator::nodes::{NodeManager, serve_connection};
use bacalhau_protocol::Frame;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The ALPN protocol both ends of a node channel over QUIC agree on.
pub const ALPN: &[u8] = b"bacalhau-node/1";

/// The largest frame either side accepts, as on the WebSocket.
const MAX_FRAME: usize = crate::server::MAX_BODY_BYTES;

/// How long a connection may go without a packet from its peer before it is closed. Nodes
/// heartbeat every 5 s by default (upstream's default is 15 s) and each heartbeat is
/// acknowledged, so a node hears from a live orchestrator at least that often. This bounds how
/// long a node stays on a dead connection when no stateless reset reaches it: after an
/// orchestrator restart with 50 000 nodes some packets are dropped (a full receive buffer),
/// and a node whose retransmissions back off past the timeout waits it out (with 60 s, ~100 of
/// 50 000 nodes came back a minute after the rest).
const IDLE_TIMEOUT_MS: u32 = 30_000;

/// A node sends a keep-alive after this long without hearing from the orchestrator, so the
/// connection stays up when heartbeats are rarer than the idle timeout; heartbeats up to
/// this interval apart send none.
const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// How long a side that is done waits for its last frames to be acknowledged before closing.
const LINGER: Duration = Duration::from_secs(5);

/// How long a node waits for the orchestrator's handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong setting up a QUIC endpoint.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// The UDP socket could not be bound.
    #[error("cannot listen on UDP {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS configuration cannot serve QUIC (QUIC needs TLS 1.3).
    #[error("TLS for QUIC: {0}")]
    Tls(String),
    /// The reset key file cannot be read or written.
    #[error("{path}: {source}")]
    ResetKey {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The key a restarted orchestrator needs to reset its predecessor's connections: 32 random
/// bytes kept in `file` (made on first use, readable by the owner only).
pub fn reset_key(file: &Path) -> Result<[u8; 32], QuicError> {
    let error = |source| QuicError::ResetKey {
        path: file.to_path_buf(),
        source,
    };
    match std::fs::read(file) {
        Ok(bytes) => {
            return bytes.try_into().map_err(|bytes: Vec<u8>| {
                error(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("holds {} bytes, not 32", bytes.len()),
                ))
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| error(std::io::Error::other("no randomness from the system")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut written = options.open(file).map_err(error)?;
    std::io::Write::write_all(&mut written, &key).map_err(error)?;
    written.sync_all().map_err(error)?;
    Ok(key)
}

fn transport(keep_alive: Option<Duration>, incoming_streams: u8) -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(quinn::VarInt::from_u32(IDLE_TIMEOUT_MS).into()))
        .keep_alive_interval(keep_alive)
        .max_concurrent_bidi_streams(incoming_streams.into())
        .max_concurrent_uni_streams(0u8.into())
        .datagram_receive_buffer_size(None);
    Arc::new(transport)
}

/// The orchestrator's QUIC endpoint on `address` (UDP), serving TLS from `tls` (its ALPN is
/// replaced by [`ALPN`]); `reset` is the key from [`reset_key`].
pub fn listen(
    address: SocketAddr,
    tls: &rustls::ServerConfig,
    reset: [u8; 32],
) -> Result<quinn::Endpoint, QuicError> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| QuicError::Tls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    // The node opens the one stream; the orchestrator opens none.
    server.transport_config(transport(None, 1));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &reset);
    let ids = ConnectionIds::new(&key)?;
    let mut endpoint = quinn::EndpointConfig::new(Arc::new(key));
    endpoint
        .cid_generator(move || Box::new(ids.another()))
        // quinn sends one reset per 20 ms by default, against floods of garbage; here only
        // packets whose ID passes the keyed check are answered, and after a restart every
        // node needs its reset (50 000 nodes at 5 s heartbeats send 10 000 packets a second).
        .min_reset_interval(Duration::ZERO);
    let socket = bind_udp(address).map_err(|source| QuicError::Bind { address, source })?;
    quinn::Endpoint::new(
        endpoint,
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| QuicError::Bind { address, source })
}

/// The orchestrator's connection IDs: 8 bytes that differ from every other ID this process
/// and its predecessors made, then 8 bytes of a check keyed from the reset key.
///
/// The check must outlive the process: a restarted endpoint drops packets whose ID fails it,
/// so the packets of its predecessor's connections reach the stateless reset only if their IDs
/// still pass. And the IDs must not repeat across restarts: a packet of an old connection
/// whose ID a new connection now holds goes to that connection, fails to decrypt there and is
/// dropped, unanswered, so its node waits out the idle timeout. quinn's own keyed generator
/// draws 3 random bytes per ID (16.7 million values): with 10 000 nodes, each holding several
/// IDs, a handful of nodes met that after every restart, and with 50 000 hundreds.
struct ConnectionIds {
    /// Keys the first 8 bytes from a count, so they neither repeat nor tell the count.
    /// Random per process: a restarted endpoint's IDs share nothing with its predecessor's.
    spread: ring::hmac::Key,
    /// Keys the check; derived from the kept reset key.
    check: ring::hmac::Key,
    /// Which of the generators made from the same keys this is: each counts apart.
    generator: u64,
    /// IDs made so far.
    made: u64,
    /// Generators made so far from these keys.
    generators: Arc<std::sync::atomic::AtomicU64>,
}

/// Bytes of a connection ID before its check, and of the check.
const ID_BYTES: usize = 8;
const CHECK_BYTES: usize = 8;

impl ConnectionIds {
    fn new(reset: &ring::hmac::Key) -> Result<Self, QuicError> {
        let check = ring::hmac::sign(reset, b"connection IDs");
        Ok(Self {
            spread: random_key()?,
            check: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, check.as_ref()),
            generator: 0,
            made: 0,
            generators: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        })
    }

    /// A generator with the same keys whose IDs differ from this one's (quinn asks for one
    /// per endpoint).
    fn another(&self) -> Self {
        Self {
            spread: self.spread.clone(),
            check: self.check.clone(),
            generator: self
                .generators
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            made: 0,
            generators: Arc::clone(&self.generators),
        }
    }

    fn check_of(&self, id: &[u8]) -> [u8; CHECK_BYTES] {
        let mut check = [0u8; CHECK_BYTES];
        check.copy_from_slice(&ring::hmac::sign(&self.check, id).as_ref()[..CHECK_BYTES]);
        check
    }
}

fn random_key() -> Result<ring::hmac::Key, QuicError> {
    ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
        .map_err(|_| QuicError::Tls("no randomness from the system".into()))
}

impl quinn_proto::ConnectionIdGenerator for ConnectionIds {
    fn generate_cid(&mut self) -> quinn_proto::ConnectionId {
        let mut bytes = [0u8; ID_BYTES + CHECK_BYTES];
        let mut count = [0u8; 16];
        count[..8].copy_from_slice(&self.generator.to_le_bytes());
        count[8..].copy_from_slice(&self.made.to_le_bytes());
        let spread = ring::hmac::sign(&self.spread, &count);
        self.made += 1;
        bytes[..ID_BYTES].copy_from_slice(&spread.as_ref()[..ID_BYTES]);
        let check = self.check_of(&bytes[..ID_BYTES]);
        bytes[ID_BYTES..].copy_from_slice(&check);
        quinn_proto::ConnectionId::new(&bytes)
    }

    fn validate(&self, id: &quinn_proto::ConnectionId) -> Result<(), quinn_proto::InvalidCid> {
        match id.split_at_checked(ID_BYTES) {
            Some((head, check)) if check == self.check_of(head) => Ok(()),
            _ => Err(quinn_proto::InvalidCid),
        }
    }

    fn cid_len(&self) -> usize {
        ID_BYTES + CHECK_BYTES
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// Bursts (thousands of handshakes, or of heartbeats that happen to coincide) overflow the
/// kernel's default receive buffer of ~200 KiB, and each packet lost waits for a
/// retransmission; the kernel caps this at `net.core.rmem_max`.
const RECEIVE_BUFFER: usize = 4 << 20;

fn bind_udp(address: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(address)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    if let Err(e) = state.set_recv_buffer_size((&socket).into(), RECEIVE_BUFFER) {
        tracing::debug!(error = %e, "cannot enlarge the UDP receive buffer");
    }
    Ok(socket)
}

/// Serves every node that connects to `endpoint` until the endpoint is closed.
pub async fn serve(endpoint: quinn::Endpoint, manager: Arc<NodeManager>) {
    serve_with(endpoint, move |from_peer, to_peer| {
        Box::pin(serve_connection(Arc::clone(&manager), from_peer, to_peer))
    })
    .await
}

/// Hands each connection's frames to `protocol` (the node channel's, or a test's), which runs
/// until it is done or the peer's frames end.
async fn serve_with<P: Serve>(endpoint: quinn::Endpoint, protocol: P) {
    let protocol = Arc::new(protocol);
    while let Some(incoming) = endpoint.accept().await {
        let protocol = Arc::clone(&protocol);
        tokio::spawn(async move {
            let peer = incoming.remote_address();
            let connection = match incoming.await {
                Ok(connection) => connection,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "QUIC handshake failed");
                    return;
                }
            };
            let Ok((send, receive)) = connection.accept_bi().await else {
                return;
            };
            let (to_protocol, from_peer) = mpsc::channel(BUFFER);
            let (to_peer, from_protocol) = mpsc::channel::<Frame>(BUFFER);
            let protocol = tokio::spawn(protocol(from_peer, to_peer));
            bridge(send, receive, to_protocol, from_protocol).await;
            connection.close(0u8.into(), b"");
            let _ = protocol.await;
        });
    }
}

/// Carries frames between a QUIC stream and the protocol's channels until either side ends.
async fn bridge(
    mut send: quinn::SendStream,
    mut receive: quinn::RecvStream,
    to_protocol: mpsc::Sender<Frame>,
    mut from_protocol: mpsc::Receiver<Frame>,
) {
    let reading = async {
        loop {
            match read_frame(&mut receive).await {
                Ok(frame) => {
                    if to_protocol.send(frame).await.is_err() {
                        return;
                    }
                }
                Err(FrameError::Closed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping a node connection over QUIC");
                    return;
                }
            }
        }
    };
    let writing = async {
        while let Some(frame) = from_protocol.recv().await {
            if write_frame(&mut send, &frame).await.is_err() {
                return;
            }
        }
        // The protocol is done with the connection (a refusal, a redirect to the leader): what
        // it sent must reach the peer first, as closing a QUIC connection drops unsent data.
        if send.finish().is_ok() {
            let _ = tokio::time::timeout(LINGER, send.stopped()).await;
        }
    };
    // Whichever ends first ends the connection: a closed stream, or the protocol done with it.
    tokio::select! {
        () = reading => {}
        () = writing => {}
    }
}

#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error("the stream ended")]
    Closed,
    #[error("a frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("{0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("an unreadable frame: {0}")]
    Decode(String),
}

async fn read_frame(receive: &mut quinn::RecvStream) -> Result<Frame, FrameError> {
    let mut length = [0u8; 4];
    match receive.read_exact(&mut length).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Err(FrameError::Closed),
        Err(quinn::ReadExactError::ReadError(
            quinn::ReadError::ConnectionLost(_) | quinn::ReadError::Reset(_),
        )) => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let length = u32::from_be_bytes(length) as usize;
    if length > MAX_FRAME {
        return Err(FrameError::TooLarge(length));
    }
    let mut body = vec![0u8; length];
    receive.read_exact(&mut body).await?;
    let text = std::str::from_utf8(&body).map_err(|e| FrameError::Decode(e.to_string()))?;
    Frame::decode(text).map_err(|e| FrameError::Decode(e.to_string()))
}

async fn write_frame(send: &mut quinn::SendStream, frame: &Frame) -> Result<(), quinn::WriteError> {
    let json = frame.encode();
    let mut bytes = Vec::with_capacity(4 + json.len());
    // A frame over 4 GiB cannot be made: the API refuses bodies of over 10 MiB.
    bytes.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes());
    bytes.extend_from_slice(json.as_bytes());
    send.write_all(&bytes).await
}

/// A compute node's side: one UDP socket per address family, shared by every connection it
/// opens (a node opens one at a time; a simulator may open thousands).
pub struct QuicDialer {
    client: quinn::ClientConfig,
    endpoints: Mutex<(Option<quinn::Endpoint>, Option<quinn::Endpoint>)>,
}

impl QuicDialer {
    /// A dialer trusting `tls` (its ALPN is replaced by [`ALPN`]).
    pub fn new(tls: &rustls::ClientConfig) -> Result<Arc<Self>, QuicError> {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| QuicError::Tls(e.to_string()))?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(transport(Some(KEEP_ALIVE), 0));
        Ok(Arc::new(Self {
            client,
            endpoints: Mutex::new((None, None)),
        }))
    }

    /// The endpoint for `target`'s address family, bound on first use.
    fn endpoint(&self, target: SocketAddr) -> std::io::Result<quinn::Endpoint> {
        let mut endpoints = self
            .endpoints
            .lock()
            .map_err(|_| std::io::Error::other("the dialer's lock was poisoned"))?;
        let (slot, any): (_, SocketAddr) = if target.is_ipv4() {
            (
                &mut endpoints.0,
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            )
        } else {
            (
                &mut endpoints.1,
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            )
        };
        if let Some(endpoint) = slot {
            return Ok(endpoint.clone());
        }
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            bind_udp(any)?,
            Arc::new(quinn::TokioRuntime),
        )?;
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// A connector dialling `host_port` (`HOST:PORT`, UDP) for each session.
    pub fn connector(self: &Arc<Self>, host_port: String) -> Connector {
        let dialer = Arc::clone(self);
        Arc::new(move || {
            let dialer = Arc::clone(&dialer);
            let host_port = host_port.clone();
            Box::pin(async move {
                let url = format!("quic://{host_port}");
                let failed = |reason: String| ConnectError::Dial {
                    url: url.clone(),
                    reason,
                };
                dialer.dial(&host_port).await.map_err(failed)
            })
        })
    }

    async fn dial(&self, host_port: &str) -> Result<Link, String> {
        let target = tokio::net::lookup_host(host_port)
            .await
            .map_err(|e| e.to_string())?
            .next()
            .ok_or_else(|| "the name resolves to no address".to_string())?;
        let host = host_port
            .rsplit_once(':')
            .map_or(host_port, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let endpoint = self.endpoint(target).map_err(|e| e.to_string())?;
        let connecting = endpoint
            .connect_with(self.client.clone(), target, host)
            .map_err(|e| e.to_string())?;
        let connection = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
            .await
            .map_err(|_| "no QUIC handshake within 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        let (send, receive) = connection.open_bi().await.map_err(|e| e.to_string())?;
        let (to_node, incoming) = mpsc::channel(BUFFER);
        let (outgoing, from_node) = mpsc::channel::<Frame>(BUFFER);
        tokio::spawn(async move {
            bridge(send, receive, to_node, from_node).await;
            connection.close(0u8.into(), b"");
        });
        Ok(Link { outgoing, incoming })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reset_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("quic-reset.key");
        let made = reset_key(&file).unwrap();
        assert_eq!(reset_key(&file).unwrap(), made);
        std::fs::write(&file, b"short").unwrap();
        let refused = reset_key(&file).unwrap_err().to_string();
        assert!(
            refused.contains("quic-reset.key") && refused.contains("5 bytes"),
            "{refused}"
        );
    }

    /// A restarted endpoint (same reset key) accepts its predecessor's connection IDs, so their
    /// packets reach the reset, and makes none of them again, so none goes to a new connection.
    #[test]
    fn connection_ids_pass_the_check_after_a_restart_and_never_repeat() {
        use quinn_proto::ConnectionIdGenerator;
        let reset = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7; 32]);
        let before = ConnectionIds::new(&reset).unwrap();
        let after = ConnectionIds::new(&reset).unwrap();
        let mut seen = std::collections::HashSet::new();
        for mut generator in [before.another(), before.another(), after.another()] {
            for _ in 0..20_000 {
                let id = generator.generate_cid();
                assert_eq!(id.len(), generator.cid_len());
                assert!(after.validate(&id).is_ok() && before.validate(&id).is_ok());
                assert!(seen.insert(id), "{id} made twice");
            }
        }
        let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[8; 32]);
        let foreign = ConnectionIds::new(&other).unwrap().another().generate_cid();
        assert!(after.validate(&foreign).is_err());
        assert!(
            after
                .validate(&quinn_proto::ConnectionId::new(&[1, 2, 3]))
                .is_err()
        );
    }

    /// An endpoint on loopback (with a certificate made now) whose connections run `protocol`.
    fn test_server<P: Serve>(protocol: P) -> SocketAddr {
        let tls = crate::tls::self_signed(&["localhost".into()])
            .unwrap()
            .server_config()
            .unwrap();
        let endpoint = listen(([127, 0, 0, 1], 0).into(), &tls, [7; 32]).unwrap();
        let address = endpoint.local_addr().unwrap();
        tokio::spawn(serve_with(endpoint, protocol));
        address
    }

    /// An endpoint whose every connection echoes each frame back.
    fn echo_server() -> SocketAddr {
        test_server(|mut from_peer, to_peer| {
            Box::pin(async move {
                while let Some(frame) = from_peer.recv().await {
                    if to_peer.send(frame).await.is_err() {
                        return;
                    }
                }
            })
        })
    }

    #[tokio::test]
    async fn what_a_side_sends_before_it_ends_reaches_the_peer() {
        // A server whose protocol answers the first frame and ends at once, as a refusal does.
        let address = test_server(|mut from_peer, to_peer| {
            Box::pin(async move {
                if from_peer.recv().await.is_some() {
                    // A large last frame, so it cannot all leave in the packet that carries
                    // the close.
                    for seq in 0..64 {
                        let _ = to_peer
                            .send(Frame::LogData(Box::new(bacalhau_protocol::LogData {
                                stream_id: seq,
                                kind: 1,
                                line: "x".repeat(4096),
                            })))
                            .await;
                    }
                }
            })
        });
        let trust = crate::tls::client_config(None, true).unwrap();
        let dialer = QuicDialer::new(&trust).unwrap();
        let mut link = dialer.connector(format!("localhost:{}", address.port()))()
            .await
            .unwrap();
        link.outgoing.send(Frame::Ack { seq: 1 }).await.unwrap();
        let mut received = 0;
        while let Some(frame) = link.incoming.recv().await {
            assert!(matches!(frame, Frame::LogData(_)), "{frame:?}");
            received += 1;
        }
        assert_eq!(received, 64);
    }

    #[tokio::test]
    async fn frames_cross_a_quic_connection_both_ways() {
        let address = echo_server();
        let trust = crate::tls::client_config(None, true).unwrap();
        let dialer = QuicDialer::new(&trust).unwrap();
        let connector = dialer.connector(format!("localhost:{}", address.port()));
        for _ in 0..2 {
            // Each call is a fresh connection through the same socket.
            let mut link = connector().await.unwrap();
            for seq in [1, 2, 3] {
                link.outgoing.send(Frame::Ack { seq }).await.unwrap();
                assert_eq!(link.incoming.recv().await, Some(Frame::Ack { seq }));
            }
        }
    }

    #[tokio::test]
    async fn a_certificate_the_node_does_not_trust_is_refused() {
        let address = echo_server();
        let trust = crate::tls::client_config(None, false).unwrap();
        let dialer = QuicDialer::new(&trust).unwrap();
        let refused = match dialer.connector(format!("localhost:{}", address.port()))().await {
            Ok(_) => panic!("a self-signed certificate was trusted"),
            Err(e) => e.to_string(),
        };
        assert!(
            refused.starts_with("quic://localhost:") && refused.contains("certificate"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_ends_the_connection() {
        let address = echo_server();
        let trust = crate::tls::client_config(None, true).unwrap();
        let dialer = QuicDialer::new(&trust).unwrap();
        let endpoint = dialer.endpoint(address).unwrap();
        let connection = endpoint
            .connect_with(dialer.client.clone(), address, "localhost")
            .unwrap()
            .await
            .unwrap();
        let (mut send, mut receive) = connection.open_bi().await.unwrap();
        let too_long = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes();
        send.write_all(&too_long).await.unwrap();
        // The server reads the length, refuses it and closes: the stream ends without a frame.
        assert!(read_frame(&mut receive).await.is_err());
    }
}
