// Support tab: open a ticket, list tickets, read a thread and reply. Text only via textContent.
"use strict";
(function () {
  const ix = window.ispedge, setText = ix.fmt.setText;
  // A failed send answers like a refused one: the message stays in the form.
  async function api(path, options) {
    try { return await ix.api(path, options); }
    catch (e) { return { status: 0, data: { error: { message: e.message + " Please try again." } } }; }
  }
  const STATUS_LABEL = { open: "Open", answered: "Answered", closed: "Closed" };
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
    const res = { data: ix.need(await ix.api("/customer/api/tickets"), "Could not load your tickets.") };
    const list = document.getElementById("tickets");
    list.textContent = "";
    res.data.tickets.forEach(function (t) {
      const li = el("li", "ticket-row");
      const a = el("button", "link ticket-link");
      a.type = "button";
      a.dataset.id = t.id;
      a.append(el("span", "ticket-subject", t.subject),
               el("span", "badge status-" + t.status, STATUS_LABEL[t.status]));
      a.addEventListener("click", function () { openThread(t.id); });
      li.appendChild(a);
      li.appendChild(el("span", "muted", t.category_label + " · " + new Date(t.updated_at).toLocaleString()));
      list.appendChild(li);
    });
    document.getElementById("no-tickets").hidden = res.data.tickets.length > 0;
  }

  function renderThread(t) {
    current = t.id;
    setText("thread-subject", t.subject);
    setText("thread-status", STATUS_LABEL[t.status]);
    setText("thread-category", t.category_label);
    const diag = document.getElementById("thread-diagnostics");
    diag.textContent = "";
    if (t.diagnostics) {
      const f = window.ispedge.fmt, d = t.diagnostics;
      diag.append(el("p", "muted", "Plan: " + d.plan.name + " — " + f.speed(d.plan.down_kbps) +
                     " down / " + f.speed(d.plan.up_kbps) + " up"));
      if (d.live) diag.append(el("p", "muted", d.live.online === false ? "Live: not connected when the ticket was opened" :
        "Live: " + f.speed(Math.round(d.live.down_bps / 1000)) + " down / " +
        f.speed(Math.round(d.live.up_bps / 1000)) + " up"));
      if (d.fup) diag.append(el("p", "muted", "Fair-use tier: " + (d.fup.tier || "none")));
      (d.missing || []).forEach(function (m) { diag.append(el("p", "muted", "Not available: " + m)); });
    }
    const thread = document.getElementById("thread");
    thread.textContent = "";
    t.messages.forEach(function (m) {
      const li = el("li", "message from-" + m.author_kind);
      li.append(el("span", "muted", (m.author_kind === "customer" ? "You" : m.author) + " · " +
                   new Date(m.created_at).toLocaleString()), el("p", "message-body", m.body));
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
      sent.textContent = "Ticket #" + res.data.id + " sent. We will answer here; you can follow it below.";
      sent.hidden = false;
      ix.reveal(sent);
      ix.load(loadList);
    } else showError("ticket-error", errorText(res, "The ticket could not be sent."));
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
    } else showError("reply-error", errorText(res, "The reply could not be sent."));
  });

  ix.load(loadList);
})();
