// tessera's one script: the passkey buttons of the sign-in, second-step and
// account pages. Pages carry it inline, allowed by its hash in their
// Content-Security-Policy; everything else on them works without it. It speaks
// the JSON API: `{ceremony, options}` challenges, answers as JSON.
"use strict";
(function () {
  var root = document.querySelector("[data-passkey]");
  if (!root || !window.PublicKeyCredential || !navigator.credentials) return;
  root.hidden = false;
  var mode = root.getAttribute("data-passkey");
  var problem = root.querySelector("[data-passkey-error]");

  function bytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }
  function text(buffer) {
    if (!buffer) return null;
    var view = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < view.length; i++) raw += String.fromCharCode(view[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: bytes(c.id) });
    });
  }
  function say(message) {
    if (!problem) return;
    problem.textContent = message;
    problem.hidden = !message;
  }
  function post(path, body, csrf) {
    var headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) throw new Error(json.error_description || "refused");
        return json;
      });
    });
  }
  function sentence(error) {
    if (error && error.name === "NotAllowedError") {
      return "The passkey was not used (cancelled, or none for this site).";
    }
    var m = String((error && error.message) || error);
    return m.charAt(0).toUpperCase() + m.slice(1) + (/[.!?]$/.test(m) ? "" : ".");
  }

  // navigator.credentials.get for a `{ceremony, options}`; its answer as JSON.
  function assert(challenge, mediation, signal) {
    var options = challenge.options.publicKey;
    var request = {
      publicKey: Object.assign({}, options, {
        challenge: bytes(options.challenge),
        allowCredentials: ids(options.allowCredentials),
      }),
    };
    if (mediation) request.mediation = mediation;
    if (signal) request.signal = signal;
    return navigator.credentials.get(request).then(function (credential) {
      var r = credential.response;
      return {
        ceremony: challenge.ceremony,
        credential: {
          id: credential.id,
          rawId: text(credential.rawId),
          type: credential.type,
          response: {
            authenticatorData: text(r.authenticatorData),
            clientDataJSON: text(r.clientDataJSON),
            signature: text(r.signature),
            userHandle: text(r.userHandle),
          },
          extensions: credential.getClientExtensionResults(),
        },
      };
    });
  }

  function go() {
    window.location.assign(root.getAttribute("data-next") || "/login");
  }

  if (mode === "sign-in") {
    var waiting = null;
    var start = function (mediation) {
      if (waiting) waiting.abort();
      var controller = mediation === "conditional" ? new AbortController() : null;
      waiting = controller;
      return post("/v1/login/passkey/options")
        .then(function (challenge) {
          return assert(challenge, mediation, controller && controller.signal);
        })
        .then(function (answer) { return post("/v1/login/passkey", answer); })
        .then(go);
    };
    root.querySelector("button").addEventListener("click", function () {
      say("");
      start(null).catch(function (e) { say(sentence(e)); });
    });
    // Conditional UI: the browser offers its passkeys in the username field's
    // autofill; nothing shows where it has none.
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (yes) {
        if (yes) start("conditional").catch(function () {});
      });
    }
  } else if (mode === "second-step") {
    root.querySelector("button").addEventListener("click", function () {
      say("");
      post("/v1/login/second-factor/passkey-options")
        .then(function (challenge) { return assert(challenge, null, null); })
        .then(function (answer) { return post("/v1/login/second-factor", answer); })
        .then(go)
        .catch(function (e) { say(sentence(e)); });
    });
  } else if (mode === "add") {
    var form = root.querySelector("form");
    var csrf = root.getAttribute("data-csrf");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      say("");
      var name = form.elements.name.value;
      var password = form.elements.current_password.value;
      post("/v1/account/passkeys/options", { name: name, current_password: password }, csrf)
        .then(function (challenge) {
          var options = challenge.options.publicKey;
          return navigator.credentials
            .create({
              publicKey: Object.assign({}, options, {
                challenge: bytes(options.challenge),
                user: Object.assign({}, options.user, { id: bytes(options.user.id) }),
                excludeCredentials: ids(options.excludeCredentials),
              }),
            })
            .then(function (credential) {
              var r = credential.response;
              return post("/v1/account/passkeys", {
                ceremony: challenge.ceremony,
                credential: {
                  id: credential.id,
                  rawId: text(credential.rawId),
                  type: credential.type,
                  response: {
                    attestationObject: text(r.attestationObject),
                    clientDataJSON: text(r.clientDataJSON),
                    transports: r.getTransports ? r.getTransports() : undefined,
                  },
                  extensions: credential.getClientExtensionResults(),
                },
              }, csrf);
            });
        })
        .then(go)
        .catch(function (e) { say(sentence(e)); });
    });
  }
})();
