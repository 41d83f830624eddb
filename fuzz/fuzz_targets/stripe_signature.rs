//! The `Stripe-Signature` header parser and verifier: any header and body give a verdict, never a panic,
//! and an accepted event carries the exact body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_core::Secret;
use tollgate_fuzz::SignedRequest;
use tollgate_providers::stripe;

fuzz_target!(|data: &[u8]| {
    let request = SignedRequest::parse(data);
    let secret = Secret::new(request.secret.clone());
    if let Ok(event) = stripe::verify(&request.body, &request.headers, &secret, request.now) {
        assert_eq!(event.body(), request.body.as_slice());
    }
});
