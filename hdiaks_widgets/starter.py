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
    placeholders = ("spec.file", "spec.class_name") + (() if fqdn else ("profile.fqdn",))
    return Starter(cfg, {
        "profile": "HDInsight on AKS, signed in as a service principal whose secrets are read from the\n"
                   f"environment: {_sp_secrets()}.",
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


def _sp_secrets() -> str:
    return ", ".join(_env_names(k) for k in (TENANT_ID_KEY, CLIENT_ID_KEY, CLIENT_SECRET_KEY))


def _fabric(url: str | None, name: str, ids: Mapping[str, str | None]) -> Starter:
    workspace, lakehouse = ids.get("workspace"), ids.get("lakehouse")
    cfg = JobConfig(
        profile=ClusterProfile(name=name, flavour="fabric", workspace_id=workspace or "",
                               lakehouse_id=lakehouse or "", url=url),  # fmt: skip
        spec=BatchSpec(file=""),
    )
    placeholders = tuple(f for f, v in (("profile.workspace_id", workspace), ("profile.lakehouse_id", lakehouse))
                         if not v) + ("spec.file",)  # fmt: skip
    return Starter(cfg, {
        "profile": "Microsoft Fabric's Livy API, signed in as a service principal (a member of the workspace)\n"
                   f"whose secrets are read from the environment:\n{_sp_secrets()}.\n"
                   "The job runs in the lakehouse below (the profile adds spark.targetLakehouse to its conf).",
        "profile.workspace_id": "FILL IN: the workspace id, the GUID after /groups/ in the lakehouse's address:\n"
                                "https://app.fabric.microsoft.com/groups/<workspace id>/lakehouses/<lakehouse id>\n"
                                "(a pasted address is understood: validation names the id in it).",
        "profile.lakehouse_id": "FILL IN: the lakehouse id, the GUID after /lakehouses/ in the same address.",
        "spec": _NAME,
        "spec.file": "FILL IN: the application in OneLake, e.g.\n"
                     "abfss://<workspace>@onelake.dfs.fabric.microsoft.com/<lakehouse>.Lakehouse/Files/app.py\n"
                     "(a jar also needs \"class_name\").",
    }, placeholders)


def _synapse(url: str | None, name: str, ids: Mapping[str, str | None]) -> Starter:
    workspace, pool = ids.get("workspace"), ids.get("pool")
    cfg = JobConfig(
        profile=ClusterProfile(name=name, flavour="synapse", workspace=workspace or "", pool=pool or "", url=url),
        spec=BatchSpec(file=""),
    )
    placeholders = tuple(f for f, v in (("profile.workspace", workspace), ("profile.pool", pool))
                         if not v) + ("spec.file",)  # fmt: skip
    return Starter(cfg, {
        "profile": "Azure Synapse's Spark batch API, signed in as a service principal (a Synapse role on the\n"
                   f"workspace) whose secrets are read from the environment:\n{_sp_secrets()}.",
        "profile.workspace": "FILL IN: the workspace name, as in https://<name>.dev.azuresynapse.net (only <name>).",
        "profile.pool": "FILL IN: the Apache Spark pool's name (letters and digits, at most 15), e.g. sparkpool01.",
        "spec": _NAME,
        "spec.file": "FILL IN: the application in the workspace's storage, e.g.\n"
                     "abfss://container@account.dfs.core.windows.net/jobs/app.py (a jar also needs \"class_name\").",
    }, placeholders)


_BUILDERS = {"sandbox": _sandbox, "livy": _livy, "hdinsight-aks": _hdinsight_aks, "hdinsight": _hdinsight}
_SERVICE_BUILDERS = {"fabric": _fabric, "synapse": _synapse}  # addressed by ids (and --url for the sandbox)
FLAVOURS: tuple[str, ...] = (*_BUILDERS, *_SERVICE_BUILDERS)
# The ids each service starter takes: fabric's workspace id and lakehouse id, synapse's workspace and pool.
_IDS = {"fabric": ("workspace", "lakehouse"), "synapse": ("workspace", "pool")}


def starter(flavour: str, *, url: str | None = None, fqdn: str | None = None, name: str | None = None,
            out: str = "job.json", workspace: str | None = None, lakehouse: str | None = None,
            pool: str | None = None) -> Starter:
    """The starter of ``flavour``. ``url`` (livy, sandbox) or ``fqdn`` (hdinsight-aks,
    hdinsight) fills that placeholder. fabric takes ``workspace`` (its workspace id) and
    ``lakehouse`` (its lakehouse id), synapse ``workspace`` (the workspace name) and ``pool``;
    each fills its placeholder, and for both ``url`` is another origin for the service's host
    (the local sandbox, e.g. http://127.0.0.1:8998). ``name``: the profile's name (default: the
    flavour); ``out``: the file name the header's run command names."""
    if flavour not in FLAVOURS:
        raise ConfigError(f"must be one of {', '.join(FLAVOURS)}, got {flavour!r}", field="--flavour")
    takes_url = flavour in ("livy", "sandbox", "fabric", "synapse")
    if url is not None and not takes_url:
        raise ConfigError(f"is for a livy, sandbox, fabric or synapse flavour; {flavour} is addressed by --fqdn",
                          field="--url")  # fmt: skip
    if fqdn is not None and flavour not in ("hdinsight-aks", "hdinsight"):
        how = "--url" if flavour in ("livy", "sandbox") else " and ".join(f"--{i}" for i in _IDS[flavour])
        raise ConfigError(f"is for an HDInsight flavour; {flavour} is addressed by {how}", field="--fqdn")
    ids = {"workspace": workspace, "lakehouse": lakehouse, "pool": pool}
    for key, value in ids.items():
        if value is not None and key not in _IDS.get(flavour, ()):
            takers = [f for f, keys in _IDS.items() if key in keys]
            raise ConfigError(f"is for a {' or '.join(takers)} flavour, not {flavour}", field=f"--{key}")
    if flavour in _SERVICE_BUILDERS:
        made = _SERVICE_BUILDERS[flavour](url, name or flavour, ids)
    else:
        made = _BUILDERS[flavour](url if takes_url else fqdn, name or flavour)
    comments = {"": _HEADER.format(out=out), **made.comments}
    return Starter(made.config, comments, made.placeholders)
