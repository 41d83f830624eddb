//! Binding a link to the browser that started it. The `state` alone binds the link to the Appwrite user;
//! without this, anyone could send a victim their own authorize URL and the victim's Discord account would
//! be linked to the sender's user. `POST /discord/link` sets an HttpOnly cookie holding a random key whose
//! hash is stored with the state; the callback refuses a state whose cookie is missing or different, so a
//! link finishes only in the browser that asked for it.

use sha2::{Digest, Sha256};

/// The cookie's name; its `Path` is `/discord`, so it travels to the callback and nowhere else.
pub const LINK_COOKIE: &str = "tollgate_link";
const COOKIE_PATH: &str = "/discord";

/// What is stored beside the state: the key itself never is.
pub(crate) fn browser_hash(key: &str) -> String {
    let digest = Sha256::digest(format!("oauth-browser:{key}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two stored hashes (equal lengths by construction).
pub(crate) fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Secure` everywhere except on a plain-HTTP loopback api (local development and tests), where a browser
/// would drop a `Secure` cookie set over http.
fn secure(api_url: &str) -> bool {
    match url::Url::parse(api_url) {
        Ok(url) => !(url.scheme() == "http" && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))),
        Err(_) => true,
    }
}

fn cookie(value: &str, max_age_secs: i64, api_url: &str) -> String {
    let secure = if secure(api_url) { "; Secure" } else { "" };
    format!("{LINK_COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

/// The `Set-Cookie` value `POST /discord/link` answers with; `api_url` is the URL the request reached.
pub fn link_cookie(key: &str, api_url: &str) -> String {
    cookie(key, super::LINK_STATE_TTL_MINUTES * 60, api_url)
}

/// The `Set-Cookie` value that removes it (the callback sends it whatever the outcome).
pub fn clear_link_cookie(api_url: &str) -> String {
    cookie("", 0, api_url)
}

/// The link cookie's value in a `Cookie` request header, if any (the first one: a browser sends the most
/// specific path first).
pub fn link_cookie_value(cookie_header: Option<&str>) -> Option<String> {
    cookie_header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LINK_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_lax_scoped_to_discord_and_short_lived() {
        let set = link_cookie("k3y", "https://api.example.com/discord/link");
        assert_eq!(set, "tollgate_link=k3y; Path=/discord; Max-Age=600; HttpOnly; SameSite=Lax; Secure");
        assert_eq!(
            clear_link_cookie("https://api.example.com/discord/callback?code=1"),
            "tollgate_link=; Path=/discord; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn only_a_plain_http_loopback_api_drops_secure() {
        for local in ["http://127.0.0.1:8788/discord/link", "http://localhost/discord/link"] {
            assert!(!link_cookie("k", local).contains("Secure"), "{local}");
        }
        for other in ["https://localhost/x", "http://api.example.com/x", "http://10.0.0.1/x", "not a url"] {
            assert!(link_cookie("k", other).ends_with("; Secure"), "{other}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others_and_a_blank_one_is_none() {
        assert_eq!(link_cookie_value(Some("a=1; tollgate_link=abc; b=2")), Some("abc".to_owned()));
        assert_eq!(link_cookie_value(Some("tollgate_link=")), None);
        assert_eq!(link_cookie_value(Some("other_tollgate_link=x")), None);
        assert_eq!(link_cookie_value(None), None);
    }

    #[test]
    fn hashes_compare_equal_only_for_the_same_key() {
        assert!(same_hash(&browser_hash("a"), &browser_hash("a")));
        assert!(!same_hash(&browser_hash("a"), &browser_hash("b")));
        assert!(!same_hash(&browser_hash("a"), ""));
    }
}
