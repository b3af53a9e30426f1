// Dashboard tab: live Mbps (every 3 s), usage rings, plan card with FUP tier,
// balance and expiry countdown. DOM built with textContent only.
"use strict";
(function () {
  const f = window.ispedge.fmt;
  const api = window.ispedge.api;
  const SVG = "http://www.w3.org/2000/svg";
  const LIVE_MS = 3000, SUMMARY_MS = 30000;

  function mbps(bps) { return (bps / 1e6).toFixed(1); }

  function ring(id, used, limit) {
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
  }

  function setBytes(id, bytes) {
    const el = document.getElementById(id);
    if (!el) return;
    el.dataset.bytes = String(bytes);
    el.textContent = f.gb(bytes);
  }

  function fupText(fup) {
    if (!fup.tier) return "Full speed (no FUP tier)";
    return "FUP tier " + fup.tier + " (" + fup.period + "): " + f.speed(fup.down_kbps) + " / " +
      f.speed(fup.up_kbps);
  }

  function renderSummary(d) {
    const today = d.today.bytes_in + d.today.bytes_out;
    const cycle = d.cycle.bytes_in + d.cycle.bytes_out;
    setBytes("today-used", today);
    setBytes("cycle-used", cycle);
    f.setText("today-limit", d.today.limit_bytes ? "of " + f.gb(d.today.limit_bytes) + " fair use" : "no daily limit");
    f.setText("cycle-limit", d.cycle.limit_bytes ? "of " + f.gb(d.cycle.limit_bytes) : "no monthly limit");
    ring("ring-today", today, d.today.limit_bytes);
    ring("ring-cycle", cycle, d.cycle.limit_bytes);
    f.setText("cycle-start", "Cycle started " + new Date(d.cycle.start).toLocaleDateString() +
      (d.cycle.bonus_bytes ? " · bonus " + f.gb(d.cycle.bonus_bytes) : ""));
    f.setText("plan-name", d.plan.name);
    f.setText("plan-down", f.speed(d.plan.down_kbps));
    f.setText("plan-up", f.speed(d.plan.up_kbps));
    f.setText("plan-quota", d.plan.quota_bytes ? "Quota " + f.gb(d.plan.quota_bytes) : "Unlimited data");
    const fup = document.getElementById("fup-tier");
    fup.dataset.tier = String(d.fup.tier);
    fup.textContent = fupText(d.fup);
    const bal = document.getElementById("balance");
    bal.dataset.cents = String(d.balance_cents);
    bal.textContent = f.money(d.balance_cents, d.currency);
    f.setText("expiry-countdown", f.countdown(d.expires_in_seconds));
    f.setText("expires-at", new Date(d.expires_at).toLocaleString());
  }

  function renderLive(l) {
    const status = document.getElementById("live-status");
    status.dataset.online = String(l.online);
    status.textContent = l.online ? "Online" : "Offline";
    [["live-down", l.down_bps], ["live-up", l.up_bps]].forEach(function (p) {
      const el = document.getElementById(p[0]);
      el.dataset.bps = String(p[1]);
      el.textContent = l.online ? mbps(p[1]) : "–";
    });
    f.setText("live-ip", l.online && l.framed_ip ? "Your address " + l.framed_ip : "");
  }

  async function summary() {
    const res = await api("/customer/api/dashboard");
    if (res.status === 200) renderSummary(res.data);
  }
  async function liveTick() {
    const res = await api("/customer/api/live");
    if (res.status === 200) renderLive(res.data);
  }
  window.ispedge.onMe(function (me) {
    f.setText("greeting", "Hello, " + (me.full_name || me.username));
  });
  summary();
  liveTick();
  setInterval(liveTick, LIVE_MS);
  setInterval(summary, SUMMARY_MS);
})();
