// Byte-level progress of a file upload sent by htmx: a form with
// data-upload-progress="<id of a <progress>>" shows the request body's bytes sent, read from
// the request's own upload events (htmx's htmx:xhr:progress mixes in the answer's download).
"use strict";
(function () {
  function size(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  document.addEventListener("htmx:beforeSend", (event) => {
    const form = event.target.closest("form[data-upload-progress]");
    if (!form) return;
    const bar = document.getElementById(form.dataset.uploadProgress);
    const said = document.getElementById(bar.getAttribute("aria-describedby"));
    const show = (loaded, total) => {
      bar.max = total || 1;
      bar.value = loaded;
      said.textContent = total ? size(loaded) + " of " + size(total) + " sent" : "";
    };
    bar.hidden = false;
    show(0, 0);
    const upload = event.detail.xhr.upload;
    upload.addEventListener("progress", (step) => {
      if (step.lengthComputable) show(step.loaded, step.total);
    });
    upload.addEventListener("load", () => {
      said.textContent = size(bar.max) + " sent; checking every row…";
    });
  });

  // A refused or failed upload (static/request-problems.js says why): no row is being
  // checked, so the bar and its "checking every row…" go.
  const forget = (event) => {
    const form = event.target.closest && event.target.closest("form[data-upload-progress]");
    if (!form) return;
    const bar = document.getElementById(form.dataset.uploadProgress);
    bar.hidden = true;
    document.getElementById(bar.getAttribute("aria-describedby")).textContent = "";
  };
  document.addEventListener("htmx:responseError", forget);
  document.addEventListener("htmx:sendError", forget);
})();
