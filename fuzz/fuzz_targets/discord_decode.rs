//! Discord responses: every model the client decodes, and error bodies. Any status and body decode to a
//! model or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_discord::{DiscordError, Guild, Member, Role, TokenResponse, User};
use tollgate_fuzz::{decode, status_and_body};

fuzz_target!(|data: &[u8]| {
    let (status, body) = status_and_body(data);
    let error = DiscordError::from_response(status, body);
    let _ = (error.is_retryable(), error.needs_admin(), error.to_string());
    let _ = decode::<Guild>(body);
    let _ = decode::<Vec<Role>>(body);
    let _ = decode::<User>(body);
    let _ = decode::<Member>(body);
    let _ = decode::<Vec<Member>>(body);
    let _ = decode::<TokenResponse>(body);
});
