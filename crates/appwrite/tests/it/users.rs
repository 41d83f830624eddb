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
