// Charts of the dashboard, drawn with uPlot from the documented /api/v1 endpoints a chart's
// data- attributes name (the page's CSP allows no inline script, so nothing is inlined).
(function () {
  "use strict";

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // An amount in its own currency, as the pages' money filter writes it (web/templating.py):
  // $1,234.56 in US dollars, 1,234.56 EUR in any other.
  function money(value, currency) {
    if (value === null || value === undefined) return "—";
    const amount = Number(value);
    const digits = Math.abs(amount).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    const sign = amount < 0 ? "-" : "";
    return currency === "USD" ? sign + "$" + digits : sign + digits + " " + currency;
  }

  function usd(value) {
    return money(value, "USD");
  }

  // Axis labels: whole units, thousands as k, so they fit beside a phone-sized chart.
  function axisMoney(value, currency) {
    const whole = Math.abs(value) >= 1000
      ? (value / 1000).toLocaleString("en-US", { maximumFractionDigits: 1 }) + "k"
      : value.toLocaleString("en-US", { maximumFractionDigits: 0 });
    return currency === "USD" ? "$" + whole : whole + " " + currency;
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

  function axes(currency) {
    const stroke = cssVar("--muted");
    const grid = { stroke: cssVar("--line"), width: 1 };
    return [
      { stroke: stroke, grid: grid, ticks: grid },
      {
        stroke: stroke, grid: grid, ticks: grid, size: currency === "USD" ? 60 : 76,
        values: function (u, values) { return values.map(function (v) { return axisMoney(v, currency); }); },
      },
    ];
  }

  // A bar chart's amounts start at zero: a bar's height is its amount, so days compare
  // honestly (uPlot would start near the smallest bar). A day of net credits goes below it.
  function fromZero(amounts) {
    const smallest = Math.min(0, ...amounts);
    const largest = Math.max(0, ...amounts);
    if (smallest === 0 && largest === 0) return [0, 1];
    return uPlot.rangeNum(smallest, largest, 0.1, true).map(function (end, i) {
      return i === 0 ? Math.min(0, end) : Math.max(0, end);
    });
  }

  // Whether a figure may still change, in the costs page's words (web/costs.py cost_flag).
  function costFlag(row) {
    const preliminary = Number(row.preliminary_billed_cost);
    const final = Number(row.final_billed_cost);
    if (preliminary && final) return "partly preliminary";
    return preliminary ? "preliminary" : "final";
  }

  // The currency a chart of the tenant's spend shows: US dollars if any, else the one with
  // the most billed (totals come largest first). Amounts in different currencies never add.
  function mainCurrency(totals) {
    return totals.some(function (t) { return t.currency === "USD"; }) ? "USD" : totals[0].currency;
  }

  async function openWaste(element) {
    const days = element.dataset.days;
    const history = await getJson("/api/v1/findings/waste-history?days=" + days);
    const x = history.map(function (d) { return seconds(d.day); });
    const y = history.map(function (d) { return Number(d.monthly_usd); });
    draw(
      element,
      {
        axes: axes("USD"),
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

  // The caption beside the spend chart: which currency it shows, and where the others are.
  function currencyCaption(element, currency, others) {
    const caption = document.querySelector("[data-chart-caption=" + element.dataset.chart + "]");
    if (!caption) return;
    caption.replaceChildren("Amounts in " + currency + ".");
    if (others.length === 0) return;
    const link = document.createElement("a");
    link.href = "/costs";
    link.textContent = "the costs page";
    caption.append(" Costs in " + others.join(", ") + " are not added in: they are listed on ", link, ".");
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
    const currency = mainCurrency(costs.totals);
    const others = costs.totals.map(function (t) { return t.currency; }).filter(function (c) { return c !== currency; });
    currencyCaption(element, currency, others);
    const amount = function (v) { return money(v, currency); };
    // A figure (a source's day, service and account) restated twice (100 -> 110, then
    // 110 -> 120) has two adjustments: the day shows it from its first value to its last
    // (100 -> 120), not their sum.
    const moved = {};
    adjustments
      .filter(function (a) { return a.currency === currency; })
      .sort(function (a, b) { return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0; })
      .forEach(function (a) {
        const key = [a.source_id, a.day, a.service, a.account].join("|");
        const figure = moved[key] || (moved[key] = { day: a.day, before: Number(a.old_billed_cost) });
        figure.after = Number(a.new_billed_cost);
      });
    const restated = {};
    Object.values(moved).forEach(function (figure) {
      const day = restated[figure.day] || (restated[figure.day] = { before: 0, after: 0 });
      day.before += figure.before;
      day.after += figure.after;
    });
    const rows = costs.rows
      .filter(function (r) { return r.currency === currency; })
      .sort(function (a, b) { return a.day < b.day ? -1 : 1; });
    const x = rows.map(function (r) { return seconds(r.day); });
    const final = rows.map(function (r) { return Number(r.final_billed_cost) || null; });
    const prelim = rows.map(function (r) { return Number(r.preliminary_billed_cost) || null; });
    // Preliminary bars stand on the day's final amount (the band below), so a day's bar is
    // its whole billed cost, split by colour.
    const stacked = rows.map(function (r) { return Number(r.preliminary_billed_cost) ? Number(r.billed_cost) : null; });
    const marks = rows.map(function (r) { return restated[r.day] ? Number(r.billed_cost) : null; });
    const scale = fromZero(rows.map(function (r) { return Number(r.billed_cost); }));
    const bars = uPlot.paths.bars({ size: [0.7, 40] });
    draw(
      element,
      {
        axes: axes(currency),
        scales: { y: { range: function () { return scale; } } },
        bands: [{ series: [2, 1] }],
        series: [
          {},
          { label: "Final", fill: cssVar("--chart-final"), stroke: cssVar("--chart-final"), paths: bars, points: { show: false }, value: function (u, v) { return amount(v); } },
          {
            label: "Preliminary", fill: cssVar("--chart-prelim"), stroke: cssVar("--chart-prelim"), paths: bars, points: { show: false },
            value: function (u, v, series, index) { return index === null ? "—" : amount(prelim[index]); },
          },
          {
            label: "Restated",
            stroke: cssVar("--chart-restated"),
            fill: cssVar("--chart-restated"),
            paths: function () { return null; },
            points: { show: true, size: 10 },
            value: function (u, v, series, index) {
              const day = index === null ? null : restated[rows[index].day];
              return day ? "was " + amount(day.before) + ", now " + amount(day.after) : "—";
            },
          },
        ],
      },
      [x, final, stacked, marks]
    );
    element.setAttribute(
      "aria-label",
      "Billed cost per day in " + currency + " over the last " + days + " days, on a scale from " +
        amount(scale[0]) + " to " + amount(scale[1]) + "; preliminary days and restated days marked"
    );
    figuresTable(
      element,
      ["Day", "Billed", "Status", "Restated"],
      rows.map(function (r) {
        const day = restated[r.day];
        return [r.day, amount(r.billed_cost), costFlag(r), day ? "was " + amount(day.before) + ", now " + amount(day.after) : ""];
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
