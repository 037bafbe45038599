/* Prisma Glow staff UI: small progressive enhancements. No inline scripts anywhere (strict CSP). */
(function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) { return decodeURIComponent(match[1]); }
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // Every htmx request carries the CSRF token, like Django's own forms.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  // Selects marked data-autosubmit submit their form on change (the button stays for keyboards
  // and for browsers without JavaScript).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-autosubmit]") && target.form) {
      target.form.requestSubmit ? target.form.requestSubmit() : target.form.submit();
    }
  });

  // Buttons and links marked data-confirm ask before they act.
  document.addEventListener("click", function (event) {
    var el = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (el && !window.confirm(el.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // Copy-to-clipboard buttons (the API key secret shown once).
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy-target]") : null;
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
      });
    }
  });

  // Reorder rows of a sortable list with "move up / move down" buttons, keeping the hidden order
  // fields in step; works from the keyboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-move]") : null;
    if (!button) { return; }
    event.preventDefault();
    var row = button.closest("[data-sortable-row]");
    var list = row && row.parentElement;
    if (!list) { return; }
    if (button.getAttribute("data-move") === "up" && row.previousElementSibling) {
      list.insertBefore(row, row.previousElementSibling);
    } else if (button.getAttribute("data-move") === "down" && row.nextElementSibling) {
      list.insertBefore(row.nextElementSibling, row);
    }
    Array.prototype.forEach.call(list.querySelectorAll("[data-sortable-row]"), function (item, index) {
      var input = item.querySelector("input[data-order]");
      if (input) { input.value = index; }
    });
    button.focus();
  });
})();
