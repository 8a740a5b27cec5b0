//! The node channel over WebSocket: the orchestrator's endpoint and the compute node's dialer.
//! Both bridge text frames to `protocol::Frame` channels, so the protocol code never sees HTTP.

use axum::extract::ws::{Message as WsMessage, WebSocket};
use bacalhau_channel::{BUFFER, ConnectError, Connector, Link};
use bacalhau_orchestrator::nodes::{NodeManager, serve_connection};
use bacalhau_protocol::Frame;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as TMessage;

/// Serves one upgraded node connection until either side closes.
pub async fn serve_socket(socket: WebSocket, manager: Arc<NodeManager>) {
    let (mut sink, mut stream) = socket.split();
    let (to_protocol, from_socket) = mpsc::channel(BUFFER);
    let (to_socket, mut from_protocol) = mpsc::channel::<Frame>(BUFFER);
    let protocol = tokio::spawn(serve_connection(manager, from_socket, to_socket));
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(WsMessage::Text(text))) => match Frame::decode(text.as_str()) {
                    Ok(frame) => {
                        if to_protocol.send(frame).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "dropping a node connection that sent garbage");
                        break;
                    }
                },
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            frame = from_protocol.recv() => match frame {
                Some(frame) => {
                    if sink.send(WsMessage::Text(frame.encode().into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    drop(to_protocol);
    let _ = sink.close().await;
    let _ = protocol.await;
}

/// A connector that dials `url` (`ws://` or `wss://host:port/api/v1/compute/connect`) for
/// each session; `tls` is the trust used for `wss://`.
pub fn websocket_connector(url: String, tls: Option<Arc<rustls::ClientConfig>>) -> Connector {
    Arc::new(move || {
        let url = url.clone();
        let tls = tls.clone();
        Box::pin(async move { dial(&url, tls).await })
    })
}

async fn dial(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Link, ConnectError> {
    let connector = tls.map(tokio_tungstenite::Connector::Rustls);
    let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector)
        .await
        .map_err(|e| ConnectError::Dial {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let (mut sink, mut stream) = socket.split();
    let (to_node, incoming) = mpsc::channel(BUFFER);
    let (outgoing, mut from_node) = mpsc::channel::<Frame>(BUFFER);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(Ok(TMessage::Text(text))) => match Frame::decode(text.as_str()) {
                        Ok(frame) => {
                            if to_node.send(frame).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the orchestrator sent an unreadable frame");
                            break;
                        }
                    },
                    Some(Ok(TMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                frame = from_node.recv() => match frame {
                    Some(frame) => {
                        if sink.send(TMessage::Text(frame.encode().into())).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        let _ = sink.close().await;
    });
    Ok(Link { outgoing, incoming })
}

/// A connector to an orchestrator in the same process: the same frames over channels.
pub fn in_process_connector(manager: Arc<NodeManager>) -> Connector {
    bacalhau_channel::in_process(move |from_node, to_node| {
        Box::pin(serve_connection(Arc::clone(&manager), from_node, to_node))
    })
}
