// The customer's page: access (plans, until when, purchases waiting for a verified email), the Discord
// link, and the Stripe actions when the api has Stripe configured. Every action confirms and reports.
"use strict";
(() => {
  const { api, $, el, show, status, table, facts, when, act } = T;

  const OUTCOMES = {
    linked: "Your Discord account is linked. Your roles follow within seconds.",
    cancelled: "You cancelled on Discord's page; nothing changed.",
    state_invalid: "That link request expired or was already used. Press “Link Discord” again.",
    browser_mismatch: "That link was started in another browser (or by someone else), so it was refused. Press “Link Discord” here to link your own account.",
    account_taken: "That Discord account is already linked to another user.",
    discord_unavailable: "Discord is not answering right now. Try again in a minute.",
    discord_refused: "Discord refused the link. Try again.",
    internal: "Something went wrong on our side. Try again later.",
  };

  const BILLING = {
    checkout_success: "Thank you: your purchase is confirmed by Stripe; your access follows within seconds.",
    checkout_canceled: "You left Stripe's checkout; nothing was bought.",
    portal: "Back from Stripe's billing page.",
  };

  // The outcome a redirect brought back (?discord=linked | error&reason=…, or ?billing=…), once.
  function linkOutcome() {
    const query = new URLSearchParams(location.search);
    const outcome = query.get("discord");
    const paid = query.get("billing");
    if (BILLING[paid]) {
      status(BILLING[paid], paid === "checkout_canceled" ? "" : "ok");
      query.delete("billing");
      history.replaceState(null, "", location.pathname + (query.toString() ? "?" + query : ""));
    }
    if (!outcome) return;
    const reason = outcome === "linked" ? "linked" : query.get("reason") || "internal";
    status(OUTCOMES[reason] || OUTCOMES.internal, outcome === "linked" ? "ok" : "error");
    query.delete("discord");
    query.delete("reason");
    history.replaceState(null, "", location.pathname + (query.toString() ? "?" + query : ""));
  }

  function render(r) {
    if (!$("#plan-choice").value && r.plan) $("#plan-choice").value = r.plan;
    show("#access",
      facts([
        ["Signed in as", r.user.email],
        ["Access", r.hasAccess ? "yes" : "no"],
        ["Until", r.hasAccess ? (when(r.accessEndsAt) || "no end date") : null],
      ]),
      r.plans.length ? table(["Plan", "Until"], r.plans.map((p) => [p.plan, when(p.endsAt) || "no end date"])) : el("p", {}, "You have no plan right now."),
      r.pendingEntitlements.length ? [
        el("h3", {}, "Purchases waiting for you"),
        el("p", {}, `These were bought with ${r.user.email}. They become yours once you verify that email address.`),
        table(["Plan", "Bought"], r.pendingEntitlements.map((e) => [e.plan, when(e.startsAt)])),
      ] : null);
    const d = r.discord;
    show("#discord", d ? [
      el("p", {}, `Linked as ${d.discordUsername || d.discordUserId} (${d.discordUserId}).`),
      el("p", { id: "roles" }, r.discordManagedRoles
        ? `Roles from your plan: ${r.discordManagedRoles.length ? r.discordManagedRoles.join(", ") : "none"}.`
        : "You are not in the server yet; your roles follow when you join."),
      el("button", { type: "button", id: "unlink", onclick: () => act(
        "Unlink your Discord account? The roles from your plan are removed.",
        () => api("POST", "/discord/unlink"),
        (res) => res.unlinked ? "Discord unlinked." : "Nothing was linked.").then((res) => res && load()) }, "Unlink Discord"),
    ] : [
      el("p", {}, "Link your Discord account to receive the roles of your plan."),
      el("button", { type: "button", id: "link", onclick: link }, "Link Discord"),
    ]);
  }

  // Starts the link here (the api sets this browser's link cookie) and goes to Discord.
  async function link() {
    status("Opening Discord…");
    try {
      const { url } = await api("POST", "/discord/link");
      location.assign(url);
    } catch (e) {
      status(e.message, "error");
    }
  }

  async function load() {
    render(await api("GET", "/me/access"));
  }

  async function start() {
    T.signedIn(true, "#account");
    $("#billing").hidden = T.cfg.stripe !== "on";
    try {
      await load();
      if (!$("#status").textContent) status("Signed in.", "ok");
    } catch (e) {
      status(e.message, "error");
    }
  }

  // Stripe's answers (the api's /me/* routes): a page to go to (`url`), or what changed in place.
  async function billing(path, body) {
    const answer = await api("POST", path, body);
    if (answer.url) {
      location.assign(answer.url);
      return "Opening Stripe…";
    }
    await load();
    return "Done: your subscription is updated.";
  }
  $("#checkout").addEventListener("click", () => {
    const plan = $("#plan-choice").value.trim();
    if (!plan) return status("Name the plan you want.", "error");
    return act(`Buy or change to the plan “${plan}” with Stripe?`, () => billing("/me/checkout", { plan }), (m) => m);
  });
  $("#portal").addEventListener("click", () => act("Open Stripe's billing page?", () => billing("/me/billing-portal"), (m) => m));
  $("#cancel-plan").addEventListener("click", () => act(
    "Cancel your subscription? Access continues until the end of the period you paid for.",
    () => billing("/me/cancel"), () => "Your subscription ends at the end of the period."));
  $("#refresh").addEventListener("click", () => load().then(() => status("Up to date.", "ok"), (e) => status(e.message, "error")));

  linkOutcome();
  T.signInFlow(start);
})();
