/* A running scan, live: its units, findings and end from GET /api/v1/scans/{id}/events, as
   htmx's SSE extension passes them on (htmx:sseMessage). The stream replays what already
   happened, so a page opened mid-scan catches up. Once the scan has ended, the server's own
   rendering of it (hx-get on #scan-state) replaces these live figures, so a finished scan
   reads the same however it was watched. */
(function () {
  "use strict";

  // Findings are priced in US dollars (monthly_cost_usd), whatever the tenant is billed in.
  function usd(amount) {
    return "$" + amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function statusBadge(status) {
    const badge = document.createElement("span");
    badge.className = "status status-" + status;
    badge.textContent = status;
    return badge;
  }

  function placeholder(region, detector) {
    const cell = document.createElement("td");
    cell.dataset.unit = region + "|" + detector;
    cell.className = "muted";
    cell.textContent = "—";
    return cell;
  }

  /* The grid's cell for a unit, adding its region's column or its detector's row if new. */
  function cellFor(table, region, detector) {
    const key = region + "|" + detector;
    const find = () => [...table.querySelectorAll("td[data-unit]")].find((c) => c.dataset.unit === key);
    if (find()) return find();
    const head = table.tHead.rows[0];
    const body = table.tBodies[0];
    const regions = [...head.querySelectorAll("th[data-region]")].map((th) => th.dataset.region);
    if (!regions.includes(region)) {
      const th = document.createElement("th");
      th.scope = "col";
      th.dataset.region = region;
      th.textContent = region;
      head.appendChild(th);
      regions.push(region);
      for (const row of body.rows) row.appendChild(placeholder(region, row.dataset.detector));
    }
    if (![...body.rows].some((row) => row.dataset.detector === detector)) {
      const row = body.insertRow();
      row.dataset.detector = detector;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = detector;
      row.appendChild(th);
      for (const r of regions) row.appendChild(placeholder(r, detector));
    }
    return find();
  }

  function countUnits(state) {
    const counts = {};
    for (const cell of state.querySelectorAll("td[data-status]")) {
      counts[cell.dataset.status] = (counts[cell.dataset.status] || 0) + 1;
    }
    state.querySelector("[data-figure=unit_counts]").textContent = Object.keys(counts).sort()
      .map((status) => counts[status] + " " + status).join(", ");
  }

  function showStatus(state, status, reason) {
    const figure = state.querySelector("[data-figure=status]");
    figure.className = "status status-" + status;
    figure.textContent = status;
    const meaning = JSON.parse(state.dataset.meanings)[status] || "";
    state.querySelector("[data-figure=status_meaning]").textContent =
      meaning + (reason ? ": " + reason : "") + ".";
  }

  // What each message of the stream changes. htmx's SSE extension owns the connection
  // (#scan-live in scan.html); these read the messages it passes on.
  let findings = 0;
  let priced = 0;
  const handlers = {
    "scan.started": (state) => showStatus(state, "running", null),
    "scan.resumed": (state) => showStatus(state, "running", null),
    finding: (state, finding) => {
      findings += 1;
      priced += finding.monthly_cost_usd === null ? 0 : Number(finding.monthly_cost_usd);
      state.querySelector("[data-figure=findings_count]").textContent = String(findings);
      state.querySelector("[data-figure=arriving_usd]").textContent = usd(priced);
    },
    "unit.finished": (state, unit) => {
      const cell = cellFor(state.querySelector("table.units"), unit.region, unit.detector);
      cell.className = "";
      cell.dataset.status = unit.status;
      cell.replaceChildren(statusBadge(unit.status));
      if (unit.findings) cell.append(" · " + unit.findings);
      if (unit.reason) {
        const why = document.createElement("span");
        why.className = "muted small";
        why.textContent = unit.reason;
        cell.append(document.createElement("br"), why);
      }
      countUnits(state);
    },
    // The server's rendering of the ended scan follows (#scan-state's hx-trigger).
    "scan.finished": (state, end) => showStatus(state, end.status, end.reason),
  };

  // Every event carries its id. The extension reconnects with a new EventSource, which sends no
  // Last-Event-ID, so the server replays the scan from its first event: what was already
  // shown is skipped, and no finding is counted twice.
  let lastShown = 0;
  // htmx:sseMessage's detail is the stream's MessageEvent. #scan-state's own end trigger
  // sends one too, which bubbles here: only #scan-live's are read.
  document.addEventListener("htmx:sseMessage", (event) => {
    const live = event.target;
    const state = document.getElementById("scan-state");
    const handle = handlers[event.detail.type];
    const id = Number(event.detail.lastEventId);
    if (live.id !== "scan-live" || !state || !handle || id <= lastShown) return;
    lastShown = id;
    handle(state, JSON.parse(event.detail.data));
  });

  function stop(live, source, reason) {
    live.removeAttribute("sse-connect"); // the extension connects again only while it is set
    source.close();
    showStatus(document.getElementById("scan-state"), "stopped", reason);
  }

  // The stream's own error event (data: the problem) says the credential that opened it no
  // longer holds: stop. A stream that cannot be opened (the server gone, a refusal before any
  // event) is tried a few times, then given up with a word to the person, not retried forever.
  const TRIES = 3;
  let failedTries = 0;
  document.addEventListener("htmx:sseOpen", (event) => {
    if (event.target.id === "scan-live") failedTries = 0;
  });
  document.addEventListener("htmx:sseError", (event) => {
    const live = event.target;
    if (live.id !== "scan-live") return;
    const source = event.detail.source;
    const said = event.detail.error && event.detail.error.data;
    if (said) {
      stop(live, source, JSON.parse(said).detail);
    } else if (++failedTries >= TRIES) {
      // Counted whether the browser gave the connection up (a refusal: CLOSED, and htmx opens
      // another) or keeps trying it itself (the server unreachable: CONNECTING, forever).
      stop(live, source, "the live updates could not be reached; reload the page to try again");
    }
  });
})();
