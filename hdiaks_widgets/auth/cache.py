"""Where a device-code sign-in is kept between kernel restarts: MSAL's token cache on disk.

One cache per (authority, client id, scopes), so two profiles never share a wrong token: the file
name is a hash of the three. ``msal-extensions`` (Microsoft's companion to MSAL) does the work:

* the store: DPAPI-encrypted file on Windows, the Keychain on macOS, the Secret Service (libsecret,
  needs PyGObject) on Linux; where that is missing (a headless Linux box, a container) a plain JSON
  file written with mode 0600 in a 0700 directory. The library only falls back to plain text when
  its caller asks (its sample's ``fallback_to_plaintext``); we do, and say so in one INFO log line
  naming the store and the reason;
* ``PersistedTokenCache``: reloads the file when another process wrote it and writes every change
  under a lock file, so two kernels can share one sign-in.

The directory is ``$HDIAKS_TOKEN_CACHE_DIR`` when set (tests), else ``platformdirs``'
``user_data_dir("hdiaks-widgets")/token-cache`` (``~/.local/share/...`` on Linux).
``$HDIAKS_TOKEN_CACHE=memory`` keeps tokens in memory only (the pre-persistence behaviour), ``file``
skips the platform store. Nothing here logs or returns a token; the log names the store and path.

Sources read (msal-extensions 1.3.1, its PyPI page and the AzureAD repository's
``sample/token_cache_sample.py``): ``build_encrypted_persistence`` picks the store by platform and
has no fallback of its own; on Linux it needs PyGObject and ``gir1.2-secret-1`` (ImportError
otherwise) and a running Secret Service (``libsecret.trial_run()`` fails without one);
``FilePersistence`` opens its file with mode 0600 but creates folders with the default mode, so
the folder is made here; the file lock (``open(..., "x")`` without portalocker) waits 5 s and then
fails when a killed writer left its lock file, hence ``_drop_stale_lock``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from hdiaks_widgets.errors import AuthError

__all__ = ["CACHE_DIR_ENV", "CACHE_MODE_ENV", "TokenCacheStore", "clear_sign_in", "token_cache_dir"]

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "HDIAKS_TOKEN_CACHE_DIR"
CACHE_MODE_ENV = "HDIAKS_TOKEN_CACHE"
CacheMode = Literal["auto", "file", "memory"]
_MODES: tuple[CacheMode, ...] = ("auto", "file", "memory")

# One live MSAL cache object per file in this process: every DeviceCodeAuth of a profile shares
# it, so a sign-out empties what the others hold in memory too (weak: gone with its last user).
_live: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_live_lock = threading.Lock()


def token_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$HDIAKS_TOKEN_CACHE_DIR``, else the per-user data directory's ``token-cache``."""
    env = os.environ if environ is None else environ
    given = env.get(CACHE_DIR_ENV, "").strip()
    if given:
        return Path(given).expanduser()
    try:
        import platformdirs
    except ImportError:  # the XDG default platformdirs would give on Linux
        data = env.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
        return Path(data) / "hdiaks-widgets" / "token-cache"
    return Path(platformdirs.user_data_dir("hdiaks-widgets", appauthor=False)) / "token-cache"


def cache_mode(environ: Mapping[str, str] | None = None) -> CacheMode:
    env = os.environ if environ is None else environ
    value = env.get(CACHE_MODE_ENV, "").strip().lower() or "auto"
    for mode in _MODES:
        if value == mode:
            return mode
    raise AuthError(f"{CACHE_MODE_ENV}={value!r} is not a token cache mode; set it to one of: {', '.join(_MODES)}.")


