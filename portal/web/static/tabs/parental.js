// Parental tab: master switch, category toggles with 7-day counts, recently blocked domains.
"use strict";
(function () {
  const ix = window.ispedge, t = ix.t, tn = ix.tn;
  // The shipped categories' names; an operator's own categories keep the API's label.
  const LABELS = { adult: t("Adult content"), gambling: t("Gambling"),
    "social-media": t("Social media"), doh: t("Encrypted DNS bypass (DoH)") };
  function labelOf(c) { return LABELS[c.name] || c.label; }
  const COMMA = t(", ");  // a list's separator (Arabic: "، ")
  const master = document.getElementById("parental-enabled");
  let busy = false;

  function showError(msg) {
    const e = document.getElementById("parental-error");
    e.textContent = msg || ""; e.hidden = !msg;
  }
  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function categoryRow(c, enabled) {
    const li = el("li");
    const label = el("label", "switch-row");
    const id = "cat-" + c.name.replace(/[^a-z0-9_-]/gi, "_");
    label.htmlFor = id;
    label.appendChild(el("span", null, labelOf(c)));
    label.appendChild(el("span", "count", tn("{n} blocked", "{n} blocked", c.blocked_7d)));
    const box = el("input");
    box.type = "checkbox"; box.id = id; box.setAttribute("role", "switch");
    box.dataset.category = c.name;
    box.checked = c.on;
    box.title = enabled ? "" : t("Parental controls are off");
    box.addEventListener("change", function () {
      const toggles = {}; toggles[c.name] = box.checked;
      if (!master.checked && box.checked) {
        // Filtering is off: ticking a category turns it on with exactly the ticked
        // boxes on screen, and says so; nothing comes back that is not shown ticked.
        document.querySelectorAll("#category-list input[data-category]").forEach(function (b) {
          toggles[b.dataset.category] = b.checked;
        });
        save({ enabled: true, categories: toggles });
        return;
      }
      save({ categories: toggles });
    });
    label.appendChild(box);
    li.appendChild(label);
    return li;
  }
  function render(d) {
    master.checked = d.enabled;
    const on = d.categories.filter(function (c) { return c.on; }).map(labelOf);
    document.getElementById("parental-state").textContent = d.enabled
      ? (on.length ? t("Blocking: {list}.", { list: on.join(COMMA) }) : t("On, but no category is chosen."))
      : t("Off: nothing is blocked. Ticking a category turns filtering on for the ticked ones.");
    document.getElementById("blocked-total").textContent = ix.fmt.number(d.blocked_total_7d, 0);
    const list = document.getElementById("category-list");
    list.replaceChildren.apply(list, d.categories.map(function (c) { return categoryRow(c, d.enabled); }));
    list.classList.toggle("off", !d.enabled);
    const recent = document.getElementById("recent-list");
    recent.replaceChildren.apply(recent, d.recent.map(function (r) {
      const li = el("li");
      const domain = el("span", "domain", r.domain);
      domain.dir = "ltr";
      li.appendChild(domain);
      li.appendChild(el("span", "when", (LABELS[r.category] || r.category) + " · " + ix.fmt.when(r.blocked_at)));
      return li;
    }));
    document.getElementById("recent-empty").hidden = d.recent.length > 0;
    document.body.dataset.parentalLoaded = "1";
  }
  function failed(res, fallback) {
    showError((res.data && res.data.error && res.data.error.message) || fallback);
  }
  async function load(keepError) {
    const d = ix.need(await ix.api("/customer/api/parental"), t("Parental controls are unavailable."));
    if (!keepError) showError("");
    render(d);
  }
  async function save(change) {
    if (busy) return;
    busy = true;
    document.body.dataset.parentalSaving = "1";
    try {
      let res;
      try {
        res = await ix.api("/customer/api/parental", { method: "PUT", body: change });
      } catch (e) {
        res = { status: 0, data: { error: { message: e.message } } };
      }
      if (res.status !== 200) {
        // show what is really in force again, but keep saying why the change failed
        failed(res, t("The change was not saved"));
        await ix.load(function () { return load(true); }, { quiet: true });
        return;
      }
      showError("");
      render(res.data);
    } finally {
      busy = false;
      delete document.body.dataset.parentalSaving;
    }
  }
  master.addEventListener("change", function () { save({ enabled: master.checked }); });
  ix.load(load);
})();
