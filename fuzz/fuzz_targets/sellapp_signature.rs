//! Sell.app's verifier: the legacy hex `signature` header, or the Standard Webhooks headers when all three
//! are present. Any input gives a verdict (never a panic); an accepted event carries the exact body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_core::Secret;
use tollgate_fuzz::SignedRequest;
use tollgate_providers::{sellapp, VerifyFailure};

fuzz_target!(|data: &[u8]| {
    let request = SignedRequest::parse(data);
    let secret = Secret::new(request.secret.clone());
    let verdict = sellapp::verify(&request.body, &request.headers, &secret, request.now);
    if let Ok(event) = &verdict {
        assert_eq!(event.body(), request.body.as_slice());
    }
    if let Err(VerifyFailure::Rejected(reason)) = &verdict {
        assert!(!reason.reason().is_empty());
    }
});
