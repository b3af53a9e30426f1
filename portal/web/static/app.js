// ispedge customer portal. No inline script anywhere (CSP script-src 'self').
// The token lives in localStorage and travels only in the Authorization header.
"use strict";
(function () {
  const TOKEN_KEY = "ispedge.token";
  const LANG_KEY = "ispedge.language";  // this device's override of the stored language
  const LANG_COOKIE = "ispedge_lang";   // tells the server which language to render pages in
  const page = document.body.dataset.page;

  // Translations: the page carries its language's catalog (a JSON data block rendered
  // from the gettext .po files). msgids are the English text; a msgid the catalog lacks
  // is shown in English and recorded in ispedge.missing (the browser tests fail on it).
  const I18N = (function () {
    const node = document.getElementById("i18n-catalog");
    try { return JSON.parse(node ? node.textContent : ""); }
    catch (e) { return { language: "en", dir: "ltr", messages: {} }; }
  })();
  const LANG = I18N.language || "en";
  if (sessionStorage.getItem("ispedge.languageReload") === LANG) sessionStorage.removeItem("ispedge.languageReload");
  const missing = [];
  const plurals = new Intl.PluralRules(LANG);
  function fill(text, params) {
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, function (m, k) {
      return Object.prototype.hasOwnProperty.call(params, k) ? String(params[k]) : m;
    });
  }
  function lookup(key, english) {
    if (LANG === "en") return english;
    const found = I18N.messages[key];
    if (found === undefined) {
      if (missing.indexOf(key) < 0) missing.push(key);
      return english;
    }
    return found;
  }
  // t("Hello, {name}", {name: n}); tn("{n} day", "{n} days", n); tc("context", "text")
  function t(message, params) { return fill(lookup(message, message), params); }
  function tn(singular, plural, n, params) {
    const english = n === 1 ? singular : plural;
    const found = lookup(singular, english);
    const text = typeof found === "string" ? found : (found[plurals.select(n)] || found.other || english);
    return fill(text, Object.assign({ n: number(n, 0) }, params || {}));
  }
  // User text (a plan's or a person's name) inside a sentence: isolated in a <bdi dir=auto>
  // so it keeps its own direction. tf() is t() whose params may be such nodes: a fragment.
  function bdi(text) {
    const b = document.createElement("bdi");
    b.dir = "auto";
    b.textContent = text;
    return b;
  }
  function tf(message, params) {
    const text = lookup(message, message);
    const frag = document.createDocumentFragment();
    let last = 0;
    text.replace(/\{(\w+)\}/g, function (m, k, at) {
      frag.append(text.slice(last, at));
      const v = params && Object.prototype.hasOwnProperty.call(params, k) ? params[k] : m;
      frag.append(v instanceof Node ? v : String(v));
      last = at + m.length;
      return m;
    });
    frag.append(text.slice(last));
    return frag;
  }
  // A sentence the server said in this language (an invoice line, a quote): the user text
  // in it (a plan's name) comes between Unicode isolates (U+2068 ... U+2069), each made a
  // <bdi dir=auto> here, as tf() does for the sentences said in this script.
  function isolated(text) {
    const frag = document.createDocumentFragment();
    String(text || "").split(/(\u2068[^\u2069]*\u2069)/).forEach(function (part) {
      if (!part) return;
      frag.append(part.charAt(0) === "\u2068" ? bdi(part.slice(1, -1)) : part);
    });
    return frag;
  }
  function tc(context, message, params) {
    return fill(lookup(context + "\u0004" + message, message), params);
  }
  const primary = document.body.dataset.primary;
  if (primary && /^#[0-9a-fA-F]{6}$/.test(primary)) {
    document.documentElement.style.setProperty("--primary", primary);
  }

  function token() { return localStorage.getItem(TOKEN_KEY); }
  function deviceLanguage() {
    const v = localStorage.getItem(LANG_KEY);
    return v === "en" || v === "fr" || v === "ar" ? v : null;
  }

  // The one fetch helper: a network failure (offline, server down) rejects with an
  // Error whose `offline` flag says which; any HTTP answer resolves {status, data}.
  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    const bearer = token();
    if (bearer) opts.headers["Authorization"] = "Bearer " + bearer;
    // API error messages follow this device's override of the stored language
    if (deviceLanguage()) opts.headers["X-Portal-Language"] = deviceLanguage();
    if (opts.body && typeof opts.body !== "string") {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      const err = new Error(navigator.onLine === false ? t("You are offline.")
        : t("Could not reach the server."));
      err.offline = navigator.onLine === false;
      err.network = true;
      throw err;
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401 && page !== "login") {
      localStorage.removeItem(TOKEN_KEY);
      location.href = "/customer/login";
    }
    return { status: res.status, data: data };
  }
  function errorMessage(res, fallback) {
    return (res && res.data && res.data.error && res.data.error.message) || fallback;
  }
  // The data of a 200 answer, or an Error carrying the server's message (for load()).
  function need(res, fallback) {
    if (res.status === 200) return res.data;
    const err = new Error(errorMessage(res, fallback || t("Something went wrong ({status}).", { status: res.status })));
    err.status = res.status;
    throw err;
  }
  window.ispedge = { api: api, token: token, need: need, errorMessage: errorMessage,
    t: t, tn: tn, tc: tc, tf: tf, bdi: bdi, isolated: isolated, language: LANG,
    missing: missing };

  // One set of formatters for the whole portal, by the page's locale (CLDR data, as
  // Babel uses on the server). Digits stay Latin in Arabic, as on our PDFs and as
  // Lebanese subscribers read prices and speeds.
  const LOCALE = { en: "en", fr: "fr", ar: "ar-u-nu-latn" }[LANG] || "en";
  // fixed: always `digits` decimals (a live figure must not change width: 8.0, 8.3).
  function number(x, digits, fixed) {
    const d = digits === undefined ? 1 : digits;
    return Number(x).toLocaleString(LOCALE, { minimumFractionDigits: fixed ? d : 0, maximumFractionDigits: d });
  }
  // Amounts arrive in the currency's minor units (the API's *_cents): 2 digits unless
  // listed here, the same table as portal/core/money.py MINOR_UNITS (a test compares them).
  const MINOR_UNITS = { BIF: 0, CLP: 0, DJF: 0, GNF: 0, IQD: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0,
    LBP: 0, PYG: 0, RWF: 0, UGX: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
    BHD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3 };
  function money(minor, currency) {
    const cur = currency || "USD";
    const digits = cur in MINOR_UNITS ? MINOR_UNITS[cur] : 2;
    return (minor / Math.pow(10, digits)).toLocaleString(LOCALE, { style: "currency",
      currency: cur, minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function speed(kbps) {
    return kbps >= 1000 ? t("{value} Mbps", { value: number(kbps / 1000, 1) })
      : t("{value} kbps", { value: number(kbps, 0) });
  }
  function mbps(bps) { return number(bps / 1e6, 1, true); }
  function gb(bytes) {
    const v = bytes / 1e9;
    return t("{value} GB", { value: number(v, v >= 100 ? 0 : v >= 10 ? 1 : 2) });
  }
  const relative = new Intl.RelativeTimeFormat(LOCALE, { numeric: "always", style: "short" });
  function ago(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return relative.format(-s, "second");
    if (s < 3600) return relative.format(-Math.floor(s / 60), "minute");
    if (s < 86400) return relative.format(-Math.floor(s / 3600), "hour");
    return relative.format(-Math.floor(s / 86400), "day");
  }
  function when(iso) {
    return iso ? new Date(iso).toLocaleString(LOCALE, { dateStyle: "medium", timeStyle: "short" }) : "";
  }
  function day(iso, options) { return new Date(iso).toLocaleDateString(LOCALE, options); }
  function duration(s) {
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return tn("{n} day", "{n} days", d) + " " + t("{h} h", { h: number(h, 0) });
    if (h > 0) return t("{h} h {m} min", { h: number(h, 0), m: number(m, 0) });
    return t("{m} min", { m: number(m, 0) });
  }
  function countdown(seconds) {
    if (seconds <= 0) return t("Expired");
    return duration(seconds);
  }
  function setText(id, text) { const el = document.getElementById(id); if (el) el.textContent = text; }
  window.ispedge.fmt = { number: number, money: money, speed: speed, mbps: mbps, gb: gb, ago: ago,
    when: when, day: day, duration: duration, countdown: countdown, setText: setText, locale: LOCALE };

  // How to pay the reseller, in the box of templates/_payment.html named by `prefix`,
  // wherever a shortfall is shown (issue 19). payment: {instructions, contact}; null hides it.
  function showPayment(prefix, payment) {
    const box = document.getElementById(prefix + "payment");
    if (!box) return;
    box.hidden = !payment;
    if (!payment) return;
    setText(prefix + "payment-instructions", payment.instructions ||
      t("Please contact your operator to top up your wallet."));
    setText(prefix + "payment-contact", payment.contact || "");
    document.getElementById(prefix + "payment-contact-line").hidden = !payment.contact;
  }
  window.ispedge.showPayment = showPayment;
  // Digits as typed on Arabic and Persian keyboards (٠-٩, ۰-۹) as ASCII, the Arabic
  // decimal separator (٫) as "." -- as portal/core/money.py reads them on the server.
  // (An <input type=number> drops them: Chromium gives value "".)
  window.ispedge.asciiDigits = function (text) {
    return String(text).replace(/[\u0660-\u0669]/g, function (d) { return String(d.charCodeAt(0) - 0x0660); })
      .replace(/[\u06F0-\u06F9]/g, function (d) { return String(d.charCodeAt(0) - 0x06F0); })
      .replace(/\u066B/g, ".");
  };
  // The reseller's payment details a 402 carries (null for any other answer).
  window.ispedge.paymentOf = function (error) {
    return error && error.code === "insufficient_funds"
      ? { instructions: error.payment_instructions, contact: error.payment_contact } : null;
  };

  // The page's language: this device's override, else the stored language (from /me).
  // A page rendered in another one is rendered again once, with the cookie set.
  function setLanguageCookie(lang) {
    document.cookie = LANG_COOKIE + "=" + lang + "; path=/customer; max-age=31536000; samesite=lax";
  }
  function useLanguage(lang) {
    if (!lang || lang === LANG) return false;
    // once per language and tab: a browser that refuses the cookie never loops
    if (sessionStorage.getItem("ispedge.languageReload") === lang) return false;
    sessionStorage.setItem("ispedge.languageReload", lang);
    setLanguageCookie(lang);
    location.reload();
    return true;
  }
  (function languageMenu() {
    const select = document.getElementById("language-select");
    const device = document.getElementById("language-device");
    if (!select) return;
    select.value = LANG;
    if (device) {
      device.checked = !!deviceLanguage();
      // before sign-in the choice can only be this device's
      if (page === "login" || !token()) device.closest("label").hidden = true;
    }
    select.addEventListener("change", async function () {
      const lang = select.value;
      if (page === "login" || !token() || (device && device.checked)) {
        localStorage.setItem(LANG_KEY, lang);
        useLanguage(lang);
        return;
      }
      const res = await api("/customer/api/me/language", { method: "PUT", body: { language: lang } });
      if (res.status !== 200) { window.ispedge.failed(new Error(errorMessage(res, t("The language could not be saved.")))); return; }
      localStorage.removeItem(LANG_KEY);
      useLanguage(lang);
    });
    if (device) device.addEventListener("change", async function () {
      if (device.checked) { localStorage.setItem(LANG_KEY, LANG); return; }
      // back to the account's language
      localStorage.removeItem(LANG_KEY);
      const res = await api("/customer/api/me");
      if (res.status === 200 && res.data.language) useLanguage(res.data.language);
    });
  })();
  if (deviceLanguage() && useLanguage(deviceLanguage())) return;

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
    const show = document.getElementById("show-password");
    show.addEventListener("click", function () {
      const pw = document.getElementById("password");
      const visible = pw.type === "password";
      pw.type = visible ? "text" : "password";
      show.textContent = visible ? t("Hide") : t("Show");
      show.setAttribute("aria-pressed", String(visible));
    });
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const err = document.getElementById("login-error");
      err.hidden = true;
      let res;
      try {
        res = await api("/customer/api/login", { method: "POST", body: {
          username: document.getElementById("username").value,
          password: document.getElementById("password").value } });
      } catch (e) {
        err.textContent = e.message + " " + t("Please try again.");
        err.hidden = false;
        return;
      }
      if (res.status === 200 && res.data && res.data.token) {
        localStorage.setItem(TOKEN_KEY, res.data.token);
        // a cookie only when the page must change language (an English browser gets none)
        if (!deviceLanguage() && res.data.language && res.data.language !== LANG) {
          setLanguageCookie(res.data.language);
        }
        location.href = "/customer/";
      } else {
        err.textContent = (res.data && res.data.error && res.data.error.message) || t("Sign in failed");
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
  // Tab icons: inline SVG drawn with paths (no text glyphs, no extra requests).
  const ICONS = {
    dashboard: "M4 15a8 8 0 0 1 16 0 M12 15l4.5-4.5 M4 19h16",
    usage: "M5 20V12 M12 20V5 M19 20v-9 M3 20h18",
    plans: "M7 4L3 8l4 4 M3 8h14 M17 12l4 4-4 4 M21 16H7",
    data: "M12 3v11 M7.5 9.5L12 14l4.5-4.5 M5 19h14",
    wifi: "M2.5 9a14 14 0 0 1 19 0 M5.5 12.5a9.5 9.5 0 0 1 13 0 M8.5 16a5 5 0 0 1 7 0 M12 19.5v.01",
    invoices: "M6 3h9l4 4v14H6z M15 3v4h4 M9 12h7 M9 16h7",
    support: "M4 5h16v11H10l-5 4v-4H4z M8 9h8 M8 12h5",
    parental: "M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z M9 12l2 2 4-4",
    more: "M5 12h.01 M12 12h.01 M19 12h.01"
  };
  const SVGNS = "http://www.w3.org/2000/svg";
  function icon(name) {
    const svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "tab-icon icon-" + name);
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(SVGNS, "path");
    path.setAttribute("d", ICONS[name] || ICONS.more);
    svg.appendChild(path);
    return svg;
  }
  window.ispedge.icon = icon;
  // The tab names, translated here (the API's `label` stays English for old clients).
  const TAB_LABELS = { dashboard: t("Dashboard"), usage: t("Usage"), plans: t("Change Plan"),
    data: t("Buy Data"), wifi: t("WiFi"), invoices: t("Invoices"), support: t("Support"),
    parental: t("Parental") };
  const BAR_SLOTS = 4;  // on a phone: four tabs + "More" when there are more than five
  function tabLink(t) {
    const a = document.createElement("a");
    a.href = t.url;
    a.className = "tab";
    a.dataset.tab = t.name;
    if (t.name === page) { a.classList.add("active"); a.setAttribute("aria-current", "page"); }
    const label = document.createElement("span");
    label.className = "tab-label";
    label.textContent = TAB_LABELS[t.name] || t.label;
    a.append(icon(t.name), label);
    return a;
  }
  function buildNav(tabs) {
    const nav = document.getElementById("tabs");
    if (!nav) return;
    nav.textContent = "";
    // Which tabs the phone bar shows: the first four, with the current tab taking
    // the fourth place when it is further down, so it is always visible and marked.
    let inBar = tabs.map(function (t) { return t.name; });
    if (tabs.length > BAR_SLOTS + 1) {
      inBar = inBar.slice(0, BAR_SLOTS);
      if (inBar.indexOf(page) < 0 && tabs.some(function (t) { return t.name === page; })) {
        inBar[BAR_SLOTS - 1] = page;
      }
    }
    const list = document.createElement("div");
    list.className = "tab-list";
    const sheet = document.createElement("div");
    sheet.className = "more-sheet";
    sheet.id = "more-sheet";
    sheet.hidden = true;
    tabs.forEach(function (t) {
      const a = tabLink(t);
      if (inBar.indexOf(t.name) < 0) {
        a.classList.add("overflow");
        sheet.appendChild(tabLink(t));
      }
      list.appendChild(a);
    });
    nav.appendChild(list);
    nav.dataset.count = String(tabs.length);
    if (sheet.childElementCount) {
      const more = document.createElement("button");
      more.type = "button";
      more.className = "tab more";
      more.id = "more-button";
      more.setAttribute("aria-expanded", "false");
      more.setAttribute("aria-controls", "more-sheet");
      const label = document.createElement("span");
      label.className = "tab-label";
      label.textContent = window.ispedge.t("More");
      more.append(icon("more"), label);
      function setOpen(open) {
        sheet.hidden = !open;
        more.setAttribute("aria-expanded", String(open));
        nav.classList.toggle("open", open);
      }
      more.addEventListener("click", function () { setOpen(sheet.hidden); });
      document.addEventListener("keydown", function (ev) {
        if (ev.key === "Escape" && !sheet.hidden) { setOpen(false); more.focus(); }
      });
      document.addEventListener("click", function (ev) {
        if (!sheet.hidden && !nav.contains(ev.target)) setOpen(false);
      });
      list.appendChild(more);
      nav.appendChild(sheet);
    }
  }

  // Loading, error and offline states of a page, in one banner at the top of the
  // content. ix.load(fn) runs a tab's loader (an async function that throws on
  // failure, see need()); every failed loader is run again by "Try again".
  const failed = new Set();
  let pending = 0, lastError = null;
  function stateBox() { return document.getElementById("page-state"); }
  function renderState() {
    const box = stateBox();
    let state = "ready";
    if (failed.size) state = lastError && lastError.offline ? "offline" : "error";
    else if (pending) state = "loading";
    document.body.dataset.state = state;
    if (!box) return;
    box.className = "page-state wide state-" + state;
    box.hidden = state === "ready";
    const text = box.querySelector(".state-text");
    const retry = box.querySelector(".state-retry");
    if (state === "loading") text.textContent = t("Loading…");
    if (state === "offline") text.textContent = t("You are offline. Check your connection, then try again.");
    if (state === "error") text.textContent = (lastError && lastError.message) || t("Something went wrong.");
    retry.hidden = state !== "error" && state !== "offline";
  }
  function load(fn, opts) {
    const quiet = opts && opts.quiet;
    if (!quiet) pending++;
    renderState();
    return Promise.resolve().then(fn).then(function () {
      failed.delete(fn);
    }, function (err) {
      failed.add(fn);
      lastError = err instanceof Error ? err : new Error(String(err));
    }).then(function () {
      if (!quiet) pending--;
      renderState();
    });
  }
  function retryAll() {
    const fns = Array.from(failed);
    failed.clear();
    lastError = null;
    if (!fns.length) { location.reload(); return; }
    fns.forEach(function (fn) { load(fn); });
  }
  window.ispedge.load = load;
  window.ispedge.failed = function (err) {  // an action failed outside a loader
    lastError = err;
    failed.add(function () { location.reload(); });
    renderState();
  };
  (function wireState() {
    const box = stateBox();
    if (box) box.querySelector(".state-retry").addEventListener("click", retryAll);
  })();
  window.addEventListener("online", function () {
    if (failed.size && lastError && lastError.offline) retryAll();
  });
  // A promise nobody awaited must not die silently in the console: show it.
  window.addEventListener("unhandledrejection", function (ev) {
    ev.preventDefault();
    const err = ev.reason instanceof Error ? ev.reason : new Error(t("Something went wrong."));
    if (!err.network) console.warn(err);
    window.ispedge.failed(err);
  });
  // A button or message that appears below the fold (or under the phone's bottom
  // bar) is brought into view.
  window.ispedge.reveal = function (el) {
    if (!el) return;
    el.scrollIntoView({ block: "nearest", behavior: "smooth" });
  };

  function loadMe() {
    return api("/customer/api/me").then(function (res) {
      meData = need(res, t("Could not load your account."));
      // the stored language (the reseller's default until the subscriber chooses)
      if (!deviceLanguage() && meData.language && useLanguage(meData.language)) return;
      applyBranding(meData.branding);
      buildNav(meData.tabs || []);
      meHandlers.splice(0).forEach(function (fn) { fn(meData); });
    });
  }
  if (page && page !== "login" && page !== "error") load(loadMe);

  // Installable on a phone home screen: the worker caches only the static shell.
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/customer/sw.js", { scope: "/customer/" }).catch(function () {});
  }
})();
