// Invoices tab: the wallet (balance, every money movement and its document, "Renew now"
// where the reseller allows it, how to pay where money is short), then the invoices,
// credit notes and receipts, each downloadable as PDF.
"use strict";
(function () {
  const ix = window.ispedge, f = ix.fmt;
  let wallet = null, idemKey = null, nextBefore = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function money(c) { return f.money(c, wallet ? wallet.currency : undefined); }
  function day(iso) { return new Date(iso).toLocaleDateString(); }
  function showError(msg) {
    const e = document.getElementById("invoice-error");
    e.textContent = msg; e.hidden = !msg;
    if (msg) ix.reveal(e);
  }
  function newKey() {
    return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
  }
  const TITLES = { credit_note: "Credit note ", receipt: "Receipt ", invoice: "Invoice " };

  async function download(doc) {
    // The token travels only in the header, so fetch the PDF and save the blob.
    let res;
    try {
      res = await fetch("/customer/api/invoices/" + doc.id + "/pdf",
        { headers: { "Authorization": "Bearer " + ix.token() } });
    } catch (e) { res = { ok: false }; }
    if (!res.ok) { showError("Could not download " + doc.number + ". Please try again."); return; }
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
    const b = el("button", "", "PDF");
    b.type = "button";
    b.setAttribute("aria-label", "Download " + label + " as PDF");
    b.addEventListener("click", function () { download(doc); });
    return b;
  }

  // How to pay the reseller, shown where money is short (prefix: "" or "renew-").
  function showPayment(prefix, instructions, contact) {
    const box = document.getElementById(prefix + "payment");
    f.setText(prefix + "payment-instructions", instructions ||
      "Please contact your operator to top up your wallet.");
    f.setText(prefix + "payment-contact", contact || "");
    document.getElementById(prefix + "payment-contact-line").hidden = !contact;
    box.hidden = false;
  }

  function renderWallet() {
    const w = wallet, r = w.renewal;
    f.setText("wallet-balance", money(w.balance_cents));
    f.setText("renew-plan", r.plan);
    f.setText("wallet-expires", f.when(w.expires_at));
    const next = document.getElementById("next-cycle");
    next.hidden = !w.next_cycle;
    if (w.next_cycle) {
      next.textContent = "Next cycle paid: " + day(w.next_cycle.starts_at) + " to " +
        day(w.next_cycle.paid_until) + ".";
    }
    const short = r.price_cents - w.balance_cents;
    document.getElementById("renew-offer").hidden = !r.self_service;
    document.getElementById("renew-by-operator").hidden = r.self_service;
    const button = document.getElementById("renew-button");
    button.textContent = "Renew now — " + money(r.price_cents) + " for " + r.period_days + " days";
    button.disabled = short > 0;
    const shortfall = document.getElementById("shortfall");
    shortfall.hidden = !(r.self_service && short > 0);
    shortfall.textContent = short > 0 ? "Not enough balance to renew: " + money(short) +
      " more is needed." : "";
    // Renewing through the operator, or short of money: how to pay is right here.
    if (!r.self_service || short > 0) {
      showPayment("", w.payment.instructions, w.payment.contact);
    } else {
      document.getElementById("payment").hidden = true;
    }
  }

  function entryItem(e) {
    const li = el("li");
    li.dataset.entryId = e.id;
    li.dataset.kind = e.kind;
    const sign = e.amount_cents < 0 ? "−" : "+";
    li.append(el("span", "number", e.label.charAt(0).toUpperCase() + e.label.slice(1)),
      el("span", "date", day(e.created_at)),
      el("span", "amount", sign + money(Math.abs(e.amount_cents))));
    if (e.document) {
      const name = (TITLES[e.document.kind] || "Document ") + e.document.number;
      li.append(pdfButton(e.document, name));
      li.append(el("span", "muted lines", name + " · balance after " + money(e.balance_after_cents)));
    } else {
      li.append(el("span", "muted lines", "Balance after " + money(e.balance_after_cents)));
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
    wallet = ix.need(await ix.api("/customer/api/wallet"), "Could not load your wallet.");
    nextBefore = wallet.next_before;
    renderWallet();
    renderEntries(wallet.entries, false);
  }
  async function loadOlder() {
    const res = ix.need(await ix.api("/customer/api/wallet?before=" + nextBefore),
      "Could not load older movements.");
    nextBefore = res.next_before;
    renderEntries(res.entries, true);
  }

  async function loadInvoices() {
    const data = ix.need(await ix.api("/customer/api/invoices"), "Could not load your invoices.");
    const list = document.getElementById("invoice-list");
    list.textContent = "";
    document.getElementById("empty").hidden = data.invoices.length > 0;
    data.invoices.forEach(function (inv) {
      const li = el("li");
      li.dataset.invoiceId = inv.id;
      const name = (TITLES[inv.kind] || "Invoice ") + inv.number;
      li.append(el("span", "number", name),
        el("span", "date", day(inv.issued_at)),
        el("span", "amount", (inv.kind === "credit_note" ? "−" : "") + f.money(inv.total_cents, inv.currency)));
      const what = el("span", "muted lines", inv.lines.map(function (l) { return l.description; }).join("; "));
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
    document.getElementById("renew-payment").hidden = true;
    document.getElementById("renew-done").hidden = true;
    const from = wallet.next_cycle ? wallet.next_cycle.paid_until : wallet.expires_at;
    const running = new Date(wallet.expires_at) > new Date();
    f.setText("renew-text", "Renew " + r.plan + " for " + r.period_days + " days for " +
      money(r.price_cents) + (running ? ", starting " + day(from) +
        " when what you have paid ends (nothing of this cycle is lost)." : ", starting now."));
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
      renewError(e.message + " The renewal may not have been made; press Confirm to try again.");
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
      if (error && error.code === "insufficient_funds") {
        showPayment("renew-", error.payment_instructions, error.payment_contact);
      }
      renewError((error && error.message) || "The renewal failed.");
      return;
    }
    document.getElementById("renew-confirm").hidden = true;
    const r = res.data;
    let text = r.renewal.plan + " renewed: " + day(r.renewal.starts_at) + " to " +
      day(r.renewal.expires_at) + (r.renewal.next_cycle_paid ? " (next cycle paid). " : ". ");
    text += "Charged " + money(r.renewal.amount_cents) + ". Balance " + money(r.balance_cents) + ".";
    if (r.invoice) text += " Invoice " + r.invoice.number + ".";
    f.setText("renew-done-text", text);
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
