// The findings table's "select this page" box ticks every row's box; where the filter lists
// more than this page, it also asks once (htmx, GET /findings/count) for the choice of every
// finding of the filter. Unticking a row unticks both: the selection is no longer "all".
"use strict";
document.addEventListener("change", (event) => {
  const box = event.target;
  const page = document.getElementById("select-page");
  const choice = document.getElementById("matching-choice");
  const matching = document.getElementById("which-matching");
  if (box === page) {
    for (const row of document.querySelectorAll("#findings-results tbody input[name=finding_id]")) {
      row.checked = box.checked;
    }
    if (choice) {
      choice.hidden = !box.checked;
      if (box.checked) choice.dispatchEvent(new Event("select-page"));
    }
    if (matching && !box.checked) matching.checked = false;
  } else if (box.name === "finding_id" && !box.checked) {
    if (page) page.checked = false;
    if (matching) matching.checked = false;
    if (choice) choice.hidden = true;
  }
});
