// Support tab: open a ticket, list tickets, read a thread and reply. Text only via textContent.
"use strict";
(function () {
  const ix = window.ispedge, setText = ix.fmt.setText, t = ix.t, f = ix.fmt;
  // A failed send answers like a refused one: the message stays in the form.
  async function api(path, options) {
    try { return await ix.api(path, options); }
    catch (e) { return { status: 0, data: { error: { message: e.message + " " + t("Please try again.") } } }; }
  }
  const STATUS_LABEL = { open: t("Open"), answered: t("Answered"), closed: t("Closed") };
  // The categories' names (the API's category_label stays English for old clients).
  const CATEGORY_LABEL = { slow: t("Slow internet"), no_connection: t("No connection"),
    billing: t("Billing"), wifi: t("WiFi"), other: t("Other") };
  function categoryLabel(ticket) { return CATEGORY_LABEL[ticket.category] || ticket.category_label; }
  let current = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function errorText(res, fallback) {
    return (res.data && res.data.error && res.data.error.message) || fallback;
  }
  function showError(id, text) { const e = document.getElementById(id); e.textContent = text; e.hidden = false; }

  async function loadList() {
    const res = { data: ix.need(await ix.api("/customer/api/tickets"), t("Could not load your tickets.")) };
    const list = document.getElementById("tickets");
    list.textContent = "";
    res.data.tickets.forEach(function (tk) {
      const li = el("li", "ticket-row");
      const a = el("button", "link ticket-link");
      a.type = "button";
      a.dataset.id = tk.id;
      const subject = el("span", "ticket-subject", tk.subject);
      subject.dir = "auto";
      a.append(subject, el("span", "badge status-" + tk.status, STATUS_LABEL[tk.status]));
      a.addEventListener("click", function () { openThread(tk.id); });
      li.appendChild(a);
      li.appendChild(el("span", "muted", categoryLabel(tk) + " · " + f.when(tk.updated_at)));
      list.appendChild(li);
    });
    document.getElementById("no-tickets").hidden = res.data.tickets.length > 0;
  }

  function renderThread(tk) {
    current = tk.id;
    setText("thread-subject", tk.subject);
    setText("thread-status", STATUS_LABEL[tk.status]);
    setText("thread-category", categoryLabel(tk));
    const diag = document.getElementById("thread-diagnostics");
    diag.textContent = "";
    if (tk.diagnostics) {
      const d = tk.diagnostics;
      const planLine = el("p", "muted");
      planLine.append(ix.tf("Plan: {plan} — {down} down / {up} up", { plan: ix.bdi(d.plan.name),
        down: f.speed(d.plan.down_kbps), up: f.speed(d.plan.up_kbps) }));
      diag.append(planLine);
      if (d.live) diag.append(el("p", "muted", d.live.online === false ? t("Live: not connected when the ticket was opened") :
        t("Live: {down} down / {up} up", { down: f.speed(Math.round(d.live.down_bps / 1000)),
          up: f.speed(Math.round(d.live.up_bps / 1000)) })));
      const noTier = t("none");  // (not inside another t() call: pybabel would miss it)
      if (d.fup) diag.append(el("p", "muted", t("Fair-use tier: {tier}", { tier: d.fup.tier ? f.number(d.fup.tier, 0) : noTier })));
      const MISSING = { "live rate (could not be measured)": t("live rate (could not be measured)"),
        "FUP tier (usage could not be read)": t("FUP tier (usage could not be read)") };
      (d.missing || []).forEach(function (m) { diag.append(el("p", "muted", t("Not available: {what}", { what: MISSING[m] || m }))); });
    }
    const thread = document.getElementById("thread");
    thread.textContent = "";
    tk.messages.forEach(function (m) {
      const li = el("li", "message from-" + m.author_kind);
      const author = el("span", "muted", (m.author_kind === "customer" ? t("You") : m.author) + " · " + f.when(m.created_at));
      const body = el("p", "message-body", m.body);
      body.dir = "auto";  // a ticket in Arabic reads right to left, in any page language
      li.append(author, body);
      thread.appendChild(li);
    });
    document.getElementById("thread-card").hidden = false;
  }

  async function openThread(id) {
    const res = await api("/customer/api/tickets/" + id);
    if (res.status === 200) { renderThread(res.data); ix.reveal(document.getElementById("thread-card")); }
  }

  const category = document.getElementById("ticket-category");
  function slowHint() { document.getElementById("slow-hint").hidden = category.value !== "slow"; }
  category.addEventListener("change", slowHint);
  slowHint();

  document.getElementById("ticket-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    document.getElementById("ticket-error").hidden = true;
    document.getElementById("ticket-sent").hidden = true;
    const res = await api("/customer/api/tickets", { method: "POST", body: {
      category: category.value, subject: document.getElementById("ticket-subject").value,
      message: document.getElementById("ticket-message").value } });
    if (res.status === 201) {
      document.getElementById("ticket-subject").value = "";
      document.getElementById("ticket-message").value = "";
      renderThread(res.data);
      const sent = document.getElementById("ticket-sent");
      sent.textContent = t("Ticket #{id} sent. We will answer here; you can follow it below.", { id: res.data.id });
      sent.hidden = false;
      ix.reveal(sent);
      ix.load(loadList);
    } else showError("ticket-error", errorText(res, t("The ticket could not be sent.")));
  });

  document.getElementById("reply-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    document.getElementById("reply-error").hidden = true;
    const res = await api("/customer/api/tickets/" + current + "/reply", { method: "POST",
      body: { message: document.getElementById("reply-message").value } });
    if (res.status === 200) {
      document.getElementById("reply-message").value = "";
      renderThread(res.data);
      ix.load(loadList);
    } else showError("reply-error", errorText(res, t("The reply could not be sent.")));
  });

  ix.load(loadList);
})();
