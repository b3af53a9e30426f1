// Dashboard tab: plan card, balance, expiry countdown.
"use strict";
window.ispedge.onMe(function (me) {
  const f = window.ispedge.fmt;
  f.setText("plan-name", me.plan.name);
  f.setText("plan-down", f.speed(me.plan.down_kbps));
  f.setText("plan-up", f.speed(me.plan.up_kbps));
  f.setText("plan-quota", me.plan.quota_bytes ? "Quota " + f.gb(me.plan.quota_bytes) : "Unlimited data");
  f.setText("balance", f.money(me.balance_cents, me.currency));
  f.setText("expiry-countdown", f.countdown(me.expires_in_seconds));
  f.setText("expires-at", new Date(me.expires_at).toLocaleString());
});
