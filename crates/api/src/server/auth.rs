//! Who is calling, and may they: upstream's `API.Auth.Users` (API keys and Basic users with
//! capabilities) as one middleware in front of every route. Handlers see a [`Principal`],
//! never credentials.

use super::AppState;
use crate::apimodels::ApiErrorBody;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq as _;

/// The caller of a request: a user's name (what history records as the actor; `anonymous`
/// when the API is open) and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    name: String,
    /// `None`: everything (an open API).
    actions: Option<Arc<[Action]>>,
}

impl Principal {
    /// The caller of an API without users: may do everything.
    pub fn anonymous() -> Self {
        Self {
            name: "anonymous".into(),
            actions: None,
        }
    }

    /// The name history records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the caller holds `capability`.
    pub fn can(&self, capability: Capability) -> bool {
        self.holds(capability)
    }

    fn holds(&self, needed: Capability) -> bool {
        self.actions
            .as_ref()
            .is_none_or(|actions| actions.iter().any(|a| a.allows(needed)))
    }
}

/// What a route is about, as upstream's capability names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Jobs, their executions, history, logs and results.
    Job,
    /// Nodes and their membership, the audit log, pinned data.
    Node,
    /// The serving node's own state and configuration.
    Agent,
}

/// A capability a route or a page needs: upstream's `read:job`, `write:node`...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    write: bool,
    resource: Resource,
}

impl Capability {
    /// `read:job`.
    pub const READ_JOB: Self = Self::new(false, Resource::Job);
    /// `write:job`.
    pub const WRITE_JOB: Self = Self::new(true, Resource::Job);
    /// `read:node`.
    pub const READ_NODE: Self = Self::new(false, Resource::Node);
    /// `write:node`.
    pub const WRITE_NODE: Self = Self::new(true, Resource::Node);
    /// `read:agent`.
    pub const READ_AGENT: Self = Self::new(false, Resource::Agent);

    const fn new(write: bool, resource: Resource) -> Self {
        Self { write, resource }
    }

    /// Parses upstream's form (`read:job`); a wildcard is an [`Action`], not a capability.
    pub fn parse(text: &str) -> Option<Self> {
        let action = Action::parse(text)?;
        Some(Self {
            write: action.write?,
            resource: action.resource?,
        })
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.write { "write" } else { "read" };
        let resource = match self.resource {
            Resource::Job => "job",
            Resource::Node => "node",
            Resource::Agent => "agent",
        };
        write!(f, "{verb}:{resource}")
    }
}

/// One allowed action of a user: a capability, or a wildcard over verbs or resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// `None`: read and write.
    write: Option<bool>,
    /// `None`: every resource.
    resource: Option<Resource>,
}

impl Action {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        if text == "*" {
            return Some(Self {
                write: None,
                resource: None,
            });
        }
        let (verb, resource) = text.split_once(':')?;
        let write = match verb {
            "read" => Some(false),
            "write" => Some(true),
            "*" => None,
            _ => return None,
        };
        let resource = match resource {
            "job" => Some(Resource::Job),
            "node" => Some(Resource::Node),
            "agent" => Some(Resource::Agent),
            "*" => None,
            _ => return None,
        };
        Some(Self { write, resource })
    }

    fn allows(&self, needed: Capability) -> bool {
        self.write.is_none_or(|w| w == needed.write)
            && self.resource.is_none_or(|r| r == needed.resource)
    }
}

/// How a user proves who they are.
#[derive(Debug, Clone)]
enum Credential {
    ApiKey(String),
    Password { username: String, secret: Password },
}

#[derive(Debug, Clone)]
enum Password {
    Bcrypt(String),
    Plain(String),
}

#[derive(Debug, Clone)]
struct User {
    /// The alias, else the username, else `api-key-N`: what history records.
    name: String,
    credential: Credential,
    actions: Arc<[Action]>,
}

impl User {
    fn principal(&self) -> Principal {
        Principal {
            name: self.name.clone(),
            actions: Some(Arc::clone(&self.actions)),
        }
    }
}

/// A configuration of users that cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("error initializing users: {0}")]
pub struct UsersError(String);

