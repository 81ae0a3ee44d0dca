// Confirmation before a destructive action. A submit button (or its form) with
// data-confirm="<question>" asks in the page's <dialog id="confirm-dialog"> before htmx sends
// the request; data-confirm-yes names the confirming button ("Revoke", "Remove", ...).
// htmx's own hx-confirm would use window.confirm, which cannot name the action on its button.
"use strict";
document.addEventListener("htmx:confirm", (event) => {
  const submitter = event.detail.triggeringEvent && event.detail.triggeringEvent.submitter;
  const asking = submitter && submitter.dataset.confirm ? submitter : event.detail.elt.closest("[data-confirm]");
  const dialog = document.getElementById("confirm-dialog");
  if (!asking || !dialog) return;
  event.preventDefault();
  dialog.querySelector("[data-question]").textContent = asking.dataset.confirm;
  dialog.querySelector("button[value=confirm]").textContent = asking.dataset.confirmYes || "Confirm";
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    () => {
      if (dialog.returnValue === "confirm") event.detail.issueRequest(true);
      else if (submitter) submitter.focus();
    },
    { once: true },
  );
  dialog.showModal();
});
