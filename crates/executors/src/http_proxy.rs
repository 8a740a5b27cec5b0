//! `Network: HTTP` for Docker jobs: the container sits on an internal Docker network (no route
//! out) and reaches the web only through this node's forward proxy, which lets each execution
//! through to its job's `Domains` and nowhere else. Executions are told apart by a random
//! token in their proxy URL (`http://TOKEN:x@gateway:port`), so one listener serves them all.
//!
//! Plain HTTP is forwarded with the request line rewritten; HTTPS goes through `CONNECT`
//! tunnels (the proxy sees the host name, never the content).

use base64::Engine as _;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most a request head may hold.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client has to send its request head, and the proxy to reach the server.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A running proxy and the executions it serves.
pub struct HttpProxy {
    addr: SocketAddr,
    grants: Mutex<HashMap<String, Arc<[String]>>>,
}

/// An execution's permission to use the proxy; revoked when dropped.
pub struct Grant {
    proxy: Arc<HttpProxy>,
    token: String,
}

impl Grant {
    /// The proxy URL for the execution's `http_proxy`/`https_proxy`.
    pub fn url(&self) -> String {
        format!("http://{}:x@{}", self.token, self.proxy.addr)
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.proxy.lock().remove(&self.token);
    }
}

impl HttpProxy {
    /// Listens on `bind` (a free port) and serves until the process ends.
    pub async fn start(bind: IpAddr) -> std::io::Result<Arc<Self>> {
        let listener = TcpListener::bind((bind, 0)).await?;
        let proxy = Arc::new(Self {
            addr: listener.local_addr()?,
            grants: Mutex::default(),
        });
        let serving = Arc::clone(&proxy);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "HTTP proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let proxy = Arc::clone(&serving);
                tokio::spawn(async move {
                    if let Err(e) = proxy.serve(stream).await {
                        tracing::debug!(%peer, error = %e, "HTTP proxy connection ended");
                    }
                });
            }
        });
        Ok(proxy)
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<[String]>>> {
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets the holder of the returned grant reach `domains`.
    pub fn grant(self: &Arc<Self>, domains: &[String]) -> Grant {
        let token = uuid_like();
        self.lock().insert(token.clone(), domains.to_vec().into());
        Grant {
            proxy: Arc::clone(self),
            token,
        }
    }

    async fn serve(&self, mut client: TcpStream) -> std::io::Result<()> {
        let (head, rest) = match tokio::time::timeout(TIMEOUT, read_head(&mut client)).await {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => return reply(&mut client, 400, &e.to_string()).await,
            Err(_) => return Ok(()),
        };
        let request = match Request::parse(&head) {
            Ok(request) => request,
            Err(reason) => return reply(&mut client, 400, reason).await,
        };
        let Some(domains) = request.token().and_then(|t| self.lock().get(&t).cloned()) else {
            return reply(
                &mut client,
                407,
                "this proxy serves Bacalhau executions only",
            )
            .await;
        };
        if !allowed(&request.host, &domains) {
            tracing::info!(host = %request.host, "HTTP proxy refused a domain the job does not allow");
            return reply(
                &mut client,
                403,
                &format!(
                    "{} is not in this job's allowed domains ({})",
                    request.host,
                    domains.join(", ")
                ),
            )
            .await;
        }
        let connected = tokio::time::timeout(
            TIMEOUT,
            TcpStream::connect((request.host.as_str(), request.port)),
        )
        .await;
        let mut server = match connected {
            Ok(Ok(server)) => server,
            Ok(Err(e)) => {
                return reply(
                    &mut client,
                    502,
                    &format!("cannot reach {}: {e}", request.host),
                )
                .await;
            }
            Err(_) => {
                return reply(
                    &mut client,
                    504,
                    &format!("{} did not answer", request.host),
                )
                .await;
            }
        };
        if request.connect {
            client
                .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                .await?;
        } else {
            server
                .write_all(request.forwarded_head().as_bytes())
                .await?;
        }
        server.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        Ok(())
    }
}

/// A random token (122 bits from the OS's randomness).
fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Reads up to the end of the request head; returns the head and any bytes after it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            let head = String::from_utf8(buffer).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "request head is not UTF-8")
            })?;
            return Ok((head, rest));
        }
        if buffer.len() > MAX_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before the request head ended",
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

async fn reply(stream: &mut TcpStream, status: u16, message: &str) -> std::io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        407 => "Proxy Authentication Required",
        502 => "Bad Gateway",
        _ => "Gateway Timeout",
    };
    let body = format!("bacalhau: {message}\n");
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A proxied request: where it goes and how to pass it on.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    connect: bool,
    host: String,
    port: u16,
    /// The request line for the server (origin form), for plain HTTP.
    line: String,
    /// Header lines, without the proxy's own.
    headers: Vec<String>,
    proxy_authorization: Option<String>,
}