/// Checks requests against the configured users; with none, every request is let through as
/// [`Principal::anonymous`].
#[derive(Debug, Default)]
pub struct Authenticator {
    users: Vec<User>,
    /// Digests of `username:password` pairs already checked against a bcrypt hash: bcrypt is
    /// slow on purpose, and a client sends the same pair on every request.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// Web UI sessions: cookie token → the signed-in user and when the session ends.
    sessions: Mutex<HashMap<String, (Principal, Instant)>>,
}

/// The cookie that carries a web UI session.
pub const SESSION_COOKIE: &str = "bacalhau_session";
/// How long a web UI session lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// How many verified Basic pairs are remembered before the memory is cleared.
const VERIFIED_CAP: usize = 1024;

/// Finds `key` in a JSON object regardless of case (config files are written by people).
fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn text_field(value: &Value, key: &str) -> String {
    field(value, key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Authenticator {
    /// The users of upstream's `API.Auth.Users` list (a JSON array), checked as upstream does:
    /// exactly one of username+password or API key, lengths, at least one capability, no
    /// duplicate names.
    pub fn from_config(users: &Value) -> Result<Self, UsersError> {
        let entries = match users {
            Value::Null => return Ok(Self::default()),
            Value::Array(entries) => entries,
            _ => return Err(UsersError("API.Auth.Users must be a list".into())),
        };
        let mut parsed = Vec::with_capacity(entries.len());
        let mut names = HashSet::new();
        for (i, entry) in entries.iter().enumerate() {
            let alias = text_field(entry, "Alias");
            let username = text_field(entry, "Username");
            let password = text_field(entry, "Password");
            let api_key = text_field(entry, "APIKey");
            let label = if alias.is_empty() {
                format!("user {i}")
            } else {
                format!("user {alias:?}")
            };
            let credential = match (username.is_empty(), api_key.is_empty()) {
                (false, true) => {
                    if username.len() > 100 || !username.chars().all(|c| c.is_ascii_alphanumeric())
                    {
                        return Err(UsersError(format!(
                            "{label}: username must be 1 to 100 letters or digits"
                        )));
                    }
                    let secret = if is_bcrypt_hash(&password) {
                        Password::Bcrypt(password)
                    } else if (10..=255).contains(&password.len()) {
                        Password::Plain(password)
                    } else {
                        return Err(UsersError(format!(
                            "{label}: password must be 10 to 255 characters or a bcrypt hash"
                        )));
                    };
                    Credential::Password {
                        username: username.to_ascii_lowercase(),
                        secret,
                    }
                }
                (true, false) => {
                    if !password.is_empty() {
                        return Err(UsersError(format!(
                            "{label}: a password needs a username, and an API key user has none"
                        )));
                    }
                    if !(20..=255).contains(&api_key.len()) {
                        return Err(UsersError(format!(
                            "{label}: API key must be 20 to 255 characters"
                        )));
                    }
                    Credential::ApiKey(api_key)
                }
                (false, false) => {
                    return Err(UsersError(format!(
                        "{label}: give either Username and Password or APIKey, not both"
                    )));
                }
                (true, true) => {
                    return Err(UsersError(format!(
                        "{label}: give either Username and Password or APIKey"
                    )));
                }
            };
            let name = if !alias.is_empty() {
                alias
            } else if !username.is_empty() {
                username
            } else {
                format!("api-key-{i}")
            };
            if !names.insert(name.to_ascii_lowercase()) {
                return Err(UsersError(format!("duplicate user {name:?}")));
            }
            let mut actions = Vec::new();
            for capability in field(entry, "Capabilities")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for action in field(capability, "Actions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let text = action.as_str().unwrap_or_default();
                    actions.push(Action::parse(text).ok_or_else(|| {
                        UsersError(format!(
                            "{label}: unknown action {text:?} (use read:job, write:node, read:*, * ...)"
                        ))
                    })?);
                }
            }
            if actions.is_empty() {
                return Err(UsersError(format!(
                    "{label}: needs at least one capability"
                )));
            }
            parsed.push(User {
                name,
                credential,
                actions: actions.into(),
            });
        }
        Ok(Self {
            users: parsed,
            verified: Mutex::default(),
            sessions: Mutex::default(),
        })
    }

    /// Whether any user is configured (otherwise the API is open).
    pub fn enabled(&self) -> bool {
        !self.users.is_empty()
    }

    /// The caller an `Authorization` header value names (`Bearer KEY` or `Basic ...`).
    pub fn principal_for(&self, header_value: &str) -> Result<Principal, &'static str> {
        self.authenticate(header_value).map(User::principal)
    }

    /// Starts a web UI session for `principal`; returns the cookie's token.
    pub fn open_session(&self, principal: Principal) -> String {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        if let Ok(mut sessions) = self.sessions.lock() {
            let now = Instant::now();
            sessions.retain(|_, (_, until)| *until > now);
            sessions.insert(token.clone(), (principal, now + SESSION_LIFETIME));
        }
        token
    }

    /// The caller of a live session.
    pub fn session(&self, token: &str) -> Option<Principal> {
        let sessions = self.sessions.lock().ok()?;
        let (principal, until) = sessions.get(token)?;
        (*until > Instant::now()).then(|| principal.clone())
    }

    /// Ends a session.
    pub fn close_session(&self, token: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(token);
        }
    }

    /// The user an `Authorization` header names, or why not.
    fn authenticate(&self, header_value: &str) -> Result<&User, &'static str> {
        let (scheme, rest) = header_value
            .trim()
            .split_once(' ')
            .unwrap_or((header_value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self
                .users
                .iter()
                .find(|u| matches!(&u.credential, Credential::ApiKey(k) if same_secret(k, rest)))
                .ok_or("invalid API key");
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| "failed to decode basic auth credentials")?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| "invalid basic auth credentials format")?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or("invalid basic auth credentials format")?;
            let username = username.to_ascii_lowercase();
            let user = self
                .users
                .iter()
                .find(|u| matches!(&u.credential, Credential::Password { username: n, .. } if *n == username))
                .ok_or("invalid basic auth credentials")?;
            let Credential::Password { secret, .. } = &user.credential else {
                return Err("invalid basic auth credentials");
            };
            let ok = match secret {
                Password::Plain(expected) => same_secret(expected, password),
                Password::Bcrypt(hash) => self.check_bcrypt(&username, password, hash),
            };
            return if ok {
                Ok(user)
            } else {
                Err("invalid basic auth credentials")
            };
        }
        Err("unsupported authorization scheme (use Bearer or Basic)")
    }

    fn check_bcrypt(&self, username: &str, password: &str, hash: &str) -> bool {
        let digest: [u8; 32] = Sha256::new()
            .chain_update(username.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        if let Ok(verified) = self.verified.lock()
            && verified.contains(&digest)
        {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok && let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_CAP {
                verified.clear();
            }
            verified.insert(digest);
        }
        ok
    }
}

