// Parental tab: master switch, category toggles with 7-day counts, recently blocked domains.
"use strict";
(function () {
  const ix = window.ispedge;
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
    label.appendChild(el("span", null, c.label));
    label.appendChild(el("span", "count", c.blocked_7d + " blocked"));
    const box = el("input");
    box.type = "checkbox"; box.id = id; box.setAttribute("role", "switch");
    box.dataset.category = c.name;
    box.checked = c.on;
    box.title = enabled ? "" : "Parental controls are off";
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
    const on = d.categories.filter(function (c) { return c.on; }).map(function (c) { return c.label; });
    document.getElementById("parental-state").textContent = d.enabled
      ? (on.length ? "Blocking: " + on.join(", ") + "." : "On, but no category is chosen.")
      : "Off: nothing is blocked. Ticking a category turns filtering on for the ticked ones.";
    document.getElementById("blocked-total").textContent = String(d.blocked_total_7d);
    const list = document.getElementById("category-list");
    list.replaceChildren.apply(list, d.categories.map(function (c) { return categoryRow(c, d.enabled); }));
    list.classList.toggle("off", !d.enabled);
    const recent = document.getElementById("recent-list");
    recent.replaceChildren.apply(recent, d.recent.map(function (r) {
      const li = el("li");
      li.appendChild(el("span", "domain", r.domain));
      li.appendChild(el("span", "when", r.category + " · " + new Date(r.blocked_at).toLocaleString()));
      return li;
    }));
    document.getElementById("recent-empty").hidden = d.recent.length > 0;
    document.body.dataset.parentalLoaded = "1";
  }
  function failed(res, fallback) {
    showError((res.data && res.data.error && res.data.error.message) || fallback);
  }
  async function load(keepError) {
    const d = ix.need(await ix.api("/customer/api/parental"), "Parental controls are unavailable.");
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
        failed(res, "The change was not saved");
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
