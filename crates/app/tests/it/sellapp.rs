//! The Sell.app lifecycle against devstack on the injected clock: the plans catalogue (product ids,
//! durations, tier groups), subscriptions, `order.paid`, and the request budget.

use crate::ledger::entitlements;
use crate::role_sync::World;
use crate::support::{applied, context, signed_event, TestContext};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::json;
use std::collections::BTreeSet;
use tollgate_app::role_sync::PlanUpdate;
use tollgate_app::IngestOutcome;
use tollgate_core::{AppwriteId, Clock, GuildId, RoleId, Tier};
use tollgate_devstack::discord_seed as seed;
use tollgate_providers::VerifiedEvent;

fn guild() -> GuildId {
    GuildId::parse(seed::GUILD_ID).unwrap()
}

fn role(id: &str) -> RoleId {
    RoleId::parse(id).unwrap()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A plan sold by Sell.app product `product`, with `roles`, an optional duration and tier.
async fn offer(
    ctx: &TestContext,
    plan: &str,
    product: &str,
    roles: &[&str],
    days: Option<i64>,
    tier: Option<(&str, i64)>,
) {
    let update = PlanUpdate {
        roles: Some(roles.iter().map(|r| role(r)).collect()),
        sellapp_products: Some(vec![product.to_owned()]),
        sellapp_variants: None,
        stripe_prices: None,
        duration: days.map(|d| Some(Duration::days(d))),
        tier: tier.map(|(group, rank)| Some(Tier { group: group.into(), rank })),
    };
    ctx.app().set_plan(plan, guild(), &update).await.expect("plan");
}

/// A new-API `order.completed` of one line item.
fn purchase(order: u64, email: &str, product: &str, title: &str) -> VerifiedEvent {
    paid_event("order.completed", order, email, product, title, "COMPLETED")
}

fn paid_event(event: &str, order: u64, email: &str, product: &str, title: &str, status: &str) -> VerifiedEvent {
    signed_event(
        &json!({"event": event, "store": 7, "data": {
            "id": order, "status": status, "customer": {"email": email},
            "line_items": [{"product_id": product, "product_variant_id": format!("v{product}"), "product_title": title}]
        }})
        .to_string(),
    )
}

fn subscription_event(
    event: &str,
    id: u64,
    email: &str,
    product: &str,
    period_end: DateTime<Utc>,
    at: DateTime<Utc>,
) -> VerifiedEvent {
    signed_event(
        &json!({"event": event, "store": 7, "data": {
            "id": id, "status": "active", "customer": {"email": email}, "product_id": product,
            "current_period_end": rfc3339(period_end), "updated_at": rfc3339(at)
        }})
        .to_string(),
    )
}

fn roles(ids: &[&str]) -> BTreeSet<RoleId> {
    ids.iter().map(|r| role(r)).collect()
}

/// Reconciliation's view after the clock moved: drifted users are queued, then synced.
async fn reconcile_and_sync(w: &World, user: &AppwriteId) {
    let plans = w.ctx.app().plans_by_user().await.expect("plans");
    w.ctx.app().reconcile_access(&plans, 25).await.expect("drift");
    w.sync().sync_user(user).await.expect("sync");
}

#[tokio::test]
async fn a_thirty_day_product_ends_thirty_days_after_payment_and_takes_the_membership_and_roles_with_it() {
    let w = World::new().await;
    offer(&w.ctx, "month", "55", &[seed::VIP_ROLE_ID], Some(30), None).await;
    let discord = seed::TEST_USERS[0].0;
    w.join(discord).await;
    let user = w.linked_user("thirty", discord, false).await;
    let paid_at = w.ctx.clock.now();
    let outcome = w.ctx.app().ingest_sellapp(&purchase(501, "thirty@example.com", "55", "Month pass")).await;
    assert_eq!(outcome, Ok(applied("thirty")));
    w.sync().sync_user(&user).await.expect("sync");
    assert!(w.ctx.is_paid("thirty").await);
    assert_eq!(w.member_roles(discord).await, roles(&[seed::VIP_ROLE_ID]));
    let sub = w.ctx.document("subscriptions", "thirty").await.expect("subscription");
    assert_eq!(sub["plan"], "month");

    // A redelivery days later does not extend it.
    w.ctx.clock.advance(Duration::days(3));
    w.ctx
        .app()
        .ingest_sellapp(&paid_event("order.paid", 501, "thirty@example.com", "55", "Month pass", "PAID"))
        .await
        .unwrap();
    let end = paid_at + Duration::days(30);
    let last_moment = end + w.ctx.settings.access_grace;
    w.ctx.clock.advance(last_moment - w.ctx.clock.now());
    reconcile_and_sync(&w, &user).await;
    assert!(w.ctx.is_paid("thirty").await, "access lasts until the end plus grace, inclusive");

    w.ctx.clock.advance(Duration::seconds(1));
    reconcile_and_sync(&w, &user).await;
    assert!(!w.ctx.is_paid("thirty").await);
    assert!(w.member_roles(discord).await.is_empty(), "the plan's roles go with it");
    assert_eq!(w.ctx.document("subscriptions", "thirty").await.unwrap()["status"], "inactive");
}

#[tokio::test]
async fn renaming_a_product_keeps_its_plan() {
    let ctx = context().await;
    offer(&ctx, "pro", "77", &[seed::VIP_ROLE_ID], None, None).await;
    ctx.create_user("renamer", "renamer@example.com").await;
    ctx.app().ingest_sellapp(&purchase(601, "renamer@example.com", "77", "Pro")).await.unwrap();
    ctx.app().ingest_sellapp(&purchase(602, "renamer@example.com", "77", "Pro — now with more")).await.unwrap();
    let list = entitlements(&ctx).await;
    assert_eq!(list.len(), 2);
    for entitlement in &list {
        assert_eq!(entitlement["plan"], "pro", "{entitlement}");
        assert_eq!(entitlement["planMatch"], "product");
        assert_eq!(entitlement["productRef"], "product 77");
    }
    let gaps = ctx.app().catalogue_gaps().await.unwrap();
    assert!(gaps.unmapped.is_empty() && gaps.by_title.is_empty(), "{gaps:?}");
}

#[tokio::test]
async fn a_product_only_known_by_title_or_not_at_all_is_reported_for_the_doctor() {
    let ctx = context().await;
    offer(&ctx, "pro", "77", &[seed::VIP_ROLE_ID], None, None).await;
    ctx.create_user("legacy", "legacy@example.com").await;
    ctx.app().ingest_sellapp(&purchase(701, "legacy@example.com", "999", "pro")).await.unwrap();
    ctx.app().ingest_sellapp(&purchase(702, "legacy@example.com", "998", "Mystery box")).await.unwrap();
    let gaps = ctx.app().catalogue_gaps().await.unwrap();
    assert_eq!(gaps.by_title, [("product 999".to_owned(), "pro".to_owned())].into());
    assert_eq!(gaps.unmapped, [("product 998".to_owned(), "Mystery box".to_owned())].into());
}

#[tokio::test]
async fn buying_the_higher_tier_replaces_the_lower_tiers_roles_and_its_end_restores_them() {
    let w = World::new().await;
    offer(&w.ctx, "basic", "1", &[seed::MEMBER_ROLE_ID], None, Some(("main", 1))).await;
    offer(&w.ctx, "pro", "2", &[seed::VIP_ROLE_ID], Some(30), Some(("main", 2))).await;
    let discord = seed::TEST_USERS[1].0;
    w.join(discord).await;
    let user = w.linked_user("tiered", discord, false).await;
    w.ctx.app().ingest_sellapp(&purchase(801, "tiered@example.com", "1", "Basic")).await.unwrap();
    w.sync().sync_user(&user).await.unwrap();
    assert_eq!(w.member_roles(discord).await, roles(&[seed::MEMBER_ROLE_ID]));

    w.ctx.app().ingest_sellapp(&purchase(802, "tiered@example.com", "2", "Pro")).await.unwrap();
    w.sync().sync_user(&user).await.unwrap();
    assert_eq!(w.member_roles(discord).await, roles(&[seed::VIP_ROLE_ID]), "the higher tier replaces the lower");

    w.ctx.clock.advance(Duration::days(30) + w.ctx.settings.access_grace + Duration::seconds(1));
    w.sync().sync_user(&user).await.unwrap();
    assert_eq!(w.member_roles(discord).await, roles(&[seed::MEMBER_ROLE_ID]), "its end restores the lower tier");
    assert!(w.ctx.is_paid("tiered").await);
}

#[tokio::test]
async fn a_subscription_created_renewed_and_cancelled_never_flickers_and_ends_at_its_period_end() {
    let ctx = context().await;
    offer(&ctx, "monthly", "90", &[seed::VIP_ROLE_ID], None, None).await;
    ctx.create_user("subscriber", "subscriber@example.com").await;
    let start = ctx.clock.now();
    let first_end = start + Duration::days(30);
    let created = subscription_event("subscription.created", 12, "subscriber@example.com", "90", first_end, start);
    assert_eq!(ctx.app().ingest_sellapp(&created).await, Ok(applied("subscriber")));
    ctx.project("subscriber").await;
    assert!(ctx.is_paid("subscriber").await);

    // The renewal arrives an hour before the period ends: access never lapses.
    ctx.clock.advance(Duration::days(30) - Duration::hours(1));
    let second_end = first_end + Duration::days(30);
    let renewed =
        subscription_event("subscription.renewed", 12, "subscriber@example.com", "90", second_end, ctx.clock.now());
    assert_eq!(ctx.app().ingest_sellapp(&renewed).await, Ok(applied("subscriber")));
    ctx.project("subscriber").await;
    for hours in [1, 2, 24 * 10] {
        ctx.clock.advance(Duration::hours(hours));
        assert!(ctx.project("subscriber").await.access.has_access(), "no gap {hours}h later");
    }
    // An old `created` redelivered now changes nothing (it is older than the renewal).
    assert_eq!(ctx.app().ingest_sellapp(&created).await, Ok(IngestOutcome::Duplicate));

    let cancelled =
        subscription_event("subscription.cancelled", 12, "subscriber@example.com", "90", second_end, ctx.clock.now());
    assert_eq!(ctx.app().ingest_sellapp(&cancelled).await, Ok(applied("subscriber")));
    assert!(ctx.project("subscriber").await.access.has_access(), "access stays until the period end");
    let list = entitlements(&ctx).await;
    assert_eq!(list.len(), 1, "one entitlement per subscription");
    assert_eq!(list[0]["source"], "sellapp-sub:7:12");

    ctx.clock.advance(second_end + ctx.settings.access_grace - ctx.clock.now());
    assert!(ctx.project("subscriber").await.access.has_access());
    ctx.clock.advance(Duration::seconds(1));
    assert!(!ctx.project("subscriber").await.access.has_access(), "it ends at the period end (plus grace)");
    assert!(!ctx.is_paid("subscriber").await);
}

#[tokio::test]
async fn a_subscription_event_of_an_unknown_shape_is_recorded_for_an_admin_not_guessed() {
    let ctx = context().await;
    ctx.create_user("odd", "odd@example.com").await;
    let body = json!({"event": "subscription.renewed", "store": 7, "data": {"id": 3, "customer": {"email": "odd@example.com"}, "renews": "soon"}});
    let outcome = ctx.app().ingest_sellapp(&signed_event(&body.to_string())).await;
    assert_eq!(outcome, Ok(IngestOutcome::FailureRecorded { code: "unknown_subscription_shape", retryable: false }));
    assert!(entitlements(&ctx).await.is_empty());
    assert!(!ctx.is_paid("odd").await);
}

#[tokio::test]
async fn order_paid_and_order_completed_of_one_order_are_one_entitlement() {
    let ctx = context().await;
    offer(&ctx, "pro", "77", &[seed::VIP_ROLE_ID], Some(30), None).await;
    ctx.create_user("twice", "twice@example.com").await;
    let pending = paid_event("order.paid", 901, "twice@example.com", "77", "Pro", "PENDING");
    assert!(matches!(ctx.app().ingest_sellapp(&pending).await, Ok(IngestOutcome::Ignored { .. })));
    let paid = paid_event("order.paid", 901, "twice@example.com", "77", "Pro", "PAID");
    assert_eq!(ctx.app().ingest_sellapp(&paid).await, Ok(applied("twice")));
    let first = entitlements(&ctx).await;
    ctx.clock.advance(Duration::minutes(5));
    assert_eq!(ctx.app().ingest_sellapp(&purchase(901, "twice@example.com", "77", "Pro")).await, Ok(applied("twice")));
    let after = entitlements(&ctx).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["endsAt"], first[0]["endsAt"], "the second event neither doubles nor extends it");
}

