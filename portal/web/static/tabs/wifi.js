// WiFi tab: router facts, SSIDs per band, change modal (full screen on phones), restart.
"use strict";
(function () {
  const ix = window.ispedge, f = ix.fmt, setText = f.setText;
  const REFRESH_MS = 30000;  // "last contact" follows the router's informs
  async function api(path, options) {
    try { return await ix.api(path, options); }
    catch (e) { return { status: 0, data: { error: { message: e.message + " Please try again." } } }; }
  }
  const BAND_LABEL = { "2.4": "2.4 GHz", "5": "5 GHz" };
  const STATUS_LABEL = { sending: "Sending…", pending: "Pending", done: "Done",
                         faulted: "Refused by your router", failed: "Not sent" };
  let editingBand = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function errorText(res, fallback) {
    return (res.data && res.data.error && res.data.error.message) || fallback;
  }

  async function load() {
    const status = document.getElementById("wifi-status");
    let res;
    try {
      res = { data: ix.need(await ix.api("/customer/api/wifi"),
        "We could not reach your router right now.") };
    } catch (e) {
      // said on the router card too (e.g. "the router management server cannot be reached")
      status.textContent = e.message;
      status.hidden = false;
      throw e;
    }
    const d = res.data.device;
    status.hidden = true;
    document.getElementById("router-facts").hidden = false;
    setText("router-model", [d.manufacturer, d.model].filter(Boolean).join(" "));
    setText("router-serial", d.serial);
    const contact = document.getElementById("router-contact");
    contact.dataset.at = d.last_contact || "";
    renderContact();
    document.getElementById("reboot-btn").hidden = false;
    const list = document.getElementById("networks");
    list.textContent = "";
    d.networks.forEach(function (n) {
      const li = el("li", "network");
      li.dataset.band = n.band;
      const text = el("div", "network-text");
      text.append(el("span", "muted", BAND_LABEL[n.band] || n.band), el("strong", "ssid", n.ssid));
      const btn = el("button", "secondary change-btn", "Change");
      btn.type = "button";
      btn.addEventListener("click", function () { openModal(n); });
      li.append(text, btn);
      list.appendChild(li);
    });
    document.getElementById("networks-card").hidden = false;
    renderTasks(res.data.tasks);
  }

  function renderTasks(tasks) {
    const list = document.getElementById("tasks");
    list.textContent = "";
    tasks.forEach(function (t) { list.appendChild(taskItem(t)); });
    document.getElementById("tasks-card").hidden = tasks.length === 0;
    tasks.forEach(function (t) { if (t.status === "pending") poll(t.id, 0); });
  }

  function taskItem(t) {
    const li = el("li", "task status-" + t.status);
    li.id = "task-" + t.id;
    const what = t.action === "reboot" ? "Router restart" :
      (BAND_LABEL[t.band] || "") + ": " + t.detail;
    const at = el("time", "muted task-time", f.when(t.created_at));
    if (t.created_at) at.dateTime = t.created_at;
    li.append(el("span", "task-what", what), el("span", "badge", STATUS_LABEL[t.status] || t.status), at);
    if (t.status !== "done" && t.message) li.append(el("span", "task-message", t.message));
    return li;
  }

  function showTask(t) {
    const old = document.getElementById("task-" + t.id);
    const item = taskItem(t);
    const list = document.getElementById("tasks");
    if (old) old.replaceWith(item); else list.prepend(item);
    document.getElementById("tasks-card").hidden = false;
    if (t.status === "pending") poll(t.id, 0);
    if (t.status === "done") setTimeout(function () { ix.load(load, { quiet: true }); }, 500);
  }

  function poll(id, tries) {
    if (tries > 40) return;
    setTimeout(async function () {
      const res = await api("/customer/api/wifi/tasks/" + id);
      if (res.status !== 200) return;
      if (res.data.status === "pending") { poll(id, tries + 1); return; }
      showTask(res.data);
    }, 2000);
  }

  function openModal(n) {
    editingBand = n.band;
    setText("wifi-modal-title", "Change " + (BAND_LABEL[n.band] || "") + " WiFi");
    document.getElementById("wifi-ssid").value = n.ssid;
    const pass = document.getElementById("wifi-pass");
    pass.value = "";
    pass.disabled = !n.passphrase_settable;
    document.getElementById("wifi-error").hidden = true;
    document.getElementById("wifi-modal").hidden = false;
    document.body.classList.add("modal-open");
    document.getElementById("wifi-ssid").focus();
  }
  function closeModal() {
    document.getElementById("wifi-modal").hidden = true;
    document.body.classList.remove("modal-open");
  }
  document.getElementById("wifi-cancel").addEventListener("click", closeModal);
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") closeModal(); });

  document.getElementById("wifi-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const err = document.getElementById("wifi-error");
    const save = document.getElementById("wifi-save");
    err.hidden = true;
    save.disabled = true;
    const current = document.querySelector('.network[data-band="' + editingBand + '"] .ssid');
    const ssid = document.getElementById("wifi-ssid").value;
    const body = { band: editingBand, passphrase: document.getElementById("wifi-pass").value };
    if (!current || ssid !== current.textContent) body.ssid = ssid;
    if (body.ssid !== undefined && !ssid.trim()) {
      save.disabled = false;
      err.textContent = "The network name cannot be empty or only spaces.";
      err.hidden = false;
      return;
    }
    const res = await api("/customer/api/wifi/changes", { method: "POST", body: body });
    save.disabled = false;
    if (res.status === 200 || res.status === 202) {
      closeModal();
      showTask(res.data);
    } else {
      err.textContent = errorText(res, "The change could not be sent.");
      err.hidden = false;
    }
  });

  const reboot = document.getElementById("reboot-btn");
  let armed = false;
  reboot.addEventListener("click", async function () {
    if (!armed) {
      armed = true;
      reboot.textContent = "Tap again to restart (internet drops for ~2 minutes)";
      setTimeout(function () { armed = false; reboot.textContent = "Restart router"; }, 5000);
      return;
    }
    armed = false;
    reboot.textContent = "Restart router";
    const res = await api("/customer/api/wifi/reboot", { method: "POST" });
    if (res.status === 200 || res.status === 202) showTask(res.data);
    else {
      setText("wifi-status", errorText(res, "The restart could not be sent."));
      document.getElementById("wifi-status").hidden = false;
    }
  });

  function renderContact() {
    const c = document.getElementById("router-contact");
    if (!c) return;
    const at = c.dataset.at;
    c.textContent = at ? f.when(at) + " (" + f.ago((Date.now() - Date.parse(at)) / 1000) + ")" : "never";
  }
  ix.load(load);
  setInterval(renderContact, 10000);
  setInterval(function () { ix.load(load, { quiet: true }); }, REFRESH_MS);
})();
