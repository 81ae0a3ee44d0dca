// The findings table's "select this page" box ticks every row's box; where the filter lists
// more than this page, it also asks once (htmx, GET /findings/count) for the choice of every
// finding of the filter. Unticking a row unticks both: the selection is no longer "all".
// The Dismiss confirmation names how many findings it dismisses.
"use strict";
function countInConfirmation() {
  const dismiss = document.querySelector("#bulk button[value=dismiss]");
  if (!dismiss) return;
  const matching = document.getElementById("which-matching");
  const shown = matching && matching.checked ? document.querySelector("label[for=which-matching]") : null;
  const count = shown
    ? Number(shown.dataset.count)
    : document.querySelectorAll("#findings-results tbody input[name=finding_id]:checked").length;
  const findings = count === 1 ? "1 finding" : `${count} findings`;
  dismiss.dataset.confirm = `Dismiss ${findings}? They leave the open list and its totals until someone reopens them.`;
}
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
  countInConfirmation();
});
