// ispedge operator console. No inline script (CSP script-src 'self'); no cookies: the
// operator's token lives in localStorage and travels only in the Authorization header.
// Whatever a subscriber typed is put on the page with textContent, never as markup;
// labels and sentences come from the templates (data-* attributes, <template> rows).
"use strict";
(function () {
  const TOKEN_KEY = "ispedge.operator_token";
  const page = document.body.dataset.page;
  const primary = document.body.dataset.primary;
  if (primary && /^#[0-9a-fA-F]{6}$/.test(primary)) {
    document.documentElement.style.setProperty("--primary", primary);
  }
  function token() { return localStorage.getItem(TOKEN_KEY); }
  function $(id) { return document.getElementById(id); }
  function setText(id, text) { const e = $(id); if (e) e.textContent = text == null ? "" : String(text); }
  function show(id, on) { const e = $(id); if (e) e.hidden = !on; }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : "–"; }
  function money(cents, currency) {
    return (cents / 100).toLocaleString(undefined, { style: "currency", currency: currency || "USD" });
  }
  function gb(bytes) { return (bytes / 1e9).toLocaleString(undefined, { maximumFractionDigits: 2 }) + " GB"; }
  function speed(kbps) { return kbps >= 1000 ? (kbps / 1000).toLocaleString() + " Mbps" : kbps + " kbps"; }
  // The one fetch helper: {status, data}; a network failure gives status 0.
  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    const t = opts.bearer || token();
    delete opts.bearer;
    if (t) opts.headers["Authorization"] = "Bearer " + t;
    if (opts.body !== undefined && typeof opts.body !== "string") {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.body);
    }
    let res;
    try { res = await fetch(path, opts); }
    catch (e) { return { status: 0, data: null }; }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401 && page !== "login") {
      localStorage.removeItem(TOKEN_KEY);
      location.href = "/operator/login";
    }
    return { status: res.status, data: data };
  }
  function message(res, fallback) {
    return (res && res.data && res.data.error && res.data.error.message) || fallback;
  }
  function state(text) { setText("state-text", text); show("page-state", !!text); }
  function need(res, fallback) {
    if (res.status === 200) return res.data;
    state(res.status === 0 ? "Could not reach the server. Reload to try again." : message(res, fallback));
    throw new Error("load failed");
  }
  // A row from a <template>: fill(cls -> text) with textContent only.
  function row(templateId, fill) {
    const node = $(templateId).content.firstElementChild.cloneNode(true);
    Object.keys(fill).forEach(function (cls) {
      const el = node.querySelector("." + cls);
      if (el) el.textContent = fill[cls] == null ? "" : String(fill[cls]);
    });
    return node;
  }
  function li(text) { const e = document.createElement("li"); e.textContent = text; return e; }
  // An Idempotency-Key: random, made once per confirmation (getRandomValues works
  // without a secure context, unlike randomUUID).
  function newKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
  }

  function failed(id, res) {
    setText(id, res.status === 0 ? "Could not reach the server. Please try again."
      : message(res, "Not done (" + res.status + ")."));
    show(id, true);
  }
  // A new TOTP secret from the server: its QR code (an SVG made on the server, shown
  // as an image, never as markup in the page) and its text in groups of four.
  function showSecret(qrId, secretId, data) {
    $(qrId).src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(data.qr_svg);
    setText(secretId, data.secret.replace(/(.{4})(?=.)/g, "$1 "));
  }

  if (page === "login") {
    if (token()) { location.href = "/operator/"; return; }
    // An admin's enrollment-only token: in this variable only (a reload starts over).
    let enrollToken = null;
    function enrollFailed(id, res) {
      if (res.status === 401) {  // its 10 minutes are over: sign in again
        enrollToken = null;
        show("enroll", false);
        show("login-form", true);
        failed("login-error", res);
        return;
      }
      failed(id, res);
    }
    $("enroll-start").addEventListener("click", async function () {
      show("enroll-begin-error", false);
      const res = await api("/operator/api/me/totp", { method: "POST", body: { code: "" }, bearer: enrollToken });
      if (res.status !== 200) { enrollFailed("enroll-begin-error", res); return; }
      showSecret("enroll-qr", "enroll-secret", res.data);
      show("enroll-start", false);
      show("enroll-confirm", true);
      $("enroll-code").focus();
    });
    $("enroll-confirm").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      show("enroll-confirm-error", false);
      const res = await api("/operator/api/me/totp/confirm", { method: "POST",
        body: { code: $("enroll-code").value }, bearer: enrollToken });
      if (res.status !== 200) { enrollFailed("enroll-confirm-error", res); return; }
      enrollToken = null;
      localStorage.setItem(TOKEN_KEY, res.data.token);
      location.href = "/operator/";
    });
    $("login-form").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      show("login-error", false);
      const res = await api("/operator/api/login", { method: "POST", body: {
        username: $("username").value, password: $("password").value, code: $("code").value } });
      if (res.status === 200 && res.data && res.data.enroll_token) {
        enrollToken = res.data.enroll_token;
        show("login-form", false);
        show("enroll", true);
        $("enroll-start").focus();
      } else if (res.status === 200 && res.data && res.data.token) {
        localStorage.setItem(TOKEN_KEY, res.data.token);
        location.href = "/operator/";
      } else {
        setText("login-error", res.status === 0 ? "Could not reach the server. Please try again."
          : message(res, "Sign in failed"));
        show("login-error", true);
      }
    });
    return;
  }
  if (page === "landing") return;

  // --- every console page -----------------------------------------------------------
  if (!token()) { location.href = "/operator/login"; return; }
  $("logout").addEventListener("click", async function () {
    await api("/operator/api/logout", { method: "POST" });
    localStorage.removeItem(TOKEN_KEY);
    location.href = "/operator/login";
  });
  const active = { tickets: "tickets", ticket: "tickets", subscribers: "subscribers",
                   subscriber: "subscribers", problems: "problems", account: "account" }[page];
  document.querySelectorAll(".tab").forEach(function (a) {
    if (a.dataset.tab === active) { a.classList.add("active"); a.setAttribute("aria-current", "page"); }
  });
  const me = api("/operator/api/me").then(function (res) {
    const data = need(res, "Could not load your account.");
    setText("whoami", data.username + " (" + data.role + ")");
    document.body.dataset.role = data.role;
    return data;
  });

  // --- tickets inbox ------------------------------------------------------------------
  if (page === "tickets") {
    async function loadTickets() {
      const q = new URLSearchParams();
      if ($("filter-status").value) q.set("status", $("filter-status").value);
      if ($("filter-reseller").value.trim()) q.set("reseller", $("filter-reseller").value.trim());
      if ($("filter-age").value.trim()) q.set("min_age_hours", $("filter-age").value.trim());
      const data = need(await api("/operator/api/tickets?" + q.toString()), "Could not load tickets.");
      state("");
      const body = $("tickets");
      body.textContent = "";
      data.tickets.forEach(function (t) {
        const r = row("ticket-row", { "t-id": t.id, "t-subject": t.subject, "t-user": t.username,
          "t-reseller": t.reseller, "t-status": t.status, "t-updated": when(t.updated_at) });
        r.querySelector(".t-subject").href = "/operator/tickets/" + t.id;
        r.querySelector(".t-status").classList.add("status-" + t.status);
        body.appendChild(r);
      });
      show("no-tickets", data.tickets.length === 0);
      body.dataset.query = q.toString();  // which filters the rows shown answer
    }
    $("ticket-filter").addEventListener("submit", function (ev) { ev.preventDefault(); loadTickets(); });
    loadTickets();
  }

  // --- one ticket -------------------------------------------------------------------
  if (page === "ticket") {
    const id = $("thread-card").dataset.ticket;
    function render(t) {
      setText("thread-subject", t.subject);
      setText("thread-status", t.status);
      setText("thread-category", t.category_label);
      setText("thread-user", t.username);
      $("thread-user").href = "/operator/subscribers/" + encodeURIComponent(t.username);
      const d = t.diagnostics;
      show("thread-diagnostics", !!d);
      if (d) {
        setText("diag-plan", d.plan ? d.plan.name + " — " + speed(d.plan.down_kbps) + " / " + speed(d.plan.up_kbps) : "–");
        setText("diag-live", !d.live ? "–" : d.live.online === false ? "offline" :
          speed(Math.round(d.live.down_bps / 1000)) + " / " + speed(Math.round(d.live.up_bps / 1000)));
        setText("diag-fup", d.fup ? (d.fup.tier || "none") : "–");
        setText("diag-missing", (d.missing || []).join(", ") || "–");
      }
      const list = $("thread");
      list.textContent = "";
      t.messages.forEach(function (m) {
        const r = row("message-row", { "m-meta": m.author + " · " + when(m.created_at), "m-body": m.body });
        r.classList.add("from-" + m.author_kind);
        if (m.internal) { r.classList.add("internal"); r.querySelector(".m-note").hidden = false; }
        list.appendChild(r);
      });
    }
    async function post(path, body) {
      show("reply-error", false);
      const res = await api("/operator/api/tickets/" + id + path, { method: "POST", body: body });
      if (res.status === 200) { $("reply-message").value = ""; render(res.data); }
      else { setText("reply-error", message(res, "Not sent. Please try again.")); show("reply-error", true); }
    }
    $("send-reply").addEventListener("click", function () { post("/reply", { message: $("reply-message").value }); });
    $("send-note").addEventListener("click", function () { post("/reply", { message: $("reply-message").value, internal: true }); });
    $("close-ticket").addEventListener("click", function () { post("/close"); });
    api("/operator/api/tickets/" + id).then(function (res) { render(need(res, "Could not load the ticket.")); });
  }

  // --- search -----------------------------------------------------------------------
  if (page === "subscribers") {
    async function search() {
      const q = $("search-q").value.trim();
      const data = need(await api("/operator/api/subscribers?q=" + encodeURIComponent(q)), "Search failed.");
      state("");
      const body = $("results");
      body.textContent = "";
      data.subscribers.forEach(function (s) {
        const r = row("result-row", { "r-user": s.username, "r-name": s.full_name, "r-phone": s.phone,
          "r-plan": s.plan, "r-status": s.status, "r-reseller": s.reseller });
        r.querySelector(".r-user").href = "/operator/subscribers/" + encodeURIComponent(s.username);
        body.appendChild(r);
      });
      show("results-table", data.subscribers.length > 0);
      show("no-results", data.subscribers.length === 0);
    }
    $("search-form").addEventListener("submit", function (ev) { ev.preventDefault(); search(); });
  }

  // --- problems ---------------------------------------------------------------------
  if (page === "problems") {
    api("/operator/api/problems").then(function (res) {
      const data = need(res, "Could not load the enforcement status.");
      const body = $("problems");
      data.problems.forEach(function (p) {
        body.appendChild(row("problem-row", { "p-user": p.username, "p-target": p.target,
          "p-state": p.state, "p-desired": p.desired, "p-applied": p.applied,
          "p-attempts": p.attempts, "p-error": p.last_error }));
      });
      show("problems-table", data.problems.length > 0);
      show("no-problems", data.problems.length === 0);
    });
  }

  // --- the operator's own account: two-step sign-in ------------------------------------
  if (page === "account") {
    const fail = failed;
    me.then(function (m) {
      show("totp-on", m.totp);
      show("totp-off", !m.totp);
      show("totp-current-field", m.totp);
      show("totp-begin-hint-off", !m.totp);
      setText("totp-start", m.totp ? "Replace my authenticator app" : "Set up an authenticator app");
      show("totp-begin", true);
    });
    $("totp-begin").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      show("totp-begin-error", false);
      const res = await api("/operator/api/me/totp", { method: "POST", body: { code: $("totp-current").value } });
      if (res.status !== 200) { fail("totp-begin-error", res); return; }
      showSecret("totp-qr", "totp-secret", res.data);
      show("totp-begin", false);
      show("totp-confirm", true);
      $("totp-code").focus();
    });
    $("totp-confirm").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      show("totp-confirm-error", false);
      const res = await api("/operator/api/me/totp/confirm", { method: "POST", body: { code: $("totp-code").value } });
      if (res.status !== 200) { fail("totp-confirm-error", res); return; }
      localStorage.setItem(TOKEN_KEY, res.data.token);  // every older token is refused now
      show("totp-confirm", false);
      show("totp-off", false);
      show("totp-on", true);
      show("totp-done", true);
    });
  }

  // --- one subscriber ---------------------------------------------------------------
  if (page === "subscriber") {
    const username = $("sub-card").dataset.username;
    const base = "/operator/api/subscribers/" + encodeURIComponent(username);
    let current = null;
    function render(s) {
      current = s;
      setText("sub-username", s.username);
      setText("sub-name", s.full_name || "–");
      setText("sub-phone", s.phone || "–");
      setText("sub-email", s.email || "–");
      setText("sub-address", s.address || "–");
      setText("sub-reseller", s.reseller);
      setText("sub-status", s.status);
      setText("sub-plan", s.plan.name + " — " + speed(s.plan.down_kbps) + " / " + speed(s.plan.up_kbps));
      setText("sub-expires", when(s.expires_at) + (s.expired ? " (expired)" : ""));
      setText("sub-next-cycle", s.next_cycle ? when(s.next_cycle.starts_at) + " – " + when(s.next_cycle.paid_until) : "–");
      setText("sub-balance", money(s.balance_cents, s.currency));
      setText("usage-today", gb(s.today.bytes_in + s.today.bytes_out));
      setText("usage-cycle", gb(s.cycle.bytes_in + s.cycle.bytes_out));
      setText("usage-fup", s.fup.tier ? s.fup.tier + " (" + speed(s.fup.down_kbps) + " / " + speed(s.fup.up_kbps) + ")" : "none");
      const sessions = $("sessions");
      sessions.textContent = "";
      s.sessions.forEach(function (x) { sessions.appendChild(li(x.address + " · NAS " + x.nas + " · " + when(x.since))); });
      show("no-sessions", s.sessions.length === 0);
      const enf = $("enforcement");
      enf.textContent = "";
      s.enforcement.forEach(function (e) {
        enf.appendChild(li(e.target + ": " + e.state + " · " + e.desired + (e.last_error ? " · " + e.last_error : "")));
      });
      show("no-enforcement", s.enforcement.length === 0);
      setText("parental", s.parental.enabled ? s.parental.categories.join(", ") : "");
      show("parental-off", !s.parental.enabled);
      const wifi = $("wifi-tasks");
      wifi.textContent = "";
      s.wifi_tasks.forEach(function (t) { wifi.appendChild(li(when(t.created_at) + " · " + t.action + " · " + t.status + (t.detail ? " · " + t.detail : ""))); });
      show("no-wifi", s.wifi_tasks.length === 0);
      const w = $("wallet");
      w.textContent = "";
      s.wallet.entries.forEach(function (e) {
        w.appendChild(row("wallet-row", { "w-date": when(e.created_at), "w-kind": e.label,
          "w-amount": money(e.amount_cents, s.currency), "w-balance": money(e.balance_after_cents, s.currency),
          "w-doc": e.document ? e.document.number : "" }));
      });
      show("no-wallet", s.wallet.entries.length === 0);
      const select = $("plan-select");
      select.textContent = "";
      s.plans.forEach(function (p) {
        const o = document.createElement("option");
        o.value = String(p.id);
        o.textContent = p.name;
        if (p.name === s.plan.name) o.selected = true;
        select.appendChild(o);
      });
      $("status-select").value = s.status === "active" ? "disabled" : "active";
    }
    async function loadAudit() {
      const res = await api(base + "/audit");
      if (res.status !== 200) return;
      const body = $("audit");
      body.textContent = "";
      res.data.audit.forEach(function (a) {
        body.appendChild(row("audit-row", { "a-when": when(a.created_at), "a-who": a.actor,
          "a-what": a.action, "a-detail": a.detail }));
      });
      body.dataset.loaded = "true";  // an empty history is loaded too
    }
    // The notification log; Resend (admins) on each message no longer on its way.
    const IN_FLIGHT = ["pending", "claimed", "sending"];
    async function loadNotifications() {
      const m = await me;
      const res = await api(base + "/notifications");
      if (res.status !== 200) return;
      const body = $("notifications");
      body.textContent = "";
      res.data.notifications.forEach(function (n) {
        const r = row("notification-row", { "n-created": when(n.created_at),
          "n-event": n.event + (n.resend_of ? " (copy of #" + n.resend_of + ")" : ""),
          "n-channel": n.channel + " · " + n.target, "n-state": n.state, "n-attempts": n.attempts,
          "n-error": n.last_error, "n-sent": when(n.sent_at) });
        r.dataset.id = String(n.id);
        r.querySelector(".n-state").classList.add("state-" + n.state);
        const button = r.querySelector(".n-resend");
        if (m.may_act && IN_FLIGHT.indexOf(n.state) < 0) {
          button.hidden = false;
          button.addEventListener("click", function () { openResend(n); });
        }
        body.appendChild(r);
      });
      show("notifications-table", res.data.notifications.length > 0);
      show("no-notifications", res.data.notifications.length === 0);
    }
    async function load() {
      render(need(await api(base), "Could not load this subscriber."));
      state("");
      loadAudit();
      loadNotifications();
    }
    me.then(function (m) {
      show("actions-card", m.may_act);
      show("readonly-note", !m.may_act);
    });
    function fill(text, words) {
      return text.replace(/\{(\w+)\}/g, function (_, k) { return words[k] == null ? "" : String(words[k]); });
    }
    function notDone(res) {
      return res.status === 0 ? "Not confirmed: the server did not answer. Confirm again: it will not act twice."
        : message(res, "Not done (" + res.status + "). Confirm again: it will not act twice.");
    }
    // Send an action once confirmed: the same key on every click of this confirmation.
    function postAction(p) {
      return api(base + "/actions/" + p.action, { method: "POST", body: p.body,
        headers: { "Idempotency-Key": p.key } });
    }

    // Review -> confirm -> send. The key is made when the confirmation opens: every
    // click of Confirm (a double click, a retry after an error) sends the same one.
    let pending = null;
    document.querySelectorAll("form.action").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        const body = {};
        const words = { username: username };
        form.querySelectorAll("input, select").forEach(function (input) {
          if (input.name === "plan_id") {
            body.plan_id = Number(input.value);
            words.plan_name = input.options[input.selectedIndex] ? input.options[input.selectedIndex].textContent : "";
          } else body[input.name] = input.value;
          if (input.name !== "password") words[input.name] = input.value;
        });
        pending = { action: form.dataset.action, body: body, key: newKey() };
        setText("confirm-text", fill(form.dataset.confirm, words));
        show("confirm-error", false);
        show("action-done", false);
        show("confirm", true);
        $("confirm-yes").focus();
      });
    });
    $("confirm-no").addEventListener("click", function () { pending = null; show("confirm", false); });
    $("confirm-yes").addEventListener("click", async function () {
      if (!pending) return;
      const p = pending;
      const res = await postAction(p);
      if (res.status === 200) {
        if (pending === p) pending = null;
        show("confirm", false);
        show("action-done", true);
        load();
      } else {
        setText("confirm-error", notDone(res));
        show("confirm-error", true);
      }
    });

    let resending = null;
    function openResend(n) {
      resending = { action: "resend", body: { notification_id: n.id }, key: newKey() };
      setText("resend-confirm-text", fill($("resend-confirm").dataset.confirm,
        { id: n.id, event: n.event, channel: n.channel, username: username }));
      show("resend-error", false);
      show("resend-done", false);
      show("resend-confirm", true);
      $("resend-yes").focus();
    }
    $("resend-no").addEventListener("click", function () { resending = null; show("resend-confirm", false); });
    $("resend-yes").addEventListener("click", async function () {
      if (!resending) return;
      const p = resending;
      const res = await postAction(p);
      if (res.status === 200) {
        if (resending === p) resending = null;
        show("resend-confirm", false);
        show("resend-done", true);
        loadNotifications();
        loadAudit();
      } else {
        setText("resend-error", notDone(res));
        show("resend-error", true);
      }
    });
    load();
  }
})();
