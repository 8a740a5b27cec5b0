//! A small W3C WebDriver client over `chromedriver` and headless Debian `chromium`, for the
//! web UI's browser tests: navigate, find, click, type, read, run a script, screenshot.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; dropping it ends the session and the driver.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session_url: String,
    shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless chromium session; screenshots go
    /// to `shots`.
    pub async fn start(shots: &Path) -> Browser {
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("chromedriver is missing: install Debian's chromium and chromium-driver (scripts/setup-test-env.sh)");
        let port = super::free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1000"]
                }
            }}}))
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session answer");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_string();
        std::fs::create_dir_all(shots).expect("screenshot dir");
        Browser {
            driver,
            http,
            session_url: format!("{base}/session/{session}"),
            shots: shots.to_path_buf(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.session_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("webdriver request")
            .json()
            .await
            .expect("webdriver answer");
        answer["value"].clone()
    }

    /// Opens a URL.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element matching a CSS selector, if there is one now.
    pub async fn find(&self, css: &str) -> Option<String> {
        let value = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        value[ELEMENT].as_str().map(str::to_string)
    }

    /// Waits for an element, failing loudly after `seconds`.
    pub async fn wait_for(&self, css: &str, seconds: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(element) = self.find(css).await {
                return element;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css:?} after {seconds}s on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `css` satisfies `check`, failing loudly after `seconds`.
    pub async fn wait_text(&self, css: &str, seconds: u64, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if self.find(css).await.is_some() {
                let text = self.text(css).await;
                if check(&text) {
                    return text;
                }
                assert!(
                    Instant::now() < deadline,
                    "text of {css:?} still {text:?} after {seconds}s"
                );
            } else {
                assert!(
                    Instant::now() < deadline,
                    "no element {css:?} after {seconds}s"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks an element; retries while live updates replace it under the click.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let element = self.wait_for(css, 10).await;
            let answer = self
                .call(
                    reqwest::Method::POST,
                    &format!("/element/{element}/click"),
                    Some(json!({})),
                )
                .await;
            let Some(error) = answer.get("error") else {
                return;
            };
            assert!(
                Instant::now() < deadline,
                "cannot click {css:?}: {error} {}",
                answer["message"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types into an input or textarea.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.wait_for(css, 10).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// The visible text of an element.
    pub async fn text(&self, css: &str) -> String {
        let element = self.wait_for(css, 10).await;
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// An attribute of an element.
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let element = self.wait_for(css, 10).await;
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/attribute/{name}"),
            None,
        )
        .await
        .as_str()
        .map(str::to_string)
    }

    /// Runs an async script (`arguments[arguments.length - 1]` is the callback).
    pub async fn script_async(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Resizes the window, e.g. to a phone's width.
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Saves a PNG screenshot named `name.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine as _;
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("write screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (closing chromium) before the driver goes.
        let _ = Command::new("curl")
            .args(["-s", "-X", "DELETE", "--max-time", "5", &self.session_url])
            .stdout(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
