// Buy Data tab: price per GB, total and balance after, confirm, new state.
"use strict";
(function () {
  const ix = window.ispedge, f = ix.fmt, t = ix.t;
  let offer = null, idemKey = null, pending = null;
  const input = document.getElementById("gb");

  function money(c) { return f.money(c, offer.currency); }
  function showError(msg) {
    const e = document.getElementById("buy-error");
    e.textContent = msg; e.hidden = !msg;
  }
  // A failed confirm says so in the confirm card itself, brought into view above the
  // phone's bottom bar (not in the form further up, out of sight).
  function confirmError(msg) {
    const e = document.getElementById("confirm-error");
    e.textContent = msg; e.hidden = !msg;
    if (msg) ix.reveal(e);
  }
  function wholeGb() {
    const v = ix.asciiDigits(input.value.trim());  // ٣ typed on an Arabic keyboard is 3
    if (!/^[0-9]+$/.test(v)) return null;
    const n = parseInt(v, 10);
    return n >= 1 && n <= offer.max_gb ? n : null;
  }
  function update() {
    const gb = wholeGb();
    const button = document.getElementById("buy-button");
    if (gb === null) {
      ix.showPayment("", null);
      f.setText("total", "—"); f.setText("balance-after", "—");
      showError(t("Enter a whole number of GB from 1 to {max}.", { max: offer.max_gb }));
      button.disabled = true;
      return;
    }
    const total = gb * offer.price_per_gb_cents;
    f.setText("total", money(total));
    f.setText("balance-after", money(offer.balance_cents - total));
    const short = total - offer.balance_cents;
    showError(short > 0 ? t("Not enough balance: {amount} more is needed.", { amount: money(short) }) : "");
    ix.showPayment("", short > 0 ? offer.payment : null);  // where the shortfall is: how to pay
    button.disabled = short > 0;
  }
  function render() {
    f.setText("price-per-gb", money(offer.price_per_gb_cents));
    f.setText("balance", money(offer.balance_cents));
    f.setText("bonus", f.gb(offer.bonus_bytes));
    f.setText("max-gb", String(offer.max_gb));
    f.setText("expires-at", f.day(offer.expires_at));
    input.max = String(offer.max_gb);
    update();
  }
  async function load() {
    offer = ix.need(await ix.api("/customer/api/data"), t("Could not load the data offer."));
    render();
  }
  document.getElementById("buy-button").addEventListener("click", function () {
    const gb = wholeGb();
    if (gb === null) return;
    pending = { gb: gb, amount_cents: gb * offer.price_per_gb_cents };
    idemKey = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
    f.setText("confirm-text", t("Buy {amount} for {price}? Your balance will be {balance}.", {
      amount: f.gb(gb * 1e9), price: money(pending.amount_cents),
      balance: money(offer.balance_cents - pending.amount_cents) }));
    document.getElementById("done").hidden = true;
    confirmError("");
    ix.showPayment("confirm-", null);
    document.getElementById("confirm").hidden = false;
    document.getElementById("confirm-button").disabled = false;
    ix.reveal(document.getElementById("confirm"));
  });
  document.getElementById("cancel-button").addEventListener("click", function () {
    document.getElementById("confirm").hidden = true;
  });
  document.getElementById("confirm-button").addEventListener("click", async function () {
    this.disabled = true;
    let res;
    try {
      res = await ix.api("/customer/api/data/buy", { method: "POST",
        headers: { "Idempotency-Key": idemKey }, body: pending });
    } catch (e) {
      // the same Idempotency-Key on a retry: never bought twice
      this.disabled = false;
      confirmError(e.message + " " + t("Your purchase may not have been made; press Confirm to try again."));
      return;
    }
    if (res.status !== 200) {
      // Nothing was bought (an answer, not a lost call): Confirm stays off, Cancel closes.
      const error = res.data && res.data.error;
      ix.showPayment("confirm-", ix.paymentOf(error));  // short: how to pay, right here
      confirmError((error && error.message) || t("The purchase failed"));
      return;
    }
    document.getElementById("confirm").hidden = true;
    const r = res.data;
    f.setText("done-text", t("{amount} added for {price}. Extra data this cycle: {bonus}. Balance {balance}. Invoice {number}.", {
      amount: f.gb(r.topup.gb * 1e9), price: money(r.topup.amount_cents), bonus: f.gb(r.bonus_bytes),
      balance: money(r.balance_cents), number: r.invoice.number }));
    document.getElementById("done").hidden = false;
    ix.reveal(document.getElementById("done"));
    await ix.load(load);
  });
  input.addEventListener("input", function () { if (offer) update(); });
  document.getElementById("buy-button").disabled = true;  // until the price is known
  ix.load(load);
})();
