//! The steps that are not deliveries: an admin's grants and revokes, verifications, links and unlinks,
//! refunds at the Sell.app stand-in, the clock.

use super::*;

/// Tries `$action` until it succeeds (`Some`) or the operator gives up (`None`, noted).
macro_rules! until_ok {
    ($log:expr, $what:expr, $action:expr) => {{
        let mut last = String::new();
        let mut result = None;
        for attempt in 0..CONSOLE_ATTEMPTS {
            match $action.await {
                Ok(value) => {
                    result = Some(value);
                    break;
                }
                Err(e) => {
                    last = e.to_string();
                    count($log, "console action retried");
                    pause(1 + attempt % 5).await;
                }
            }
        }
        if result.is_none() {
            lock($log).notes.push(format!("{} given up after {CONSOLE_ATTEMPTS} tries: {last}", $what));
        }
        result
    }};
}

/// What a link attempt ended in: linked, refused for good (noted), or worth another try.
enum LinkTry {
    Done,
    Refused(String),
    Again(String),
}

impl std::fmt::Display for LinkTry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkTry::Done => write!(f, "linked"),
            LinkTry::Refused(why) | LinkTry::Again(why) => write!(f, "{why}"),
        }
    }
}

/// The customer's whole OAuth2 round: start, approve on the stand-in's page as `discord`, callback.
async fn link_once(w: &World, user: &AppwriteId, discord: &str) -> LinkTry {
    let start = match w.sync().start_link(user, &w.oauth, &w.authorize).await {
        Ok(start) => start,
        Err(e) => return LinkTry::Again(e.to_string()),
    };
    let browser = match reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build() {
        Ok(browser) => browser,
        Err(e) => return LinkTry::Again(e.to_string()),
    };
    let location = match browser.get(format!("{}&test_user={discord}", start.url)).send().await {
        Ok(response) => response.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned),
        Err(e) => return LinkTry::Again(e.to_string()),
    };
    let Some(url) = location.and_then(|l| reqwest::Url::parse(&l).ok()) else {
        return LinkTry::Again("the authorize page did not redirect".into());
    };
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let (Some(code), Some(state)) = (param("code"), param("state")) else {
        return LinkTry::Again(format!("no code in {url}"));
    };
    match w.sync().finish_link(&code, &state, Some(&start.browser_key), &w.oauth, None).await {
        Ok(_) => LinkTry::Done,
        Err(e @ LinkError::DiscordAccountTaken) => LinkTry::Refused(e.to_string()),
        Err(e) => LinkTry::Again(e.to_string()),
    }
}

pub(super) async fn console_step(w: &World, op: &Op, log: &Mutex<Log>) {
    let app = w.app();
    match op {
        Op::Grant { user, plan, hours } => {
            let until = hours.map(|h| w.ctx.clock.now() + Duration::hours(i64::from(h)));
            let what = format!("grant {plan} to u{user}");
            if until_ok!(log, what, app.admin_grant(&email(*user), plan, until)).is_some() {
                lock(log).admin.push(AdminEvent::Granted(admin_source(&email(*user), plan)));
            }
        }
        Op::Revoke { user } => {
            let at = w.ctx.clock.now();
            if let Some(report) = until_ok!(log, format!("revoke u{user}"), app.admin_revoke(&email(*user), None)) {
                let sources = report.revoked.into_iter().chain(report.already_revoked).collect();
                lock(log).admin.push(AdminEvent::Revoked(sources, at));
            }
        }
        Op::Verify { user } => {
            let id = user_id(*user);
            until_ok!(log, format!("verify u{user}"), w.ctx.client.update_email_verification(&id, true));
        }
        Op::Link { user, discord } => {
            let (id, account) = (user_id(*user), seed::TEST_USERS[*discord].0);
            let mut last = String::new();
            for _ in 0..CONSOLE_ATTEMPTS {
                match link_once(w, &id, account).await {
                    LinkTry::Done => return,
                    LinkTry::Refused(why) => {
                        lock(log).notes.push(format!("link u{user} to discord {discord}: {why}"));
                        return;
                    }
                    LinkTry::Again(why) => {
                        count(log, "console action retried");
                        last = why;
                    }
                }
                pause(1).await;
            }
            lock(log).notes.push(format!("link u{user} given up: {last}"));
        }
        Op::Unlink { user } => {
            let id = user_id(*user);
            until_ok!(log, format!("unlink u{user}"), w.sync().unlink(&id));
        }
        Op::Refund { order, user } => {
            let what = format!("refund order {order} of u{user} at Sell.app");
            until_ok!(
                log,
                what,
                sellapp_control(w, &format!("/_devstack/orders/{order}/status"), json!({"status": "REFUNDED"}))
            );
        }
        Op::Advance { minutes } => w.ctx.clock.advance(Duration::minutes(i64::from(*minutes))),
        _ => {}
    }
}

/// A control call to the Sell.app stand-in (an order paid, an order refunded).
pub(super) async fn sellapp_control(w: &World, path: &str, body: Value) -> Result<(), String> {
    let url = format!("{}{path}", w.ctx.devstack.sellapp_base_url());
    let response = reqwest::Client::new().post(url).json(&body).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{path}: {}", response.status()));
    }
    Ok(())
}
