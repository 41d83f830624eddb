//! Users (API key) and the user-JWT check (`GET /account`).

use crate::client::{decode, Auth};
use crate::error::AppwriteError;
use crate::models::{MembershipList, User, UserList};
use crate::query::{params, Query};
use crate::AppwriteClient;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use tollgate_core::{AppwriteId, Email};

impl AppwriteClient {
    pub async fn list_users(&self, queries: &[Query], search: Option<&str>) -> Result<UserList, AppwriteError> {
        let mut query = params(queries);
        if let Some(search) = search {
            query.push(("search", search.to_owned()));
        }
        self.call(Method::GET, &["users"], &query, None).await
    }

    /// The user with exactly this email (Appwrite stores emails lower-cased, as [`Email`] is). One
    /// filtered query: never a scan of an unfiltered first page.
    pub async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, AppwriteError> {
        let list = self.list_users(&[Query::equal("email", [email.as_str()]), Query::limit(2)], None).await?;
        Ok(list.users.into_iter().find(|u| u.email.eq_ignore_ascii_case(email.as_str())))
    }

    pub async fn get_user(&self, user_id: &AppwriteId) -> Result<User, AppwriteError> {
        self.call(Method::GET, &["users", user_id.as_str()], &[], None).await
    }

    /// `user_id` is an id or `"unique()"`.
    pub async fn create_user(
        &self,
        user_id: &str,
        email: &Email,
        password: Option<&str>,
        name: Option<&str>,
    ) -> Result<User, AppwriteError> {
        let mut body = json!({ "userId": user_id, "email": email.as_str() });
        if let Some(password) = password {
            body["password"] = json!(password);
        }
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        self.call(Method::POST, &["users"], &[], Some(&body)).await
    }

    /// Marks the user's email verified (or not): `PATCH /users/{userId}/verification`. Returns the user.
    pub async fn update_email_verification(&self, user_id: &AppwriteId, verified: bool) -> Result<User, AppwriteError> {
        let body = json!({ "emailVerification": verified });
        self.call(Method::PATCH, &["users", user_id.as_str(), "verification"], &[], Some(&body)).await
    }

    pub async fn delete_user(&self, user_id: &AppwriteId) -> Result<(), AppwriteError> {
        self.call_no_content(Method::DELETE, &["users", user_id.as_str()], None).await
    }

    pub async fn list_user_memberships(&self, user_id: &AppwriteId) -> Result<MembershipList, AppwriteError> {
        self.call(Method::GET, &["users", user_id.as_str(), "memberships"], &[], None).await
    }

    /// A JWT for the user (what the web app gets from `POST /account/jwts`); `duration_secs` ≤ 3600.
    pub async fn create_user_jwt(
        &self,
        user_id: &AppwriteId,
        duration_secs: Option<u32>,
    ) -> Result<String, AppwriteError> {
        #[derive(Deserialize)]
        struct Jwt {
            jwt: String,
        }
        let body = match duration_secs {
            Some(duration) => json!({ "duration": duration }),
            None => json!({}),
        };
        let jwt: Jwt = self.call(Method::POST, &["users", user_id.as_str(), "jwts"], &[], Some(&body)).await?;
        Ok(jwt.jwt)
    }

    /// The user a JWT belongs to; 401 `user_jwt_invalid` when it is invalid or expired.
    pub async fn get_account(&self, jwt: &str) -> Result<User, AppwriteError> {
        let (status, text) = self.send(Method::GET, &["account"], &[], None, Auth::Jwt(jwt)).await?;
        decode(status, &text)
    }
}
