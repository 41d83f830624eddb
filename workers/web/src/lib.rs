//! What the two web workers share. The web API is one surface on one origin (`api.<domain>`), served by
//! two workers so that each stays within its size budget: `tollgate-api` (the customers' routes: Discord
//! link, access, billing) and `tollgate-console` (the pages and the admin routes), which the api worker
//! reaches through a service binding for `/admin`, `/access` and `/assets/`. Both answer with the same
//! error shape ([`error::ApiError`]) and read the caller the same way ([`context`]).
#![cfg(target_arch = "wasm32")]

pub mod context;
pub mod cors;
pub mod error;
