// Dashboard tab: live Mbps (every 3 s) with its age and source, usage rings with the
// fair-use thresholds, plan card with FUP tier, balance and expiry countdown.
// DOM built with textContent only.
"use strict";
(function () {
  const ix = window.ispedge, f = ix.fmt, t = ix.t;
  const api = ix.api;
  const SVG = "http://www.w3.org/2000/svg";
  const LIVE_MS = 3000, SUMMARY_MS = 30000;
  const SOURCES = { accounting: t("from your router's accounting reports"),
    shaper: t("measured at our network edge") };
  let live = null, liveAt = 0, liveFailed = false;

  function ring(id, used, limit, ticks) {
    const svg = document.querySelector("#" + id + " svg");
    if (!svg) return;
    svg.textContent = "";
    const r = 50, c = 2 * Math.PI * r;
    const track = document.createElementNS(SVG, "circle");
    track.setAttribute("class", "track");
    const fill = document.createElementNS(SVG, "circle");
    const share = limit > 0 ? Math.min(1, used / limit) : (used > 0 ? 1 : 0);
    fill.setAttribute("class", "fill" + (limit > 0 && used >= limit ? " over" : ""));
    fill.setAttribute("stroke-dasharray", (share * c).toFixed(1) + " " + c.toFixed(1));
    [track, fill].forEach(function (el) {
      el.setAttribute("cx", "60"); el.setAttribute("cy", "60"); el.setAttribute("r", String(r));
      svg.appendChild(el);
    });
    // a tick on the ring at each fair-use threshold inside it (the ring starts at 12 o'clock
    // in usage.css: rotate(-90deg))
    (ticks || []).forEach(function (at) {
      if (!(limit > 0) || at <= 0 || at > limit) return;
      const a = 2 * Math.PI * at / limit;
      const line = document.createElementNS(SVG, "line");
      line.setAttribute("class", "threshold");
      line.setAttribute("x1", String(60 + 42 * Math.cos(a)));
      line.setAttribute("y1", String(60 + 42 * Math.sin(a)));
      line.setAttribute("x2", String(60 + 58 * Math.cos(a)));
      line.setAttribute("y2", String(60 + 58 * Math.sin(a)));
      svg.appendChild(line);
    });
  }

  function setBytes(id, bytes) {
    const el = document.getElementById(id);
    if (!el) return;
    el.dataset.bytes = String(bytes);
    el.textContent = f.gb(bytes);
  }

  function rate(tier) {
    const both = tier.down_kbps >= 1000 && tier.up_kbps >= 1000;
    return both ? t("{down}/{up} Mbps", { down: f.number(tier.down_kbps / 1000, 1),
      up: f.number(tier.up_kbps / 1000, 1) }) : f.speed(tier.down_kbps) + "/" + f.speed(tier.up_kbps);
  }
  // "200 GB, then 10/5 Mbps; 300 GB, then 2/1 Mbps"
  function thresholds(tiers, period) {
    return tiers.filter(function (x) { return x.period === period; }).map(function (x) {
      return t("{amount}, then {speed}", { amount: f.gb(x.threshold_bytes), speed: rate(x) });
    }).join(t("; "));
  }
  const PERIODS = { daily: t("daily"), monthly: t("monthly") };

  function fupText(fup) {
    if (!fup.tier) return t("Full speed (no fair-use reduction now)");
    return t("Fair-use tier {tier} ({period}): {down} / {up}", { tier: f.number(fup.tier, 0),
      period: PERIODS[fup.period] || fup.period, down: f.speed(fup.down_kbps), up: f.speed(fup.up_kbps) });
  }

  function renderSummary(d) {
    const tiers = d.fup_tiers || [];
    const today = d.today.bytes_in + d.today.bytes_out;
    const cycle = d.cycle.bytes_in + d.cycle.bytes_out;
    setBytes("today-used", today);
    setBytes("cycle-used", cycle);
    const daily = thresholds(tiers, "daily"), monthly = thresholds(tiers, "monthly");
    f.setText("today-limit", d.today.limit_bytes ? t("of {amount} fair use", { amount: f.gb(d.today.limit_bytes) }) : t("no daily limit"));
    f.setText("cycle-limit", d.cycle.limit_bytes ? t("of {amount}", { amount: f.gb(d.cycle.limit_bytes) }) : t("no monthly limit"));
    f.setText("today-fup", daily ? t("Daily: {list}", { list: daily }) : "");
    f.setText("cycle-fup", monthly ? t("Monthly: {list}", { list: monthly }) : "");
    const at = function (period) {
      return tiers.filter(function (x) { return x.period === period; })
        .map(function (x) { return x.threshold_bytes; });
    };
    ring("ring-today", today, d.today.limit_bytes, at("daily"));
    ring("ring-cycle", cycle, d.cycle.limit_bytes, at("monthly").map(function (b) {
      return b + (d.cycle.bonus_bytes || 0);
    }));
    f.setText("cycle-start", t("Cycle started {date}", { date: f.day(d.cycle.start) }) +
      (d.cycle.bonus_bytes ? " · " + t("bonus {amount}", { amount: f.gb(d.cycle.bonus_bytes) }) : ""));
    f.setText("plan-name", d.plan.name);
    f.setText("plan-down", f.speed(d.plan.down_kbps));
    f.setText("plan-up", f.speed(d.plan.up_kbps));
    f.setText("plan-quota", d.plan.quota_bytes ? t("Quota {amount}", { amount: f.gb(d.plan.quota_bytes) }) : t("Unlimited data"));
    f.setText("plan-fup", [daily && t("Daily fair use: {list}", { list: daily }),
      monthly && t("Monthly fair use: {list}", { list: monthly })]
      .filter(Boolean).join(" · ") || t("No fair-use limits"));
    const fup = document.getElementById("fup-tier");
    fup.dataset.tier = String(d.fup.tier);
    fup.textContent = fupText(d.fup);
    const bal = document.getElementById("balance");
    bal.dataset.cents = String(d.balance_cents);
    bal.textContent = f.money(d.balance_cents, d.currency);
    f.setText("expiry-countdown", f.countdown(d.expires_in_seconds));
    f.setText("expires-at", f.when(d.expires_at));
  }

  function renderAge() {
    if (!live) return;
    const parts = [];
    if (live.sampled_at) parts.push(t("Measured {ago}", { ago: f.ago((Date.now() - Date.parse(live.sampled_at)) / 1000) }));
    parts.push(t("updated {ago}", { ago: f.ago((Date.now() - liveAt) / 1000) }));
    if (live.source) parts.push(SOURCES[live.source] || live.source);
    if (liveFailed) parts.push(t("the latest update failed, retrying"));
    f.setText("live-age", parts.join(" · "));
  }

  function renderLive(l) {
    live = l; liveAt = Date.now();
    const status = document.getElementById("live-status");
    status.dataset.online = String(l.online);
    status.textContent = l.online ? t("Online") : t("Offline");
    [["live-down", l.down_bps], ["live-up", l.up_bps]].forEach(function (p) {
      const el = document.getElementById(p[0]);
      el.dataset.bps = String(p[1]);
      el.textContent = l.online ? f.mbps(p[1]) : "–";
    });
    f.setText("live-ip", l.online && l.framed_ip ? t("Your address {ip}", { ip: l.framed_ip }) : "");
    renderAge();
  }

  async function summary() {
    renderSummary(ix.need(await api("/customer/api/dashboard"), t("Could not load your dashboard.")));
  }
  async function liveTick() {
    try {
      const res = await api("/customer/api/live");
      liveFailed = res.status !== 200;
      if (!liveFailed) renderLive(res.data);
    } catch (e) {
      liveFailed = true;
    }
    renderAge();
  }
  ix.onMe(function (me) {
    // the sentence is ours (checked for English by the tests), the name is the user's
    const greeting = document.getElementById("greeting");
    greeting.textContent = "";
    greeting.append(ix.tf("Hello, {name}", { name: ix.bdi(me.full_name || me.username) }));
  });
  ix.load(summary);
  liveTick();
  setInterval(liveTick, LIVE_MS);
  setInterval(renderAge, 1000);
  setInterval(function () { ix.load(summary, { quiet: true }); }, SUMMARY_MS);
})();
