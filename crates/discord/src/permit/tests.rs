use super::*;
use crate::ratelimit::{Scope, CLOUDFLARE_BLOCK_BACKOFF_MS};

const MEMBER: &str = "GET /guilds/{guild}/members/{user}";
const ROLE: &str = "PUT /guilds/{guild}/members/{user}/roles/{role}";

fn permit(route: &str) -> Exchange {
    Exchange {
        token: "t1".into(),
        reports: vec![],
        permit: Some(PermitRequest { key: RouteKey::new(route, "g"), cache: None, invalidate: None }),
    }
}

fn cached_read(user: &str, interval_ms: u64) -> Exchange {
    let mut exchange = permit(MEMBER);
    if let Some(p) = exchange.permit.as_mut() {
        p.cache = Some(CacheRead { key: member_cache_key("g", user), interval_ms });
    }
    exchange
}

fn report(route: &str, observed: Observed) -> Exchange {
    Exchange {
        token: "t1".into(),
        reports: vec![Report { key: RouteKey::new(route, "g"), observed, cache: None }],
        permit: None,
    }
}

fn answer(limiter: &mut SharedLimiter, exchange: &Exchange, now_ms: u64) -> Option<Permit> {
    limiter.exchange(exchange, now_ms).permit
}

fn global_429(retry_after_ms: u64) -> Observed {
    Observed {
        status: 429,
        retry_after_ms: Some(retry_after_ms),
        global: true,
        scope: Some(Scope::Global),
        bot_token: true,
        ..Default::default()
    }
}

#[test]
fn a_global_429_reported_by_one_caller_holds_every_route_for_every_caller() {
    let mut limiter = SharedLimiter::default();
    assert_eq!(limiter.exchange(&report(ROLE, global_429(60_000)), 1_000).permit, None, "a report asks nothing");
    assert_eq!(answer(&mut limiter, &permit(MEMBER), 2_000), Some(Permit::Wait { until_ms: 61_000 }));
    assert_eq!(answer(&mut limiter, &permit(MEMBER), 61_000), Some(Permit::Go));
}

#[test]
fn the_state_survives_being_stored_and_loaded_again() {
    let mut limiter = SharedLimiter::default();
    let unauthorized = Observed { status: 401, bot_token: true, ..Default::default() };
    limiter.exchange(&report(MEMBER, unauthorized), 1_000);
    limiter.exchange(&report(ROLE, global_429(60_000)), 1_000);
    let mut loaded = SharedLimiter::from_stored(&limiter.to_stored(1_000).unwrap()).unwrap();
    assert_eq!(
        answer(&mut loaded, &permit(MEMBER), 100_000_000),
        Some(Permit::Halted { halt: Halt::Unauthorized }),
        "the 401 halt is persisted"
    );
    assert!(SharedLimiter::from_stored("{\"limiter\": 3}").is_err(), "an unreadable state is an error, not a reset");
}

#[test]
fn a_401_halts_until_the_bot_token_changes() {
    let mut limiter = SharedLimiter::default();
    let unauthorized = Observed { status: 401, bot_token: true, ..Default::default() };
    limiter.exchange(&report(MEMBER, unauthorized), 1_000);
    assert_eq!(answer(&mut limiter, &permit(ROLE), 5_000), Some(Permit::Halted { halt: Halt::Unauthorized }));
    let mut new_token = permit(ROLE);
    new_token.token = "t2".into();
    assert_eq!(answer(&mut limiter, &new_token, 6_000), Some(Permit::Go), "a new token is tried");
}

#[test]
fn an_exhausted_bucket_reported_by_one_caller_holds_the_route_for_the_others() {
    let mut limiter = SharedLimiter::default();
    let exhausted = Observed {
        status: 200,
        bucket: Some("b1".into()),
        remaining: Some(0),
        reset_after_ms: Some(2_000),
        bot_token: true,
        ..Default::default()
    };
    limiter.exchange(&report(MEMBER, exhausted), 1_000);
    assert_eq!(answer(&mut limiter, &permit(MEMBER), 1_500), Some(Permit::Wait { until_ms: 3_000 }));
    assert_eq!(answer(&mut limiter, &permit(ROLE), 1_500), Some(Permit::Go), "another route is not held");
}

#[test]
fn a_member_read_is_let_through_once_per_interval_and_its_answer_served_meanwhile() {
    let mut limiter = SharedLimiter::default();
    assert_eq!(answer(&mut limiter, &cached_read("u1", 10_000), 1_000), Some(Permit::Go));
    assert_eq!(
        answer(&mut limiter, &cached_read("u1", 10_000), 1_100),
        Some(Permit::Wait { until_ms: 11_000 }),
        "the first read has not answered yet"
    );
    let mut done = report(MEMBER, Observed { status: 200, ..Default::default() });
    done.reports[0].cache =
        Some(CachedAnswer { key: member_cache_key("g", "u1"), status: 200, body: "{\"roles\":[]}".into() });
    limiter.exchange(&done, 1_200);
    assert_eq!(
        answer(&mut limiter, &cached_read("u1", 10_000), 5_000),
        Some(Permit::Cached { status: 200, body: "{\"roles\":[]}".into() })
    );
    assert_eq!(answer(&mut limiter, &cached_read("u2", 10_000), 5_000), Some(Permit::Go), "per user");
    assert_eq!(answer(&mut limiter, &cached_read("u1", 10_000), 11_000), Some(Permit::Go), "the interval is over");
}

