// WiFi tab: router facts, SSIDs per band, change modal (full screen on phones), restart.
"use strict";
(function () {
  const ix = window.ispedge, f = ix.fmt, setText = f.setText, t = ix.t;
  const REFRESH_MS = 30000;  // "last contact" follows the router's informs
  async function api(path, options) {
    try { return await ix.api(path, options); }
    catch (e) { return { status: 0, data: { error: { message: e.message + " " + t("Please try again.") } } }; }
  }
  const BAND_LABEL = { "2.4": t("{band} GHz", { band: f.number(2.4, 1) }), "5": t("{band} GHz", { band: f.number(5, 0) }) };
  const STATUS_LABEL = { sending: t("Sending…"), pending: t("Pending"), done: t("Done"),
                         faulted: t("Refused by your router"), failed: t("Not sent") };
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
        t("We could not reach your router right now.")) };
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
      const ssid = el("strong", "ssid", n.ssid);
      ssid.dir = "auto";
      text.append(el("span", "muted", BAND_LABEL[n.band] || n.band), ssid);
      const btn = el("button", "secondary change-btn", t("Change"));
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
    tasks.forEach(function (task) { list.appendChild(taskItem(task)); });
    document.getElementById("tasks-card").hidden = tasks.length === 0;
    tasks.forEach(function (task) { if (task.status === "pending") poll(task.id, 0); });
  }

  // The server describes a change in English ("name and password changed"): said again here.
  const DETAILS = { "name changed": t("name changed"), "password changed": t("password changed"),
    "name and password changed": t("name and password changed") };
  function taskDetail(detail) { return DETAILS[detail] || detail; }
  function taskItem(task) {
    const li = el("li", "task status-" + task.status);
    li.id = "task-" + task.id;
    const what = task.action === "reboot" ? t("Router restart") :
      (BAND_LABEL[task.band] || "") + ": " + taskDetail(task.detail);
    const at = el("time", "muted task-time", f.when(task.created_at));
    if (task.created_at) at.dateTime = task.created_at;
    li.append(el("span", "task-what", what), el("span", "badge", STATUS_LABEL[task.status] || task.status), at);
    // said in this language by the server (message_text); an old server: its English
    const message = task.message_text !== undefined ? task.message_text : task.message;
    if (task.status !== "done" && message) {
      const said = el("span", "task-message");
      said.append(ix.isolated(message));  // a router's fault code stays its own
      li.append(said);
    }
    return li;
  }

  function showTask(task) {
    const old = document.getElementById("task-" + task.id);
    const item = taskItem(task);
    const list = document.getElementById("tasks");
    if (old) old.replaceWith(item); else list.prepend(item);
    document.getElementById("tasks-card").hidden = false;
    if (task.status === "pending") poll(task.id, 0);
    if (task.status === "done") setTimeout(function () { ix.load(load, { quiet: true }); }, 500);
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
    setText("wifi-modal-title", t("Change {band} WiFi", { band: BAND_LABEL[n.band] || "" }));
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
      err.textContent = t("The network name cannot be empty or only spaces.");
      err.hidden = false;
      return;
    }
    const res = await api("/customer/api/wifi/changes", { method: "POST", body: body });
    save.disabled = false;
    if (res.status === 200 || res.status === 202) {
      closeModal();
      showTask(res.data);
    } else {
      err.textContent = errorText(res, t("The change could not be sent."));
      err.hidden = false;
    }
  });

  const reboot = document.getElementById("reboot-btn");
  let armed = false;
  reboot.addEventListener("click", async function () {
    if (!armed) {
      armed = true;
      reboot.textContent = t("Tap again to restart (internet drops for ~2 minutes)");
      setTimeout(function () { armed = false; reboot.textContent = t("Restart router"); }, 5000);
      return;
    }
    armed = false;
    reboot.textContent = t("Restart router");
    const res = await api("/customer/api/wifi/reboot", { method: "POST" });
    if (res.status === 200 || res.status === 202) showTask(res.data);
    else {
      setText("wifi-status", errorText(res, t("The restart could not be sent.")));
      document.getElementById("wifi-status").hidden = false;
    }
  });

  function renderContact() {
    const c = document.getElementById("router-contact");
    if (!c) return;
    const at = c.dataset.at;
    c.textContent = at ? f.when(at) + " (" + f.ago((Date.now() - Date.parse(at)) / 1000) + ")" : t("never");
  }
  ix.load(load);
  setInterval(renderContact, 10000);
  setInterval(function () { ix.load(load, { quiet: true }); }, REFRESH_MS);
})();
