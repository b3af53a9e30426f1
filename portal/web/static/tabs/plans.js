// Change Plan tab: list offered plans, preview the exact prorated amount, confirm.
"use strict";
(function () {
  const ix = window.ispedge, f = ix.fmt, t = ix.t, tn = ix.tn;
  let state = null, quote = null, idemKey = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function money(c) { return f.money(c, state.currency); }
  function showError(msg) {
    const e = document.getElementById("confirm-error");
    e.textContent = msg; e.hidden = !msg;
    if (msg) ix.reveal(e);  // above the phone's bottom bar, not under it
  }

  function render() {
    const current = state.plans.find(function (p) { return p.current; });
    f.setText("current-plan", current ? current.name : "—");
    f.setText("balance", money(state.balance_cents));
    f.setText("refund-note", state.refund_allowed
      ? t("Upgrades are charged and downgrades refunded for the rest of this billing cycle.")
      : t("Upgrades are charged for the rest of this billing cycle; downgrades are not refunded."));
    const list = document.getElementById("plan-list");
    list.textContent = "";
    state.plans.forEach(function (p) {
      const card = el("article", "card plan" + (p.current ? " current" : ""));
      card.dataset.planId = p.id;
      const name = el("h3", "", p.name);
      name.dir = "auto";
      card.append(name,
        el("p", "", t("{down} down · {up} up", { down: f.speed(p.down_kbps), up: f.speed(p.up_kbps) })),
        el("p", "", p.quota_bytes ? t("{amount} per cycle", { amount: f.gb(p.quota_bytes) }) : t("Unlimited data")),
        el("p", "price", money(p.price_cents) + " / " + tn("{n} day", "{n} days", p.period_days)));
      const b = el("button", p.current ? "secondary" : "primary", p.current ? t("Your plan") : t("Choose"));
      b.type = "button";
      b.disabled = p.current;
      b.addEventListener("click", function () { preview(p.id); });
      card.appendChild(b);
      list.appendChild(card);
    });
  }

  async function preview(planId) {
    showError("");
    ix.showPayment("confirm-", null);
    document.getElementById("done").hidden = true;
    let res;
    try {
      res = await ix.api("/customer/api/plans/quote", { method: "POST", body: { plan_id: planId } });
    } catch (e) {
      res = { status: 0, data: { error: { message: e.message + " " + t("Please try again.") } } };
    }
    const box = document.getElementById("confirm");
    if (res.status !== 200) {
      box.hidden = false;
      f.setText("confirm-description", "");
      f.setText("confirm-amount", "");
      showError((res.data && res.data.error && res.data.error.message) || t("Could not price this change"));
      document.getElementById("confirm-button").disabled = true;
      ix.reveal(box);
      return;
    }
    show(res.data);
  }

  // The server's signed quote: what is confirmed is this token, never a time or amount.
  function show(offer) {
    const box = document.getElementById("confirm");
    quote = offer;
    idemKey = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
    const description = document.getElementById("confirm-description");
    description.textContent = "";  // said in this language, the plan names isolated
    description.append(ix.isolated(quote.description_text || quote.description));
    let amountText;
    if (quote.amount_cents > 0) amountText = t("You pay {amount}", { amount: money(quote.amount_cents) });
    else if (quote.amount_cents < 0) amountText = t("Refund {amount}", { amount: money(-quote.amount_cents) });
    else amountText = quote.prorated_cents < 0 ? t("No charge (no refund)") : t("No charge");
    f.setText("confirm-amount", amountText);
    f.setText("confirm-balance-after", money(quote.balance_after_cents));
    // Costs more than the wallet holds: the shortfall and how to pay, before Confirm.
    const short = -quote.balance_after_cents;
    ix.showPayment("confirm-", short > 0 ? state.payment : null);
    if (short > 0) showError(t("Not enough balance: {amount} more is needed.", { amount: money(short) }));
    document.getElementById("confirm-button").disabled = short > 0;
    box.hidden = false;
    ix.reveal(box);
  }

  async function confirm() {
    const button = document.getElementById("confirm-button");
    button.disabled = true;
    let res;
    try {
      res = await ix.api("/customer/api/plans/change", { method: "POST",
        headers: { "Idempotency-Key": idemKey },
        body: { plan_id: quote.plan_id, quote: quote.quote } });
    } catch (e) {
      // same Idempotency-Key on the retry: the change is never made twice
      showError(e.message + " " + t("The change may not have been made; press Confirm to try again."));
      button.disabled = false;
      return;
    }
    const error = res.data && res.data.error;
    if (res.status === 409 && error && error.quote) {
      // The price moved or the quote expired: show the new price to confirm again.
      show(error.quote);
      showError(error.message);
      return;
    }
    if (res.status !== 200) {
      ix.showPayment("confirm-", ix.paymentOf(error));
      showError((error && error.message) || t("The change failed"));
      button.disabled = res.status === 429;  // the day's changes are used up
      return;
    }
    document.getElementById("confirm").hidden = true;
    const r = res.data;
    const done = document.getElementById("done-text");
    done.textContent = "";
    done.append(ix.tf("You are now on {plan} ({speed}).", { plan: ix.bdi(r.plan.name), speed: f.speed(r.plan.down_kbps) }));
    let text = " ";
    if (r.amount_cents > 0) text += t("Charged {amount}.", { amount: money(r.amount_cents) }) + " ";
    if (r.amount_cents < 0) text += t("Refunded {amount}.", { amount: money(-r.amount_cents) }) + " ";
    text += t("Balance {amount}.", { amount: money(r.balance_cents) });
    if (r.invoice) text += " " + t("Invoice {number}.", { number: r.invoice.number });
    done.append(text);
    document.getElementById("done").hidden = false;
    ix.reveal(document.getElementById("done"));
    await ix.load(load);
  }

  async function load() {
    state = ix.need(await ix.api("/customer/api/plans"), t("Could not load the plans."));
    render();
  }

  document.getElementById("confirm-button").addEventListener("click", confirm);
  document.getElementById("cancel-button").addEventListener("click", function () {
    document.getElementById("confirm").hidden = true;
  });
  ix.load(load);
})();
