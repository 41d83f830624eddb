//! The durable inbox: a delivery cut after its claim is finished by the cron's sweep, from the body the
//! claim stores; a delivery that could not even be claimed is answered 503 with nothing written.

use crate::ledger::{clear_calls, entitlements, total_calls};
use crate::support::{applied, context, order, TestContext};
use chrono::Duration;
use serde_json::{json, Value};
use std::time::Duration as Wait;
use tollgate_app::inbox::{Swept, STALE_CLAIM_AFTER_SECS};
use tollgate_app::scheduled::{SWEEPS_PER_RUN, SWEEP_COST};
use tollgate_app::IngestOutcome;
use tollgate_appwrite::Query;
use tollgate_core::retry_schedule::RETRY_SCHEDULE_SECS;
use tollgate_core::{AppwriteId, IdempotencyKey};

fn claim_id(event: &str, order_id: &str) -> String {
    IdempotencyKey::sellapp(Some(event), Some(order_id), Some("7"), b"").document_id().as_str().to_owned()
}

/// A deadline that passes while the delivery waits on Appwrite.
fn short_deadline() -> tokio::time::Sleep {
    tokio::time::sleep(Wait::from_millis(300))
}

/// Delivers `order.completed` of `order_id` while finding the buyer hangs (slower than the deadline): the
/// claim is stored, the delivery is cut after it.
async fn deliver_cut(ctx: &TestContext, order_id: u64, email: &str) -> tollgate_providers::VerifiedEvent {
    ctx.set_faults(json!({"rate": 1.0, "paths": ["/v1/users"], "delay_ms": 3000})).await;
    let event = order("order.completed", order_id, email);
    let outcome = ctx.app().ingest_sellapp_within(&event, short_deadline()).await;
    assert_eq!(outcome, Ok(IngestOutcome::Accepted), "the claim holds the body: 2xx, the sweep finishes it");
    ctx.set_faults(json!({"rate": 0})).await;
    event
}

/// The entitlement of `order_id` records its event once, and it is the only one.
async fn granted_once(ctx: &TestContext, order_id: u64) {
    let all = entitlements(ctx).await;
    assert_eq!(all.len(), 1, "one entitlement: {all:?}");
    assert_eq!(all[0]["orderId"], order_id.to_string());
    let keys: Vec<Value> = serde_json::from_str(all[0]["eventKeysJson"].as_str().expect("keys")).expect("json");
    assert_eq!(keys.len(), 1, "the event is recorded once: {keys:?}");
}

#[tokio::test]
async fn a_delivery_cut_after_its_claim_is_finished_by_the_sweep_and_the_buyer_gets_access_once() {
    let ctx = context().await;
    ctx.create_user("cut1", "cut1@example.com").await;
    let event = deliver_cut(&ctx, 41, "cut1@example.com").await;
    let id = claim_id("order.completed", "41");
    let claim = ctx.document("webhook_events", &id).await.expect("claim");
    assert_eq!(claim["status"], "processing");
    assert_eq!(claim["bodyText"], std::str::from_utf8(event.body()).unwrap(), "the exact body, with the claim");
    assert!(entitlements(&ctx).await.is_empty(), "cut before any side effect");

    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    clear_calls(&ctx).await;
    let report = ctx.app().sweep_stale_claims(SWEEPS_PER_RUN).await.expect("sweep");
    assert_eq!((report.found, report.finished, report.failed, report.unrecoverable), (1, 1, 0, 0));
    // The list, the lease, the delivery's own steps (claim found, buyer, catalogue, ledger, outbox, complete).
    let calls = total_calls(&ctx).await;
    assert!(calls <= 10, "one swept delivery costs {calls} Appwrite calls: {}", ctx.calls().await);
    assert_eq!(report.users, vec![AppwriteId::parse("cut1").unwrap()], "the user to prompt role-sync for");
    let claim = ctx.document("webhook_events", &id).await.expect("claim");
    assert_eq!(claim["status"], "completed");
    assert!(claim["bodyText"].is_null(), "a finished delivery's body is not kept: {claim}");
    ctx.project("cut1").await;
    assert!(ctx.is_paid("cut1").await);
    granted_once(&ctx, 41).await;

    // Nothing is left for the next run, and the provider's redelivery is a duplicate.
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    assert_eq!(ctx.app().sweep_stale_claims(SWEEPS_PER_RUN).await.expect("sweep").found, 0);
    assert_eq!(ctx.app().ingest_sellapp(&event).await, Ok(IngestOutcome::Duplicate));
    granted_once(&ctx, 41).await;
}

