// Invoices tab: the wallet (balance, every money movement and its document, "Renew now"
// where the reseller allows it, how to pay where money is short), then the invoices,
// credit notes and receipts, each downloadable as PDF.
"use strict";
(function () {
  const ix = window.ispedge, f = ix.fmt, t = ix.t, tn = ix.tn;
  let wallet = null, idemKey = null, nextBefore = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function money(c) { return f.money(c, wallet ? wallet.currency : undefined); }
  function day(iso) { return f.day(iso); }
  function showError(msg) {
    const e = document.getElementById("invoice-error");
    e.textContent = msg; e.hidden = !msg;
    if (msg) ix.reveal(e);
  }
  function newKey() {
    return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
  }
  const TITLES = { credit_note: t("Credit note {number}"), receipt: t("Receipt {number}"),
    invoice: t("Invoice {number}") };
  const DOCUMENT = t("Document {number}");
  function title(doc) { return (TITLES[doc.kind] || DOCUMENT).replace("{number}", doc.number); }
  // A document's name with its number kept left to right inside an Arabic label.
  function titleNode(doc) {
    const span = el("span", "number");
    const parts = (TITLES[doc.kind] || DOCUMENT).split("{number}");
    const id = el("bdi", "", doc.number);
    id.dir = "ltr";
    span.append(parts[0], id, parts[1] || "");
    return span;
  }
  // The wallet movements' names (the API's `label` stays English for old clients).
  const KINDS = { credit: t("Operator credit"), payment: t("Payment"), topup: t("Data purchase"),
    plan_change: t("Plan-change charge"), plan_refund: t("Plan-change refund"), renewal: t("Renewal") };

  async function download(doc) {
    // The token travels only in the header, so fetch the PDF and save the blob.
    let res;
    try {
      res = await fetch("/customer/api/invoices/" + doc.id + "/pdf",
        { headers: Object.assign({ "Authorization": "Bearer " + ix.token() },
          localStorage.getItem("ispedge.language") ? { "X-Portal-Language": ix.language } : {}) });
    } catch (e) { res = { ok: false }; }
    if (!res.ok) { showError(t("Could not download {number}. Please try again.", { number: doc.number })); return; }
    showError("");
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = doc.number + ".pdf";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }
  function pdfButton(doc, label) {
    const b = el("button", "", t("PDF"));
    b.type = "button";
    b.setAttribute("aria-label", t("Download {name} as PDF", { name: label }));
    b.addEventListener("click", function () { download(doc); });
    return b;
  }

  function renderWallet() {
    const w = wallet, r = w.renewal;
    f.setText("wallet-balance", money(w.balance_cents));
    f.setText("renew-plan", r.plan);
    f.setText("wallet-expires", f.when(w.expires_at));
    const next = document.getElementById("next-cycle");
    next.hidden = !w.next_cycle;
    if (w.next_cycle) {
      next.textContent = t("Next cycle paid: {start} to {end}.", { start: day(w.next_cycle.starts_at),
        end: day(w.next_cycle.paid_until) });
    }
    const short = r.price_cents - w.balance_cents;
    document.getElementById("renew-offer").hidden = !r.self_service;
    document.getElementById("renew-by-operator").hidden = r.self_service;
    const button = document.getElementById("renew-button");
    button.textContent = t("Renew now — {price} for {days}", { price: money(r.price_cents),
      days: tn("{n} day", "{n} days", r.period_days) });
    button.disabled = short > 0;
    const shortfall = document.getElementById("shortfall");
    shortfall.hidden = !(r.self_service && short > 0);
    shortfall.textContent = short > 0 ? t("Not enough balance to renew: {amount} more is needed.",
      { amount: money(short) }) : "";
    // Renewing through the operator, or short of money: how to pay is right here.
    ix.showPayment("", !r.self_service || short > 0 ? w.payment : null);
  }

  function entryItem(e) {
    const li = el("li");
    li.dataset.entryId = e.id;
    li.dataset.kind = e.kind;
    const sign = e.amount_cents < 0 ? "−" : "+";
    li.append(el("span", "number", KINDS[e.kind] || e.label.charAt(0).toUpperCase() + e.label.slice(1)),
      el("span", "date", day(e.created_at)),
      el("span", "amount", sign + money(Math.abs(e.amount_cents))));
    if (e.document) {
      const name = title(e.document);
      li.append(pdfButton(e.document, name));
      const line = el("span", "muted lines");
      line.append(titleNode(e.document), " · ", t("balance after {amount}", { amount: money(e.balance_after_cents) }));
      li.append(line);
    } else {
      li.append(el("span", "muted lines", t("Balance after {amount}", { amount: money(e.balance_after_cents) })));
    }
    return li;
  }
  function renderEntries(entries, append) {
    const list = document.getElementById("wallet-list");
    if (!append) list.textContent = "";
    entries.forEach(function (e) { list.appendChild(entryItem(e)); });
    document.getElementById("wallet-empty").hidden = list.childElementCount > 0;
    document.getElementById("wallet-more").hidden = nextBefore === null;
  }

  async function loadWallet() {
    wallet = ix.need(await ix.api("/customer/api/wallet"), t("Could not load your wallet."));
    nextBefore = wallet.next_before;
    renderWallet();
    renderEntries(wallet.entries, false);
  }
  async function loadOlder() {
    const res = ix.need(await ix.api("/customer/api/wallet?before=" + nextBefore),
      t("Could not load older movements."));
    nextBefore = res.next_before;
    renderEntries(res.entries, true);
  }

  async function loadInvoices() {
    const data = ix.need(await ix.api("/customer/api/invoices"), t("Could not load your invoices."));
    const list = document.getElementById("invoice-list");
    list.textContent = "";
    document.getElementById("empty").hidden = data.invoices.length > 0;
    data.invoices.forEach(function (inv) {
      const li = el("li");
      li.dataset.invoiceId = inv.id;
      const name = title(inv);
      li.append(titleNode(inv),
        el("span", "date", day(inv.issued_at)),
        el("span", "amount", (inv.kind === "credit_note" ? "−" : "") + f.money(inv.total_cents, inv.currency)));
      // What was sold, said in this language by the server; a line issued before lines
      // had a kind is shown as it was stored (dir=auto: its own direction).
      const what = el("span", "muted lines");
      inv.lines.forEach(function (l, i) {
        if (i) what.append("; ");
        if (l.kind) what.append(ix.isolated(l.description_text));
        else { const old = el("span", "", l.description); old.dir = "auto"; what.append(old); }
      });
      li.append(pdfButton(inv, name), what);
      list.appendChild(li);
    });
  }

  // --- Renew now: confirm with the price, then one POST with an Idempotency-Key.
  function renewError(msg) {
    const e = document.getElementById("renew-error");
    e.textContent = msg; e.hidden = !msg;
    if (msg) ix.reveal(e);
  }
  function openRenew() {
    const r = wallet.renewal;
    idemKey = newKey();
    renewError("");
    ix.showPayment("renew-", null);
    document.getElementById("renew-done").hidden = true;
    const from = wallet.next_cycle ? wallet.next_cycle.paid_until : wallet.expires_at;
    const running = new Date(wallet.expires_at) > new Date();
    const renewText = document.getElementById("renew-text");
    renewText.textContent = "";
    const params = { plan: ix.bdi(r.plan), days: tn("{n} day", "{n} days", r.period_days),
      price: money(r.price_cents), date: day(from) };
    renewText.append(running
      ? ix.tf("Renew {plan} for {days} for {price}, starting {date} when what you have paid ends (nothing of this cycle is lost).", params)
      : ix.tf("Renew {plan} for {days} for {price}, starting now.", params));
    f.setText("renew-balance-after", money(wallet.balance_cents - r.price_cents));
    const box = document.getElementById("renew-confirm");
    document.getElementById("renew-confirm-button").disabled = false;
    box.hidden = false;
    ix.reveal(box);
  }
  async function confirmRenew() {
    const button = document.getElementById("renew-confirm-button");
    button.disabled = true;
    let res;
    try {
      res = await ix.api("/customer/api/renew", { method: "POST",
        headers: { "Idempotency-Key": idemKey },
        body: { amount_cents: wallet.renewal.price_cents } });
    } catch (e) {
      // the same Idempotency-Key on the retry: never renewed (or charged) twice
      renewError(e.message + " " + t("The renewal may not have been made; press Confirm to try again."));
      button.disabled = false;
      return;
    }
    const error = res.data && res.data.error;
    if (res.status === 409 && error && error.amount_cents !== undefined) {
      wallet.renewal.price_cents = error.amount_cents;  // the price moved: confirm again
      openRenew();
      renewError(error.message);
      return;
    }
    if (res.status !== 200) {
      ix.showPayment("renew-", ix.paymentOf(error));
      renewError((error && error.message) || t("The renewal failed."));
      return;
    }
    document.getElementById("renew-confirm").hidden = true;
    const r = res.data;
    const doneText = document.getElementById("renew-done-text");
    doneText.textContent = "";
    const span = { plan: ix.bdi(r.renewal.plan), start: day(r.renewal.starts_at), end: day(r.renewal.expires_at) };
    doneText.append(r.renewal.next_cycle_paid
      ? ix.tf("{plan} renewed: {start} to {end} (next cycle paid).", span)
      : ix.tf("{plan} renewed: {start} to {end}.", span));
    let text = " " + t("Charged {amount}.", { amount: money(r.renewal.amount_cents) }) + " " +
      t("Balance {amount}.", { amount: money(r.balance_cents) });
    if (r.invoice) text += " " + t("Invoice {number}.", { number: r.invoice.number });
    doneText.append(text);
    const done = document.getElementById("renew-done");
    done.hidden = false;
    ix.reveal(done);
    await Promise.all([ix.load(loadWallet), ix.load(loadInvoices)]);
  }

  document.getElementById("renew-button").addEventListener("click", openRenew);
  document.getElementById("renew-confirm-button").addEventListener("click", confirmRenew);
  document.getElementById("renew-cancel-button").addEventListener("click", function () {
    document.getElementById("renew-confirm").hidden = true;
  });
  document.getElementById("wallet-more").addEventListener("click", function () {
    ix.load(loadOlder);
  });
  ix.load(loadWallet);
  ix.load(loadInvoices);
})();
