// Notifications (account menu): channels and quiet hours, this device's Web Push, the log.
"use strict";
(function () {
  const ix = window.ispedge, setText = ix.fmt.setText, t = ix.t;
  const EVENTS = { expiry_soon: t("Plan expires soon"), expired: t("Plan expired"),
                   fup_tier: t("Fair-use limit reached"), extra_used_up: t("Extra data used up"),
                   ticket_answered: t("Support answered"), receipt: t("Receipt") };
  const CHANNELS = { email: t("E-mail"), sms: t("SMS"), push: t("Device") };
  const STATES = { pending: t("Waiting"), claimed: t("Sending"), sending: t("Sending"), sent: t("Sent"),
                   failed: t("Not delivered"), unknown: t("Maybe delivered") };
  const NO_ADDRESS = t("(no address on file)"), NO_NUMBER = t("(no number on file)"),
    NOT_OFFERED = t("(not offered)");
  let view = null;

  function b64ToBytes(text) {
    const pad = "=".repeat((4 - text.length % 4) % 4);
    const raw = atob((text + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, function (c) { return c.charCodeAt(0); });
  }
  function showError(id, message) {
    const el = document.getElementById(id);
    el.textContent = message || "";
    el.hidden = !message;
    if (message) ix.reveal(el);
  }

  function render(v) {
    view = v;
    const p = v.preferences;
    ["email", "sms", "push"].forEach(function (c) {
      const box = document.getElementById("pref-" + c);
      box.checked = p[c];
      box.disabled = !v.channels[c];
    });
    setText("email-address", v.channels.email ? (v.email ? "(" + v.email + ")" : NO_ADDRESS) : NOT_OFFERED);
    setText("phone-number", v.channels.sms ? (v.phone ? "(" + v.phone + ")" : NO_NUMBER) : NOT_OFFERED);
    document.getElementById("quiet-start").value = p.quiet_start;
    document.getElementById("quiet-end").value = p.quiet_end;
    const list = document.getElementById("log");
    list.textContent = "";
    v.log.forEach(function (n) {
      const li = document.createElement("li");
      li.textContent = (EVENTS[n.event] || n.event) + " · " + (CHANNELS[n.channel] || n.channel)
        + " · " + (STATES[n.state] || n.state) + " · " + ix.fmt.when(n.sent_at || n.created_at);
      list.appendChild(li);
    });
    document.getElementById("log-empty").hidden = v.log.length > 0;
    return deviceState();
  }

  async function registration() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) return null;
    return navigator.serviceWorker.getRegistration("/customer/");
  }
  async function deviceState() {
    const on = document.getElementById("device-on"), off = document.getElementById("device-off");
    const reg = await registration();
    if (!reg || !view.channels.push) {
      setText("device-status", t("This browser cannot receive notifications."));
      on.hidden = off.hidden = true;
      return;
    }
    const current = await reg.pushManager.getSubscription();
    setText("device-status", current ? t("Notifications are on for this device.")
                                     : t("Notifications are off on this device."));
    on.hidden = !!current;
    off.hidden = !current;
  }

  async function load() {
    render(ix.need(await ix.api("/customer/api/notifications"),
                   t("We could not load your notification settings.")));
  }

  document.getElementById("prefs-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    showError("prefs-error", "");
    document.getElementById("prefs-done").hidden = true;
    const body = {
      email: document.getElementById("pref-email").checked,
      sms: document.getElementById("pref-sms").checked,
      push: document.getElementById("pref-push").checked,
      quiet_start: document.getElementById("quiet-start").value,
      quiet_end: document.getElementById("quiet-end").value,
    };
    try {
      const res = await ix.api("/customer/api/notifications/preferences",
                               { method: "PUT", body: body });
      if (res.status !== 200) { showError("prefs-error", ix.errorMessage(res, t("Not saved."))); return; }
      await render(res.data);
      const done = document.getElementById("prefs-done");
      done.hidden = false;
      ix.reveal(done);
    } catch (e) { showError("prefs-error", e.message + " " + t("Please try again.")); }
  });

  document.getElementById("device-on").addEventListener("click", async function () {
    showError("device-error", "");
    try {
      const reg = await registration();
      if (await Notification.requestPermission() !== "granted") {
        showError("device-error", t("Notifications are blocked for this site in your browser settings."));
        return;
      }
      const sub = await reg.pushManager.subscribe({ userVisibleOnly: true,
        applicationServerKey: b64ToBytes(view.push_key) });
      const res = await ix.api("/customer/api/notifications/push",
                               { method: "POST", body: sub.toJSON() });
      if (res.status !== 201) { await sub.unsubscribe(); showError("device-error", ix.errorMessage(res, t("Not turned on."))); return; }
      await render(res.data);
    } catch (e) { showError("device-error", t("Not turned on: {reason}", { reason: e.message })); }
  });

  document.getElementById("device-off").addEventListener("click", async function () {
    showError("device-error", "");
    try {
      const reg = await registration();
      const sub = reg && await reg.pushManager.getSubscription();
      if (sub) {
        await ix.api("/customer/api/notifications/push/remove",
                     { method: "POST", body: { endpoint: sub.endpoint } });
        await sub.unsubscribe();
      }
      await deviceState();
    } catch (e) { showError("device-error", t("Not turned off: {reason}", { reason: e.message })); }
  });

  ix.load(load);
})();
