use crate::support::{context, order};
use chrono::Duration;
use serde_json::json;
use tollgate_app::failures::{RetryOutcome, FAILURE_RETENTION_DAYS};
use tollgate_app::scheduled::PRUNES_PER_RUN;
use tollgate_app::IngestOutcome;
use tollgate_appwrite::Query;
use tollgate_core::retry_schedule::{MAX_ATTEMPTS, RETRY_SCHEDULE_SECS};
use tollgate_core::{AppwriteId, Clock, IdempotencyKey};

fn failure_id(event: &str, order_id: &str) -> String {
    IdempotencyKey::sellapp(Some(event), Some(order_id), Some("7"), b"").document_id().as_str().to_owned()
}

#[tokio::test]
async fn a_failure_is_retried_on_the_schedule_and_dies_after_the_last_attempt() {
    let ctx = context().await;
    ctx.create_user("r1", "r1@example.com").await;
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    let outcome = ctx.app().ingest_sellapp(&order("order.completed", 21, "r1@example.com")).await;
    assert_eq!(outcome, Ok(IngestOutcome::FailureRecorded { code: "appwrite_error", retryable: true }));
    let id = failure_id("order.completed", "21");

    // Not due yet: nothing is retried.
    let report = ctx.app().retry_due_failures(10).await.expect("retry");
    assert_eq!((report.settled, report.rescheduled, report.dead), (0, 0, 0));

    for (attempt, delay) in RETRY_SCHEDULE_SECS.iter().enumerate() {
        ctx.clock.advance(Duration::seconds(*delay));
        let report = ctx.app().retry_due_failures(10).await.expect("retry");
        let record = ctx.document("webhook_failures", &id).await.expect("record");
        assert_eq!(record["attempts"], attempt as i64 + 2);
        if attempt + 2 < MAX_ATTEMPTS as usize {
            assert_eq!(report.rescheduled, 1, "attempt {}", attempt + 2);
            assert_eq!(record["state"], "due");
        } else {
            assert_eq!(report.dead, 1);
            assert_eq!(record["state"], "dead");
            assert!(record["nextAttemptAt"].is_null());
        }
    }
    // A dead failure is replayed by an admin once the cause is fixed.
    ctx.set_faults(json!({"rate": 0})).await;
    let replayed = ctx.app().replay_failure(&AppwriteId::parse(&id).expect("id")).await.expect("replay");
    assert_eq!(replayed, RetryOutcome::Settled);
    ctx.project("r1").await;
    assert!(ctx.is_paid("r1").await);
}

#[tokio::test]
async fn a_burst_of_failing_redeliveries_keeps_the_retry_a_minute_away_and_never_kills_it() {
    let ctx = context().await;
    ctx.create_user("r9", "r9@example.com").await;
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    let delivery = order("order.completed", 29, "r9@example.com");
    let id = failure_id("order.completed", "29");
    let first_due = ctx.clock.now() + Duration::seconds(RETRY_SCHEDULE_SECS[0]);
    // The provider delivers it again and again (more often than the schedule has attempts) while it fails.
    for delivered in 1..=MAX_ATTEMPTS + 2 {
        let outcome = ctx.app().ingest_sellapp(&delivery).await;
        assert_eq!(outcome, Ok(IngestOutcome::FailureRecorded { code: "appwrite_error", retryable: true }));
        let record = ctx.document("webhook_failures", &id).await.expect("record");
        assert_eq!(record["attempts"], i64::from(delivered), "every delivery is counted");
        assert_eq!(record["state"], "due", "delivery {delivered}");
        let next = tollgate_app::records::parse_timestamp(record["nextAttemptAt"].as_str().expect("next"));
        assert_eq!(next, Some(first_due), "delivery {delivered}: the retry stays a minute after the first failure");
    }
    ctx.set_faults(json!({"rate": 0})).await;
    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[0]));
    let report = ctx.app().retry_due_failures(10).await.expect("retry");
    assert_eq!(report.settled, 1);
    ctx.project("r9").await;
    assert!(ctx.is_paid("r9").await);
}