def cache_key(authority: str, client_id: str, scopes: Sequence[str]) -> str:
    """A stable name for (authority, client id, scopes): scope order and authority case do not matter."""
    text = "\n".join([authority.strip().rstrip("/").lower(), client_id.strip(),
                      " ".join(sorted(s.strip().lower() for s in scopes))])  # fmt: skip
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _private_dir(path: Path) -> None:
    """Create ``path`` (and parents) for this user only; tighten a folder of ours that is wider.
    A shared folder (sticky like /tmp, or another user's) is refused, never changed."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if mode == 0o700:
        return
    if info.st_mode & stat.S_ISVTX or info.st_uid != os.getuid():
        raise AuthError(
            f"The token cache folder {path} is shared (mode {mode:o}, owner uid {info.st_uid}); set "
            f"{CACHE_DIR_ENV} to a folder of your own (it is made readable by you only)."
        )
    os.chmod(path, 0o700)
    log.info("device-code token cache: folder %s made private (was mode %o)", path, mode)


_STALE_LOCK = 60.0  # seconds; a write holds the lock for milliseconds


def _drop_stale_lock(path: Path) -> None:
    """A lock file left by a process killed while writing would block every write for 5 s and
    then fail it (msal-extensions' file lock): remove one that is clearly stale."""
    try:
        if time.time() - path.stat().st_mtime > _STALE_LOCK:
            path.unlink()
            log.info("device-code token cache: removed a stale lock file %s", path)
    except FileNotFoundError:
        pass


def _plain_file(location: Path) -> Any:
    from msal_extensions import FilePersistence

    # FilePersistence creates the file with O_CREAT and mode 0600; an older, wider one is tightened.
    if location.exists() and stat.S_IMODE(location.stat().st_mode) & 0o077:
        os.chmod(location, 0o600)
    return FilePersistence(str(location))


def _platform_store(location: Path) -> tuple[Any, str]:
    """The platform's encrypted store and its name; raises when it cannot be used here."""
    from msal_extensions import build_encrypted_persistence

    persistence = build_encrypted_persistence(str(location))  # ImportError without PyGObject on Linux
    if sys.platform.startswith("linux"):
        from msal_extensions.libsecret import trial_run

        trial_run()  # no Secret Service on the session bus: raises here, not at the first save
        return persistence, "the Secret Service keyring (libsecret)"
    return persistence, "the macOS Keychain" if sys.platform == "darwin" else "a DPAPI-encrypted file"


_cache_class: Any = None


def _removable_cache_class() -> Any:
    """``PersistedTokenCache`` that forgets what it holds once its file is gone.

    Every change is written to the file at once, so no file means no sign-in: a sign-out in
    another kernel (which removes the file) signs this process out at its next token lookup,
    instead of this process writing its in-memory copy back at its next refresh. (The library
    itself treats a missing file as "keep what is in memory".) Only public methods are overridden.
    """
    global _cache_class
    if _cache_class is None:
        from msal_extensions import PersistedTokenCache

        class RemovableTokenCache(PersistedTokenCache):  # type: ignore[misc]
            def _forget_if_removed(self) -> None:
                if not os.path.exists(self.hdiaks_location):
                    self.deserialize("{}")

            def search(self, credential_type: Any, **kwargs: Any) -> Any:
                self._forget_if_removed()
                return super().search(credential_type, **kwargs)

            def modify(self, credential_type: Any, old_entry: Any, new_key_value_pairs: Any = None) -> None:
                self._forget_if_removed()
                super().modify(credential_type, old_entry, new_key_value_pairs=new_key_value_pairs)

        _cache_class = RemovableTokenCache
    return _cache_class


class TokenCacheStore:
    """The persisted MSAL token cache of one (authority, client id, scopes).

    :meth:`msal_cache` is the ``token_cache=`` for ``PublicClientApplication``; :meth:`clear`
    empties it and removes its file. ``store`` names where the tokens live (for the log and the UI).
    """

    def __init__(
        self,
        authority: str,
        client_id: str,
        scopes: Sequence[str],
        *,
        directory: str | os.PathLike[str] | None = None,
        mode: CacheMode | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.mode: CacheMode = mode or cache_mode(environ)
        self.key = cache_key(authority, client_id, scopes)
        self.directory = Path(directory) if directory is not None else token_cache_dir(environ)
        self.location = self.directory / f"msal-{self.key}.json"
        self.store = "memory" if self.mode == "memory" else "not opened yet"
        self._cache: Any = None
        self._lock = threading.Lock()

    @property
    def persisted(self) -> bool:
        """True once opened on disk (or in a keyring): then no file at ``location`` means no sign-in."""
        return self._cache is not None and not self.store.startswith("memory")

    @property
    def lock_location(self) -> Path:
        return self.location.with_name(self.location.name + ".lockfile")

    def msal_cache(self) -> Any:
        """The ``msal.TokenCache`` to hand to MSAL (shared by every user of this file in the process)."""
        with self._lock:
            if self._cache is None:
                self._cache = self._open()
            return self._cache

    def _open(self) -> Any:
        import msal

        if self.mode == "memory":
            return msal.SerializableTokenCache()
        try:
            import msal_extensions  # noqa: F401 - only to know whether the persisted cache can be had
        except ImportError:
            self.store = "memory (msal-extensions is not installed)"
            log.warning("device-code token cache: in memory only, the sign-in ends with this process; "
                        "install msal-extensions (pip install 'hdiaks-widgets[azure]') to keep it")  # fmt: skip
            return msal.SerializableTokenCache()
        with _live_lock:
            cached = _live.get(str(self.location))
            if cached is not None:
                self.store = str(getattr(cached, "hdiaks_store", self.store))
                return cached
            try:
                _private_dir(self.directory)
            except OSError as exc:
                raise AuthError(
                    f"Cannot create the token cache directory {self.directory} ({exc.strerror or exc}); set "
                    f"{CACHE_DIR_ENV} to a folder you can write, or {CACHE_MODE_ENV}=memory to keep tokens in memory."
                ) from exc
            _drop_stale_lock(self.lock_location)
            persistence: Any = None
            reason = f"{CACHE_MODE_ENV}=file"
            if self.mode == "auto":
                try:
                    persistence, self.store = _platform_store(self.location)
                except Exception as exc:  # noqa: BLE001 - any failure of the optional store means: use the file
                    first = (str(exc).strip().splitlines() or [""])[0][:120]
                    reason = f"no platform keyring here: {type(exc).__name__}: {first}".rstrip(": ")
            if persistence is None:
                persistence = _plain_file(self.location)
                self.store = "a plain file readable by you only (0600)"
                log.info("device-code token cache: %s at %s (%s)", self.store, self.location, reason)
            else:
                log.info("device-code token cache: %s (signal file %s)", self.store, self.location)
            cache = _removable_cache_class()(persistence, lock_location=str(self.lock_location))
            cache.hdiaks_store = self.store
            cache.hdiaks_location = str(self.location)  # the file, or the secure stores' signal file
            cache.hdiaks_persistence = None if self.store.startswith("a plain file") else persistence
            _live[str(self.location)] = cache
            return cache

    def clear(self) -> bool:
        """Forget every account and token of this cache, in this process and on disk.
        True when something was removed."""
        removed = False
        with _live_lock:
            live = _live.get(str(self.location))
        for cache in {id(c): c for c in (live, self._cache) if c is not None}.values():
            removed = any(True for _ in cache.search(cache.CredentialType.ACCOUNT)) or removed  # a generator
            cache.deserialize("{}")  # in place, not through modify(): that would write the file again
            secure = getattr(cache, "hdiaks_persistence", None)
            if secure is not None:  # a keyring / Keychain / DPAPI store: overwrite the entry itself
                try:
                    secure.save("{}")
                except Exception as exc:  # noqa: BLE001 - the signal file goes below; say the entry may stay
                    log.warning("device-code token cache: could not empty %s: %s", self.store, type(exc).__name__)
        if self.mode != "memory":
            for path in (self.location, self.lock_location):
                try:
                    path.unlink()
                    removed = removed or path == self.location
                except FileNotFoundError:
                    pass
        return removed

    def __repr__(self) -> str:
        return f"TokenCacheStore(location={str(self.location)!r}, mode={self.mode!r}, store={self.store!r})"


def clear_sign_in(
    authority: str,
    client_id: str,
    scopes: Sequence[str],
    *,
    directory: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Remove the persisted sign-in of (authority, client id, scopes) without building an MSAL app
    (no network). True when there was one."""
    return TokenCacheStore(authority, client_id, scopes, directory=directory, mode="file", environ=environ).clear()
