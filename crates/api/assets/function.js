// One function's page: cards and charts from the last hour (refreshed every
// 3 s), instances, versions with rollback, aliases, settings, environment
// (masked until revealed), a test invoke and the live log tail (SSE).
"use strict";

(() => {
  const { api, el, num, ms, age, chart } = rouse;
  const name = new URLSearchParams(location.search).get("name") || "";
  const path = "/v1/functions/" + encodeURIComponent(name);
  document.getElementById("name").textContent = name;
  document.title = "rouse · " + name;
  let revealed = false;

  function sum(points, key, last) {
    return points.slice(-last).reduce((a, p) => a + (p[key] || 0), 0);
  }

  function cards(f) {
    const p = f.history;
    const counts = { starting: 0, busy: 0, idle: 0 };
    for (const i of f.instances) {
      if (i.state === "starting") counts.starting++;
      else if (i.state === "ready" && i.inFlight === 0) counts.idle++;
      else counts.busy++;
    }
    const card = (v, label, cls) => el("div", { class: "card" }, el("b", { class: cls || "", text: v }), el("span", { text: label }));
    const recent = p.slice(-30);
    const withP = recent.filter((x) => x.p99Ms !== null);
    document.getElementById("cards").replaceChildren(
      card(num(counts.starting + counts.busy + counts.idle), `instances (${counts.starting} starting, ${counts.busy} busy, ${counts.idle} idle)`),
      card((sum(p, "invocations", 30) / 300).toFixed(2), "requests/s, 5 min"),
      card(num(sum(p, "invocations", 360)), "requests, 1 h"),
      card(num(sum(p, "errors", 30)), "errors, 5 min", sum(p, "errors", 30) ? "bad" : ""),
      card(num(sum(p, "throttles", 30)), "throttles, 5 min"),
      card(num(sum(p, "coldStarts", 360)), "cold starts, 1 h"),
      card(withP.length ? ms(Math.max(...withP.map((x) => x.p99Ms))) : "–", "worst p99, 5 min"));
    const badges = [f.kind].concat(f.runtime === f.kind ? [] : [f.runtime], ["v" + f.version]).concat(f.aliases.map((a) => a.name + "→v" + a.version));
    document.getElementById("badges").replaceChildren(...badges.map((b) => el("span", { class: "pill", text: b })));
  }

  function charts(f) {
    const p = f.history;
    document.getElementById("charts").replaceChildren(
      chart("Invocations", p, [{ key: "invocations", label: "invocations" }]),
      chart("Errors", p, [{ key: "errors", label: "errors" }]),
      chart("Throttles", p, [{ key: "throttles", label: "throttles" }]),
      chart("Duration p50 / p99", p, [{ key: "p99Ms", label: "p99" }, { key: "p50Ms", label: "p50" }], " ms"),
      chart("Cold starts", p, [{ key: "coldStarts", label: "cold starts" }]),
      chart("Init duration", p, [{ key: "initMs", label: "init" }], " ms"),
      chart("Concurrency (peak)", p, [{ key: "concurrency", label: "in flight" }]));
  }

  function instances(f) {
    const rows = f.instances.map((i) => el("tr", {},
      el("td", {}, el("code", { text: i.id })),
      el("td", { text: i.state === "ready" ? (i.inFlight ? "busy" : "idle") : i.state }),
      el("td", { text: "v" + i.version }),
      el("td", { class: "num", text: i.pid }),
      el("td", { class: "num", text: age(i.ageSecs) }),
      el("td", { class: "num", text: i.inFlight }),
      el("td", { class: "num", text: num(i.requests) }),
      el("td", { class: "num", text: i.memoryMb ? i.memoryMb + " MB" : "–" })));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No instances: the next request starts one." })));
    document.querySelector("#instances tbody").replaceChildren(...rows);
  }

  function settings(f) {
    const s = f.scaling;
    const items = [
      ["routes", f.routes.map((r) => r.method + " " + r.path).join(", ") || "–"],
      ["handler", f.handler || "–"], ["memory", f.memorySize + " MB"], ["timeout", f.timeoutSecs + " s"],
      ["concurrency", f.concurrency], ["min / max instances", s.minInstances + " / " + s.maxInstances],
      ["idle timeout", s.idleTimeoutSecs + " s"], ["max lifetime", s.maxLifetimeSecs + " s"],
      ["burst", s.burst], ["queue timeout", s.queueTimeoutSecs + " s"],
    ];
    document.getElementById("settings").replaceChildren(...items.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
  }

  async function refresh() {
    let f;
    try { f = await api("/v1/dashboard/functions/" + encodeURIComponent(name)); } catch (e) { console.error(e); return; }
    cards(f); charts(f); instances(f); settings(f);
    const aliases = f.aliases.map((a) => el("li", { text: `${a.name} → v${a.version}` + (a.canaryVersion ? `, v${a.canaryVersion} at ${Math.round(a.canaryWeight * 100)}%` : "") }));
    document.getElementById("aliases").replaceChildren(...(aliases.length ? aliases : [el("li", { class: "muted", text: "none" })]));
  }

  async function versions() {
    const list = await api(path + "/versions");
    const rows = list.slice().reverse().map((v) => el("tr", {},
      el("td", { text: "v" + v.version + (v.current ? " (current)" : "") }),
      el("td", { text: new Date(v.createdAt * 1000).toLocaleString() }),
      el("td", {}, el("code", { text: v.artifact.slice(0, 12) })),
      el("td", {}, v.current ? null : el("button", {
        class: "quiet small", "data-rollback": v.version, text: "Roll back to v" + v.version,
        onclick: async (e) => {
          if (!confirm(`Roll ${name} back to version ${v.version}? This makes a new version with its code and settings.`)) return;
          e.target.disabled = true;
          try { await api(path + "/rollback", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ to: v.version }) }); }
          catch (err) { alert("Rollback failed: " + err.message); }
          versions(); refresh();
        },
      }))));
    document.querySelector("#versions tbody").replaceChildren(...rows);
  }

  async function env() {
    const e = await api(path + "/env");
    const items = Object.entries(e.environment).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: revealed ? v : "••••••••" })]);
    document.getElementById("env").replaceChildren(...(items.length ? items : [el("dt", { class: "muted", text: "none" })]));
    document.getElementById("reveal").textContent = revealed ? "Hide values" : "Reveal values";
  }
  document.getElementById("reveal").addEventListener("click", () => { revealed = !revealed; env(); });

  document.getElementById("invoke").addEventListener("submit", async (e) => {
    e.preventDefault();
    const method = document.getElementById("method").value;
    const p = document.getElementById("path").value.replace(/^\/+/, "");
    const body = document.getElementById("body").value;
    const out = document.getElementById("result");
    out.hidden = false;
    out.textContent = "…";
    const started = performance.now();
    try {
      const r = await api(path + "/invoke/" + p, { method, raw: true, body: method === "GET" ? undefined : body });
      const text = await r.text();
      out.textContent = `${r.status} ${r.statusText} · ${Math.round(performance.now() - started)} ms\n\n${text}`;
    } catch (err) { out.textContent = "failed: " + err.message; }
  });

  function tail() {
    const log = document.getElementById("log");
    const status = document.getElementById("tailstate");
    const source = new EventSource("/v1/dashboard/functions/" + encodeURIComponent(name) + "/tail");
    source.onopen = () => { status.textContent = "live"; };
    source.onerror = () => { status.textContent = "reconnecting…"; };
    const add = (text, cls) => {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(el("span", { class: cls, text: text + "\n" }));
      while (log.childNodes.length > 2000) log.firstChild.remove();
      if (atBottom) log.scrollTop = log.scrollHeight;
    };
    source.onmessage = (m) => {
      const t = m.data;
      const cls = /\bREPORT RequestId:/.test(t) ? "report" : /\bSTART RequestId:/.test(t) ? "start" : /\bEND RequestId:/.test(t) ? "end" : / \[platform\] /.test(t) ? "platform" : /error|Error|ERROR/.test(t) ? "error" : "";
      add(t, cls);
    };
    source.addEventListener("skipped", (m) => add(`… ${m.data} lines skipped`, "platform"));
  }

  refresh(); versions(); env(); tail();
  setInterval(() => { if (!document.hidden) refresh(); }, 3000);
})();
