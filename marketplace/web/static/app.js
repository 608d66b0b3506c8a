// Tell the server the viewer's time zone so dates are shown in it.
(function () {
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && document.cookie.indexOf("tz=" + tz) === -1) {
      document.cookie = "tz=" + encodeURIComponent(tz) + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* old browsers: server default applies */ }
})();

// Controls marked data-submit-on-change submit their form (the language switch); no inline handlers (CSP).
document.querySelectorAll("[data-submit-on-change]").forEach(function (control) {
  control.addEventListener("change", function () { control.form.submit(); });
});
