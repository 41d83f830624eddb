//! # tollgate-fuzz
//!
//! Fuzz targets (cargo-fuzz, libFuzzer, nightly) for the code that reads outside input: the signature
//! header parsers, the Sell.app and Stripe payload parsers, the Appwrite, Discord and Stripe response
//! decoders and the Appwrite query encoder. Run them with `cargo xtask fuzz --seconds N [--runs R] [--jobs J]
//! [--sanitizer S] [--target T]`, which seeds each corpus from `testdata/` and prints the executions per
//! target.
//!
//! A signature input is framed as text so that `testdata/vectors/signatures.json` can seed it (read by
//! [`SignedRequest::parse`]; xtask writes the seeds, `xtask/src/fuzz.rs`):
//!
//! ```text
//! <secret>\n<now, unix seconds>\n<name>: <value>\n ... \n\n<body bytes>
//! ```

use chrono::{DateTime, Utc};
use tollgate_providers::Headers;

/// One request to verify: the configured secret, the verifier's clock, the headers and the raw body.
#[derive(Debug)]
pub struct SignedRequest {
    pub secret: String,
    pub now: DateTime<Utc>,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl SignedRequest {
    /// Any bytes make a request: a missing part is empty, an unreadable clock is the epoch.
    pub fn parse(data: &[u8]) -> Self {
        let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
            Some(at) => (&data[..at], data[at + 2..].to_vec()),
            None => (data, Vec::new()),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split('\n');
        let secret = lines.next().unwrap_or_default().to_owned();
        let now = lines
            .next()
            .and_then(|line| line.trim().parse::<i64>().ok())
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
            .unwrap_or_default();
        let headers = Headers::from_pairs(lines.filter_map(|line| {
            line.split_once(':')
                .map(|(name, value)| (name.to_owned(), value.strip_prefix(' ').unwrap_or(value).to_owned()))
        }));
        Self { secret, now, headers, body }
    }
}

/// The first two bytes as an HTTP status (100–599) and the rest as a response body.
pub fn status_and_body(data: &[u8]) -> (u16, &str) {
    let (status, rest) = match data {
        [a, b, rest @ ..] => (100 + u16::from_be_bytes([*a, *b]) % 500, rest),
        _ => (200, data),
    };
    (status, std::str::from_utf8(rest).unwrap_or_default())
}

/// A response body as `T`, as the clients decode it (`None`: it does not decode).
pub fn decode<T: serde::de::DeserializeOwned>(body: &str) -> Option<T> {
    serde_json::from_str(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_request_reads_back_its_parts() {
        let request = SignedRequest::parse(b"whsec_x\n1700000000\nsignature: ab\na: b: c\n\n{\n\n}");
        assert_eq!(request.secret, "whsec_x");
        assert_eq!(request.now.timestamp(), 1_700_000_000);
        assert_eq!(request.headers.get("SIGNATURE"), Some("ab"));
        assert_eq!(request.headers.get("a"), Some("b: c"));
        assert_eq!(request.body, b"{\n\n}");
    }
}
