// The admin console: users, failures (with Replay), plans, health. Every action confirms and reports.
"use strict";
(() => {
  const { api, $, el, show, status, table, facts, when, act } = T;
  let failuresCursor = null;

  async function start() {
    try {
      await api("GET", "/admin/me");
    } catch (e) {
      T.signedIn(false, "#console");
      status(e.code === "not_an_admin" ? "This account is not an admin: it is not a member of the admins team. Ask an admin to add it." : e.message, "error");
      await T.signOut();
      return;
    }
    T.signedIn(true, "#console");
    status("Signed in.", "ok");
  }

  for (const button of document.querySelectorAll("[data-tab]")) {
    button.addEventListener("click", () => {
      for (const other of document.querySelectorAll("[data-tab]")) {
        other.setAttribute("aria-pressed", String(other === button));
        $("#tab-" + other.dataset.tab).hidden = other !== button;
      }
      if (button.dataset.tab === "plans") loadPlans();
    });
  }

  const roleList = (roles) => (roles && roles.length ? roles.join(", ") : "none");

  function renderReport(r) {
    const u = r.user;
    const linked = r.discord;
    const missing = (r.desiredRoles || []).filter((x) => !(r.discordManagedRoles || []).includes(x));
    const extra = (r.discordManagedRoles || []).filter((x) => !(r.desiredRoles || []).includes(x));
    const job = r.lastSync;
    show("#report",
      el("h3", {}, u.email || u.id),
      facts([
        ["User id", u.id], ["Email verified", u.emailVerification ? "yes" : "no"],
        ["Access", r.hasAccess ? "yes" : "no"], ["Primary plan", r.plan],
        ["Access ends", r.hasAccess ? (when(r.accessEndsAt) || "no end") : null],
        ["paid membership", r.paidMembership ? "yes" : "no"],
        ["Discord", linked ? `${linked.discordUsername || ""} (${linked.discordUserId})` : "not linked"],
        ["Roles now", linked ? (r.discordManagedRoles ? roleList(r.discordManagedRoles) : "not in the guild") : null],
        ["Roles it should have", linked ? roleList(r.desiredRoles) : null],
        ["Roles in step", linked && r.discordManagedRoles ? (missing.length || extra.length ? `no: missing ${roleList(missing)}, extra ${roleList(extra)}` : "yes") : null],
        ["Role-sync job", job ? `${job.status}${job.outcome ? " — " + job.outcome : ""}${job.lastError ? " — " + job.lastError : ""} (${when(job.lastAttemptAt) || "not attempted"})` : "none"],
      ]),
      el("p", {}, el("button", { type: "button", id: "force-sync", onclick: () => act(
        `Sync the Discord roles of ${u.email || u.id} now?`,
        () => api("POST", `/admin/users/${encodeURIComponent(u.id)}/sync`),
        (res) => `Role sync: ${res.outcome}.`).then((res) => res && lookup(true)) }, "Force a role sync")),
      el("h4", {}, "Entitlements"),
      table(["Source", "Plan", "Status", "Ends", "Revoked"], r.entitlements.map((e) => [e.source, e.plan, e.status, when(e.endsAt) || "no end", e.revokeReason])),
      el("h4", {}, "Pending purchases (email not verified)"),
      r.pendingEntitlements.length ? table(["Source", "Plan", "Status"], r.pendingEntitlements.map((e) => [e.source, e.plan, e.status])) : el("p", {}, "None."),
      el("h4", {}, "Recent failures"),
      failureTable(r.recentFailures, () => lookup(true), "#report-detail"));
  }

  // `quiet`: a refresh after an action, which leaves the action's outcome in the status line.
  async function lookup(quiet) {
    const kind = $("#lookup-kind").value;
    const value = $("#lookup-value").value.trim();
    if (!quiet) status("Searching…");
    try {
      renderReport(await api("GET", `/admin/users?${kind}=${encodeURIComponent(value)}`));
      show("#report-detail");
      if (!quiet) status("Found.", "ok");
    } catch (e) {
      show("#report");
      status(e.message, "error");
    }
  }
  $("#lookup-form").addEventListener("submit", (event) => { event.preventDefault(); lookup(false); });

  function failureTable(items, after, detailTarget) {
    if (!items.length) return el("p", {}, "None.");
    return table(["Recorded", "Provider", "Event", "Email", "State", "Attempts", "Error", ""], items.map((f) => [
      when(f.createdAt), f.provider, f.event, f.email, f.state, f.attempts, f.unreadable || `${f.errorCode}: ${f.errorMessage}`,
      el("span", { class: "row" },
        el("button", { type: "button", "data-details": f.id, onclick: () => details(f.id, detailTarget) }, "Details"),
        el("button", { type: "button", "data-replay": f.id, onclick: () => act(
          `Replay the delivery ${f.event || ""} of ${f.email || f.id}? It is applied at most once.`,
          () => api("POST", `/admin/failures/${encodeURIComponent(f.id)}/replay`),
          (res) => `Replayed: ${res.outcome}.`).then((res) => res && after()) }, "Replay")),
    ]));
  }

  // The failure's error and its delivery, shown under the table it was opened from.
  async function details(id, target) {
    try {
      const f = await api("GET", `/admin/failures/${encodeURIComponent(id)}`);
      show(target,
        el("h4", {}, `Failure ${f.id}`),
        facts([["Error", `${f.errorCode}: ${f.errorMessage}`], ["HTTP status", f.errorStatus], ["Order", f.orderId], ["Store", f.store], ["Next attempt", when(f.nextAttemptAt)]]),
        el("h5", {}, "The delivery as received"),
        el("pre", {}, f.bodyText || ""));
      $(target).scrollIntoView();
    } catch (e) {
      status(e.message, "error");
    }
  }

  function failureQuery(cursor) {
    const params = new URLSearchParams();
    if ($("#f-state").value) params.set("state", $("#f-state").value);
    if ($("#f-provider").value.trim()) params.set("provider", $("#f-provider").value.trim());
    if ($("#f-since").value) params.set("since", new Date($("#f-since").value + "T00:00:00Z").toISOString());
    if ($("#f-until").value) params.set("until", new Date(new Date($("#f-until").value + "T00:00:00Z").getTime() + 86400000).toISOString());
    if (cursor) params.set("cursor", cursor);
    return "/admin/failures?" + params;
  }

  async function loadFailures(more, quiet) {
    if (!quiet) status("Loading failures…");
    try {
      const page = await api("GET", failureQuery(more ? failuresCursor : null));
      failuresCursor = page.nextCursor;
      const rows = failureTable(page.failures, () => loadFailures(false, true), "#failure-detail");
      show("#failures", el("p", {}, `${page.total} failure(s).`), rows,
        page.nextCursor ? el("button", { type: "button", onclick: () => loadFailures(true) }, "Next page") : null);
      if (!quiet) status("Failures loaded.", "ok");
    } catch (e) {
      status(e.message, "error");
    }
  }
  $("#failures-form").addEventListener("submit", (event) => { event.preventDefault(); loadFailures(false); });

  async function loadPlans() {
    try {
      const c = await api("GET", "/admin/plans");
      show("#plans",
        table(["Plan", "Guild", "Roles", "Sell.app products", "Duration", "Tier"], c.plans.map((p) => [
          p.plan, p.guildId, p.roleIds.join(", "), p.sellappProducts.join(", "), p.duration || "open-ended", p.group ? `${p.group} #${p.rank}` : null])),
        c.broken.length ? [el("h3", {}, "Unreadable mappings"), table(["Document", "Problem"], c.broken.map((b) => [b.document, b.reason]))] : null);
    } catch (e) {
      status(e.message, "error");
    }
  }

  $("#run-health").addEventListener("click", async () => {
    status("Running the checks…");
    try {
      const h = await api("GET", "/admin/health");
      show("#health", el("ul", { class: "checks" }, h.checks.map((c) => el("li", { class: c.passed ? (c.warning ? "warn" : "pass") : "fail" },
        el("strong", {}, `${c.passed ? (c.warning ? "warn" : "pass") : "FAIL"} · ${c.name}: `), c.detail, c.fix ? el("div", {}, "Fix: " + c.fix) : null))));
      status(h.ok ? "All checks passed." : "Some checks failed.", h.ok ? "ok" : "error");
    } catch (e) {
      status(e.message, "error");
    }
  });

  T.signInFlow(start);
})();
