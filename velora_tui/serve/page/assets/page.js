// velora-tui's part of the page (a file, not inline script: the page's Content-Security-Policy
// runs scripts from this server only). It runs before textual.js starts the terminal.
(function () {
  "use strict";

  // The websocket is on the host and port the browser used to reach the page, whatever they
  // are (an `ssh -L` tunnel may use another port than the server's), never a name the server
  // guessed.
  document.addEventListener("DOMContentLoaded", function () {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    var url = scheme + "//" + window.location.host + "/ws";
    document.querySelectorAll(".textual-terminal").forEach(function (element) {
      element.dataset.sessionWebsocketUrl = url;
    });
    document.getElementById("restart").addEventListener("click", function () {
      window.location.reload();
    });
  });

  // Why a session ended (too many sessions open, say) travels as the websocket's close
  // reason; textual.js does not show it, so the socket it opens is watched here.
  var NativeWebSocket = window.WebSocket;
  function ReportingWebSocket(url, protocols) {
    var socket =
      protocols === undefined ? new NativeWebSocket(url) : new NativeWebSocket(url, protocols);
    socket.addEventListener("close", function (event) {
      var reason = document.getElementById("closed-reason");
      if (reason && event.reason) {
        reason.textContent = event.reason; // text, never HTML
      }
    });
    return socket;
  }
  ReportingWebSocket.prototype = NativeWebSocket.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (name) {
    ReportingWebSocket[name] = NativeWebSocket[name];
  });
  window.WebSocket = ReportingWebSocket;
})();
