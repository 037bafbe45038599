/* Prisma Glow staff UI: small progressive enhancements. No inline scripts anywhere (strict CSP). */
(function () {
  "use strict";

  // Where user content is shown (names, descriptions, documents, answers, traces…): htmx processes
  // nothing inside these containers, and no request may come from them.
  var USER_CONTENT = "[hx-disable], [data-hx-disable]";

  // The page's htmx token (templates/admin/base_site.html). Read once, from the head: a meta tag
  // inside the body could only come from content, and comes after this one in the document.
  var tokenMeta = document.head ? document.head.querySelector("meta[name='pg-htmx']") : null;
  var pageToken = tokenMeta ? tokenMeta.getAttribute("content") || "" : "";

  function csrfToken() {
    // csrftoken in development, __Host-csrftoken in production (settings.CSRF_COOKIE_NAME).
    var match = document.cookie.match(/(?:^|;\s*)(?:__Host-)?csrftoken=([^;]+)/);
    if (match) { return decodeURIComponent(match[1]); }
    var inputs = document.querySelectorAll("input[name=csrfmiddlewaretoken]");
    for (var i = 0; i < inputs.length; i++) {
      if (!inputs[i].closest(USER_CONTENT)) { return inputs[i].value; }
    }
    return "";
  }

  // True when the element that issues an htmx request comes from the product's own templates: it
  // carries this page's token in data-pg-htmx (the {% pg_htmx %} tag) and is not inside user content.
  function fromProduct(elt) {
    return Boolean(
      pageToken && elt && elt.getAttribute && elt.closest &&
      elt.getAttribute("data-pg-htmx") === pageToken && !elt.closest(USER_CONTENT)
    );
  }

  // An htmx request from anything else is cancelled before it is sent; those from the product's
  // elements carry the CSRF token, like Django's own forms.
  document.addEventListener("htmx:configRequest", function (event) {
    if (!fromProduct(event.detail.elt)) {
      event.preventDefault();
      return;
    }
    event.detail.headers["X-CSRFToken"] = csrfToken();
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

})();
