//! One request out and its answer back as text, on whichever HTTP stack the target has: `fetch` inside
//! workerd, reqwest natively (the CLI, devstack-backed tests).
//!
//! ## Why not reqwest inside workerd too
//! reqwest's wasm backend works, but a delivery's CPU in workerd is mostly the runtime work around each
//! call, and reqwest asks for more of it than a call needs: a `Headers` object filled one glue call per
//! header, a `Request` built and then fetched, an `AbortController` with a closure per request (aborted on
//! every drop), and every response header copied back into a `HeaderMap` nobody reads. The profile of a
//! Sell.app purchase in workerd (docs/benchmarks.md, "a whole delivery in workerd") put about 1 ms of CPU
//! on each Appwrite call. Here a call is `fetch(url, {method, headers, body, signal})` with a plain object
//! and `AbortSignal.timeout`, and only the status and the body text come back.
//!
//! Errors are described as [`crate::describe`] does for reqwest: the kind of failure with the host and
//! path, never the query string (it can hold a key).

use std::time::Duration;

/// A request: the method, the full URL (query included), headers, an optional text body.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub method: &'a str,
    pub url: &'a url::Url,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<&'a str>,
    /// The whole exchange, body included, is given up after this.
    pub timeout: Duration,
    /// The answer's headers to read (lowercase names); no other header crosses into Rust.
    pub read_headers: &'a [&'static str],
}

impl<'a> Outgoing<'a> {
    /// A request with no body and no header read back.
    pub fn new(method: &'a str, url: &'a url::Url, headers: &'a [(&'a str, &'a str)], timeout: Duration) -> Self {
        Self { method, url, headers, body: None, timeout, read_headers: &[] }
    }

    pub fn with_body(self, body: &'a str) -> Self {
        Self { body: Some(body), ..self }
    }

    pub fn reading(self, read_headers: &'a [&'static str]) -> Self {
        Self { read_headers, ..self }
    }
}

/// The status and the body of an answer, any status, with the headers the request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub status: u16,
    pub text: String,
    /// `(name, value)` of each asked header the answer carried.
    pub headers: Vec<(&'static str, String)>,
}

impl Incoming {
    /// An asked header's value (`name` as asked).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What went wrong, already described without anything secret ("timed out (host/path)").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError(String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TransportError {}

/// The HTTP stack. Cheap to clone; natively it holds reqwest's connection pool.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    #[cfg(not(target_arch = "wasm32"))]
    client: reqwest::Client,
}

impl Transport {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `request` and reads the whole answer as text.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn send(&self, request: Outgoing<'_>) -> Result<Incoming, TransportError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| TransportError(format!("invalid method {}", request.method)))?;
        let mut builder = self.client.request(method, request.url.clone()).timeout(request.timeout);
        for (name, value) in request.headers {
            builder = builder.header(*name, *value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body.to_owned());
        }
        let describe = |e: reqwest::Error| TransportError(crate::describe(&e));
        let response = builder.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let headers = request
            .read_headers
            .iter()
            .filter_map(|name| Some((*name, response.headers().get(*name)?.to_str().ok()?.to_owned())))
            .collect();
        let text = response.text().await.map_err(describe)?;
        Ok(Incoming { status, text, headers })
    }

    /// Sends `request` and reads the whole answer as text.
    #[cfg(target_arch = "wasm32")]
    pub async fn send(&self, request: Outgoing<'_>) -> Result<Incoming, TransportError> {
        fetch::send(request).await
    }
}

/// "timed out (host/path)" and the like, for an error known only by its kind.
#[cfg(target_arch = "wasm32")]
fn described(kind: &str, url: &url::Url) -> TransportError {
    TransportError(format!("{kind} ({}{})", url.host_str().unwrap_or_default(), url.path()))
}

#[cfg(target_arch = "wasm32")]
mod fetch {
    use super::{described, Incoming, Outgoing, TransportError};
    use js_sys::{Object, Promise, Reflect};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    #[wasm_bindgen]
    extern "C" {
        /// The global `fetch` of the Workers runtime.
        #[wasm_bindgen(js_name = fetch)]
        fn global_fetch(url: &str, init: &Object) -> Promise;

        type AbortSignal;

        /// A signal that aborts by itself after `ms` (no controller, no closure).
        #[wasm_bindgen(static_method_of = AbortSignal)]
        fn timeout(ms: f64) -> AbortSignal;

        type FetchResponse;

        #[wasm_bindgen(method, getter)]
        fn status(this: &FetchResponse) -> u16;

        #[wasm_bindgen(method)]
        fn text(this: &FetchResponse) -> Promise;

        #[wasm_bindgen(method, getter)]
        fn headers(this: &FetchResponse) -> FetchHeaders;

        type FetchHeaders;

        #[wasm_bindgen(method)]
        fn get(this: &FetchHeaders, name: &str) -> Option<String>;
    }

