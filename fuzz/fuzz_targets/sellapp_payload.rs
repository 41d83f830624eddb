//! What a Sell.app body means, both order shapes and the subscription events: any bytes give a delivery
//! (an action or a payload error), never a panic, and the same bytes always give the same delivery and key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_providers::sellapp_payload::interpret;
use tollgate_providers::{Provider, VerifiedEvent};

fuzz_target!(|data: &[u8]| {
    let event = VerifiedEvent::from_recorded_failure(Provider::Sellapp, data.to_vec());
    let first = interpret(&event);
    assert_eq!(first, interpret(&event));
    if let Err(error) = &first.outcome {
        assert!(!error.code().is_empty());
    }
});
