mod bot;
mod oauth;
mod rate_limits;
mod support;
