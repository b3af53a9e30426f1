// ispedge customer portal. No inline script anywhere (CSP script-src 'self').
// The token lives in localStorage and travels only in the Authorization header.
"use strict";
(function () {
  const TOKEN_KEY = "ispedge.token";
  const page = document.body.dataset.page;
  const primary = document.body.dataset.primary;
  if (primary && /^#[0-9a-fA-F]{6}$/.test(primary)) {
    document.documentElement.style.setProperty("--primary", primary);
  }

  function token() { return localStorage.getItem(TOKEN_KEY); }

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    const t = token();
    if (t) opts.headers["Authorization"] = "Bearer " + t;
    if (opts.body && typeof opts.body !== "string") {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.body);
    }
    const res = await fetch(path, opts);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401 && page !== "login") {
      localStorage.removeItem(TOKEN_KEY);
      location.href = "/customer/login";
    }
    return { status: res.status, data: data };
  }
  window.ispedge = { api: api, token: token };

  function money(cents, currency) {
    return (cents / 100).toLocaleString(undefined, { style: "currency", currency: currency || "USD" });
  }
  function speed(kbps) {
    return kbps >= 1000 ? (kbps / 1000).toLocaleString() + " Mbps" : kbps + " kbps";
  }
  function gb(bytes) { return (bytes / 1e9).toLocaleString(undefined, { maximumFractionDigits: 2 }) + " GB"; }
  function countdown(seconds) {
    if (seconds <= 0) return "Expired";
    const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    return d > 0 ? d + " days " + h + " h" : h + " h " + m + " min";
  }
  function setText(id, text) { const el = document.getElementById(id); if (el) el.textContent = text; }
  window.ispedge.fmt = { money: money, speed: speed, gb: gb, countdown: countdown, setText: setText };

  function applyBranding(b) {
    if (!b) return;
    if (b.primary_color && /^#[0-9a-fA-F]{6}$/.test(b.primary_color)) {
      document.documentElement.style.setProperty("--primary", b.primary_color);
    }
    setText("company-name", b.company_name);
    setText("tagline", b.tagline || "");
    setText("footer-text", b.footer_text || "");
    document.title = b.company_name;
  }
  window.ispedge.applyBranding = applyBranding;

  if (page === "login") {
    if (token()) { location.href = "/customer/"; return; }
    const form = document.getElementById("login-form");
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const err = document.getElementById("login-error");
      err.hidden = true;
      const res = await api("/customer/api/login", { method: "POST", body: {
        username: document.getElementById("username").value,
        password: document.getElementById("password").value } });
      if (res.status === 200 && res.data && res.data.token) {
        localStorage.setItem(TOKEN_KEY, res.data.token);
        location.href = "/customer/";
      } else {
        err.textContent = (res.data && res.data.error && res.data.error.message) || "Sign in failed";
        err.hidden = false;
      }
    });
  }

  if (page && page !== "login") {
    if (!token()) { location.href = "/customer/login"; return; }
    const logout = document.getElementById("logout");
    if (logout) logout.addEventListener("click", async function () {
      await api("/customer/api/logout", { method: "POST" });
      localStorage.removeItem(TOKEN_KEY);
      location.href = "/customer/login";
    });
  }

  // Every shell page: load the subscriber once, build the nav, then let the
  // tab's own script (static/tabs/<tab>.js) render from the same data.
  const meHandlers = [];
  let meData = null;
  window.ispedge.onMe = function (fn) { if (meData) fn(meData); else meHandlers.push(fn); };
  window.ispedge.reloadMe = loadMe;
  function buildNav(tabs) {
    const nav = document.getElementById("tabs");
    if (!nav) return;
    nav.textContent = "";
    tabs.forEach(function (t) {
      const a = document.createElement("a");
      a.href = t.url;
      a.className = "tab" + (t.name === page ? " active" : "");
      a.dataset.tab = t.name;
      const icon = document.createElement("span");
      icon.className = "tab-icon";
      icon.textContent = t.icon;
      const label = document.createElement("span");
      label.className = "tab-label";
      label.textContent = t.label;
      a.append(icon, label);
      nav.appendChild(a);
    });
  }
  function loadMe() {
    return api("/customer/api/me").then(function (res) {
      if (res.status !== 200) return;
      meData = res.data;
      applyBranding(meData.branding);
      buildNav(meData.tabs || []);
      meHandlers.splice(0).forEach(function (fn) { fn(meData); });
    });
  }
  if (page && page !== "login") loadMe();

  // Installable on a phone home screen: the worker caches only the static shell.
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/customer/sw.js", { scope: "/customer/" }).catch(function () {});
  }
})();
