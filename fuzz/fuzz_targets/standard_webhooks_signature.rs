//! Standard Webhooks: the `whsec_` secret decoder and the `webhook-*` header parser and verifier. Any
//! input gives a verdict, never a panic; an accepted message id is the `webhook-id` header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_fuzz::SignedRequest;
use tollgate_providers::standard_webhooks::{self, StandardWebhooksKey, ID_HEADER};

fuzz_target!(|data: &[u8]| {
    let request = SignedRequest::parse(data);
    let keys = [
        StandardWebhooksKey::from_whsec(&request.secret).ok(),
        Some(StandardWebhooksKey::raw(request.secret.as_bytes())),
    ];
    for key in keys.iter().flatten() {
        if let Ok(id) = standard_webhooks::verify(&request.body, &request.headers, key, request.now) {
            assert_eq!(Some(id), request.headers.non_empty(ID_HEADER));
        }
    }
});
