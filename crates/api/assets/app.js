// The functions page: one server-side page of the table, refreshed every
// 2 s; filter, sort and paging are query parameters of the JSON call.
"use strict";

(() => {
  const { api, el, num, ms } = rouse;
  const state = { offset: 0, limit: 50, filter: "", sort: "name", order: "asc", total: 0 };
  const body = document.querySelector("#functions tbody");

  function instances(r) {
    const parts = [];
    if (r.starting) parts.push(el("span", { class: "pill starting", title: "starting", text: r.starting + " starting" }));
    if (r.busy) parts.push(el("span", { class: "pill busy", title: "busy", text: r.busy + " busy" }));
    if (r.idle) parts.push(el("span", { class: "pill", title: "idle", text: r.idle + " idle" }));
    return parts.length ? parts : [el("span", { class: "muted", text: "0" })];
  }

  function version(r) {
    const aliases = r.aliases.map((a) => a.name + "→" + a.version + (a.canaryVersion ? ` (+${a.canaryVersion} ${Math.round(a.canaryWeight * 100)}%)` : ""));
    return ["v" + r.version].concat(aliases).join(" · ");
  }

  function row(r) {
    const link = el("a", { href: "/ui/function?name=" + encodeURIComponent(r.name), text: r.name });
    const routes = r.routes.map((x) => el("span", { class: "route", title: x.url, text: x.method + " " + x.path }));
    return el("tr", { "data-function": r.name },
      el("td", {}, link, el("div", { class: "muted small", text: r.service + " · " + r.stage })),
      el("td", { text: r.kind }),
      el("td", { text: r.runtime }),
      el("td", { text: version(r) }),
      el("td", { class: "routes" }, ...routes),
      el("td", { class: "instances" }, ...instances(r)),
      el("td", { class: "num requests", title: r.invocations + " requests", text: r.requestsPerSec.toFixed(2) }),
      el("td", { class: "num" + (r.errors ? " bad" : ""), text: num(r.errors) }),
      el("td", { class: "num", text: ms(r.p50Ms) }),
      el("td", { class: "num", text: ms(r.p99Ms) }),
      el("td", { class: "num", text: num(r.coldStarts) }),
      el("td", { class: "num" + (r.throttles ? " warn" : ""), text: num(r.throttles) }));
  }

  async function load() {
    const q = new URLSearchParams({ offset: state.offset, limit: state.limit, sort: state.sort, order: state.order });
    if (state.filter) q.set("filter", state.filter);
    let page;
    try { page = await api("/v1/dashboard/functions?" + q); } catch (e) { console.error(e); return; }
    state.total = page.total;
    body.replaceChildren(...page.functions.map(row));
    if (!page.functions.length) body.append(el("tr", {}, el("td", { colspan: 12, class: "muted", text: state.filter ? "No function matches." : "No functions deployed yet: rouse deploy" })));
    document.getElementById("total").textContent = "(" + page.total.toLocaleString() + ")";
    document.getElementById("window").textContent = page.windowSecs / 60 + " minutes";
    const last = Math.min(state.offset + state.limit, page.total);
    document.getElementById("range").textContent = page.total ? `${state.offset + 1}–${last} of ${page.total.toLocaleString()}` : "";
    document.getElementById("prev").disabled = state.offset === 0;
    document.getElementById("next").disabled = last >= page.total;
    for (const b of document.querySelectorAll("th button[data-sort]")) {
      b.setAttribute("aria-sort", b.dataset.sort === state.sort ? (state.order === "asc" ? "ascending" : "descending") : "none");
    }
  }

  for (const b of document.querySelectorAll("th button[data-sort]")) {
    b.addEventListener("click", () => {
      const key = b.dataset.sort;
      if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
      else { state.sort = key; state.order = key === "name" || key === "kind" || key === "runtime" ? "asc" : "desc"; }
      state.offset = 0;
      load();
    });
  }
  let typing;
  document.getElementById("filter").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.filter = e.target.value.trim(); state.offset = 0; load(); }, 200);
  });
  document.getElementById("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); load(); });
  document.getElementById("next").addEventListener("click", () => { state.offset += state.limit; load(); });

  load();
  setInterval(() => { if (!document.hidden) load(); }, 2000);
})();