#[tokio::test]
async fn the_sweep_does_not_touch_a_fresh_processing_claim() {
    let ctx = context().await;
    ctx.create_user("cut2", "cut2@example.com").await;
    deliver_cut(&ctx, 42, "cut2@example.com").await;
    let id = claim_id("order.completed", "42");
    let before = ctx.document("webhook_events", &id).await.expect("claim");

    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS - 1));
    let report = ctx.app().sweep_stale_claims(SWEEPS_PER_RUN).await.expect("sweep");
    assert_eq!(report.found, 0, "its delivery may still be running");
    let after = ctx.document("webhook_events", &id).await.expect("claim");
    assert_eq!((&after["status"], &after["claimedAt"]), (&before["status"], &before["claimedAt"]));
    assert!(entitlements(&ctx).await.is_empty());
}

#[tokio::test]
async fn a_duplicate_of_a_delivery_still_processing_is_not_applied_twice() {
    let ctx = context().await;
    ctx.create_user("cut3", "cut3@example.com").await;
    let event = deliver_cut(&ctx, 43, "cut3@example.com").await;
    // The provider gave up on the cut request and delivers again while the claim is fresh.
    assert_eq!(ctx.app().ingest_sellapp(&event).await, Ok(applied("cut3")));
    granted_once(&ctx, 43).await;
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    assert_eq!(ctx.app().sweep_stale_claims(SWEEPS_PER_RUN).await.expect("sweep").found, 0, "completed by then");
    assert_eq!(ctx.app().ingest_sellapp(&event).await, Ok(IngestOutcome::Duplicate));
    granted_once(&ctx, 43).await;
    ctx.project("cut3").await;
    assert!(ctx.is_paid("cut3").await);
}

#[tokio::test]
async fn a_delivery_whose_claim_cannot_be_stored_is_answered_503_and_nothing_is_written() {
    let ctx = context().await;
    ctx.create_user("down", "down@example.com").await;
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/databases"]})).await;
    let outcome = ctx.app().ingest_sellapp(&order("order.completed", 44, "down@example.com")).await;
    assert!(matches!(outcome, Err(tollgate_app::NotRecorded { .. })), "{outcome:?}");
    ctx.set_faults(json!({"rate": 0})).await;
    for collection in ["webhook_events", "webhook_failures", "entitlements", "role_sync_jobs"] {
        assert_eq!(ctx.count(collection, &[Query::limit(10)]).await, 0, "{collection} is untouched");
    }

    // A claim that does not land before the deadline is not durable either: 503.
    ctx.set_faults(
        json!({"rate": 1.0, "paths": ["/v1/databases/crypto/collections/webhook_events"], "delay_ms": 3000}),
    )
    .await;
    let event = order("order.completed", 45, "down@example.com");
    let outcome = ctx.app().ingest_sellapp_within(&event, short_deadline()).await;
    assert!(matches!(outcome, Err(tollgate_app::NotRecorded { .. })), "{outcome:?}");
    ctx.set_faults(json!({"rate": 0})).await;
}

