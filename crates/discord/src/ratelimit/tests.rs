use super::*;

fn key(route: &str, major: &str) -> RouteKey {
    RouteKey::new(route, major)
}

fn ok(bucket: &str, remaining: u32, reset_after_ms: u64) -> Observed {
    Observed {
        status: 200,
        bucket: Some(bucket.into()),
        remaining: Some(remaining),
        reset_after_ms: Some(reset_after_ms),
        ..Default::default()
    }
}

#[test]
fn an_exhausted_bucket_holds_until_its_reset() {
    let mut limiter = RateLimiter::default();
    let route = key("PUT /guilds/{guild}/members/{user}/roles/{role}", "1");
    assert_eq!(limiter.admit(&route, 0), Admission::Go);
    limiter.record(&route, &ok("b1", 0, 2_000), 0);
    assert_eq!(limiter.admit(&route, 1_000), Admission::WaitUntil(2_000));
    assert_eq!(limiter.admit(&route, 2_000), Admission::Go);
}

#[test]
fn buckets_are_per_major_parameter() {
    let mut limiter = RateLimiter::default();
    let guild_one = key("GET /guilds/{guild}/members", "1");
    let guild_two = key("GET /guilds/{guild}/members", "2");
    limiter.admit(&guild_one, 0);
    limiter.record(&guild_one, &ok("b", 0, 5_000), 0);
    assert_eq!(limiter.admit(&guild_one, 10), Admission::WaitUntil(5_000));
    assert_eq!(limiter.admit(&guild_two, 10), Admission::Go);
}

#[test]
fn requests_in_flight_count_against_the_remaining_budget() {
    let mut limiter = RateLimiter::default();
    let route = key("GET /guilds/{guild}/members/{user}", "1");
    limiter.admit(&route, 0);
    limiter.record(&route, &ok("b", 2, 1_000), 0);
    assert_eq!(limiter.admit(&route, 1), Admission::Go);
    assert_eq!(limiter.admit(&route, 2), Admission::Go);
    assert_eq!(limiter.admit(&route, 3), Admission::WaitUntil(1_000));
}

#[test]
fn a_429_honours_retry_after_for_its_bucket_or_globally() {
    let mut limiter = RateLimiter::default();
    let route = key("PUT /guilds/{guild}/members/{user}/roles/{role}", "1");
    let other = key("GET /users/@me", "");
    limiter.admit(&route, 0);
    limiter.record(
        &route,
        &Observed {
            status: 429,
            bucket: Some("b".into()),
            retry_after_ms: Some(1_500),
            scope: Some(Scope::User),
            ..Default::default()
        },
        0,
    );
    assert_eq!(limiter.admit(&route, 100), Admission::WaitUntil(1_500));
    assert_eq!(limiter.admit(&other, 100), Admission::Go);
    limiter.record(
        &other,
        &Observed {
            status: 429,
            retry_after_ms: Some(3_000),
            global: true,
            scope: Some(Scope::Global),
            ..Default::default()
        },
        200,
    );
    assert_eq!(limiter.admit(&other, 300), Admission::WaitUntil(3_200));
    assert_eq!(limiter.admit(&route, 2_000), Admission::WaitUntil(3_200));
}

#[test]
fn a_429_without_headers_is_a_cloudflare_block_and_backs_off_for_minutes() {
    let mut limiter = RateLimiter::default();
    let route = key("GET /guilds/{guild}", "1");
    limiter.record(&route, &Observed { status: 429, ..Default::default() }, 0);
    assert_eq!(limiter.admit(&route, 1_000), Admission::WaitUntil(CLOUDFLARE_BLOCK_BACKOFF_MS));
}

#[test]
fn a_401_stops_every_further_call() {
    let mut limiter = RateLimiter::default();
    let route = key("GET /guilds/{guild}", "1");
    limiter.record(&key("GET /users/@me", ""), &Observed { status: 401, ..Default::default() }, 0);
    assert_eq!(limiter.admit(&route, 10), Admission::Go, "a user's bad OAuth token does not stop the bot");
    limiter.record(&route, &Observed { status: 401, bot_token: true, ..Default::default() }, 0);
    assert_eq!(limiter.admit(&key("GET /users/@me", ""), 10_000_000), Admission::Halted(Halt::Unauthorized));
}

#[test]
fn the_invalid_request_budget_stops_calls_before_discords_ban_and_recovers() {
    let mut limiter = RateLimiter::default();
    let route = key("PUT /guilds/{guild}/members/{user}/roles/{role}", "1");
    for i in 0..INVALID_REQUEST_BUDGET as u64 {
        limiter.record(&route, &Observed { status: 403, ..Default::default() }, i);
    }
    assert_eq!(
        limiter.admit(&route, 5_000),
        Admission::Halted(Halt::InvalidRequestBudget { until_ms: INVALID_REQUEST_WINDOW_MS })
    );
    assert_eq!(limiter.admit(&route, INVALID_REQUEST_WINDOW_MS + INVALID_REQUEST_BUDGET as u64), Admission::Go);
}

#[test]
fn shared_scope_429s_do_not_count_as_invalid() {
    let mut limiter = RateLimiter::default();
    let route = key("GET /guilds/{guild}", "1");
    for i in 0..(INVALID_REQUEST_BUDGET as u64 + 5) {
        limiter.record(
            &route,
            &Observed {
                status: 429,
                bucket: Some("b".into()),
                retry_after_ms: Some(1),
                scope: Some(Scope::Shared),
                ..Default::default()
            },
            i,
        );
    }
    assert_eq!(limiter.admit(&route, 10_000), Admission::Go);
}