impl Request {
    fn parse(head: &str) -> Result<Self, &'static str> {
        let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
        let first = lines.next().ok_or("empty request")?;
        let mut parts = first.split(' ');
        let (method, target, version) = match (parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(t), Some(v)) => (m, t, v),
            _ => return Err("malformed request line"),
        };
        let mut headers = Vec::new();
        let mut proxy_authorization = None;
        for line in lines {
            let name = line.split(':').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("proxy-authorization") {
                proxy_authorization = line.split_once(':').map(|(_, v)| v.trim().to_string());
            } else if !name.eq_ignore_ascii_case("proxy-connection") {
                headers.push(line.to_string());
            }
        }
        if method.eq_ignore_ascii_case("CONNECT") {
            let (host, port) = split_host_port(target, 443)?;
            return Ok(Self {
                connect: true,
                host,
                port,
                line: String::new(),
                headers,
                proxy_authorization,
            });
        }
        let rest = target
            .strip_prefix("http://")
            .ok_or("only absolute http:// URLs and CONNECT are proxied")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = split_host_port(authority, 80)?;
        Ok(Self {
            connect: false,
            host,
            port,
            line: format!("{method} {path} {version}"),
            headers,
            proxy_authorization,
        })
    }

    /// The execution token from `Proxy-Authorization: Basic base64(token:...)`.
    fn token(&self) -> Option<String> {
        let value = self.proxy_authorization.as_deref()?;
        let encoded = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        Some(text.split(':').next().unwrap_or("").to_string())
    }

    fn forwarded_head(&self) -> String {
        let mut head = self.line.clone();
        head.push_str("\r\n");
        for header in &self.headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head
    }
}

fn split_host_port(authority: &str, default: u16) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, rest) = v6.split_once(']').ok_or("malformed IPv6 host")?;
        (host, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| "malformed port")?,
        None => default,
    };
    if host.is_empty() {
        return Err("missing host");
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// Whether `host` is one of `domains`: `example.com` is that name only; `.example.com` and
/// `*.example.com` also cover its subdomains.
pub fn allowed(host: &str, domains: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    domains.iter().any(|domain| {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        match domain
            .strip_prefix("*.")
            .or_else(|| domain.strip_prefix('.'))
        {
            Some(parent) => host == parent || host.ends_with(&format!(".{parent}")),
            None => host == domain,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_match_exactly_or_with_their_subdomains() {
        let domains = vec![
            "example.com".to_string(),
            ".data.org".to_string(),
            "*.cdn.net".into(),
        ];
        assert!(allowed("example.com", &domains));
        assert!(allowed("EXAMPLE.com.", &domains));
        assert!(!allowed("www.example.com", &domains));
        assert!(!allowed("badexample.com", &domains));
        assert!(allowed("data.org", &domains));
        assert!(allowed("a.b.data.org", &domains));
        assert!(!allowed("notdata.org", &domains));
        assert!(allowed("x.cdn.net", &domains));
        assert!(!allowed("cdn.net.evil.com", &domains));
    }

    #[test]
    fn requests_parse_into_where_they_go() {
        let get = Request::parse(
            "GET http://Example.com:8080/a/b?c HTTP/1.1\r\nHost: example.com:8080\r\nProxy-Authorization: Basic dG9rOng=\r\nProxy-Connection: keep-alive\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (get.host.as_str(), get.port, get.connect),
            ("example.com", 8080, false)
        );
        assert_eq!(get.token().as_deref(), Some("tok"));
        assert_eq!(
            get.forwarded_head(),
            "GET /a/b?c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"
        );
        let connect = Request::parse("CONNECT example.com:443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            (connect.host.as_str(), connect.port, connect.connect),
            ("example.com", 443, true)
        );
        assert_eq!(connect.token(), None);
        assert!(Request::parse("GET /relative HTTP/1.1\r\n\r\n").is_err());
        assert!(Request::parse("nonsense\r\n\r\n").is_err());
        let bare = Request::parse("GET http://h HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!((bare.port, bare.line.as_str()), (80, "GET / HTTP/1.0"));
    }

    #[tokio::test]
    async fn the_proxy_forwards_allowed_hosts_and_refuses_the_rest() {
        // A tiny origin server on loopback.
        let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin_port = origin.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = origin.accept().await {
                tokio::spawn(async move {
                    let _ = read_head(&mut s).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
                        .await;
                });
            }
        });
        let proxy = HttpProxy::start("127.0.0.1".parse().unwrap())
            .await
            .unwrap();
        let grant = proxy.grant(&["localhost".to_string()]);
        let token = grant
            .url()
            .split("//")
            .nth(1)
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_string();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{token}:x"));
        let ask = |target: String, auth: Option<String>| {
            let addr = proxy.addr();
            async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let mut head = format!("GET {target} HTTP/1.1\r\nHost: x\r\n");
                if let Some(auth) = auth {
                    head.push_str(&format!("Proxy-Authorization: Basic {auth}\r\n"));
                }
                head.push_str("\r\n");
                s.write_all(head.as_bytes()).await.unwrap();
                let mut answer = String::new();
                s.read_to_string(&mut answer).await.unwrap();
                answer
            }
        };
        let ok = ask(
            format!("http://localhost:{origin_port}/"),
            Some(auth.clone()),
        )
        .await;
        assert!(
            ok.starts_with("HTTP/1.1 200") && ok.ends_with("hello"),
            "{ok}"
        );
        let refused = ask(
            format!("http://127.0.0.1:{origin_port}/"),
            Some(auth.clone()),
        )
        .await;
        assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
        let anonymous = ask(format!("http://localhost:{origin_port}/"), None).await;
        assert!(anonymous.starts_with("HTTP/1.1 407"), "{anonymous}");
        drop(grant);
        let revoked = ask(format!("http://localhost:{origin_port}/"), Some(auth)).await;
        assert!(revoked.starts_with("HTTP/1.1 407"), "{revoked}");
    }
}
