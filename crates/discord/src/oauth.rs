//! OAuth2 for linking (authorization-code grant): token exchange, refresh, revoke (form-encoded only, as
//! Discord requires), and `/users/@me` with the user's token.

use crate::client::{Auth, Body, Call, DiscordClient};
use crate::error::DiscordError;
use crate::models::{TokenResponse, User};
use reqwest::Method;
use tollgate_core::Secret;

/// The application's OAuth2 credentials.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: Secret,
    pub redirect_uri: String,
}

impl DiscordClient {
    async fn token_call(
        &self,
        route: &'static str,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, String), DiscordError> {
        self.send(Call {
            method: Method::POST,
            route,
            major: "",
            path: path.to_owned(),
            query: &[],
            body: Body::Form(form),
            auth: Auth::None,
            audit_reason: None,
            cache: None,
            invalidate: None,
        })
        .await
    }

    pub async fn exchange_code(
        &self,
        app: &OAuthApp,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, DiscordError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", app.redirect_uri.as_str()),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.expose()),
        ];
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier));
        }
        let (status, text) = self.token_call("POST /oauth2/token", "/oauth2/token", &form).await?;
        Self::decode(status, &text)
    }

    pub async fn refresh_token(&self, app: &OAuthApp, refresh_token: &str) -> Result<TokenResponse, DiscordError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.expose()),
        ];
        let (status, text) = self.token_call("POST /oauth2/token", "/oauth2/token", &form).await?;
        Self::decode(status, &text)
    }

    /// Revokes every token of the authorisation the token belongs to.
    pub async fn revoke_token(&self, app: &OAuthApp, token: &str) -> Result<(), DiscordError> {
        let form =
            [("token", token), ("client_id", app.client_id.as_str()), ("client_secret", app.client_secret.expose())];
        self.token_call("POST /oauth2/token/revoke", "/oauth2/token/revoke", &form).await.map(drop)
    }

    pub async fn current_user(&self, user_access_token: &str) -> Result<User, DiscordError> {
        let call = Call {
            method: Method::GET,
            route: "GET /users/@me",
            major: "",
            path: "/users/@me".to_owned(),
            query: &[],
            body: Body::Empty,
            auth: Auth::Bearer(user_access_token),
            audit_reason: None,
            cache: None,
            invalidate: None,
        };
        let (status, text) = self.send(call).await?;
        Self::decode(status, &text)
    }
}
