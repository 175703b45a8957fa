// Live events page: opens the server-sent-event stream at /events and
// shows what arrives. The server closes the stream the moment the session
// is revoked; the page then reloads, and the guard sends the browser to
// sign in again (with a second factor when the fence demands it).
"use strict";
(function () {
  const status = document.getElementById("events-status");
  const log = document.getElementById("events-log");
  const clock = document.getElementById("events-clock");
  let reloading = false;

  function add(text) {
    const li = document.createElement("li");
    li.textContent = new Date().toLocaleTimeString() + "  " + text;
    log.prepend(li);
    while (log.children.length > 50) log.lastChild.remove();
  }

  function parse(e) {
    try {
      return JSON.parse(e.data);
    } catch (err) {
      return {};
    }
  }

  function reloadSoon(why) {
    if (reloading) return;
    reloading = true;
    status.classList.add("revoked");
    status.textContent = why + " Going to the sign-in page…";
    setTimeout(() => location.reload(), 1500);
  }

  const es = new EventSource("/events");
  es.addEventListener("hello", (e) => {
    const d = parse(e);
    status.classList.remove("revoked");
    status.textContent = "Connected to instance " + d.instance + ": watching session of " + d.sub + ".";
    add("hello: stream open for " + d.sub);
  });
  es.addEventListener("tick", (e) => {
    const d = parse(e);
    clock.textContent = new Date(d.time).toLocaleTimeString();
  });
  es.addEventListener("revoked", (e) => {
    const d = parse(e);
    es.close();
    add("revoked: " + d.error + " (scope " + d.scope + ", next login: " + d.reauth + ")");
    reloadSoon("Your session was ended (" + d.error + ", scope " + d.scope + ").");
  });
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED) {
      reloadSoon("The stream was closed.");
    } else if (!reloading) {
      status.textContent = "Reconnecting…";
    }
  });
})();
