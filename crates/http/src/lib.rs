//! What the REST clients (Appwrite, Stripe, Sell.app) share about the transport, and the transport the
//! Appwrite client sends through ([`transport`]: `fetch` in workerd, reqwest natively).
//!
//! ## Why a crate of its own
//! Each client turns a `reqwest::Error` into the text of its own transport error, and that text reaches
//! logs, failure records and admin pages. It must say what kind of failure it was and where (host and
//! path), and never more: reqwest's own `Display` can carry the whole URL, query string included, and a
//! query string may hold a key. One function keeps the rule in one place.

pub mod transport;

pub use url;

pub use transport::{Incoming, Outgoing, Transport, TransportError};

/// "timed out", "connection failed", "the response body could not be read" or "request failed", with the
/// host and path of the request when known (never its query string).
pub fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if is_connect(error) {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the response body could not be read"
    } else {
        "request failed"
    };
    match error.url() {
        Some(url) => format!("{kind} ({}{})", url.host_str().unwrap_or_default(), url.path()),
        None => kind.to_owned(),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn is_connect(error: &reqwest::Error) -> bool {
    error.is_connect()
}

/// reqwest's fetch backend cannot tell a refused connection from other failures.
#[cfg(target_arch = "wasm32")]
fn is_connect(_error: &reqwest::Error) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_names_its_host_and_path_but_not_its_query() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/v1/orders?api_key=secret-value");
        let error = reqwest::get(url).await.expect_err("nothing listens");
        let text = describe(&error);
        assert_eq!(text, "connection failed (127.0.0.1/v1/orders)");
        assert!(!text.contains("secret-value"));
    }

    #[tokio::test]
    async fn a_timeout_says_so() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}/slow", listener.local_addr().expect("address"));
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_millis(50)).build().unwrap();
        let error = client.get(url).send().await.expect_err("never answered");
        assert_eq!(describe(&error), "timed out (127.0.0.1/slow)");
    }
}