#[tokio::test]
async fn a_swept_delivery_that_fails_again_becomes_a_failure_record_the_retry_cron_settles() {
    let ctx = context().await;
    ctx.create_user("cut4", "cut4@example.com").await;
    deliver_cut(&ctx, 46, "cut4@example.com").await;
    let id = claim_id("order.completed", "46");
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    let report = ctx.app().sweep_stale_claims(SWEEPS_PER_RUN).await.expect("sweep");
    assert_eq!((report.found, report.finished, report.failed), (1, 0, 1));
    ctx.set_faults(json!({"rate": 0})).await;
    let failure = ctx.document("webhook_failures", &id).await.expect("failure record");
    assert_eq!((failure["state"].as_str(), failure["errorCode"].as_str()), (Some("due"), Some("appwrite_error")));
    assert_eq!(ctx.document("webhook_events", &id).await.expect("claim")["status"], "failed");

    // The failure record owns it now: the sweep leaves it, the retry settles it.
    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[0].max(STALE_CLAIM_AFTER_SECS + 1)));
    assert_eq!(ctx.app().sweep_stale_claims(SWEEPS_PER_RUN).await.expect("sweep").found, 0);
    assert_eq!(ctx.app().retry_due_failures(10).await.expect("retry").settled, 1);
    assert_eq!(ctx.document("webhook_events", &id).await.expect("claim")["status"], "completed");
    granted_once(&ctx, 46).await;
}

#[tokio::test]
async fn a_stale_claim_without_a_body_is_marked_unrecoverable_not_left_processing() {
    let ctx = context().await;
    // As a claim written before claims kept their body, by a delivery that was cut.
    let claimed_at = tollgate_app::records::timestamp(crate::support::start_time());
    let data = json!({"provider": "sellapp", "eventId": "order.completed:47:7", "status": "processing", "claimedAt": claimed_at});
    ctx.client.create_document(&ctx.settings.database_id, "webhook_events", "old-claim", &data, None).await.unwrap();
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    let report = ctx.app().sweep_stale_claims(SWEEPS_PER_RUN).await.expect("sweep");
    assert_eq!((report.found, report.unrecoverable), (1, 1));
    assert_eq!(ctx.document("webhook_events", "old-claim").await.expect("claim")["status"], "unrecoverable");
    assert_eq!(ctx.app().sweep_stale_claims(SWEEPS_PER_RUN).await.expect("sweep").found, 0);
}

#[tokio::test]
async fn a_claim_first_written_by_a_failing_retry_is_left_to_the_retry_not_swept() {
    let ctx = context().await;
    ctx.create_user("cut5", "cut5@example.com").await;
    // The delivery's claim cannot be written: a failure record (with the body) is, and there is no claim.
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/databases/crypto/collections/webhook_events"]}))
        .await;
    let outcome = ctx.app().ingest_sellapp(&order("order.completed", 48, "cut5@example.com")).await;
    assert_eq!(outcome, Ok(IngestOutcome::FailureRecorded { code: "appwrite_error", retryable: true }));
    ctx.set_faults(json!({"rate": 0})).await;
    let id = claim_id("order.completed", "48");
    assert!(ctx.document("webhook_events", &id).await.is_none());

    // The retry claims it, then fails on the buyer: the claim is handed to the record, not left `processing`.
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[0]));
    assert_eq!(ctx.app().retry_due_failures(10).await.expect("retry").rescheduled, 1);
    ctx.set_faults(json!({"rate": 0})).await;
    assert_eq!(ctx.document("webhook_events", &id).await.expect("claim")["status"], "failed");
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    assert_eq!(ctx.app().sweep_stale_claims(SWEEPS_PER_RUN).await.expect("sweep").found, 0);

    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[1]));
    assert_eq!(ctx.app().retry_due_failures(10).await.expect("retry").settled, 1);
    assert_eq!(ctx.document("webhook_events", &id).await.expect("claim")["status"], "completed");
    granted_once(&ctx, 48).await;
}

