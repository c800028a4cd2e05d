"""Desktop notifications through the terminal (`velora-tui --notify`): a few bytes that the
terminal turns into a notification of its own desktop, so they reach the user over SSH with
nothing installed on the training host.

Two escape sequences are in use, neither standardised: OSC 777 (`ESC ] 777 ; notify ; title ;
body`, from rxvt-unicode; read by WezTerm, foot, Windows Terminal, Konsole and others) and OSC 9
(`ESC ] 9 ; text`, from iTerm2; read by iTerm2, Ghostty, kitty and WezTerm). A terminal that
reads both shows two notifications for the two (WezTerm documents both), so one is chosen from
the terminal's name (`auto`), or by the user (`--notify-with`). The bell goes with it: terminals
and tmux mark the tab or window that rang.

tmux swallows both sequences. Inside it ($TMUX set) they are wrapped in tmux's passthrough
(`ESC P tmux ; ... ESC \\`, every ESC inside doubled), which tmux 3.3 and later hand to the
terminal outside when `allow-passthrough` is on, and drop silently when it is off. The bell is
sent unwrapped: tmux sees it itself (`monitor-bell`, `bell-action`).

Text from a database reaches the sequence: names are cleaned of every control character and
escape (which could end the sequence early and write to the screen), `;` (the field separator)
is replaced, and the length capped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from velora_tui.data.cleaning import clean_text
from velora_tui.report.alerts import Alert

AUTO, OSC777, OSC9, BOTH, BELL = "auto", "osc777", "osc9", "both", "bell"
METHODS = (AUTO, OSC777, OSC9, BOTH, BELL)
TITLE_LIMIT = 60
BODY_LIMIT = 240
# More alerts than this from one read (a sweep whose runs end together) make one notification
# that counts them, rather than a pile of them.
AT_ONCE = 3
# Terminals known to read OSC 9 (and not known to read OSC 777), by what they call themselves in
# TERM, TERM_PROGRAM or LC_TERMINAL (which ssh passes on where SendEnv LC_* is set, as macOS
# does by default).
OSC9_TERMINALS = ("iterm", "ghostty", "kitty")

BEL = "\x07"
ESC = "\x1b"


def notification_text(value: object, limit: int) -> str:
    """Text safe inside an OSC string: no control character, no escape, no `;`, at most
    `limit` characters."""
    return clean_text(value, limit).replace(";", ",").strip()


def choose(env: Mapping[str, str]) -> str:
    """The sequence the terminal reads, from its name; OSC 777 when it is not known."""
    names = " ".join(env.get(k, "") for k in ("TERM_PROGRAM", "LC_TERMINAL", "TERM")).lower()
    if env.get("KITTY_WINDOW_ID") or any(name in names for name in OSC9_TERMINALS):
        return OSC9
    return OSC777


def wrap_for_tmux(sequence: str) -> str:
    return f"{ESC}Ptmux;{sequence.replace(ESC, ESC + ESC)}{ESC}\\"


def sequence(title: str, body: str, method: str, tmux: bool = False) -> str:
    """The escape sequence(s) of one notification (none for `bell`)."""
    title = notification_text(title, TITLE_LIMIT)
    body = notification_text(body, BODY_LIMIT)
    parts = []
    if method in (OSC777, BOTH):
        parts.append(f"{ESC}]777;notify;{title};{body}{BEL}")
    if method in (OSC9, BOTH):
        parts.append(f"{ESC}]9;{title}: {body}{BEL}")
    if tmux:
        parts = [wrap_for_tmux(part) for part in parts]
    return "".join(parts)


class TerminalNotifier:
    """What the app writes to its terminal for the alerts of one read."""

    def __init__(self, method: str, env: Mapping[str, str]) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown notification method {method!r}")
        self.method = choose(env) if method == AUTO else method
        self.tmux = bool(env.get("TMUX"))

    def test(self) -> str:
        """A notification that says what alerts will look like (the command palette's)."""
        body = "desktop notifications work: each alert comes like this one"
        return sequence("velora-tui", body, self.method, self.tmux) + BEL

    def escape(self, alerts: Sequence[Alert]) -> str:
        """The notifications of these alerts and one bell (nothing for no alert)."""
        if not alerts:
            return ""
        if len(alerts) > AT_ONCE:
            body = f"{clean_text(alerts[0].message, 160)} (and {len(alerts) - 1} more)"
            title = f"velora-tui: {len(alerts)} alerts"
            return sequence(title, body, self.method, self.tmux) + BEL
        notes = (
            sequence(f"velora-tui: {alert.kind}", alert.message, self.method, self.tmux)
            for alert in alerts
        )
        return "".join(notes) + BEL
