"""`velora-tui serve`: the app in a browser, through textual-serve, safe on a shared machine.

textual-serve runs one app process per websocket and relays its screen to xterm.js in the page.
On its own it has no authentication, no Origin check on its websocket, starts each process with
a shell command line and loads web fonts from outside. Here:

- `access.py`: the token (in the printed URL once, then an HttpOnly SameSite=Strict cookie),
  the checks every request passes, and the headers that keep the page to this server;
- `sessions.py`: one tab's app process, started without a shell and ended by deadline, and
  the limit on how many run at once;
- `server.py`: the aiohttp server (textual-serve's, with the above), what it prints, how it stops;
- `tab.py`: what runs in each tab's process (the app, which ends when the server goes away);
- `page/`: the page (textual-serve's, with its fonts served from here and no inline script).

The server process never imports Textual: only each tab's process does.
"""
