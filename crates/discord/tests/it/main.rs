mod bot;
mod oauth;
mod rate_limits;
mod shared_limiter;
mod support;
