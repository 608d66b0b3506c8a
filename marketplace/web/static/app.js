// Tell the server the viewer's time zone so dates are shown in it (the cookie holds the zone percent-encoded,
// "Asia%2FShanghai"; the server decodes it). On the first visit the page was drawn in the default zone: once
// the cookie is stored, draw it again so every page, this one too, shows the same zone.
(function () {
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!tz) { return; }
    var value = encodeURIComponent(tz);
    var current = ("; " + document.cookie).split("; tz=")[1];
    current = current === undefined ? null : current.split(";")[0];
    if (current === value) { return; }
    document.cookie = "tz=" + value + "; path=/; max-age=31536000; samesite=lax";
    var stored = ("; " + document.cookie).indexOf("; tz=" + value) !== -1;
    var foot = document.querySelector("footer[data-tz]");
    // Only a page fetched with GET is drawn again: reloading the answer to a form post would post it twice.
    if (current === null && stored && foot && foot.hasAttribute("data-redraw") && foot.getAttribute("data-tz") !== tz) {
      window.location.reload();
    }
  } catch (e) { /* old browsers: server default applies */ }
})();

// Controls marked data-submit-on-change submit their form (the language switch); no inline handlers (CSP).
document.querySelectorAll("[data-submit-on-change]").forEach(function (control) {
  control.addEventListener("change", function () { control.form.submit(); });
});
