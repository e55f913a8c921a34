"""Device code sign-in for ``device-code`` profiles: Sign in / Cancel / Sign out and a note with the
link and code.

``DeviceCodeAuth.start()`` asks the identity provider for a code and waits in its own thread; its
callbacks come from that thread (MSAL's) or a worker's, and reach the note and the buttons only
through the app's dispatcher (``widgets._dispatch``: ``post`` under ``hold_sync()``, STYLE.md rule
9). The Sign in click runs in the dispatcher's worker pool (building the client may read Key Vault,
asking for a code is a request); a submit from such a profile waits for the sign-in in its worker
(:meth:`SignInPanel.wait_signed_in`), never in the kernel's thread. Sign out removes the cached
sign-in (memory and the per-user cache file, ``DeviceCodeAuth.sign_out``): no network call.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Callable

import ipywidgets as w

from hdiaks_widgets.auth import DeviceCodeAuth, DeviceCodePrompt
from hdiaks_widgets.auth.device_code import sign_out as sign_out_profile
from hdiaks_widgets.config import ClusterProfile
from hdiaks_widgets.errors import AuthError
from hdiaks_widgets.monitor import describe_error
from hdiaks_widgets.tables import link_html
from hdiaks_widgets.widgets._common import LivyClientLike, note_html
from hdiaks_widgets.widgets._dispatch import Dispatcher

__all__ = ["SignInPanel", "device_auth_of"]

log = logging.getLogger(__name__)


def device_auth_of(client: LivyClientLike) -> DeviceCodeAuth | None:
    """The client's device code auth, if it has one."""
    auth = getattr(client, "auth", None)
    return auth if isinstance(auth, DeviceCodeAuth) else None


def _device_prompt_html(prompt: DeviceCodePrompt) -> str:
    """The sign-in message with its link clickable and its code in bold; everything else escaped."""
    uri, code = prompt.verification_uri, prompt.user_code
    link = link_html(uri) if uri else ""
    code_html = (f'<code class="hdiaks-user-code" style="font-size:15px;font-weight:bold">'
                 f"{html.escape(code)}</code>")
    text = prompt.message or f"Open {uri} and enter the code {code} to sign in."
    wanted = [t for t in (uri, code) if t]
    pieces = re.split("(" + "|".join(re.escape(t) for t in wanted) + ")", text) if wanted else [text]
    out, seen = [], set()
    for i, piece in enumerate(pieces):
        if i % 2 and piece == uri:
            out.append(link)
        elif i % 2 and piece == code:
            out.append(code_html)
        else:
            out.append(html.escape(piece))
        seen.add(piece)
    if uri and uri not in seen:
        out.append(f" Link: {link}")
    if code and code not in seen:
        out.append(f" Code: {code_html}")
    return f'<div class="hdiaks-device-prompt" style="color:#24292f">{"".join(out)}</div>'



