// Invoices tab: the subscriber's invoices and credit notes, each downloadable as PDF.
"use strict";
(function () {
  const ix = window.ispedge, f = ix.fmt, t = ix.t;
  const KINDS = { invoice: t("Invoice {number}"), credit_note: t("Credit note {number}"),
    receipt: t("Receipt {number}") };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function showError(msg) {
    const e = document.getElementById("invoice-error");
    e.textContent = msg; e.hidden = !msg;
  }
  async function download(inv) {
    // The token travels only in the header, so fetch the PDF and save the blob.
    let res;
    try {
      res = await fetch("/customer/api/invoices/" + inv.id + "/pdf",
        { headers: Object.assign({ "Authorization": "Bearer " + ix.token() },
          localStorage.getItem("ispedge.language") ? { "X-Portal-Language": ix.language } : {}) });
    } catch (e) { res = { ok: false }; }
    if (!res.ok) { showError(t("Could not download {number}", { number: inv.number })); return; }
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = inv.number + ".pdf";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }
  async function load() {
    const res = { data: ix.need(await ix.api("/customer/api/invoices"), t("Could not load your invoices.")) };
    const list = document.getElementById("invoice-list");
    list.textContent = "";
    document.getElementById("empty").hidden = res.data.invoices.length > 0;
    res.data.invoices.forEach(function (inv) {
      const li = el("li");
      li.dataset.invoiceId = inv.id;
      const kind = KINDS[inv.kind] || KINDS.invoice;
      // the document number stays left to right inside an Arabic label
      const number = el("span", "number");
      const parts = kind.split("{number}");
      const id = el("bdi", "", inv.number);
      id.dir = "ltr";
      number.append(parts[0], id, parts[1] || "");
      li.append(number,
        el("span", "date", f.day(inv.issued_at)),
        el("span", "amount", (inv.kind === "credit_note" ? "−" : "") + f.money(inv.total_cents, inv.currency)));
      const what = el("span", "muted lines", inv.lines.map(function (l) { return l.description; }).join("; "));
      what.dir = "auto";  // stored with the document, in the language it was issued in
      const b = el("button", "", t("PDF"));
      b.type = "button";
      b.addEventListener("click", function () { download(inv); });
      li.append(b, what);
      list.appendChild(li);
    });
  }
  ix.load(load);
})();
