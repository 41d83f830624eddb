// Tollgate pages, shared: sign in with Appwrite's email/password session, mint a JWT from it, call the api
// with that JWT; build the page with DOM nodes (text, never HTML); confirm before acting; say what happened.
"use strict";
const T = (() => {
  const cfg = document.body.dataset;
  const FALLBACK = "tollgate.appwrite-fallback";
  let token = null;

  // Appwrite's client API. The session lives in Appwrite's cookie, or, when the page is on another domain
  // than Appwrite, in the X-Fallback-Cookies value Appwrite hands back (kept for this tab only).
  async function appwrite(method, path, body) {
    const headers = { "X-Appwrite-Project": cfg.project, "Content-Type": "application/json" };
    const fallback = sessionStorage.getItem(FALLBACK);
    if (fallback) headers["X-Fallback-Cookies"] = fallback;
    const response = await fetch(cfg.appwrite + path, {
      method, headers, credentials: "include", body: body ? JSON.stringify(body) : undefined,
    });
    const kept = response.headers.get("X-Fallback-Cookies");
    if (kept) sessionStorage.setItem(FALLBACK, kept);
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new Error((data && data.message) || "Appwrite answered " + response.status);
    return data;
  }

  async function mintJwt() {
    token = (await appwrite("POST", "/account/jwts", {})).jwt;
    return token;
  }

  async function signIn(email, password) {
    await appwrite("POST", "/account/sessions/email", { email, password });
    return mintJwt();
  }

  async function signOut() {
    try { await appwrite("DELETE", "/account/sessions/current"); } catch (_) { /* already gone */ }
    sessionStorage.removeItem(FALLBACK);
    token = null;
  }

  // The api, with the JWT; a JWT that expired (15 minutes) is minted again once from the session.
  async function api(method, path, body, retried) {
    const headers = { Authorization: "Bearer " + token };
    if (body) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    if (response.status === 401 && !retried) {
      await mintJwt();
      return api(method, path, body, true);
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error((data && data.error && data.error.message) || "The service answered " + response.status);
      error.code = data && data.error && data.error.code;
      throw error;
    }
    return data;
  }

  const $ = (selector) => document.querySelector(selector);

  // el("p", {class: "x"}, "text", child): attributes and text only, so nothing from a server is parsed as HTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function show(target, ...nodes) {
    const node = typeof target === "string" ? $(target) : target;
    node.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined));
    return node;
  }

  function status(message, kind) {
    const node = $("#status");
    node.textContent = message;
    node.className = kind || "";
  }

  function table(headings, rows) {
    return el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, headings.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c ?? "—")))))));
  }

  function facts(pairs) {
    return el("dl", {}, pairs.map(([term, value]) => [el("dt", {}, term), el("dd", {}, value ?? "—")]));
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : null;
  }

  // Resolves true when the person confirms in the modal dialog (Escape or Cancel: false).
  function confirmed(question) {
    const dialog = $("#confirm");
    show("#confirm-text", question);
    dialog.returnValue = "";
    dialog.showModal();
    $("#confirm-ok").focus();
    return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
  }

  // Asks, runs, and reports the outcome (or the error) in the status line.
  async function act(question, action, describe) {
    if (!(await confirmed(question))) { status("Cancelled."); return null; }
    status("Working…");
    try {
      const result = await action();
      status(describe(result), "ok");
      return result;
    } catch (e) {
      status(e.message, "error");
      return null;
    }
  }

  // The sign-in form and the sign-out button; `start` runs once signed in (on load with a live session too).
  function signInFlow(start) {
    $("#sign-in-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      status("Signing in…");
      try {
        await signIn($("#email").value, $("#password").value);
        $("#password").value = "";
        await start();
      } catch (e) {
        status(e.message, "error");
      }
    });
    $("#sign-out").addEventListener("click", async () => {
      await signOut();
      location.reload();
    });
    mintJwt().then(start, () => {});
  }

  function signedIn(on, area) {
    $("#sign-in").hidden = on;
    $("#sign-out").hidden = !on;
    $(area).hidden = !on;
  }

  return { cfg, api, $, el, show, status, table, facts, when, act, signInFlow, signedIn, signOut };
})();
