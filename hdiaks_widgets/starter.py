"""Starter job files for ``hdiaks init``: one short, commented ``job.json`` per flavour.

The sandbox's starter runs as written (SparkPi from the examples the sandbox serves). Every other
flavour's starter has empty placeholders (``""``) where only the user knows the value, so a starter
that was not filled in fails validation naming each field to fill, instead of reaching a cluster
with a guess. No starter names its job: a batch without a name gets a unique ``hdiaks-<hex>`` one
at submit, so submitting the same file twice never collides with a run Livy still retains.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.errors import ConfigError
from hdiaks_widgets.sandbox.apps import EXAMPLE_PATHS, EXAMPLES_ACCOUNT, EXAMPLES_CONTAINER, SPARK_PI_CLASS
from hdiaks_widgets.sandbox.storage import storage_uri
from hdiaks_widgets.secrets import CLIENT_ID_KEY, CLIENT_SECRET_KEY, PASSWORD_KEY, TENANT_ID_KEY, EnvSecretStore

__all__ = ["FLAVOURS", "SANDBOX_URL", "Starter", "starter"]

SANDBOX_URL = "http://127.0.0.1:8998"  # where `hdiaks sandbox` listens by default


@dataclass(frozen=True)
class Starter:
    """A job to write and the ``//`` comments that go with it (``JobConfig.save(comments=)``);
    ``placeholders``: the fields left empty for the user to fill."""

    config: JobConfig
    comments: Mapping[str, str]
    placeholders: tuple[str, ...] = ()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write it (atomically); :meth:`JobConfig.load` reads back :attr:`config`."""
        return self.config.save(path, comments=self.comments, omit_defaults=True)


def _env_names(key: str) -> str:
    names = EnvSecretStore().names_for(key)
    return " or ".join(n for n in names if "-" not in n)  # the spellings a shell can set


_HEADER = (
    "hdiaks job file: where to submit (profile) and what to run (spec).\n"
    "JSON plus full-line // comments. Fields left out have their defaults.\n"
    "Run it: hdiaks submit --config {out} --wait"
)
_NAME = (
    "No \"name\": each submit gets a unique one (hdiaks-<hex>). A fixed name must not be used by\n"
    "another batch while Livy keeps it (livy.server.session.state-retain.sec), or submit refuses."
)
_JAR_CLASS = "The main class of the jar, e.g. com.example.Main (for a .py file: remove this line)."


def _sandbox(url: str | None, name: str) -> Starter:
    jar = storage_uri(EXAMPLES_CONTAINER, EXAMPLES_ACCOUNT, EXAMPLE_PATHS["jar"])
    cfg = JobConfig(
        profile=ClusterProfile(name=name, flavour="sandbox", url=url or SANDBOX_URL),
        spec=BatchSpec(file=jar, class_name=SPARK_PI_CLASS, args=("10",)),
    )
    py = storage_uri(EXAMPLES_CONTAINER, EXAMPLES_ACCOUNT, EXAMPLE_PATHS["pi_py"])
    return Starter(cfg, {
        "profile": "The local sandbox: start it with `hdiaks sandbox` (it prints the examples it serves).",
        "spec": _NAME,
        "spec.file": f"An example the sandbox serves. Its Python twin (then remove class_name):\n{py}",
        "spec.args": "SparkPi's number of slices.",
    })


def _livy(url: str | None, name: str) -> Starter:
    cfg = JobConfig(
        profile=ClusterProfile(name=name, flavour="livy", url=url if url else ""),
        spec=BatchSpec(file="", class_name=""),
    )
    placeholders = ("spec.file", "spec.class_name") + (() if url else ("profile.url",))
    return Starter(cfg, {
        "profile": "A plain Apache Livy server, no sign-in.",
        "profile.url": "FILL IN: the Livy server's URL, e.g. http://livy.example.com:8998",
        "spec": _NAME,
        "spec.file": "FILL IN: a path this Livy server's Spark reads, e.g. hdfs:///apps/app.jar or "
                     "local:///opt/app.jar",
        "spec.class_name": _JAR_CLASS,
    }, placeholders)


def _hdinsight_aks(fqdn: str | None, name: str) -> Starter:
    cfg = JobConfig(
        profile=ClusterProfile(name=name, flavour="hdinsight-aks", fqdn=fqdn or ""),
        spec=BatchSpec(file="", class_name=""),
    )
    secrets = ", ".join(_env_names(k) for k in (TENANT_ID_KEY, CLIENT_ID_KEY, CLIENT_SECRET_KEY))
    placeholders = ("spec.file", "spec.class_name") + (() if fqdn else ("profile.fqdn",))
    return Starter(cfg, {
        "profile": "HDInsight on AKS, signed in as a service principal whose secrets are read from the\n"
                   f"environment: {secrets}.",
        "profile.fqdn": "FILL IN: the cluster's host name from the portal, e.g.\n"
                        "mycluster.mypool.abc123.eastus.hdinsightaks.net (no https://, no path).",
        "spec": _NAME,
        "spec.file": "FILL IN: the application in ADLS Gen2, e.g.\n"
                     "abfs://container@account.dfs.core.windows.net/jars/app.jar",
        "spec.class_name": _JAR_CLASS,
    }, placeholders)


def _hdinsight(fqdn: str | None, name: str) -> Starter:
    cfg = JobConfig(
        profile=ClusterProfile(name=name, flavour="hdinsight", fqdn=fqdn or "", username="admin"),
        spec=BatchSpec(file="", class_name=""),
    )
    placeholders = ("spec.file", "spec.class_name") + (() if fqdn else ("profile.fqdn",))
    return Starter(cfg, {
        "profile": "Classic HDInsight through its gateway, with the cluster login (Basic auth); the password\n"
                   f"is read from the environment: {_env_names(PASSWORD_KEY)}.",
        "profile.fqdn": "FILL IN: the cluster name, or its host name, e.g. mycluster.azurehdinsight.net",
        "profile.username": "The cluster login name (the portal's default is admin).",
        "spec": _NAME,
        "spec.file": "FILL IN: the application on the cluster's storage, e.g. wasbs:///example/jars/app.jar",
        "spec.class_name": _JAR_CLASS,
    }, placeholders)


_BUILDERS = {"sandbox": _sandbox, "livy": _livy, "hdinsight-aks": _hdinsight_aks, "hdinsight": _hdinsight}
FLAVOURS: tuple[str, ...] = tuple(_BUILDERS)


def starter(flavour: str, *, url: str | None = None, fqdn: str | None = None, name: str | None = None,
            out: str = "job.json") -> Starter:
    """The starter of ``flavour``. ``url`` (livy, sandbox) or ``fqdn`` (hdinsight-aks,
    hdinsight) fills that placeholder; ``name``: the profile's name (default: the flavour);
    ``out``: the file name the header's run command names."""
    build = _BUILDERS.get(flavour)
    if build is None:
        raise ConfigError(f"must be one of {', '.join(FLAVOURS)}, got {flavour!r}", field="--flavour")
    addressed_by_url = flavour in ("livy", "sandbox")
    if url is not None and not addressed_by_url:
        raise ConfigError(f"is for a livy or sandbox flavour; {flavour} is addressed by --fqdn", field="--url")
    if fqdn is not None and addressed_by_url:
        raise ConfigError(f"is for an HDInsight flavour; {flavour} is addressed by --url", field="--fqdn")
    made = build(url if addressed_by_url else fqdn, name or flavour)
    comments = {"": _HEADER.format(out=out), **made.comments}
    return Starter(made.config, comments, made.placeholders)