/// A failure settled at the start time, then pruned just before and just after the retention period.
async fn prune_settled_failure_on(version: &str) {
    let ctx = context().await;
    ctx.play_appwrite_version(version).await;
    ctx.create_user("r2", "r2@example.com").await;
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    ctx.app().ingest_sellapp(&order("order.completed", 22, "r2@example.com")).await.expect("recorded");
    ctx.set_faults(json!({"rate": 0})).await;
    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[0]));
    let report = ctx.app().retry_due_failures(10).await.expect("retry");
    assert_eq!(report.settled, 1);
    assert_eq!(report.users, vec![AppwriteId::parse("r2").unwrap()], "the user whose access changed, for the prompt");

    let failures = ctx.settings.collections.webhook_failures.clone();
    ctx.clock.advance(Duration::days(FAILURE_RETENTION_DAYS) - Duration::minutes(1));
    let pruned = ctx.app().prune_settled_failures(PRUNES_PER_RUN).await.expect("prune");
    assert_eq!(pruned.deleted, 0);
    assert_eq!(ctx.count(&failures, &[Query::limit(10)]).await, 1, "kept within the retention period");
    ctx.clock.advance(Duration::minutes(2));
    let pruned = ctx.app().prune_settled_failures(PRUNES_PER_RUN).await.expect("prune");
    assert_eq!((pruned.deleted, pruned.more_remain), (1, false));
    assert_eq!(ctx.count(&failures, &[Query::limit(10)]).await, 0, "pruned after it");
}

#[tokio::test]
async fn settled_failures_are_pruned_after_the_retention_period_only() {
    prune_settled_failure_on("1.8").await;
}

#[tokio::test]
async fn settled_failures_are_pruned_on_appwrite_1_5_without_bulk_delete() {
    prune_settled_failure_on("1.5").await;
}

#[tokio::test]
async fn without_bulk_delete_a_run_prunes_at_most_its_bound_and_the_next_run_continues() {
    let ctx = context().await;
    ctx.play_appwrite_version("1.6").await;
    let failures = ctx.settings.collections.webhook_failures.clone();
    let settled_at = tollgate_app::records::timestamp(ctx.clock.now());
    for (i, state) in ["settled", "settled", "settled", "dead", "settled", "due", "settled"].iter().enumerate() {
        let data = json!({"state": state, "settledAt": (*state == "settled").then_some(&settled_at)});
        ctx.client.create_document(&ctx.settings.database_id, &failures, &format!("f{i}"), &data, None).await.unwrap();
    }
    ctx.clock.advance(Duration::days(FAILURE_RETENTION_DAYS + 1));
    let first = ctx.app().prune_settled_failures(3).await.expect("prune");
    assert_eq!((first.deleted, first.more_remain), (3, true));
    let second = ctx.app().prune_settled_failures(3).await.expect("prune");
    assert_eq!((second.deleted, second.more_remain), (2, false));
    let left = ctx.client.list_documents(&ctx.settings.database_id, &failures, &[]).await.unwrap();
    let mut states: Vec<_> = left.documents.iter().map(|d| d.data["state"].as_str().unwrap_or_default()).collect();
    states.sort_unstable();
    assert_eq!(states, ["dead", "due"], "due and dead failures are never pruned");
}

#[tokio::test]
async fn a_retried_purchase_never_undoes_a_later_dispute_of_the_same_order() {
    let ctx = context().await;
    ctx.failed_purchase("r3", 23).await;
    assert_eq!(
        ctx.app().ingest_sellapp(&order("order.disputed", 23, "r3@example.com")).await,
        Ok(crate::support::applied("r3"))
    );

    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[0]));
    assert_eq!(ctx.app().retry_due_failures(10).await.expect("retry").settled, 1);
    ctx.project("r3").await;
    assert_eq!(ctx.document("subscriptions", "r3").await.expect("subscription")["status"], "inactive");
    assert!(!ctx.is_paid("r3").await);
}

#[tokio::test]
async fn the_admin_list_of_failures_reads_their_summaries_not_their_bodies() {
    let ctx = context().await;
    ctx.failed_purchase("r9", 29).await;
    let (queries, _) = tollgate_app::admin_console::failure_queries([("state", "due")]).expect("queries");
    let list = ctx.client.list_documents("crypto", "webhook_failures", &queries).await.expect("list");
    let doc = list.documents.first().expect("the failure");
    assert!(!doc.data.contains_key("bodyText") && !doc.data.contains_key("payloadHash"), "{:?}", doc.data);
    let item = tollgate_app::admin_console::failure_item(doc);
    assert_eq!((item["state"].as_str(), item["email"].as_str()), (Some("due"), Some("r9@example.com")), "{item}");
}
