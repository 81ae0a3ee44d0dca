// A refused or failed htmx request, told to the person. htmx swaps no 4xx/5xx answer, so
// without this a refused action would leave the page as it was and say nothing. The problem
// is shown in an alert (role="alert", inserted into #request-problem of base.html, which
// screen readers announce): the API's problem+json title and detail, or the error page's,
// with the request id to quote.
"use strict";
(function () {
  // problem+json (the API, the middleware's 413) or the dashboard's error page (error.html
  // marks its title, detail and request id with data-problem-*).
  function problemOf(xhr) {
    const problem = {
      title: xhr.status ? xhr.status + " " + xhr.statusText : "The request failed",
      detail: "",
      requestId: xhr.getResponseHeader("X-Request-ID") || "",
    };
    const type = xhr.getResponseHeader("Content-Type") || "";
    if (type.includes("json")) {
      try {
        const body = JSON.parse(xhr.responseText);
        problem.title = body.title || problem.title;
        problem.detail = typeof body.detail === "string" ? body.detail : "";
        problem.requestId = body.request_id || problem.requestId;
      } catch (ignored) {
        // Not JSON after all: the status line says enough.
      }
    } else if (type.includes("text/html")) {
      // DOMParser's document is inert: nothing in it runs or loads.
      const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      const text = (name) => {
        const element = page.querySelector("[data-problem-" + name + "]");
        return element ? element.textContent.trim() : "";
      };
      problem.title = text("title") || problem.title;
      problem.detail = text("detail");
      problem.requestId = text("request-id") || problem.requestId;
    }
    return problem;
  }

  function show(problem) {
    const region = document.getElementById("request-problem");
    if (!region) return;
    const said = document.createElement("p");
    const title = document.createElement("strong");
    title.dataset.figure = "problem_title";
    title.textContent = problem.title;
    said.append(title);
    if (problem.detail) {
      const detail = document.createElement("span");
      detail.dataset.figure = "problem_detail";
      detail.textContent = problem.detail;
      said.append(": ", detail);
    }
    const parts = [said];
    if (problem.requestId) {
      const id = document.createElement("p");
      id.className = "small";
      const code = document.createElement("code");
      code.dataset.figure = "problem_request_id";
      code.textContent = problem.requestId;
      id.append("Request id ", code);
      parts.push(id);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Dismiss";
    close.addEventListener("click", () => region.replaceChildren());
    parts.push(close);
    const alert = document.createElement("div");
    alert.setAttribute("role", "alert");
    alert.append(...parts);
    region.replaceChildren(alert);
  }

  // A person's next action (a submit or a click, not a page's own polling) starts afresh: the
  // last refusal's alert goes, and comes back only if this one is refused too.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const cause = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent;
    const region = document.getElementById("request-problem");
    if (region && cause && (cause.type === "submit" || cause.type === "click")) {
      region.replaceChildren();
    }
  });

  document.addEventListener("htmx:responseError", (event) => show(problemOf(event.detail.xhr)));
  document.addEventListener("htmx:sendError", () =>
    show({ title: "The request could not be sent", detail: "check the connection and try again", requestId: "" }),
  );
})();