#[tokio::test]
async fn a_redelivery_of_a_claim_left_failed_under_a_settled_record_is_a_duplicate_and_completes_the_claim() {
    let ctx = context().await;
    ctx.create_user("cut6", "cut6@example.com").await;
    let event = order("order.completed", 49, "cut6@example.com");
    // The delivery fails on the buyer: a due record owns the claim.
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    let outcome = ctx.app().ingest_sellapp(&event).await;
    assert_eq!(outcome, Ok(IngestOutcome::FailureRecorded { code: "appwrite_error", retryable: true }));
    ctx.set_faults(json!({"rate": 0})).await;
    let id = claim_id("order.completed", "49");
    // The retry applies it and settles the record; the claim's completion after settling is lost.
    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[0]));
    assert_eq!(ctx.app().retry_due_failures(10).await.expect("retry").settled, 1);
    let db = &ctx.settings.database_id;
    ctx.client.update_document(db, "webhook_events", &id, &json!({"status": "failed"})).await.expect("as if lost");

    // The provider delivers it again: done before, nothing applied twice, the claim repaired.
    assert_eq!(ctx.app().ingest_sellapp(&event).await, Ok(IngestOutcome::Duplicate));
    assert_eq!(ctx.document("webhook_events", &id).await.expect("claim")["status"], "completed");
    granted_once(&ctx, 49).await;

    // With the record still due, a redelivery applies it (the claim is not taken as done).
    ctx.create_user("cut7", "cut7@example.com").await;
    let second = order("order.completed", 50, "cut7@example.com");
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    assert!(matches!(ctx.app().ingest_sellapp(&second).await, Ok(IngestOutcome::FailureRecorded { .. })));
    ctx.set_faults(json!({"rate": 0})).await;
    assert_eq!(ctx.document("webhook_events", &claim_id("order.completed", "50")).await.unwrap()["status"], "failed");
    assert_eq!(ctx.app().ingest_sellapp(&second).await, Ok(applied("cut7")));
}

/// A purchase by a new verified `user` (`{user}@example.com`) left `processing` with its body: finding the
/// buyer failed, and so did recording the failure (answered 202 `accepted`, left to the sweep). The claim's id.
pub(crate) async fn left_processing(ctx: &TestContext, user: &str, order_id: u64) -> String {
    let email = format!("{user}@example.com");
    ctx.create_user(user, &email).await;
    let failing = ["/v1/users", "/v1/databases/crypto/collections/webhook_failures"];
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": failing})).await;
    let outcome = ctx.app().ingest_sellapp(&order("order.completed", order_id, &email)).await;
    ctx.set_faults(json!({"rate": 0})).await;
    assert_eq!(outcome, Ok(IngestOutcome::Accepted), "the claim holds the body, nothing else was written");
    claim_id("order.completed", &order_id.to_string())
}

fn id(raw: &str) -> AppwriteId {
    AppwriteId::parse(raw).expect("a valid id")
}

#[tokio::test]
async fn sweeping_a_claim_by_id_leaves_a_fresh_a_leased_and_a_finished_claim_alone() {
    let ctx = context().await;
    let claim = left_processing(&ctx, "byid1", 61).await;
    let before = ctx.document("webhook_events", &claim).await.expect("claim");

    // Fresh: its delivery may still be running.
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS - 1));
    assert_eq!(ctx.app().sweep_claim_by_id(&id(&claim)).await, Ok((Swept::Skipped, None)));
    assert_eq!(ctx.document("webhook_events", &claim).await.expect("claim"), before, "not even leased");

    // Listed as stale, then leased by the webhook cron's own sweep before its hand-out arrives.
    ctx.clock.advance(Duration::seconds(2));
    assert_eq!(ctx.app().stale_claim_ids(10).await.expect("ids"), vec![claim.clone()]);
    let lease = json!({"claimedAt": tollgate_app::records::timestamp(ctx.clock_now())});
    ctx.client.update_document(&ctx.settings.database_id, "webhook_events", &claim, &lease).await.expect("lease");
    assert_eq!(ctx.app().sweep_claim_by_id(&id(&claim)).await, Ok((Swept::Skipped, None)));
    assert!(entitlements(&ctx).await.is_empty(), "the lease holder processes it, not the hand-out");

    // Finished meanwhile (by the lease holder, here the cron's sweep once the lease is stale).
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    assert_eq!(ctx.app().sweep_stale_claims(SWEEPS_PER_RUN).await.expect("sweep").finished, 1);
    clear_calls(&ctx).await;
    assert_eq!(ctx.app().sweep_claim_by_id(&id(&claim)).await, Ok((Swept::Skipped, None)));
    assert_eq!(total_calls(&ctx).await, 1, "one read, nothing written: {}", ctx.calls().await);
    assert_eq!(ctx.document("webhook_events", &claim).await.expect("claim")["status"], "completed");
    granted_once(&ctx, 61).await;

    // An id with no claim is a 404, for the route to say so.
    let missing = ctx.app().sweep_claim_by_id(&id("no-such-claim")).await.expect_err("no claim");
    assert_eq!(missing.status, Some(404), "{missing}");
}