#[tokio::test]
async fn while_a_plan_document_is_unreadable_a_purchase_no_readable_plan_lists_is_not_guessed() {
    let ctx = context().await;
    offer(&ctx, "pro", "77", &[seed::VIP_ROLE_ID], None, None).await;
    let broken =
        json!({"plan": "vip", "guildId": seed::GUILD_ID, "roleIdsJson": "[]", "sellappProductIdsJson": "{not json"});
    ctx.client.upsert_document("crypto", "discord_role_mappings", "broken", &broken).await.unwrap();
    ctx.create_user("careful", "careful@example.com").await;
    let outcome = ctx.app().ingest_sellapp(&purchase(1001, "careful@example.com", "55", "VIP")).await;
    assert_eq!(outcome, Ok(IngestOutcome::FailureRecorded { code: "plan_catalogue_unreadable", retryable: true }));
    assert!(entitlements(&ctx).await.is_empty());
    // A product a readable plan lists by id is unaffected.
    assert_eq!(
        ctx.app().ingest_sellapp(&purchase(1002, "careful@example.com", "77", "Pro")).await,
        Ok(applied("careful"))
    );
}

/// Found by `cargo xtask chaos` (seed 956): access that keeps one plan while another ends changes no
/// membership and no status, yet the `subscriptions` document must stop naming the ended plan.
#[tokio::test]
async fn when_one_of_two_plans_ends_reconciliation_re_projects_the_plans_the_document_names() {
    let w = World::new().await;
    offer(&w.ctx, "day", "77", &[seed::VIP_ROLE_ID], Some(1), None).await;
    w.ctx.create_user("both", "both@example.com").await;
    let user = AppwriteId::parse("both").unwrap();
    let forever = signed_event(
        &json!({"event": "order.completed", "store": 7, "data": {"id": 601, "customer": {"email": "both@example.com"}}})
            .to_string(),
    );
    assert_eq!(w.ctx.app().ingest_sellapp(&forever).await, Ok(applied("both")));
    let day = purchase(602, "both@example.com", "77", "Day pass");
    assert_eq!(w.ctx.app().ingest_sellapp(&day).await, Ok(applied("both")));
    w.ctx.project("both").await;
    let sub = w.ctx.document("subscriptions", "both").await.expect("subscription");
    assert_eq!(sub["plansJson"], r#"["day","member"]"#);

    w.ctx.clock.advance(Duration::days(1) + w.ctx.settings.access_grace + Duration::seconds(1));
    let plans = w.ctx.app().plans_by_user().await.expect("plans");
    let drift = w.ctx.app().reconcile_access(&plans, 25).await.expect("drift");
    assert_eq!(drift.queued, vec!["both".to_owned()], "still paid and active, but the document names an ended plan");
    w.sync().sync_user(&user).await.expect("sync");
    let sub = w.ctx.document("subscriptions", "both").await.expect("subscription");
    assert_eq!((sub["status"].as_str(), sub["plansJson"].as_str()), (Some("active"), Some(r#"["member"]"#)));
    let plans = w.ctx.app().plans_by_user().await.expect("plans");
    assert!(w.ctx.app().reconcile_access(&plans, 25).await.expect("drift").queued.is_empty(), "in sync again");
}

/// Found by `cargo xtask chaos` (seed 436): an admin revoked a subscriber twice, and the renewal dated
/// between the two revocations arrived after both. Being newer than the first revocation only, it must not
/// lift the second.
#[tokio::test]
async fn a_renewal_dated_between_two_admin_revokes_and_arriving_after_both_does_not_undo_the_second() {
    let w = World::new().await;
    offer(&w.ctx, "vip", "90", &[seed::VIP_ROLE_ID], None, None).await;
    w.ctx.create_user("twice", "twice@example.com").await;
    let start = w.ctx.clock.now();
    let created =
        subscription_event("subscription.created", 77, "twice@example.com", "90", start + Duration::days(1), start);
    assert_eq!(w.ctx.app().ingest_sellapp(&created).await, Ok(applied("twice")));
    let address = tollgate_core::Email::parse("twice@example.com").unwrap();

    w.ctx.clock.advance(Duration::hours(18));
    assert_eq!(w.ctx.app().admin_revoke(&address, None).await.expect("revoke").revoked.len(), 1);
    w.ctx.clock.advance(Duration::hours(26));
    let second = w.ctx.app().admin_revoke(&address, None).await.expect("revoke again");
    assert_eq!(second.already_revoked.len(), 1);

    // The renewal of the next period, dated at hour 24: after the first revoke (18), before the second (44).
    let renewed = renew(&w, start, 1).await;
    assert!(renewed.is_revoked(), "the second revocation stands: {renewed:?}");
    w.ctx.project("twice").await;
    assert!(!w.ctx.is_paid("twice").await);

    // A renewal dated after both lifts them, as a dated provider event newer than the revocations does.
    assert!(!renew(&w, start, 2).await.is_revoked());
}

/// Subscription 77's renewal of period `period` (dated `period` days after `start`), and the one
/// entitlement it lands on.
async fn renew(w: &World, start: DateTime<Utc>, period: i64) -> tollgate_core::Entitlement {
    let ends = start + Duration::days(period + 1);
    let event =
        subscription_event("subscription.renewed", 77, "twice@example.com", "90", ends, start + Duration::days(period));
    w.ctx.app().ingest_sellapp(&event).await.expect("renewal recorded");
    let mut entries = w.ctx.app().user_entitlements(&AppwriteId::parse("twice").unwrap()).await.expect("ledger");
    assert_eq!(entries.len(), 1);
    entries.remove(0).entitlement
}