#[test]
fn a_role_change_of_the_member_makes_the_kept_answer_stale() {
    let mut limiter = SharedLimiter::default();
    answer(&mut limiter, &cached_read("u1", 10_000), 1_000);
    let mut change = permit(ROLE);
    if let Some(p) = change.permit.as_mut() {
        p.invalidate = Some(member_cache_key("g", "u1"));
    }
    assert_eq!(answer(&mut limiter, &change, 2_000), Some(Permit::Go));
    assert_eq!(answer(&mut limiter, &cached_read("u1", 10_000), 2_100), Some(Permit::Go));
}

#[test]
fn a_cloudflare_block_seen_by_one_caller_backs_everyone_off_for_minutes() {
    let mut limiter = SharedLimiter::default();
    limiter.exchange(&report(ROLE, Observed { status: 429, bot_token: true, ..Default::default() }), 0);
    assert_eq!(answer(&mut limiter, &permit(MEMBER), 1), Some(Permit::Wait { until_ms: CLOUDFLARE_BLOCK_BACKOFF_MS }));
}

#[test]
fn the_kept_answers_are_bounded() {
    let mut limiter = SharedLimiter::default();
    for user in 0..CACHE_CAPACITY + 5 {
        answer(&mut limiter, &cached_read(&user.to_string(), 1_000_000), user as u64);
    }
    assert_eq!(limiter.cache.len(), CACHE_CAPACITY);
    assert!(!limiter.cache.contains_key(&member_cache_key("g", "0")), "the oldest went first");
}

#[test]
fn only_restricting_reports_are_urgent() {
    let plain = Report {
        key: RouteKey::new(ROLE, "g"),
        observed: Observed { status: 204, remaining: Some(3), ..Default::default() },
        cache: None,
    };
    assert!(!plain.is_urgent());
    let mut exhausted = plain.clone();
    exhausted.observed.remaining = Some(0);
    assert!(exhausted.is_urgent());
    let mut refused = plain.clone();
    refused.observed.status = 403;
    assert!(refused.is_urgent());
}

#[test]
fn the_token_fingerprint_tells_tokens_apart_without_showing_them() {
    let fingerprint = token_fingerprint("secret-token");
    assert_eq!(fingerprint.len(), 16);
    assert!(!fingerprint.contains("secret"));
    assert_ne!(fingerprint, token_fingerprint("secret-token2"));
}

#[test]
fn every_answer_survives_its_wire_form_and_anything_else_is_refused() {
    let answers = [
        None,
        Some(Permit::Go),
        Some(Permit::Wait { until_ms: 5 }),
        Some(Permit::Halted { halt: Halt::Unauthorized }),
        Some(Permit::Halted { halt: Halt::InvalidRequestBudget { until_ms: 7 } }),
        Some(Permit::Cached { status: 200, body: "{\"roles\":[]}\nsecond line".into() }),
    ];
    for permit in answers {
        let answer = ExchangeAnswer { permit };
        assert_eq!(ExchangeAnswer::decode(&answer.encode()), Some(answer.clone()), "{}", answer.encode());
    }
    for garbage in ["", "Go", "wait", "wait soon", "halted", "halted budget", "cached 200", "go\n", "<html>"] {
        assert_eq!(ExchangeAnswer::decode(garbage), None, "{garbage:?}");
    }
}

#[test]
fn a_plain_success_changes_nothing_that_is_stored_but_an_exhausted_bucket_does() {
    let mut limiter = SharedLimiter::default();
    let ok = |remaining| Observed {
        status: 200,
        bucket: Some("b1".into()),
        remaining: Some(remaining),
        reset_after_ms: Some(2_000),
        bot_token: true,
        ..Default::default()
    };
    limiter.exchange(&report(MEMBER, ok(5)), 1_000);
    let stored = limiter.to_stored(1_000).unwrap();
    answer(&mut limiter, &permit(MEMBER), 1_100);
    limiter.exchange(&report(MEMBER, ok(4)), 1_200);
    assert_eq!(limiter.to_stored(1_200).unwrap(), stored, "no write for a bucket with requests left");
    limiter.exchange(&report(MEMBER, ok(0)), 1_300);
    let held = limiter.to_stored(1_300).unwrap();
    assert_ne!(held, stored);
    let mut loaded = SharedLimiter::from_stored(&held).unwrap();
    assert_eq!(answer(&mut loaded, &permit(MEMBER), 1_400), Some(Permit::Wait { until_ms: 3_300 }));
}
