// The print view's button opens the browser's print dialog (where "Save as PDF" is offered).
document.addEventListener("click", (event) => {
  if (event.target instanceof Element && event.target.closest("[data-print]")) {
    window.print();
  }
});
