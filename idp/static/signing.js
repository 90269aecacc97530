// The waiting page of a SIM signature: ask the status endpoint every few seconds and submit the
// page's form once the SIM has answered (signed, refused or expired), so that the server shows
// the outcome. Without this script the page still works: the person presses the button.
(function () {
  "use strict";
  var form = document.querySelector("form[data-sim-wait]");
  if (!form || !window.fetch) {
    return;
  }
  var url = form.getAttribute("data-status-url");
  var seconds = parseInt(form.getAttribute("data-poll-seconds"), 10) || 2;
  var progress = document.getElementById("sim-progress");
  if (progress) {
    progress.textContent = progress.getAttribute("data-waiting-text");
  }
  var stopped = false;
  function poll() {
    if (stopped) {
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (response.ok && type.indexOf("application/json") === 0) {
          return response.json();
        }
        // A server error: ask again later. Anything else (the request or the sign-in has
        // expired): submit the form, and the server's page says what happened.
        return { state: response.status >= 500 ? "pending" : "gone" };
      })
      .then(function (body) {
        if (body && body.state && body.state !== "pending") {
          stopped = true;
          if (progress) {
            progress.textContent = progress.getAttribute("data-done-text");
          }
          form.submit();
          return;
        }
        setTimeout(poll, seconds * 1000);
      })
      .catch(function () {
        setTimeout(poll, seconds * 1000);
      });
  }
  form.addEventListener("submit", function () {
    stopped = true;
  });
  setTimeout(poll, seconds * 1000);
})();
