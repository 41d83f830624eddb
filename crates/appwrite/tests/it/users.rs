use crate::support::client;
use tollgate_appwrite::Query;
use tollgate_core::Email;

#[tokio::test]
async fn a_user_is_found_by_exact_email_even_behind_thirty_others() {
    let (_devstack, client) = client().await;
    for i in 0..30 {
        client
            .create_user(&format!("u{i}"), &Email::parse(&format!("user{i}@example.com")).unwrap(), None, None)
            .await
            .unwrap();
    }
    client
        .create_user("target", &Email::parse("Target@Example.com").unwrap(), Some("password123"), Some("T"))
        .await
        .unwrap();
    let found = client.find_user_by_email(&Email::parse(" TARGET@example.COM").unwrap()).await.unwrap();
    assert_eq!(found.map(|u| u.id), Some("target".to_owned()));
    assert!(client.find_user_by_email(&Email::parse("nobody@example.com").unwrap()).await.unwrap().is_none());
    let page = client.list_users(&[Query::limit(5)], None).await.unwrap();
    assert_eq!((page.total, page.users.len()), (31, 5));
}

#[tokio::test]
async fn a_user_jwt_identifies_its_user_through_get_account() {
    let (_devstack, client) = client().await;
    let user = client.create_user("j1", &Email::parse("j1@example.com").unwrap(), None, None).await.unwrap();
    let id = tollgate_core::AppwriteId::parse(&user.id).unwrap();
    let jwt = client.create_user_jwt(&id, Some(60)).await.unwrap();
    assert_eq!(client.get_account(&jwt).await.unwrap().id, "j1");
    let forged = client.get_account("forged").await.unwrap_err();
    assert_eq!(forged.kind, tollgate_appwrite::ErrorKind::UserJwtInvalid);
}

#[tokio::test]
async fn an_email_marked_verified_is_reported_by_every_user_read_and_can_be_filtered_on() {
    let (_devstack, client) = client().await;
    let created = client.create_user("v1", &Email::parse("v1@example.com").unwrap(), None, None).await.unwrap();
    assert!(!created.email_verification, "a new user's email is not verified");
    client.create_user("v2", &Email::parse("v2@example.com").unwrap(), None, None).await.unwrap();
    let id = tollgate_core::AppwriteId::parse("v1").unwrap();

    let updated = client.update_email_verification(&id, true).await.unwrap();
    assert_eq!((updated.id.as_str(), updated.email_verification), ("v1", true));
    assert!(client.get_user(&id).await.unwrap().email_verification);
    let jwt = client.create_user_jwt(&id, Some(60)).await.unwrap();
    assert!(client.get_account(&jwt).await.unwrap().email_verification);
    let verified = client.list_users(&[Query::equal("emailVerification", [true])], None).await.unwrap();
    assert_eq!(verified.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["v1"]);

    assert!(!client.update_email_verification(&id, false).await.unwrap().email_verification);
    let missing = tollgate_core::AppwriteId::parse("nobody").unwrap();
    let error = client.update_email_verification(&missing, true).await.unwrap_err();
    assert_eq!(error.kind, tollgate_appwrite::ErrorKind::UserNotFound);
}
