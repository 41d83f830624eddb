//! Teams and memberships. With an API key a membership is created already confirmed (no invite email),
//! and a repeat add answers 409 `membership_already_confirmed` (1.5: `team_invite_already_exists`):
//! both mean "already a member".

use crate::error::AppwriteError;
use crate::models::{Membership, MembershipList, MembershipOutcome, Team};
use crate::query::{params, Query};
use crate::AppwriteClient;
use reqwest::Method;
use serde_json::json;
use tollgate_core::AppwriteId;

impl AppwriteClient {
    pub async fn create_team(&self, team_id: &str, name: &str) -> Result<Team, AppwriteError> {
        let body = json!({ "teamId": team_id, "name": name });
        self.call(Method::POST, &["teams"], &[], Some(&body)).await
    }

    pub async fn get_team(&self, team_id: &str) -> Result<Team, AppwriteError> {
        self.call(Method::GET, &["teams", team_id], &[], None).await
    }

    pub async fn create_membership(
        &self,
        team_id: &str,
        user_id: &AppwriteId,
        roles: &[&str],
    ) -> Result<Membership, AppwriteError> {
        let body = json!({ "userId": user_id.as_str(), "roles": roles });
        self.call(Method::POST, &["teams", team_id, "memberships"], &[], Some(&body)).await
    }

    pub async fn ensure_membership(
        &self,
        team_id: &str,
        user_id: &AppwriteId,
        roles: &[&str],
    ) -> Result<MembershipOutcome, AppwriteError> {
        match self.create_membership(team_id, user_id, roles).await {
            Ok(_) => Ok(MembershipOutcome::Created),
            Err(e) if e.is_already_member() => Ok(MembershipOutcome::AlreadyMember),
            Err(e) => Err(e),
        }
    }

    pub async fn list_memberships(&self, team_id: &str, queries: &[Query]) -> Result<MembershipList, AppwriteError> {
        self.call(Method::GET, &["teams", team_id, "memberships"], &params(queries), None).await
    }

    /// The user's membership of the team, found by `equal("userId")` (never by scanning a first page).
    pub async fn find_membership(
        &self,
        team_id: &str,
        user_id: &AppwriteId,
    ) -> Result<Option<Membership>, AppwriteError> {
        let list =
            self.list_memberships(team_id, &[Query::equal("userId", [user_id.as_str()]), Query::limit(1)]).await?;
        Ok(list.memberships.into_iter().find(|m| m.user_id == user_id.as_str()))
    }

    pub async fn delete_membership(&self, team_id: &str, membership_id: &str) -> Result<(), AppwriteError> {
        self.call_no_content(Method::DELETE, &["teams", team_id, "memberships", membership_id], None).await
    }

    /// Removes the user from the team. `Ok(false)` if they were not a member (already the desired state).
    pub async fn remove_user_from_team(&self, team_id: &str, user_id: &AppwriteId) -> Result<bool, AppwriteError> {
        let Some(membership) = self.find_membership(team_id, user_id).await? else { return Ok(false) };
        match self.delete_membership(team_id, &membership.id).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}
