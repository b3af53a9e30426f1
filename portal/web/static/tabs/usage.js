// Usage tab: 30-day chart (SVG, scrolls on its own on phones) and table; a day
// expands into its sessions. Today's numbers refresh while the page is open.
"use strict";
(function () {
  const ix = window.ispedge, f = ix.fmt, t = ix.t;
  const api = ix.api;
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 5000;
  const BAR = 18, GAP = 6, HEIGHT = 160, LABEL = 18;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }

  function chart(days) {
    const root = document.getElementById("usage-chart");
    root.textContent = "";
    const width = days.length * (BAR + GAP) + GAP;
    root.setAttribute("width", String(width));
    root.setAttribute("height", String(HEIGHT + LABEL));
    root.setAttribute("viewBox", "0 0 " + width + " " + (HEIGHT + LABEL));
    const max = Math.max(1, ...days.map(function (d) { return d.bytes_in + d.bytes_out; }));
    days.forEach(function (d, i) {
      const x = GAP + i * (BAR + GAP);
      const hDown = HEIGHT * d.bytes_out / max, hUp = HEIGHT * d.bytes_in / max;
      const down = svg("rect", { x: x, y: HEIGHT - hDown, width: BAR, height: hDown, class: "bar-down" });
      const up = svg("rect", { x: x, y: HEIGHT - hDown - hUp, width: BAR, height: hUp, class: "bar-up" });
      const title = svg("title", {});
      title.textContent = t("{day}: {down} down, {up} up", { day: f.day(d.day + "T12:00:00"),
        down: f.gb(d.bytes_out), up: f.gb(d.bytes_in) });
      const g = svg("g", { "data-day": d.day });
      g.append(down, up, title);
      root.appendChild(g);
      if (i % 5 === 4 || i === days.length - 1) {
        const label = svg("text", { x: x + BAR / 2, y: HEIGHT + 13, "text-anchor": "middle", class: "chart-label" });
        label.textContent = f.day(d.day + "T12:00:00", { month: "numeric", day: "numeric" });
        root.appendChild(label);
      }
    });
  }

  function label(day, today) {
    if (day === today) return t("Today");
    return f.day(day + "T12:00:00", { month: "short", day: "numeric", weekday: "short" });
  }

  function fillRow(tr, d) {
    tr.cells[1].textContent = f.gb(d.bytes_out);
    tr.cells[2].textContent = f.gb(d.bytes_in);
    tr.cells[3].textContent = f.gb(d.bytes_in + d.bytes_out);
    tr.dataset.bytesIn = String(d.bytes_in);
    tr.dataset.bytesOut = String(d.bytes_out);
  }


  async function toggle(tr) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("sessions-row")) {
      next.remove();
      tr.classList.remove("open");
      tr.querySelector("button").setAttribute("aria-expanded", "false");
      return;
    }
    tr.classList.add("open");
    tr.querySelector("button").setAttribute("aria-expanded", "true");
    const row = el("tr", "sessions-row");
    const cell = el("td", "sessions-cell");
    cell.colSpan = 4;
    cell.appendChild(el("p", "hint", t("Loading sessions…")));
    row.appendChild(cell);
    tr.after(row);
    let res;
    try { res = await api("/customer/api/usage/" + tr.dataset.day + "/sessions"); }
    catch (e) { res = { status: 0, data: null }; }
    cell.textContent = "";
    if (res.status !== 200) { cell.appendChild(el("p", "error", t("Could not load sessions"))); return; }
    if (!res.data.sessions.length) { cell.appendChild(el("p", "hint", t("No sessions on this day"))); return; }
    res.data.sessions.forEach(function (s) {
      const box = el("div", "session");
      const dl = el("dl");
      [[t("Start"), f.when(s.start)],
       [t("Stop"), s.stop ? f.when(s.stop) : t("still online")],
       [t("Duration"), f.duration(s.duration_seconds)],
       [t("IP address"), s.framed_ip || "–"], [t("Access server"), s.nas_ip || "–"],
       [t("Download"), f.gb(s.bytes_out)], [t("Upload"), f.gb(s.bytes_in)]].forEach(function (p) {
        dl.append(el("dt", "", p[0]), el("dd", "", p[1]));
      });
      box.appendChild(dl);
      cell.appendChild(box);
    });
  }

  function table(data) {
    const body = document.getElementById("usage-rows");
    const rows = data.days.slice().reverse();  // newest first
    if (body.rows.length) {
      // Refresh: update numbers in place so expanded days stay open.
      rows.forEach(function (d) {
        const tr = body.querySelector('tr.day[data-day="' + d.day + '"]');
        if (tr) fillRow(tr, d);
      });
      return;
    }
    rows.forEach(function (d) {
      const tr = el("tr", "day" + (d.day === data.today ? " today" : ""));
      tr.dataset.day = d.day;
      // The day is a real button (keyboard, screen readers); a tap anywhere on the row works too.
      const day = el("button", "day-toggle", label(d.day, data.today));
      day.type = "button";
      day.setAttribute("aria-expanded", "false");
      const first = el("td");
      first.appendChild(day);
      tr.append(first, el("td"), el("td"), el("td"));
      fillRow(tr, d);
      tr.addEventListener("click", function () { toggle(tr); });
      body.appendChild(tr);
    });
  }

  let shownToday = null;
  async function load() {
    const data = ix.need(await api("/customer/api/usage"), t("Could not load your usage."));
    const res = { data: data };
    document.getElementById("usage-empty").hidden = data.days.some(function (d) {
      return d.bytes_in + d.bytes_out > 0;
    });
    if (shownToday && shownToday !== res.data.today) {
      document.getElementById("usage-rows").textContent = "";  // a new day began
    }
    shownToday = res.data.today;
    const first = !document.getElementById("usage-chart").childNodes.length;
    chart(res.data.days);
    // Phones show the newest days first; the chart scrolls back on its own.
    if (first) document.getElementById("chart-scroll").scrollLeft = 1e6;
    table(res.data);
  }
  ix.load(load);
  setInterval(function () { ix.load(load, { quiet: true }); }, REFRESH_MS);
})();
