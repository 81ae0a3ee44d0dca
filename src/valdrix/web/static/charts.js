// Charts of the dashboard, drawn with uPlot from the documented /api/v1 endpoints a chart's
// data- attributes name (the page's CSP allows no inline script, so nothing is inlined).
(function () {
  "use strict";

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function usd(value) {
    if (value === null || value === undefined) return "—";
    return "$" + Number(value).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  // Axis labels: whole dollars, thousands as k, so they fit beside a phone-sized chart.
  function axisUsd(value) {
    if (Math.abs(value) >= 1000) return "$" + (value / 1000).toLocaleString("en-US", { maximumFractionDigits: 1 }) + "k";
    return "$" + value.toLocaleString("en-US", { maximumFractionDigits: 0 });
  }

  function isoDay(date) {
    return date.toISOString().slice(0, 10);
  }

  function daysAgo(days) {
    const now = new Date();
    return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - days));
  }

  function seconds(day) {
    return Date.parse(day + "T00:00:00Z") / 1000;
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(url + " answered " + response.status);
    return response.json();
  }

  function say(element, text) {
    const note = document.createElement("p");
    note.className = "chart-empty";
    note.textContent = text;
    element.replaceChildren(note);
  }

  // The figures as a table under the chart: readable without the chart, and by screen readers.
  function figuresTable(element, headings, rows) {
    const details = document.createElement("details");
    details.className = "chart-table";
    const summary = document.createElement("summary");
    summary.textContent = "Show the figures";
    details.append(summary);
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    headings.forEach(function (text) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = text;
      head.append(th);
    });
    const body = table.createTBody();
    rows.forEach(function (cells) {
      const row = body.insertRow();
      row.dataset.day = cells[0];
      cells.forEach(function (cell) {
        const td = row.insertCell();
        td.textContent = cell;
      });
    });
    wrap.append(table);
    details.append(wrap);
    element.after(details);
  }

  function draw(element, options, data) {
    element.replaceChildren();
    const plot = new uPlot(
      Object.assign({ width: Math.max(element.clientWidth, 200), height: 220 }, options),
      data,
      element
    );
    new ResizeObserver(function () {
      plot.setSize({ width: Math.max(element.clientWidth, 200), height: 220 });
    }).observe(element);
    return plot;
  }

  function axes() {
    const stroke = cssVar("--muted");
    const grid = { stroke: cssVar("--line"), width: 1 };
    return [
      { stroke: stroke, grid: grid, ticks: grid },
      { stroke: stroke, grid: grid, ticks: grid, size: 60, values: function (u, values) { return values.map(axisUsd); } },
    ];
  }

  async function openWaste(element) {
    const days = element.dataset.days;
    const history = await getJson("/api/v1/findings/waste-history?days=" + days);
    const x = history.map(function (d) { return seconds(d.day); });
    const y = history.map(function (d) { return Number(d.monthly_usd); });
    draw(
      element,
      {
        axes: axes(),
        series: [
          {},
          { label: "Open monthly waste", stroke: cssVar("--chart-final"), width: 2, value: function (u, v) { return usd(v); } },
        ],
      },
      [x, y]
    );
    figuresTable(
      element,
      ["Day", "Open findings", "Monthly waste"],
      history.map(function (d) { return [d.day, String(d.open_findings), usd(d.monthly_usd)]; })
    );
  }

  async function spend(element) {
    const days = Number(element.dataset.days);
    const start = isoDay(daysAgo(days - 1));
    const end = isoDay(daysAgo(-1));
    const range = "start=" + start + "&end=" + end;
    const costs = await getJson("/api/v1/costs?group_by=day&" + range);
    const adjustments = await getJson("/api/v1/costs/adjustments?limit=500&" + range);
    if (costs.rows.length === 0) {
      say(element, "No cost data yet: import a FOCUS export or connect Cost Explorer.");
      return;
    }
    const restated = {};
    adjustments.forEach(function (a) {
      const day = restated[a.day] || (restated[a.day] = { before: 0, after: 0 });
      day.before += Number(a.old_billed_cost);
      day.after += Number(a.new_billed_cost);
    });
    const rows = costs.rows.slice().sort(function (a, b) { return a.day < b.day ? -1 : 1; });
    const x = rows.map(function (r) { return seconds(r.day); });
    const final = rows.map(function (r) { return Number(r.final_billed_cost) || null; });
    const prelim = rows.map(function (r) { return Number(r.preliminary_billed_cost) || null; });
    const marks = rows.map(function (r) { return restated[r.day] ? Number(r.billed_cost) : null; });
    const bars = uPlot.paths.bars({ size: [0.7, 40] });
    draw(
      element,
      {
        axes: axes(),
        series: [
          {},
          { label: "Final", fill: cssVar("--chart-final"), stroke: cssVar("--chart-final"), paths: bars, points: { show: false }, value: function (u, v) { return usd(v); } },
          { label: "Preliminary", fill: cssVar("--chart-prelim"), stroke: cssVar("--chart-prelim"), paths: bars, points: { show: false }, value: function (u, v) { return usd(v); } },
          {
            label: "Restated",
            stroke: cssVar("--chart-restated"),
            fill: cssVar("--chart-restated"),
            paths: function () { return null; },
            points: { show: true, size: 10 },
            value: function (u, v, series, index) {
              const day = index === null ? null : restated[rows[index].day];
              return day ? "was " + usd(day.before) + ", now " + usd(day.after) : "—";
            },
          },
        ],
      },
      [x, final, prelim, marks]
    );
    figuresTable(
      element,
      ["Day", "Billed", "Status", "Restated"],
      rows.map(function (r) {
        const day = restated[r.day];
        const status = Number(r.preliminary_billed_cost) ? "preliminary" : "final";
        return [r.day, usd(r.billed_cost), status, day ? "was " + usd(day.before) + ", now " + usd(day.after) : ""];
      })
    );
  }

  const charts = { "open-waste": openWaste, spend: spend };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      const chart = charts[element.dataset.chart];
      if (!chart) return;
      element.setAttribute("aria-busy", "true");
      chart(element)
        .catch(function (error) { say(element, "This chart could not be loaded (" + error.message + ")."); })
        .finally(function () { element.removeAttribute("aria-busy"); });
    });
  });
})();
