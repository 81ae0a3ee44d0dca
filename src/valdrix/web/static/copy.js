// Copy buttons: <button class="copy" data-copy="<id of the element to copy>">, with a status
// element named by aria-describedby saying whether it worked (the CSP allows no inline handler).
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.getAttribute("aria-describedby"));
  if (!source) return;
  const say = (text) => { if (status) status.textContent = text; };
  const text = "value" in source ? source.value : source.textContent;
  if (!navigator.clipboard) {
    say("Select the text and copy it.");
    return;
  }
  navigator.clipboard.writeText(text).then(
    () => say("Copied."),
    () => say("Could not copy here: select the text and copy it."),
  );
});
