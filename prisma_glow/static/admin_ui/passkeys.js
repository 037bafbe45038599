/* Passkeys (WebAuthn): asks the browser for a passkey and posts its answer with the page's form.
 *
 * A button `data-passkey="create"` (registration) or `data-passkey="get"` (sign-in, step-up) names:
 * data-options — the id of the json_script holding the server's options (the challenge waits in the
 * session); data-field — the id of the hidden input that carries the answer (JSON); data-status — the
 * id of the element where a problem is said. The form is then submitted as is (with its CSRF token,
 * and on the step-up page the original request's fields): the server verifies the answer.
 * No inline script (CSP script-src 'self').
 */
(function () {
  "use strict";

  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) return null;
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: toBytes(item.id) });
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json, { challenge: toBytes(json.challenge) });
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = withIds(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json, { challenge: toBytes(json.challenge) });
    options.allowCredentials = withIds(json.allowCredentials);
    return options;
  }

  function answer(credential) {
    var response = credential.response;
    var data = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      data.response.attestationObject = toText(response.attestationObject);
      data.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      data.response.authenticatorData = toText(response.authenticatorData);
      data.response.signature = toText(response.signature);
      data.response.userHandle = toText(response.userHandle);
    }
    return JSON.stringify(data);
  }

  function say(button, text) {
    var status = document.getElementById(button.dataset.status || "");
    if (status) {
      status.textContent = text;
      status.classList.add("errornote");
    }
  }

  function use(button) {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(button, "This browser cannot use passkeys: use a code instead.");
      return;
    }
    var source = document.getElementById(button.dataset.options || "");
    var field = document.getElementById(button.dataset.field || "");
    if (!source || !field || !field.form) return;
    var json = JSON.parse(source.textContent);
    var create = button.dataset.passkey === "create";
    var asked = create
      ? navigator.credentials.create({ publicKey: creationOptions(json) })
      : navigator.credentials.get({ publicKey: requestOptions(json) });
    button.disabled = true;
    asked.then(
      function (credential) {
        field.value = answer(credential);
        field.form.submit();
      },
      function (error) {
        button.disabled = false;
        var name = error && error.name;
        if (name === "InvalidStateError" && create) {
          say(button, "This passkey is already registered for your account.");
        } else if (name === "SecurityError") {
          say(button, "Passkeys cannot be used at this address: open the site by its host name.");
        } else {
          say(button, "The passkey was not used (cancelled or timed out): try again" + (create ? "." : ", or type a code."));
        }
      },
    );
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-passkey]");
    if (!button) return;
    event.preventDefault();
    use(button);
  });
})();