#[tokio::test]
async fn a_stale_claim_swept_by_id_is_processed_and_completed_once() {
    let ctx = context().await;
    let claim = left_processing(&ctx, "byid2", 62).await;
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));

    clear_calls(&ctx).await;
    let swept = ctx.app().sweep_claim_by_id(&id(&claim)).await.expect("sweep");
    assert_eq!(swept, (Swept::Finished, Some(id("byid2"))), "the user to prompt role-sync for");
    let calls = total_calls(&ctx).await;
    assert!(calls <= u64::from(SWEEP_COST), "one sweep by id costs {calls} calls: {}", ctx.calls().await);
    let done = ctx.document("webhook_events", &claim).await.expect("claim");
    assert_eq!(done["status"], "completed");
    assert!(done["bodyText"].is_null(), "a finished delivery's body is not kept: {done}");
    ctx.project("byid2").await;
    assert!(ctx.is_paid("byid2").await);

    // The same hand-out arriving twice (a relay retried) does nothing more.
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    assert_eq!(ctx.app().sweep_claim_by_id(&id(&claim)).await, Ok((Swept::Skipped, None)));
    assert!(ctx.app().stale_claim_ids(10).await.expect("ids").is_empty());
    granted_once(&ctx, 62).await;
}

/// Appwrite has no conditional write, so two sweeps that read the same stale claim at the same moment
/// (the webhook cron's own sweep and a relayed one, or a relay retried) both process it: the ledger's
/// event key and the claim's completion make the second one change nothing (here both run to the end:
/// `[Finished, Finished]`).
#[tokio::test]
async fn two_sweeps_of_one_stale_claim_at_the_same_moment_grant_the_purchase_once() {
    let ctx = context().await;
    let claim = left_processing(&ctx, "byid4", 64).await;
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    let (app1, app2, claim_id) = (ctx.app(), ctx.app(), id(&claim));
    let (first, second) = tokio::join!(app1.sweep_claim_by_id(&claim_id), app2.sweep_claim_by_id(&claim_id));
    let outcomes = [first.expect("first sweep").0, second.expect("second sweep").0];
    assert!(outcomes.contains(&Swept::Finished), "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Swept::Finished | Swept::Skipped)), "{outcomes:?}");
    assert_eq!(ctx.document("webhook_events", &claim).await.expect("claim")["status"], "completed");
    granted_once(&ctx, 64).await;
    ctx.project("byid4").await;
    assert!(ctx.is_paid("byid4").await);
    assert_eq!(ctx.count("webhook_failures", &[]).await, 0, "nothing recorded as failed");
}

#[tokio::test]
async fn a_stale_claim_swept_by_id_that_fails_again_is_handed_to_its_failure_record_which_settles_it() {
    let ctx = context().await;
    let claim = left_processing(&ctx, "byid3", 63).await;
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    assert_eq!(ctx.app().sweep_claim_by_id(&id(&claim)).await, Ok((Swept::Failed, None)));
    ctx.set_faults(json!({"rate": 0})).await;
    let failure = ctx.document("webhook_failures", &claim).await.expect("failure record");
    assert_eq!((failure["state"].as_str(), failure["errorCode"].as_str()), (Some("due"), Some("appwrite_error")));
    assert_eq!(ctx.document("webhook_events", &claim).await.expect("claim")["status"], "failed");

    // Its record owns it now: neither sweep takes it again; the retry settles it.
    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[0].max(STALE_CLAIM_AFTER_SECS + 1)));
    assert_eq!(ctx.app().sweep_claim_by_id(&id(&claim)).await, Ok((Swept::Skipped, None)));
    assert!(ctx.app().stale_claim_ids(10).await.expect("ids").is_empty());
    assert_eq!(ctx.app().retry_due_failures(10).await.expect("retry").settled, 1);
    assert_eq!(ctx.document("webhook_events", &claim).await.expect("claim")["status"], "completed");
    granted_once(&ctx, 63).await;
}
