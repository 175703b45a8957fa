// sessionfence admin page. Plain JavaScript, no dependency, no build step.
// It only calls the JSON admin API (data-api on <body>); every decision is
// the API's. Data is always inserted with textContent, never as HTML.
"use strict";
(function () {
  const API = document.body.dataset.api || "/admin/api/";
  const LOGIN = document.body.dataset.login || "/login";
  const CONFIRM_WORD = "terminate-all";
  const AUDIT_PAGE = 20;
  const $ = (id) => document.getElementById(id);

  let me = null; // GET me
  let csrf = null; // GET csrf, fetched before the first POST
  let searched = null; // {issuer, sub} of the last user search
  const audit = { cursors: [""], next: "" }; // cursors[i] opens page i

  // ---------------------------------------------------------------- DOM

  // el builds an element; attrs: text, class, on<event>, or attributes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = String(v);
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }

  function hhmm(d) {
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  function shortID(id) {
    return id && id.length > 10 ? id.slice(0, 8) + "…" : id || "";
  }

  // table returns a captioned table in a horizontally scrolling box, so
  // long identifiers never squeeze the other columns.
  function table(caption, headers, rows) {
    const t = el("table");
    t.append(el("caption", { text: caption }));
    t.append(el("thead", null, el("tr", null, ...headers.map((h) => el("th", { scope: "col", text: h })))));
    const tb = el("tbody");
    for (const r of rows) tb.append(r);
    t.append(tb);
    return el("div", { class: "scroll" }, t);
  }

  function cell(v) {
    return el("td", null, v instanceof Node ? v : String(v === undefined || v === null ? "" : v));
  }

  // ------------------------------------------------------------- status

  // status writes to the polite live region, so screen readers announce
  // each outcome without moving focus.
  function status(msg, kind, link) {
    const s = $("status");
    s.className = "status " + (kind || "");
    s.replaceChildren(msg);
    if (link) s.append(" ", link);
  }

  function loginLink() {
    const u = LOGIN + (LOGIN.indexOf("?") < 0 ? "?" : "&") + "return_to=" + encodeURIComponent(location.pathname);
    return el("a", { href: u, text: "Sign in again" });
  }

  // ---------------------------------------------------------------- API

  class APIError extends Error {
    constructor(httpStatus, code, desc) {
      super(desc || code);
      this.status = httpStatus;
      this.code = code;
    }
  }

  async function call(method, name, body) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = await csrfToken();
      init.body = JSON.stringify(body || {});
    }
    let res;
    try {
      res = await fetch(API + name, init);
    } catch (e) {
      throw new APIError(0, "network", "The server could not be reached.");
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const code = (data && data.error) || "http_" + res.status;
      const desc = (data && data.error_description) || res.statusText || code;
      if (res.status === 401) {
        status("Your session has ended (" + code + ").", "error", loginLink());
      }
      throw new APIError(res.status, code, desc);
    }
    return data;
  }

  async function csrfToken() {
    if (!csrf) csrf = (await call("GET", "csrf")).csrf_token;
    return csrf;
  }

  function explain(e) {
    switch (e.code) {
      case "forbidden":
        return "You are not allowed to do this.";
      case "not_supported":
        return "The session store does not keep this information.";
      case "store_unavailable":
        return "The session store is unavailable; nothing was changed. Try again shortly.";
      default:
        return e.message;
    }
  }

  function failed(what, e) {
    if (e.status === 401) return; // status already says so, with a link
    status(what + ": " + explain(e), "error");
  }

  // ------------------------------------------------------------- dialog

  // confirmDialog shows the modal <dialog> and resolves to {ok, typed}.
  // Focus moves into the dialog (to the confirmation field, or to Cancel
  // when nothing must be typed, the safe choice) and returns to the
  // button that opened it. Escape cancels.
  function confirmDialog(opts) {
    const dlg = $("confirm");
    const form = $("confirm-form");
    const input = $("confirm-input");
    const ok = $("confirm-ok");
    const cancel = $("confirm-cancel");
    $("confirm-h").textContent = opts.title;
    $("confirm-desc").replaceChildren(el("ul", null, ...opts.lines.map((l) => el("li", { text: l }))));
    $("confirm-typed").hidden = !opts.typed;
    input.value = "";
    ok.textContent = opts.ok;
    ok.disabled = !!opts.typed;
    const opener = document.activeElement;
    return new Promise((resolve) => {
      const onInput = () => {
        ok.disabled = input.value.trim() !== CONFIRM_WORD;
      };
      const onSubmit = (ev) => {
        ev.preventDefault();
        if (!ok.disabled) finish({ ok: true, typed: input.value.trim() });
      };
      const onCancel = () => finish({ ok: false });
      function finish(result) {
        input.removeEventListener("input", onInput);
        form.removeEventListener("submit", onSubmit);
        cancel.removeEventListener("click", onCancel);
        dlg.removeEventListener("close", onCancel);
        if (dlg.open) dlg.close();
        if (opener && typeof opener.focus === "function") opener.focus();
        resolve(result);
      }
      input.addEventListener("input", onInput);
      form.addEventListener("submit", onSubmit);
      cancel.addEventListener("click", onCancel);
      dlg.addEventListener("close", onCancel); // Escape
      dlg.showModal();
      (opts.typed ? input : cancel).focus();
    });
  }

  function policyLine(policy) {
    switch (policy) {
      case "mfa":
        return "Their next login needs their password and a second factor (MFA), even where the identity provider still has them signed in.";
      case "login":
        return "Their next login needs their password again, even where the identity provider still has them signed in.";
      default:
        return "Their next login may be silent: the identity provider may sign them straight back in.";
    }
  }

  function affected(entry) {
    const n = entry && entry.affected;
    if (n === undefined || n < 0) return "";
    return " " + n + (n === 1 ? " session" : " sessions") + " affected.";
  }

  // ----------------------------------------------------------- sessions

  function sessionRows(list, canEnd, after) {
    return list.map((s) => {
      const current = me && s.id === me.session_id;
      let action;
      if (current) {
        action = el("span", { text: "This session" });
      } else if (canEnd) {
        action = el("button", {
          type: "button",
          class: "small",
          text: "Sign out",
          "aria-label": "Sign out session " + shortID(s.id) + " of " + s.sub + (s.user_agent ? " on " + s.user_agent : ""),
          onclick: () => endSession(s, after),
        });
      } else {
        action = "";
      }
      const tr = el(
        "tr",
        { class: current ? "current" : null },
        el("th", { scope: "row" }, el("code", { text: shortID(s.id), title: s.id })),
        cell(fmtTime(s.created)),
        cell(fmtTime(s.last_seen)),
        cell(s.user_agent || "unknown"),
        cell(s.ip || ""),
        cell(s.tenant || ""),
        cell(action),
      );
      return tr;
    });
  }

  const SESSION_HEADERS = ["Session", "Started", "Last seen", "Device (user agent)", "IP address", "Tenant", "Action"];

  async function loadOwn() {
    const box = $("own-sessions");
    try {
      const q = new URLSearchParams({ issuer: me.issuer, sub: me.sub });
      const data = await call("GET", "sessions?" + q);
      box.replaceChildren(
        data.sessions.length
          ? table("Your live sessions, newest first", SESSION_HEADERS, sessionRows(data.sessions, me.admin, loadOwn))
          : el("p", { class: "empty", text: "No live session is recorded for you." }),
      );
    } catch (e) {
      box.replaceChildren(el("p", { class: "empty", text: "Your sessions cannot be listed: " + explain(e) }));
    }
  }

  async function endSession(s, after) {
    const r = await confirmDialog({
      title: "Sign out this session?",
      lines: [
        "Session " + shortID(s.id) + " of " + s.sub + (s.user_agent ? " (" + s.user_agent + ")" : "") + " is signed out now, on every server.",
        "Unsaved work in its open pages is lost.",
        "Its next login needs the password again.",
      ],
      ok: "Sign out session",
    });
    if (!r.ok) return;
    try {
      const res = await call("POST", "terminate-session", {
        session_id: s.id,
        reason: "signed out from the admin page",
        reauth: "login",
      });
      status("Session " + shortID(s.id) + " of " + s.sub + " was signed out (audit entry " + res.entry.id + ").", "ok");
    } catch (e) {
      failed("The session was not signed out", e);
    }
    if (after) after();
    refresh();
  }

  // --------------------------------------------------------- user search

  async function searchUser(ev) {
    ev.preventDefault();
    const issuer = $("user-issuer").value.trim();
    const sub = $("user-sub").value.trim();
    if (!issuer || !sub) return;
    searched = { issuer, sub };
    await showUser();
    loadFences();
  }

  async function showUser() {
    const box = $("user-result");
    if (!searched) return;
    const { issuer, sub } = searched;
    let data;
    try {
      data = await call("GET", "sessions?" + new URLSearchParams({ issuer, sub }));
    } catch (e) {
      box.replaceChildren(el("p", { class: "empty", text: "Sessions of " + sub + " cannot be listed: " + explain(e) }));
      return;
    }
    const list = data.sessions;
    const reason = el("input", { id: "user-reason", maxlength: "1000", autocomplete: "off" });
    const policy = el(
      "select",
      { id: "user-policy" },
      el("option", { value: "mfa", text: "sign in again with a second factor (MFA)" }),
      el("option", { value: "login", text: "sign in again with their password", selected: true }),
      el("option", { value: "none", text: "nothing more (a silent single sign-on is allowed)" }),
    );
    const endAll = el("button", {
      type: "button",
      class: "danger",
      id: "user-end",
      text: "Sign out " + sub + " everywhere…",
      onclick: () => endUser(issuer, sub, list.length, reason.value.trim(), policy.value),
    });
    box.replaceChildren(
      list.length
        ? table("Live sessions of " + sub + ", newest first", SESSION_HEADERS, sessionRows(list, true, showUser))
        : el("p", { class: "empty", text: "No live session is recorded for " + sub + " (API tokens may still exist)." }),
      el(
        "div",
        { class: "fields" },
        el("div", null, el("label", { for: "user-reason", text: "Reason (kept in the audit log)" }), reason),
        el("div", null, el("label", { for: "user-policy", text: "Their next login must" }), policy),
        el("div", { class: "actions" }, endAll),
      ),
    );
  }

  async function endUser(issuer, sub, n, reason, policy) {
    const r = await confirmDialog({
      title: "Sign out " + sub + " everywhere?",
      lines: [
        "Every session of " + sub + " (" + n + " recorded) and every API token issued to them before now stops working, on every device, web and mobile.",
        "Unsaved work in their open pages is lost.",
        policyLine(policy),
      ],
      ok: "Sign out " + sub,
    });
    if (!r.ok) return;
    try {
      const res = await call("POST", "terminate-user", {
        issuer,
        sub,
        reason: reason || "signed out from the admin page",
        reauth: policy,
      });
      status(sub + " was signed out everywhere." + affected(res.entry) + (res.kept_session ? " Your own session was kept." : ""), "ok");
    } catch (e) {
      failed(sub + " was not signed out", e);
    }
    showUser();
    refresh();
  }

  // ------------------------------------------------------- everyone out

  async function terminateAll(ev) {
    ev.preventDefault();
    const reason = $("all-reason").value.trim();
    const policy = $("all-policy").value;
    const r = await confirmDialog({
      title: "Log all users out?",
      lines: [
        "Everyone but you is signed out now, on every device, web and mobile, and API tokens issued before now stop working.",
        "Unsaved work in their open pages is lost.",
        policyLine(policy),
        "You stay signed in.",
      ],
      typed: true,
      ok: "Log everyone out",
    });
    if (!r.ok) return;
    try {
      const res = await call("POST", "terminate-all", {
        reason,
        reauth: policy,
        keep_session: true,
        confirm: r.typed,
      });
      status("Everyone but you was signed out (audit entry " + res.entry.id + ")." + affected(res.entry), "ok");
      $("all-reason").value = "";
    } catch (e) {
      failed("Nobody was signed out", e);
    }
    refresh();
  }

  function toLocalInput(d) {
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
  }

  function defaultAnnounceTime() {
    const d = new Date(Date.now() + 15 * 60 * 1000);
    d.setMinutes(Math.ceil(d.getMinutes() / 5) * 5, 0, 0);
    $("ann-at").value = toLocalInput(d);
    $("ann-at").min = toLocalInput(new Date());
  }

  async function announce(ev) {
    ev.preventDefault();
    const at = new Date($("ann-at").value);
    const reason = $("ann-reason").value.trim();
    const policy = $("ann-policy").value;
    if (isNaN(at) || at.getTime() <= Date.now()) {
      status("Choose a time in the future.", "error");
      $("ann-at").focus();
      return;
    }
    const when = hhmm(at) + " on " + at.toLocaleDateString();
    const r = await confirmDialog({
      title: "Announce a sign-out of all users?",
      lines: [
        "At " + when + ", everyone but you is signed out, on every device, web and mobile.",
        "Until then their pages show: “You will be signed out at " + hhmm(at) + ": " + reason + ". Save your work.”",
        "Unsaved work still open at that time is lost.",
        policyLine(policy),
        "You stay signed in. You can cancel the announcement until then.",
      ],
      typed: true,
      ok: "Announce sign-out",
    });
    if (!r.ok) return;
    try {
      const res = await call("POST", "terminate-all", {
        reason,
        reauth: policy,
        at: at.toISOString().replace(/\.\d{3}Z$/, "Z"),
        keep_session: true,
        confirm: r.typed,
      });
      status("Sign-out of everyone announced for " + when + " (audit entry " + res.entry.id + ").", "ok");
    } catch (e) {
      failed("Nothing was announced", e);
    }
    refresh();
  }

  async function cancelAnnouncement(fence) {
    const r = await confirmDialog({
      title: "Cancel the announced sign-out?",
      lines: ["Nobody will be signed out at " + fmtTime(fence.pending_at) + ", and the warning disappears from their pages."],
      ok: "Cancel the sign-out",
    });
    if (!r.ok) return;
    try {
      await call("POST", "cancel", { scope: "global", reason: "cancelled from the admin page" });
      status("The announced sign-out was cancelled.", "ok");
    } catch (e) {
      failed("The announcement was not cancelled", e);
    }
    refresh();
  }

  // ------------------------------------------------------------- fences

  async function loadFences() {
    const box = $("fences");
    const scopes = ["global"];
    if (me.tenant) scopes.push("tenant:" + me.tenant);
    scopes.push("subject:" + me.issuer + "|" + me.sub);
    if (searched && !(searched.issuer === me.issuer && searched.sub === me.sub)) {
      scopes.push("subject:" + searched.issuer + "|" + searched.sub);
    }
    const q = new URLSearchParams();
    for (const s of scopes) q.append("scope", s);
    let data;
    try {
      data = await call("GET", "fences?" + q);
    } catch (e) {
      box.replaceChildren(el("p", { class: "empty", text: "Fences cannot be read: " + explain(e) }));
      return;
    }
    const rows = data.fences.map((f) =>
      el(
        "tr",
        null,
        el("th", { scope: "row" }, el("code", { text: f.scope })),
        cell(f.generation),
        cell(f.effective_generation),
        cell(f.reload),
        cell(fmtTime(f.bumped_at) || "never"),
        cell(f.policy),
        cell(f.pending_at ? fmtTime(f.pending_at) + " (" + f.pending_policy + ")" : ""),
        cell(f.reason || ""),
      ),
    );
    box.replaceChildren(
      table(
        "Fences (store epoch " + data.epoch + ")",
        ["Scope", "Generation", "Effective generation", "Reload", "Last sign-out", "Next login", "Announced for", "Reason"],
        rows,
      ),
    );
    showPending(data.fences.find((f) => f.scope === "global"));
  }

  function showPending(global) {
    const box = $("pending");
    if (!global || !global.pending_at) {
      box.replaceChildren();
      return;
    }
    box.replaceChildren(
      el(
        "div",
        { class: "pending" },
        el("p", {
          id: "pending-text",
          text:
            "A sign-out of everyone is announced for " + fmtTime(global.pending_at) + " (next login: " + global.pending_policy + ")" +
            (global.reason ? ". Reason: " + global.reason : "") + ".",
        }),
        el("button", { type: "button", id: "pending-cancel", text: "Cancel the announced sign-out…", onclick: () => cancelAnnouncement(global) }),
      ),
    );
  }

  // -------------------------------------------------------------- audit

  async function loadAudit(page) {
    const box = $("audit");
    if (page === undefined) page = audit.cursors.length - 1;
    const q = new URLSearchParams({ limit: String(AUDIT_PAGE) });
    if (audit.cursors[page]) q.set("before", audit.cursors[page]);
    let data;
    try {
      data = await call("GET", "audit?" + q);
    } catch (e) {
      box.replaceChildren(el("p", { class: "empty", text: "The audit log cannot be read: " + explain(e) }));
      return;
    }
    audit.cursors.length = page + 1;
    audit.next = data.next || "";
    const rows = data.entries.map((e) =>
      el(
        "tr",
        null,
        el("th", { scope: "row", text: fmtTime(e.time) }),
        cell(e.actor),
        cell(el("code", { text: e.action })),
        cell(el("code", { text: e.scope })),
        cell(e.reason || ""),
        cell(e.policy || ""),
        cell(e.effective_at ? fmtTime(e.effective_at) : ""),
        cell(e.affected === undefined || e.affected < 0 ? "unknown" : e.affected),
        cell(e.kept_session ? el("code", { text: shortID(e.kept_session), title: e.kept_session }) : ""),
      ),
    );
    box.replaceChildren(
      rows.length
        ? table(
            "Audit log, newest first (page " + (page + 1) + ")",
            ["Time", "Actor", "Action", "Scope", "Reason", "Next login", "Effective at", "Sessions affected", "Kept session"],
            rows,
          )
        : el("p", { class: "empty", text: "No action recorded yet." }),
    );
    $("audit-older").disabled = !audit.next;
    $("audit-newest").disabled = page === 0;
  }

  function olderAudit() {
    if (!audit.next) return;
    audit.cursors.push(audit.next);
    loadAudit(audit.cursors.length - 1);
  }

  function newestAudit() {
    audit.cursors = [""];
    loadAudit(0);
  }

  // --------------------------------------------------------------- init

  function refresh() {
    loadOwn();
    if (me.admin) {
      loadFences();
      audit.cursors = [""];
      loadAudit(0);
    }
    if (window.sessionfenceBanner) window.sessionfenceBanner.check();
  }

  async function init() {
    try {
      me = await call("GET", "me");
    } catch (e) {
      $("whoami").textContent = "Not signed in.";
      failed("Your identity could not be loaded", e);
      return;
    }
    const who = $("whoami");
    who.replaceChildren(
      "Signed in as ",
      el("strong", { id: "me-sub", text: me.sub }),
      me.tenant ? " (tenant " + me.tenant + ")" : "",
      " at ",
      el("code", { text: me.issuer }),
      me.acr ? " · acr " + me.acr : "",
      me.amr && me.amr.length ? " · amr " + me.amr.join(", ") : "",
      me.auth_time ? " · authenticated " + fmtTime(me.auth_time) : "",
    );
    $("user-form").addEventListener("submit", searchUser);
    $("all-form").addEventListener("submit", terminateAll);
    $("ann-form").addEventListener("submit", announce);
    $("fences-refresh").addEventListener("click", loadFences);
    $("audit-older").addEventListener("click", olderAudit);
    $("audit-newest").addEventListener("click", newestAudit);
    if (me.admin) {
      $("admin-only").hidden = false;
      $("user-issuer").value = me.issuer;
      defaultAnnounceTime();
    } else {
      $("not-admin").hidden = false;
    }
    document.body.dataset.ready = "true";
    refresh();
  }

  init();
})();
