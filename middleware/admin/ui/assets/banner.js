// sessionfence banner: include on any page of the application,
//
//   <script src="/admin/banner.js" defer></script>
//
// optionally with data-api (the admin API prefix, default /admin/api/),
// data-login (default /login) and data-interval (seconds between checks,
// default 30, at least 2). It asks the API's GET me, reads the
// Sessionfence-Termination headers the guard sets while a sign-out is
// announced for this session, and shows "You will be signed out at HH:MM:
// <reason>. Save your work." at the top of the page, in a polite live
// region. When the session has ended it says so, with a link to sign in
// again. It builds no HTML from data and needs no inline script or style,
// so it works under a strict Content-Security-Policy.
"use strict";
(function () {
  const me = document.currentScript;
  const data = (me && me.dataset) || {};
  const api = data.api || "/admin/api/";
  const login = data.login || "/login";
  const every = Math.max(2, Number(data.interval) || 30) * 1000;
  let box = null;

  function ensureBox() {
    if (box) return box;
    box = document.createElement("div");
    box.id = "sessionfence-banner";
    box.setAttribute("role", "status");
    box.setAttribute("aria-live", "polite");
    // Styles are set through the CSSOM, which a CSP without
    // 'unsafe-inline' allows (a style attribute it would block).
    const s = box.style;
    s.setProperty("position", "sticky");
    s.setProperty("top", "0");
    s.setProperty("z-index", "2147483000");
    s.setProperty("margin", "0");
    s.setProperty("padding", "0.75rem 1rem");
    s.setProperty("font", "600 1rem/1.4 system-ui, sans-serif");
    s.setProperty("background", "#fff4d6");
    s.setProperty("color", "#3b2a00");
    s.setProperty("border-bottom", "3px solid #8a6200");
    s.setProperty("display", "none");
    document.body.prepend(box);
    return box;
  }

  function hhmm(d) {
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  function show(nodes) {
    const b = ensureBox();
    b.replaceChildren(...nodes);
    b.style.setProperty("display", "block");
  }

  function hide() {
    if (box) {
      box.replaceChildren();
      box.style.setProperty("display", "none");
    }
  }

  function announce(at, reason) {
    const when = new Date(at);
    if (isNaN(when)) return hide();
    let text = "You will be signed out at " + hhmm(when);
    if (reason) text += ": " + reason;
    show([text.replace(/[.\s]+$/, "") + ". Save your work."]);
    box.dataset.at = when.toISOString();
  }

  function ended() {
    const a = document.createElement("a");
    a.href = login + (login.indexOf("?") < 0 ? "?" : "&") + "return_to=" + encodeURIComponent(location.pathname + location.search);
    a.textContent = "Sign in again";
    a.style.setProperty("color", "inherit");
    show(["You have been signed out. Unsaved changes on this page cannot be saved. ", a]);
    box.dataset.at = "";
  }

  function decode(v) {
    try {
      return decodeURIComponent(v);
    } catch (e) {
      return v;
    }
  }

  async function check() {
    let res;
    try {
      res = await fetch(api + "me", {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
    } catch (e) {
      return; // offline: keep what is shown
    }
    if (res.status === 401) {
      let body = null;
      try {
        body = await res.json();
      } catch (e) {
        body = null;
      }
      // Only a session that existed and ended is worth a banner; a
      // visitor who never signed in is not told anything.
      if (body && body.error && body.error !== "no_session") ended();
      else hide();
      return;
    }
    if (!res.ok) return;
    const at = res.headers.get("Sessionfence-Termination");
    if (at) {
      announce(at, decode(res.headers.get("Sessionfence-Termination-Reason") || ""));
      return;
    }
    // Fall back on the body, for proxies that drop unknown headers.
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (body && body.termination && body.termination.at) announce(body.termination.at, body.termination.reason || "");
    else hide();
  }

  window.sessionfenceBanner = { check };
  function start() {
    check();
    setInterval(check, every);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) check();
    });
  }
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
