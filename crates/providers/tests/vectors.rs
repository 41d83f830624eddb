//! Every vector of `testdata/vectors/signatures.json`, with the clock fixed at the vector's `now`.

use chrono::DateTime;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tollgate_core::Secret;
use tollgate_providers::standard_webhooks::{self, StandardWebhooksKey};
use tollgate_providers::{sellapp, stripe, Headers, VerifyError, VerifyFailure};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/vectors/signatures.json");
const EXPECTED_VECTOR_COUNT: usize = 39;

fn headers_of(vector: &Value) -> Headers {
    let pairs = vector["headers"].as_object().into_iter().flatten();
    Headers::from_pairs(pairs.map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())))
}

fn now_of(vector: &Value) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(vector["now"].as_i64().unwrap_or(0), 0).expect("a valid now")
}

fn run(vector: &Value) -> Result<(), VerifyFailure> {
    let text = |key: &str| vector[key].as_str().unwrap_or_default();
    let body = text("body").as_bytes();
    let headers = headers_of(vector);
    let now = now_of(vector);
    let secret = Secret::new(text("secret"));
    match text("scheme") {
        "sellapp-hex" => sellapp::verify(body, &headers, &secret, now).map(drop),
        "stripe" => Ok(stripe::verify(body, &headers, &secret, now).map(drop)?),
        "standard-webhooks" => {
            let key = match text("key_encoding") {
                "raw-utf8" => StandardWebhooksKey::raw(text("secret").as_bytes()),
                _ => StandardWebhooksKey::from_whsec(text("secret"))?,
            };
            Ok(standard_webhooks::verify(body, &headers, &key, now).map(drop)?)
        }
        other => panic!("unknown scheme {other}"),
    }
}

#[test]
fn every_signature_vector_gives_its_expected_result_and_reason() {
    let file = std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("reading {VECTORS}: {e}"));
    let json: Value = serde_json::from_str(&file).expect("vectors are JSON");
    let vectors = json["vectors"].as_array().expect("a vectors array");
    assert_eq!(vectors.len(), EXPECTED_VECTOR_COUNT, "the vector file changed: review the new vectors");
    for vector in vectors {
        let id = vector["id"].as_str().unwrap_or("?");
        let body_hash = hex::encode(Sha256::digest(vector["body"].as_str().unwrap_or_default().as_bytes()));
        assert_eq!(body_hash, vector["body_sha256"].as_str().unwrap_or_default(), "{id}: body bytes not kept exactly");
        let result = run(vector);
        match vector["expected"].as_str() {
            Some("valid") => assert_eq!(result, Ok(()), "{id} must verify"),
            Some("invalid") => {
                let reason = match result {
                    Err(VerifyFailure::Rejected(rejected)) => Some(rejected.reason()),
                    Err(VerifyFailure::Misconfigured(e)) => panic!("{id}: every vector's secret is usable: {e}"),
                    Ok(()) => None,
                };
                assert_eq!(reason, vector["reason"].as_str(), "{id}: wrong outcome");
            }
            other => panic!("{id}: unknown expectation {other:?}"),
        }
    }
}

#[test]
fn a_sellapp_delivery_with_standard_webhooks_headers_is_verified_with_them() {
    let file = std::fs::read_to_string(VECTORS).expect("vectors");
    let json: Value = serde_json::from_str(&file).expect("json");
    let vector = json["vectors"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["id"] == "sellapp-channels-stdwh-raw-key")
        .expect("vector");
    let headers = headers_of(vector);
    let now = now_of(vector);
    let secret = Secret::new(vector["secret"].as_str().unwrap_or_default());
    let body = vector["body"].as_str().unwrap_or_default().as_bytes();
    assert!(sellapp::verify(body, &headers, &secret, now).is_ok());
    let later = now + chrono::Duration::seconds(standard_webhooks::STANDARD_WEBHOOKS_TOLERANCE_SECS + 1);
    assert_eq!(
        sellapp::verify(body, &headers, &secret, later).map(drop),
        Err(VerifyFailure::Rejected(VerifyError::TimestampTooOld))
    );
}