class SignInPanel:
    """Sign in / Cancel sign-in and the sign-in note; shown only for device-code profiles.

    ``client`` builds (or reuses) the selected profile's client: a network call, so a click runs
    :meth:`sign_in` in the dispatcher's worker pool. ``profile`` gives the selected profile, for
    Sign out before any client was built. Without a ``dispatcher`` (a panel used on its own) the
    panel makes one.
    """

    def __init__(
        self,
        client: Callable[[], LivyClientLike],
        *,
        dispatcher: Dispatcher | None = None,
        profile: Callable[[], ClusterProfile] | None = None,
    ) -> None:
        self._client = client
        self._profile = profile
        self._dispatch = dispatcher or Dispatcher()
        self.auth: DeviceCodeAuth | None = None
        self._lock = threading.Lock()
        self.sign_in_button = w.Button(description="Sign in", icon="sign-in",
                                       tooltip="Sign in with a device code (opens nothing; shows a link and a code)")
        self.sign_in_button.add_class("hdiaks-sign-in")
        self.cancel_button = w.Button(description="Cancel sign-in", icon="times", disabled=True)
        self.cancel_button.add_class("hdiaks-cancel-sign-in")
        self.sign_out_button = w.Button(description="Sign out", icon="sign-out",
                                        tooltip="Forget this sign-in here and in the token cache file (no network)")
        self.sign_out_button.add_class("hdiaks-sign-out")
        self.note = w.HTML()
        self.note.add_class("hdiaks-sign-in-status")
        self.widget = w.VBox([w.HBox([self.sign_in_button, self.cancel_button, self.sign_out_button]), self.note],
                             layout=w.Layout(display="none"))
        self.sign_in_button.on_click(self._on_sign_in_button_click)
        self.cancel_button.on_click(self._on_cancel_button_click)
        self.sign_out_button.on_click(self._on_sign_out_button_click)

    # -- public ------------------------------------------------------------------------------

    def sign_in(self) -> DeviceCodeAuth | None:
        """Start device code sign-in for the selected profile (returns at once; the wait runs in
        MSAL's background thread). The link and code appear in ``note``. ``None`` when the
        profile does not sign in with a device code or the client could not be built (shown)."""
        try:
            auth = device_auth_of(self._client())
        except Exception as exc:  # noqa: BLE001 - shown as a sentence
            self.show(note_html(f"Could not sign in: {describe_error(exc)[1]}", ok=False))
            return None
        if auth is None:
            self.show(note_html("This profile does not sign in with a device code.", ok=False))
            return None
        if auth.status == "signed-in":
            self.show(note_html("Already signed in."))
            return auth
        self.start(auth)
        return auth

    def cancel(self) -> None:
        """Stop waiting for a device code sign-in (the wait ends within about a second)."""
        auth = self.auth
        if auth is not None and auth.status == "pending":
            self.show(note_html("Cancelling sign-in…"))  # before cancel(): on_done may follow at once
            auth.cancel()

    def close(self) -> None:
        """Stop any sign-in wait (returns at once)."""
        if self.auth is not None:
            self.auth.cancel()

    def sign_out(self) -> bool:
        """Forget the selected profile's sign-in (memory and cache file; no network call), then say
        "Signed out." with Sign in enabled again. True when there was a sign-in to remove."""
        try:
            auth = self.auth
            if auth is None and self._profile is not None:
                removed = sign_out_profile(self._profile())
            elif auth is not None:
                removed = auth.sign_out()
            else:
                removed = False
        except Exception as exc:  # noqa: BLE001 - shown as a sentence
            self.show(note_html(f"Could not sign out: {describe_error(exc)[1]}", ok=False))
            return False
        self.show(note_html("Signed out." if removed else "Signed out (there was no saved sign-in)."))
        return removed

    def start(self, auth: DeviceCodeAuth) -> Exception | None:
        """Start the flow unless it is pending; the error (already shown) when it could not start."""
        # One start at a time: a second caller (a click during a submit) finds the flow pending.
        with self._lock:
            if auth.status == "pending":
                return None
            self.auth = auth
            self.show(note_html("Asking the identity provider for a sign-in code…"))
            try:
                # The code reaches on_device_code through the client (LivyClient.from_profile) or here.
                auth.start(None if auth.on_code is not None else self.on_device_code, on_done=self._on_done)
            except Exception as exc:  # noqa: BLE001 - shown as a sentence
                self.show(note_html(f"Could not start sign-in: {describe_error(exc)[1]}", ok=False))
                return exc
        return None

    def wait_signed_in(self, client: LivyClientLike, *, tell: Callable[[str], None]) -> None:
        """Before a submit from a device-code profile: sign in first (in the submit thread).
        ``tell`` shows a note to the user while the sign-in is pending."""
        auth = device_auth_of(client)
        if auth is None or auth.status == "signed-in":
            return
        error = self.start(auth)
        if error is not None:
            raise error
        tell(note_html("Sign in with the code shown below; the job is submitted after that."))
        auth.wait()  # raises AuthError when the sign-in fails or is cancelled

    def on_device_code(self, prompt: DeviceCodePrompt) -> None:
        """Show the link and code (called from MSAL's thread)."""
        self.show(_device_prompt_html(prompt) + '<div style="color:#57606a">Waiting for you to sign in…</div>',
                  cancellable=True)

    def show(self, note: str, *, cancellable: bool = False) -> None:
        """Show the sign-in state (from any thread: MSAL's, a worker's): through the dispatcher."""
        def apply() -> None:
            self.note.value = note
            self.cancel_button.disabled = not cancellable
            self.sign_in_button.disabled = cancellable  # one flow at a time; enabled again when it ends

        try:
            self._dispatch.post(apply, key=("sign-in", id(self)),
                                hold=(self.note, self.cancel_button, self.sign_in_button))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - called from MSAL's thread: log, never raise there
            log.warning("could not show the sign-in state: %s", exc)

    def set_visible(self, visible: bool) -> None:
        display = None if visible else "none"
        if self.widget.layout.display != display:
            self.widget.layout.display = display

    # -- handlers ----------------------------------------------------------------------------

    def _on_sign_in_button_click(self, _button: w.Button) -> None:
        # Building the client and asking for a code are network calls: keep the kernel free.
        self._dispatch.run(self.sign_in, lambda _auth: None, lambda exc: self.show(
            note_html(f"Could not sign in: {describe_error(exc)[1]}", ok=False)), key=("sign-in-run", id(self)))

    def _on_cancel_button_click(self, _button: w.Button) -> None:
        self.cancel()

    def _on_sign_out_button_click(self, _button: w.Button) -> None:
        # No network call, but a first client may still be built elsewhere: keep it off the kernel.
        self._dispatch.run(self.sign_out, lambda _removed: None)

    def _on_done(self, error: AuthError | None) -> None:
        if error is None:
            self.show(note_html("Signed in."))
        elif error.error == "cancelled":
            self.show(note_html("Sign-in was cancelled.", ok=False))
        else:
            self.show(note_html(describe_error(error)[1], ok=False))
