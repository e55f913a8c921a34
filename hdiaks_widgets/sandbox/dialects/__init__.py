"""The sandbox's service dialects: Fabric, Synapse and classic HDInsight at their real paths.

Each dialect lives in its own module (:mod:`.fabric`, :mod:`.synapse`, :mod:`.hdinsight`) and
serves its routes on the sandbox's one port over the one batch registry, beside Apache Livy's
routes. :class:`DialectOptions` holds the server options they take; :func:`build_dialects` makes
them. What each still differs from the real service: ``docs/fidelity.md`` ("Service dialects").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hdiaks_widgets.sandbox.dialects.base import Dialect, DialectError, TokenCheck
from hdiaks_widgets.sandbox.dialects.fabric import MAX_PAGE_SIZE as FABRIC_MAX_PAGE_SIZE
from hdiaks_widgets.sandbox.dialects.fabric import FabricDialect
from hdiaks_widgets.sandbox.dialects.hdinsight import HDINSIGHT_AUTH, HDInsightDialect, LivyMount
from hdiaks_widgets.sandbox.dialects.synapse import SynapseDialect

__all__ = [
    "HDINSIGHT_AUTH",
    "Dialect",
    "DialectError",
    "DialectOptions",
    "FabricDialect",
    "HDInsightDialect",
    "LivyMount",
    "SynapseDialect",
    "TokenCheck",
    "build_dialects",
]


@dataclass(frozen=True)
class DialectOptions:
    """``tokens``: the identity endpoint's token check for Fabric and Synapse (``None``: they
    take any request, like the Apache Livy routes without ``--bearer``); ``hdinsight_auth`` one
    of ``none|basic|entra`` with the cluster name, the Basic login, and ``hdinsight_tokens`` (else
    ``tokens``) for Entra."""

    tokens: TokenCheck | None = field(default=None, repr=False)
    hdinsight_tokens: TokenCheck | None = field(default=None, repr=False)
    hdinsight_auth: str = "none"
    hdinsight_cluster: str = "sandbox"
    hdinsight_user: str = "admin"
    hdinsight_password: str | None = field(default=None, repr=False)
    fabric_max_page_size: int = FABRIC_MAX_PAGE_SIZE


def build_dialects(options: DialectOptions) -> list[Dialect]:
    return [
        FabricDialect(options.tokens, max_page_size=options.fabric_max_page_size),
        SynapseDialect(options.tokens),
        HDInsightDialect(
            auth=options.hdinsight_auth,
            cluster=options.hdinsight_cluster,
            user=options.hdinsight_user,
            password=options.hdinsight_password,
            tokens=options.hdinsight_tokens or options.tokens,
        ),
    ]