/// Hashes a password for `API.Auth.Users[].Password` (bcrypt, default cost).
pub fn hash_password(password: &str) -> Result<String, String> {
    bcrypt::hash(password, bcrypt::DEFAULT_COST).map_err(|e| e.to_string())
}

fn is_bcrypt_hash(text: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| text.starts_with(prefix))
        && text.len() == 60
}

/// Compares secrets in time that depends only on their lengths.
fn same_secret(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The capability a request needs, by upstream's longest-prefix map; `None` for open routes.
fn required_capability(method: &Method, path: &str) -> Option<Capability> {
    const OPEN: &[&str] = &[
        "/api/v1/auth",
        "/api/v1/version",
        "/api/v1/agent/alive",
        "/api/v1/agent/version",
        "/api/v1/agent/authconfig",
        "/api/v1/openapi.json",
        "/swagger",
        // Nodes authenticate on the channel itself, with the join token.
        bacalhau_protocol::CONNECT_PATH,
    ];
    if OPEN.iter().any(|open| under(path, open)) {
        return None;
    }
    let write = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    // Adding data is like submitting a job that pins it: a job writer may.
    let resource =
        if under(path, "/api/v1/orchestrator/jobs") || under(path, "/api/v1/orchestrator/data") {
            Resource::Job
        } else if under(path, "/api/v1/orchestrator/nodes") || under(path, "/api/v1/cluster") {
            Resource::Node
        } else if under(path, "/api/v1/agent") || path == "/metrics" {
            Resource::Agent
        } else {
            // Everything else (the audit log, unknown paths) is for node administrators.
            return Some(Capability {
                write: true,
                resource: Resource::Node,
            });
        };
    Some(Capability { write, resource })
}

/// Whether `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The middleware: lets open routes through, otherwise authenticates and checks the route's
/// capability, answering 401 or 403 in upstream's error JSON.
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = &state.auth;
    if !auth.enabled() {
        request.extensions_mut().insert(Principal::anonymous());
        return next.run(request).await;
    }
    let path = request.uri().path().to_string();
    // The web UI checks its own pages (a login page, not a 401); its session also signs the
    // API calls its scripts make (a browser's WebSocket cannot send an Authorization header).
    let session = cookie(request.headers(), SESSION_COOKIE).and_then(|t| auth.session(t));
    if under(&path, UI_PREFIX) {
        if let Some(principal) = session {
            request.extensions_mut().insert(principal);
        }
        return next.run(request).await;
    }
    let Some(needed) = required_capability(request.method(), &path) else {
        request.extensions_mut().insert(Principal::anonymous());
        return next.run(request).await;
    };
    let header_value = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match (header_value, session) {
        (Some(value), _) => match auth.principal_for(value) {
            Ok(principal) => principal,
            Err(reason) => {
                tracing::warn!(%path, reason, "API request unauthorized");
                return refusal(StatusCode::UNAUTHORIZED, reason);
            }
        },
        (None, Some(principal)) => principal,
        (None, None) => return refusal(StatusCode::UNAUTHORIZED, "Missing Authorization header"),
    };
    if !principal.holds(needed) {
        tracing::warn!(user = %principal.name, %path, %needed, "API request forbidden");
        return refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "user '{}' does not have the required capability '{needed}'",
                principal.name
            ),
        );
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Where the web UI lives.
pub const UI_PREFIX: &str = "/ui";

