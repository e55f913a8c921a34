"""NodeManager's container-log pages, as ``appInfo.driverLogUrl`` of a YARN batch leads to them.

Hadoop's ``ContainerLogsPage`` answers HTML, not text: ``/node/containerlogs/<container>/<user>``
lists the container's files with their lengths, and ``.../<file>/?start=<byte>&end=<byte>`` shows
a byte range of one file in a ``<pre>`` (negative = from the end; ``start`` defaults to -4096, so
the page a browser opens shows only the last 4 KiB, with "Showing N bytes of M total. Click here
for the full log."). The sandbox serves the same shapes from the files of a (played or real)
driver, so a client must read byte ranges and unescape HTML exactly as against a real cluster.
"""

from __future__ import annotations

import html

from hdiaks_widgets.sandbox.logbuf import DriverFiles

__all__ = ["DEFAULT_START", "file_page", "listing_page"]

DEFAULT_START = -4096
_FILES = ("stderr", "stdout")


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html><head><meta http-equiv=\"Content-type\" content=\"text/html; charset=UTF-8\">"
        f"<title>{html.escape(title)}</title></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def listing_page(container: str, files: DriverFiles, base: str) -> str:
    rows = []
    for name in _FILES:
        href = f"{base}/{name}/?start={DEFAULT_START}"
        rows.append(
            f'<p>Log Type: {name}</p><p>Log Length: {files.size(name)}</p>'
            f'<p><a href="{html.escape(href)}">{name} : Total file length is {files.size(name)} bytes.</a></p>'
        )
    return _page(f"Logs for {container}", "\n".join(rows))


def file_page(container: str, name: str, files: DriverFiles, base: str, start: int, end: int | None) -> str:
    data, first, length = files.read(name, start, end)
    shown = len(data)
    note = ""
    if shown < length:
        full = html.escape(f"{base}/{name}/?start=0")
        note = f'<p>Showing {shown} bytes of {length} total. Click <a href="{full}">here</a> for the full log.</p>\n'
    text = html.escape(data.decode("utf-8", errors="replace"), quote=False)
    body = f"{note}<p>Log Type: {name}</p><p>Log Length: {length}</p>\n<pre>{text}</pre>"
    return _page(f"Logs for {container}", body)
