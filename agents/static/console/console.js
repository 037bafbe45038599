/* Prisma Glow test console: streams an agent's answer into the page (Server-Sent Events over fetch).
 *
 * The form works without this script (a normal POST that redirects back). With it, the message is
 * posted with `Accept: text/event-stream`; the server answers with the runtime's stream protocol
 * (agents/runtime/streaming.py, docs/api.md): `step`, `delta`, `retract`, `execution` and `error`.
 * Deltas (checked sentences) and a retraction's text and reason are inserted as text, never as
 * HTML; `step` and `execution` carry `html` rendered (and escaped) by the server's templates.
 * Keyboard: Enter sends, Shift+Enter starts a new line; focus returns to the message box.
 */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") {
      fn();
    } else {
      document.addEventListener("DOMContentLoaded", fn);
    }
  }

  function parseEvents(state, chunk, onEvent) {
    state.buffer += chunk;
    var index = state.buffer.indexOf("\n\n");
    while (index !== -1) {
      var block = state.buffer.slice(0, index);
      state.buffer = state.buffer.slice(index + 2);
      var name = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) {
          name = line.slice(6).trim();
        } else if (line.indexOf("data:") === 0) {
          data.push(line.slice(5).replace(/^ /, ""));
        }
      });
      if (data.length) {
        onEvent(name, JSON.parse(data.join("\n")));
      }
      index = state.buffer.indexOf("\n\n");
    }
  }

  function readStream(body, onEvent) {
    var reader = body.getReader();
    var decoder = new TextDecoder();
    var state = { buffer: "" };
    function pump() {
      return reader.read().then(function (result) {
        if (result.done) {
          parseEvents(state, decoder.decode() + "\n\n", onEvent);
          return;
        }
        parseEvents(state, decoder.decode(result.value, { stream: true }), onEvent);
        return pump();
      });
    }
    return pump();
  }

  function focusFeedback(container) {
    if (!container) {
      return;
    }
    var target =
      container.querySelector("[aria-invalid=true]") ||
      container.querySelector("[role=status]") ||
      container.querySelector("button");
    if (target) {
      target.focus();
    }
  }

  ready(function () {
    // Feedback forms are swapped in place by htmx: move focus to the confirmation or the error.
    document.body.addEventListener("htmx:afterSettle", function (event) {
      var id = event.detail && event.detail.target && event.detail.target.id;
      if (id && id.indexOf("feedback-") === 0) {
        focusFeedback(document.getElementById(id));
      }
    });

    var form = document.getElementById("console-form");
    if (!form || !window.fetch || !window.TextDecoder || !window.ReadableStream) {
      return;
    }
    var textarea = form.querySelector("textarea[name=message]");
    var log = document.getElementById("console-log");
    var errors = document.getElementById("console-errors");
    var status = document.getElementById("console-status");
    var send = document.getElementById("console-send");
    var template = document.getElementById("console-turn-template");
    var busy = false;

    function setBusy(value) {
      busy = value;
      send.disabled = value;
      form.setAttribute("aria-busy", value ? "true" : "false");
      if (value) {
        log.setAttribute("aria-busy", "true");
      } else {
        log.removeAttribute("aria-busy");
      }
    }

    function showError(message, html) {
      if (html) {
        errors.innerHTML = html;
      } else {
        errors.textContent = "";
        var p = document.createElement("p");
        p.className = "errornote";
        p.textContent = message;
        errors.appendChild(p);
      }
    }

    function failTurn(turn, message) {
      var answer = turn.querySelector(".console-answer");
      var p = document.createElement("p");
      p.className = "console-failed";
      p.textContent = message;
      answer.appendChild(p);
      answer.removeAttribute("aria-busy");
      turn.classList.remove("console-turn--running");
      turn.classList.add("console-turn--failed");
      status.textContent = message;
    }

    function run() {
      var message = textarea.value;
      var data = new FormData(form);
      setBusy(true);
      errors.textContent = "";
      status.textContent = "Sending…";
      var turn = template.content.firstElementChild.cloneNode(true);
      turn.querySelector("[data-slot=question]").textContent = message;
      var answer = turn.querySelector("[data-slot=answer]");
      var steps = turn.querySelector("[data-slot=steps]");
      var finished = false;

      fetch(form.action, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { Accept: "text/event-stream", "HX-Request": "true" },
      })
        .then(function (response) {
          var type = response.headers.get("Content-Type") || "";
          if (!response.ok || type.indexOf("text/event-stream") === -1) {
            return response.text().then(function (html) {
              status.textContent = "The message was not sent.";
              if (response.status === 400 || response.status === 409 || response.status === 429) {
                showError("", html);
              } else {
                showError("The message could not be sent (HTTP " + response.status + ").");
              }
            });
          }
          var empty = document.getElementById("console-log-empty");
          if (empty) {
            empty.remove();
          }
          log.appendChild(turn);
          turn.scrollIntoView({ block: "nearest" });
          textarea.value = "";
          status.textContent = "The agent is answering…";
          return readStream(response.body, function (name, payload) {
            if (name === "delta") {
              answer.appendChild(document.createTextNode(payload.text));
            } else if (name === "retract") {
              // A guardrail blocked the answer after part of it was shown (or rewrote it at the end):
              // what was shown is replaced by the reason (or by the answer as recorded).
              answer.textContent = payload.text;
              if (payload.reason) {
                var reason = document.createElement("p");
                reason.className = "console-blocked";
                reason.textContent = payload.reason;
                answer.appendChild(reason);
                status.textContent = payload.reason;
              }
            } else if (name === "step") {
              steps.insertAdjacentHTML("beforeend", payload.html);
            } else if (name === "approval") {
              // The run paused for a tool call's approval; the execution that follows shows the decision.
              status.textContent = "Waiting for a person to approve a call of " + payload.tool_name + ".";
            } else if (name === "execution") {
              finished = true;
              turn.insertAdjacentHTML("afterend", payload.html);
              var done = turn.nextElementSibling;
              turn.remove();
              turn = done;
              if (window.htmx) {
                window.htmx.process(done);
              }
              var clear = document.getElementById("console-clear");
              if (clear) {
                clear.hidden = false;
              }
              var badge = done.querySelector(".console-badge");
              status.textContent = "Answer " + (badge ? badge.textContent.trim().toLowerCase() : "complete") + ".";
            } else if (name === "error") {
              finished = true;
              failTurn(turn, payload.message || "The run failed.");
            }
          }).then(function () {
            if (!finished) {
              failTurn(turn, "The connection closed before the answer was complete.");
            }
          });
        })
        .catch(function () {
          if (turn.parentNode) {
            failTurn(turn, "The connection to the server was lost.");
          } else {
            showError("The message could not be sent: the server did not answer.");
          }
        })
        .finally(function () {
          setBusy(false);
          textarea.focus();
        });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!busy) {
        run();
      }
    });

    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (form.requestSubmit) {
          form.requestSubmit();
        } else if (!busy) {
          run();
        }
      }
    });
  });
})();
