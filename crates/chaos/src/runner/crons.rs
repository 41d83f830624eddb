//! The crons, fired together as Cloudflare fires them, and when the next work falls due.

use super::*;

/// What one round of both crons did; `None` when it did nothing and met no error.
pub(super) async fn cron_round(w: &World) -> Option<String> {
    let mut busy = Vec::new();
    let report = w.app().run_scheduled(Some(&w.sellapp)).await;
    let r = &report.retries;
    if r.settled + r.rescheduled + r.dead > 0 || report.claims.claimed > 0 {
        busy.push(format!("retries {}/{}/{} claims {}", r.settled, r.rescheduled, r.dead, report.claims.claimed));
    }
    if let Some(refunds) = report.refunds.as_ref().filter(|r| r.checked > 0) {
        busy.push(format!("refund check: {} orders, revoked {:?}", refunds.checked, refunds.revoked));
    }
    busy.extend(report.errors.iter().map(|e| format!("webhook cron: {e}")));
    match w.sync().run_due_jobs(JOBS_PER_RUN).await {
        Ok(ran) if ran.is_empty() => {}
        Ok(ran) => busy.push(format!("{} role-sync jobs", ran.len())),
        Err(e) => busy.push(format!("role-sync jobs: {e}")),
    }
    match w.sync().reconcile_once(RECONCILE_PAGES_PER_RUN).await {
        Ok(rec) if rec.role_changes == 0 && rec.access_drift.queued.is_empty() && rec.stopped.is_none() => {}
        Ok(rec) => busy.push(format!(
            "reconciliation: {} role changes, {} queued, stopped {:?}",
            rec.role_changes,
            rec.access_drift.queued.len(),
            rec.stopped
        )),
        Err(e) => busy.push(format!("reconciliation: {e}")),
    }
    (!busy.is_empty()).then(|| busy.join("; "))
}

/// The earliest time something waits for (a due failure, a pending role-sync job), if anything waits.
pub(super) async fn next_due(w: &World) -> Result<Option<DateTime<Utc>>, String> {
    let s = &w.ctx.settings;
    let mut earliest: Option<DateTime<Utc>> = None;
    for (collection, field, value) in
        [(&s.collections.webhook_failures, "state", "due"), (&s.collections.role_sync_jobs, "status", "pending")]
    {
        let docs = w
            .ctx
            .client
            .list_all_documents(&s.database_id, collection, &[Query::equal(field, [value])], 100)
            .await
            .map_err(|e| format!("listing {collection}: {e}"))?;
        for doc in docs {
            let at = doc.data.get("nextAttemptAt").and_then(Value::as_str).and_then(parse_timestamp);
            let at = at.unwrap_or_else(|| w.ctx.clock.now());
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
    }
    // A claim left `processing` (a delivery whose failure could not be recorded either) is the inbox
    // sweep's once it is stale.
    let claims = w
        .ctx
        .client
        .list_all_documents(
            &s.database_id,
            &s.collections.webhook_events,
            &[Query::equal("status", [tollgate_app::records::EVENT_PROCESSING])],
            100,
        )
        .await
        .map_err(|e| format!("listing claims: {e}"))?;
    for doc in claims {
        let claimed = doc.data.get("claimedAt").and_then(Value::as_str).and_then(parse_timestamp);
        let at = claimed.unwrap_or_else(|| w.ctx.clock.now())
            + Duration::seconds(tollgate_app::inbox::STALE_CLAIM_AFTER_SECS);
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    Ok(earliest)
}