    fn set(target: &Object, key: &str, value: &JsValue) {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(target, &JsValue::from_str(key), value);
    }

    /// "timed out" when the signal fired (a `TimeoutError`), else `kind`.
    fn kind_of(error: &JsValue, kind: &'static str) -> &'static str {
        let name = Reflect::get(error, &JsValue::from_str("name")).ok().and_then(|n| n.as_string());
        if matches!(name.as_deref(), Some("TimeoutError" | "AbortError")) {
            "timed out"
        } else {
            kind
        }
    }

    pub(super) async fn send(request: Outgoing<'_>) -> Result<Incoming, TransportError> {
        let init = Object::new();
        set(&init, "method", &JsValue::from_str(request.method));
        let headers = Object::new();
        for (name, value) in request.headers {
            set(&headers, name, &JsValue::from_str(value));
        }
        set(&init, "headers", &headers);
        if let Some(body) = request.body {
            set(&init, "body", &JsValue::from_str(body));
        }
        set(&init, "signal", &AbortSignal::timeout(request.timeout.as_millis() as f64));
        let url = request.url;
        let response = JsFuture::from(global_fetch(url.as_str(), &init))
            .await
            .map_err(|e| described(kind_of(&e, "request failed"), url))?;
        let response: FetchResponse = response.unchecked_into();
        let status = response.status();
        let headers = if request.read_headers.is_empty() {
            Vec::new()
        } else {
            let all = response.headers();
            request.read_headers.iter().filter_map(|name| Some((*name, all.get(name)?))).collect()
        };
        let text = JsFuture::from(response.text())
            .await
            .map_err(|e| described(kind_of(&e, "the response body could not be read"), url))?
            .as_string()
            .ok_or_else(|| described("the response body could not be read", url))?;
        Ok(Incoming { status, text, headers })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One connection: reads the request head and body, answers `answer`, returns what it read.
    async fn serve_once(listener: tokio::net::TcpListener, answer: &'static str) -> String {
        let (mut socket, _) = listener.accept().await.expect("a connection");
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = socket.read(&mut buffer).await.expect("read");
            seen.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if seen.len() >= head_end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        socket.write_all(answer.as_bytes()).await.expect("write");
        String::from_utf8_lossy(&seen).into_owned()
    }

    #[tokio::test]
    async fn a_request_carries_its_method_headers_query_and_body_and_any_status_comes_back_with_its_text() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = url::Url::parse(&format!("http://{}/v1/things?queries%5B%5D=x", listener.local_addr().unwrap()))
            .expect("a URL");
        let server = tokio::spawn(serve_once(
            listener,
            "HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\nX-RateLimit-Bucket: b1\r\ncontent-length: 13\r\n\r\n{\"code\":409}\n",
        ));
        let answer = Transport::new()
            .send(
                Outgoing::new(
                    "PATCH",
                    &url,
                    &[("X-Appwrite-Project", "p1"), ("content-type", "application/json")],
                    Duration::from_secs(5),
                )
                .with_body(r#"{"a":1}"#)
                .reading(&["x-ratelimit-bucket", "x-ratelimit-remaining"]),
            )
            .await
            .expect("an answer");
        let headers = vec![("x-ratelimit-bucket", "b1".to_owned())];
        assert_eq!(answer, Incoming { status: 409, text: "{\"code\":409}\n".to_owned(), headers });
        assert_eq!(answer.header("x-ratelimit-bucket"), Some("b1"));
        assert!(!answer.is_success());
        let seen = server.await.expect("the server");
        assert!(seen.starts_with("PATCH /v1/things?queries%5B%5D=x HTTP/1.1\r\n"), "{seen}");
        assert!(seen.to_ascii_lowercase().contains("x-appwrite-project: p1\r\n"), "{seen}");
        assert!(seen.ends_with("\r\n\r\n{\"a\":1}"), "{seen}");
    }

    #[tokio::test]
    async fn a_timeout_names_host_and_path_but_not_the_query() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = url::Url::parse(&format!("http://{}/slow?key=secret-value", listener.local_addr().unwrap()))
            .expect("a URL");
        let error = Transport::new()
            .send(Outgoing::new("GET", &url, &[], Duration::from_millis(50)))
            .await
            .expect_err("never answered");
        assert_eq!(error.to_string(), "timed out (127.0.0.1/slow)");
        drop(listener);
    }
}
