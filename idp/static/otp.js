// The OTP page: count down the seconds before another code may be asked for, with the buttons
// that ask for one disabled meanwhile. Without this script the page still works: the server
// refuses an early request and says how many seconds are left.
(function () {
  "use strict";
  var counter = document.querySelector("[data-countdown]");
  var seconds = counter ? parseInt(counter.textContent, 10) : 0;
  if (!(seconds > 0)) {
    return;
  }
  var buttons = document.querySelectorAll("[data-cooldown]");
  var waiting = document.getElementById("resend-wait");
  var ready = document.getElementById("resend-ready");
  var end = Date.now() + seconds * 1000;
  function disable(state) {
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = state;
    }
  }
  disable(true);
  var timer = setInterval(function () {
    var left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    counter.textContent = String(left);
    if (left === 0) {
      clearInterval(timer);
      disable(false);
      if (waiting) {
        waiting.hidden = true;
      }
      if (ready) {
        ready.textContent = ready.getAttribute("data-ready-text");
      }
    }
  }, 250);
})();
