use crate::support::client;
use tollgate_appwrite::MembershipOutcome;
use tollgate_core::{AppwriteId, Email};

#[tokio::test]
async fn memberships_are_ensured_found_and_removed_idempotently() {
    let (_devstack, client) = client().await;
    client.create_team("paid", "Paid").await.unwrap();
    for i in 0..30 {
        let user = client
            .create_user(&format!("m{i}"), &Email::parse(&format!("m{i}@example.com")).unwrap(), None, None)
            .await
            .unwrap();
        let id = AppwriteId::parse(&user.id).unwrap();
        client.ensure_membership("paid", &id, &["member"]).await.unwrap();
    }
    let last = AppwriteId::parse("m29").unwrap();
    assert_eq!(client.ensure_membership("paid", &last, &["member"]).await.unwrap(), MembershipOutcome::AlreadyMember);
    let found = client.find_membership("paid", &last).await.unwrap().expect("a member beyond the first page");
    assert_eq!(found.user_id, "m29");
    assert!(found.confirm);
    assert!(client.remove_user_from_team("paid", &last).await.unwrap());
    assert!(!client.remove_user_from_team("paid", &last).await.unwrap(), "already gone is fine");
    assert_eq!(client.get_team("paid").await.unwrap().total, 29);
}