/// A cookie's value from a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn refusal(status: StatusCode, reason: &str) -> Response {
    let (message, code, hint) = if status == StatusCode::FORBIDDEN {
        (
            "Request Forbidden",
            "Forbidden",
            "Check if user have access to this resource. Event has been recorded.",
        )
    } else {
        (
            "Request Unauthorized",
            "UnauthorizedError",
            "Unauthorized principal. Event has been recorded.",
        )
    };
    let body = ApiErrorBody {
        status: status.as_u16(),
        message: message.into(),
        request_id: String::new(),
        code: code.into(),
        component: "Authorizer".into(),
        hint: hint.into(),
        details: [("reason".to_string(), reason.to_string())]
            .into_iter()
            .collect(),
    };
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"bacalhau\""),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cap(text: &str) -> Capability {
        let (verb, resource) = text.split_once(':').unwrap();
        Capability {
            write: verb == "write",
            resource: match resource {
                "job" => Resource::Job,
                "node" => Resource::Node,
                _ => Resource::Agent,
            },
        }
    }

    #[test]
    fn routes_map_to_upstreams_capabilities() {
        let get = Method::GET;
        let put = Method::PUT;
        assert_eq!(required_capability(&get, "/api/v1/agent/alive"), None);
        assert_eq!(required_capability(&get, "/api/v1/agent/version"), None);
        assert_eq!(required_capability(&get, "/api/v1/agent/authconfig"), None);
        // Upstream's legacy redirects are outside its route map: node administrators only.
        for legacy in ["/", "/version", "/livez"] {
            assert_eq!(
                required_capability(&get, legacy),
                Some(cap("write:node")),
                "{legacy}"
            );
        }
        assert_eq!(
            required_capability(&get, "/api/v1/agent/config"),
            Some(cap("read:agent"))
        );
        assert_eq!(
            required_capability(&get, "/api/v1/orchestrator/jobs/j-1/logs"),
            Some(cap("read:job"))
        );
        assert_eq!(
            required_capability(&put, "/api/v1/orchestrator/jobs"),
            Some(cap("write:job"))
        );
        assert_eq!(
            required_capability(&Method::DELETE, "/api/v1/orchestrator/jobs/j-1"),
            Some(cap("write:job"))
        );
        assert_eq!(
            required_capability(&put, "/api/v1/orchestrator/nodes/n-1"),
            Some(cap("write:node"))
        );
        assert_eq!(
            required_capability(&Method::POST, "/api/v1/orchestrator/data"),
            Some(Capability {
                write: true,
                resource: Resource::Job
            })
        );
        // A prefix is a path segment, not a string prefix.
        assert_eq!(
            required_capability(&get, "/api/v1/orchestrator/jobsx"),
            Some(cap("write:node"))
        );
        assert_eq!(
            required_capability(&get, "/api/v1/orchestrator/audit"),
            Some(cap("write:node"))
        );
    }

    #[test]
    fn wildcards_cover_what_they_say() {
        let all = Action::parse("*").unwrap();
        let read_all = Action::parse("read:*").unwrap();
        let write_job = Action::parse("write:job").unwrap();
        assert!(all.allows(cap("write:node")));
        assert!(read_all.allows(cap("read:agent")));
        assert!(!read_all.allows(cap("write:job")));
        assert!(write_job.allows(cap("write:job")));
        assert!(!write_job.allows(cap("read:job")));
        assert!(Action::parse("delete:job").is_none());
        assert!(Action::parse("read:jobs").is_none());
    }

    #[test]
    fn users_are_checked_as_upstream() {
        let ok = json!([
            {"Alias": "ops", "APIKey": "k".repeat(20), "Capabilities": [{"Actions": ["*"]}]},
            {"Username": "reader", "Password": "p".repeat(10), "Capabilities": [{"Actions": ["read:*"]}]}
        ]);
        let auth = Authenticator::from_config(&ok).unwrap();
        assert!(auth.enabled());
        let bad = [
            json!([{"APIKey": "short", "Capabilities": [{"Actions": ["*"]}]}]),
            json!([{"Username": "u", "Password": "short", "Capabilities": [{"Actions": ["*"]}]}]),
            json!([{"Username": "u", "Password": "p".repeat(10), "APIKey": "k".repeat(20), "Capabilities": [{"Actions": ["*"]}]}]),
            json!([{"Username": "u", "Password": "p".repeat(10)}]),
            json!([{"Username": "bad name", "Password": "p".repeat(10), "Capabilities": [{"Actions": ["*"]}]}]),
            json!([
                {"Username": "Dup", "Password": "p".repeat(10), "Capabilities": [{"Actions": ["*"]}]},
                {"Username": "dup", "Password": "q".repeat(10), "Capabilities": [{"Actions": ["*"]}]}
            ]),
        ];
        for users in bad {
            assert!(Authenticator::from_config(&users).is_err(), "{users}");
        }
    }

    #[test]
    fn bearer_and_basic_find_their_user() {
        let hash = bcrypt::hash("correct horse battery", 4).unwrap();
        let users = json!([
            {"Alias": "ops", "APIKey": "k".repeat(20), "Capabilities": [{"Actions": ["*"]}]},
            {"Username": "Alice", "Password": hash, "Capabilities": [{"Actions": ["read:job"]}]},
            {"Username": "bob", "Password": "plain-password", "Capabilities": [{"Actions": ["read:job"]}]}
        ]);
        let auth = Authenticator::from_config(&users).unwrap();
        let basic = |pair: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        };
        let key = "k".repeat(20);
        assert_eq!(
            auth.authenticate(&format!("Bearer {key}")).unwrap().name,
            "ops"
        );
        assert!(
            auth.authenticate("Bearer wrong-key-wrong-key-wrong")
                .is_err()
        );
        assert_eq!(
            auth.authenticate(&basic("alice:correct horse battery"))
                .unwrap()
                .name,
            "Alice"
        );
        // Second time from the memory of verified pairs.
        assert!(
            auth.authenticate(&basic("alice:correct horse battery"))
                .is_ok()
        );
        assert!(auth.authenticate(&basic("alice:wrong")).is_err());
        assert!(auth.authenticate(&basic("bob:plain-password")).is_ok());
        assert!(auth.authenticate(&basic("bob:plain-passwore")).is_err());
        assert!(auth.authenticate("Basic !!!").is_err());
        assert!(auth.authenticate("Token abc").is_err());
        let alice = auth
            .principal_for(&basic("alice:correct horse battery"))
            .unwrap();
        assert_eq!(alice.name(), "Alice");
        assert!(alice.can(Capability::READ_JOB));
        assert!(!alice.can(Capability::WRITE_JOB));
        assert!(Principal::anonymous().can(Capability::WRITE_NODE));
        let token = auth.open_session(alice.clone());
        assert_eq!(auth.session(&token), Some(alice));
        auth.close_session(&token);
        assert_eq!(auth.session(&token), None);
    }
}
