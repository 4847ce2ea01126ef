// Shared by the dashboard's pages: the session's CSRF token, JSON calls,
// formatting, and small SVG charts (no library: a polyline per series).
"use strict";

const rouse = (() => {
  let csrf = null;

  async function session() {
    if (csrf) return csrf;
    const r = await fetch("/ui/session", { credentials: "same-origin" });
    if (r.status === 401) { location.href = "/ui/login"; throw new Error("no session"); }
    csrf = (await r.json()).csrf;
    return csrf;
  }

  // A call to the admin API with the session cookie; changes carry the
  // CSRF header the server checks.
  async function api(path, opts = {}) {
    const method = (opts.method || "GET").toUpperCase();
    const headers = Object.assign({}, opts.headers || {});
    if (!["GET", "HEAD", "OPTIONS"].includes(method)) headers["X-Rouse-CSRF"] = await session();
    const r = await fetch(path, { method, headers, body: opts.body, credentials: "same-origin" });
    if (r.status === 401) { location.href = "/ui/login"; throw new Error("session ended"); }
    if (opts.raw) return r;
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) throw new Error((data && data.error && data.error.message) || r.statusText);
    return data;
  }

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  const num = (n) => (n === null || n === undefined) ? "–" : n.toLocaleString();
  const ms = (v) => (v === null || v === undefined) ? "–" : (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v)) + " ms";
  function age(secs) {
    if (secs < 60) return Math.round(secs) + " s";
    if (secs < 3600) return Math.round(secs / 60) + " min";
    return (secs / 3600).toFixed(1) + " h";
  }

  // A chart of one or two series over the same times.
  function chart(title, points, series, unit = "") {
    const W = 300, H = 90, P = 4;
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    let max = 0;
    for (const s of series) for (const p of points) max = Math.max(max, p[s.key] || 0);
    const top = max > 0 ? max * 1.1 : 1;
    const x = (i) => P + (i / Math.max(points.length - 1, 1)) * (W - 2 * P);
    const y = (v) => H - P - ((v || 0) / top) * (H - 2 * P);
    const base = document.createElementNS(ns, "line");
    Object.entries({ x1: 0, x2: W, y1: H - P, y2: H - P, class: "axis" }).forEach(([k, v]) => base.setAttribute(k, v));
    svg.append(base);
    series.forEach((s, n) => {
      const pts = points.map((p, i) => `${x(i).toFixed(1)},${y(p[s.key]).toFixed(1)}`);
      if (n === 0) {
        const area = document.createElementNS(ns, "polygon");
        area.setAttribute("points", `${x(0)},${H - P} ${pts.join(" ")} ${x(points.length - 1)},${H - P}`);
        area.setAttribute("class", "a1");
        svg.append(area);
      }
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", pts.join(" "));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke-width", "1.5");
      line.setAttribute("vector-effect", "non-scaling-stroke");
      line.setAttribute("class", "l" + (n + 1));
      svg.append(line);
    });
    const legend = series.map((s) => s.label).join(" / ");
    svg.setAttribute("aria-label", `${title}: ${legend}, peak ${max}${unit}`);
    const fmt = unit === " ms" ? ms(max) : num(max) + unit;
    return el("div", { class: "chart" }, el("h4", {}, el("span", { text: title }), el("span", { class: "muted", text: "max " + fmt })), svg);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const out = document.getElementById("logout");
    if (out) out.addEventListener("click", async () => {
      await api("/ui/logout", { method: "POST", raw: true });
      location.href = "/ui/login";
    });
  });

  return { api, el, num, ms, age, chart, session };
})();
