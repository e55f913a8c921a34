"""What every view of the notebook UI shares: the client seam, the default job, layouts and notes."""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from typing import Protocol

import ipywidgets as w

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.models import Batch, BatchList, LogPage

__all__ = [
    "DEFAULT_SANDBOX_URL",
    "DESC",
    "SANDBOX_URL_ENV",
    "WIDE",
    "ClientFactory",
    "LivyClientLike",
    "default_config",
    "message_html",
    "note_html",
    "sandbox_profile",
]

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8998"
SANDBOX_URL_ENV = "HDIAKS_SANDBOX_URL"
_EXAMPLE_JAR = "abfs://examples@sandbox.dfs.core.windows.net/jars/spark-examples.jar"
_SPARK_PI = "org.apache.spark.examples.SparkPi"
DESC = {"description_width": "150px"}
WIDE = w.Layout(width="95%")


class LivyClientLike(Protocol):
    """What the UI needs from a client: ``LivyClient`` or a small fake in tests."""

    def submit_batch(self, spec: BatchSpec, *, name_checked: bool = False) -> Batch: ...

    def get_batch(self, batch_id: int | str) -> Batch: ...

    def get_log(self, batch_id: int | str, *, start: int | None = None, size: int = 100) -> LogPage: ...

    def list_batches(self, *, start: int = 0, size: int = 100) -> BatchList: ...

    def kill_batch(self, batch_id: int | str) -> None: ...

    def find_batch(self, name: str) -> Batch | None: ...


ClientFactory = Callable[[ClusterProfile], LivyClientLike]


def sandbox_profile(url: str | None = None) -> ClusterProfile:
    """The local sandbox profile; the URL comes from ``$HDIAKS_SANDBOX_URL`` when not given."""
    return ClusterProfile(
        name="sandbox", flavour="sandbox", url=url or os.environ.get(SANDBOX_URL_ENV) or DEFAULT_SANDBOX_URL
    )


def default_config(url: str | None = None) -> JobConfig:
    """SparkPi on the sandbox: what the quickstart shows before the user changes anything."""
    return JobConfig(
        profile=sandbox_profile(url),
        spec=BatchSpec(file=_EXAMPLE_JAR, class_name=_SPARK_PI, args=("10",), name="spark-pi"),
    )


def message_html(messages: Sequence[str]) -> str:
    """Problems shown under a field, in red, lined up with the field's input."""
    if not messages:
        return ""
    items = "<br>".join(html.escape(m) for m in messages)
    return f'<div class="hdiaks-msg" style="color:#cf222e;font-size:12px;margin-left:155px">{items}</div>'


def note_html(text: str, *, ok: bool = True) -> str:
    colour = "#1a7f37" if ok else "#cf222e"
    return f'<div class="hdiaks-note" style="color:{colour}">{html.escape(text)}</div>'
