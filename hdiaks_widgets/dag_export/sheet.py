"""The setup sheet next to an exported DAG: Key Vault secrets, what the service principal needs
on the profile's service (roles, admin switches), Airflow settings, behaviour.

The access facts per flavour (:func:`access_of`) were read in the services' own documentation
(each item names its page); where the documentation does not settle a point, the item says so.
docs/fidelity.md ("Setup sheet: access per service") lists the sources and what was not found.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from hdiaks_widgets.airflow.runtime import trigger_keys_for, variables_for
from hdiaks_widgets.config import ClusterProfile, JobConfig

__all__ = ["CONNECTIONS_PREFIX", "KEY_VAULT_BACKEND", "Access", "access_of", "file_stem", "render_setup_sheet"]

KEY_VAULT_BACKEND = "airflow.providers.microsoft.azure.secrets.key_vault.AzureKeyVaultBackend"
CONNECTIONS_PREFIX = "airflow-connections"


def _kv_name(prefix: str, key: str) -> str:
    """Secret name as AzureKeyVaultBackend builds it: prefix-key with '_' -> '-' (PROTOCOL §5)."""
    return f"{prefix.rstrip('-')}-{key}".replace("_", "-")


_LEARN = "https://learn.microsoft.com"
_FABRIC_LIVY = f"{_LEARN}/fabric/data-engineering/get-started-api-livy"
_FABRIC_ROLES = f"{_LEARN}/fabric/fundamentals/roles-workspaces"
_FABRIC_SP = f"{_LEARN}/rest/api/fabric/articles/identity-support"
_FABRIC_DEV = f"{_LEARN}/fabric/admin/service-admin-portal-developer"
_SYNAPSE_RBAC = f"{_LEARN}/azure/synapse-analytics/security/synapse-workspace-synapse-rbac-roles"
_SYNAPSE_SETUP = f"{_LEARN}/azure/synapse-analytics/security/how-to-set-up-access-control"
_HDI_ENTRA = f"{_LEARN}/azure/hdinsight/hdinsight-with-entra-authentication/create-clusters-with-entra"
_HDI_ENTRA_LIVY = f"{_LEARN}/azure/hdinsight/hdinsight-with-entra-authentication/run-spark-jobs-using-rest-api"
_HDI_LIVY = f"{_LEARN}/azure/hdinsight/spark/apache-spark-livy-rest-interface"
_AKS_ACCESS = f"{_LEARN}/azure/hdinsight-aks/hdinsight-on-aks-manage-authorization-profile"
_LIVY_CONF = "https://github.com/apache/incubator-livy/blob/master/conf/livy.conf.template"


@dataclass(frozen=True)
class Access:
    """What an admin sets up on the service so that the DAG's identity may run the job: ``roles``
    (given to the service principal or login), ``switches`` (settings an administrator turns on),
    each a Markdown sentence that ends with its source."""

    service: str
    roles: tuple[str, ...]
    switches: tuple[str, ...]


def access_of(profile: ClusterProfile) -> Access:
    """The roles and admin switches the profile's service needs for an unattended batch run."""
    flavour, method = profile.flavour, profile.auth_method
    if flavour == "fabric":
        where = f" `{profile.workspace_id}`" if profile.workspace_id else ""
        return Access(
            "Microsoft Fabric",
            (
                f"Workspace role **Contributor** or higher (Member, Admin) for the service principal in the workspace"
                f"{where} of the lakehouse: workspace > Manage access > add the app by name or client id. Viewer "
                f"may not run Spark jobs. ([Livy API]({_FABRIC_LIVY}), [workspace roles]({_FABRIC_ROLES}))",
                f"The workspace is on a Fabric Premium or Trial capacity and holds the lakehouse. "
                f"([Livy API]({_FABRIC_LIVY}))",
            ),
            (
                f"Tenant setting **Service principals can use Fabric APIs** (Admin portal > Tenant settings > "
                f"Developer settings; a Fabric administrator turns it on), for a security group the service principal "
                f"is in. Tenants where it is being replaced show **Service principals can call Fabric public APIs** "
                f"instead. ([identity support]({_FABRIC_SP}), [developer settings]({_FABRIC_DEV}))",
                f"The tenant admin setting for the **Livy API**: the Livy API guide asks for it but does not name the "
                f"switch (not verified which one it is). ([Livy API]({_FABRIC_LIVY}))",
            ),
        )
    if flavour == "synapse":
        ws = profile.workspace or "<workspace>"
        pool = f" `{profile.pool}`" if profile.pool else ""
        return Access(
            "Azure Synapse",
            (
                f"Synapse RBAC role **Synapse Compute Operator** for the service principal on the workspace `{ws}` "
                f"or on the Spark pool{pool} (submit and cancel Spark jobs, view Spark pool logs); Synapse "
                f"Administrator, Synapse Contributor and Synapse Apache Spark Administrator include it. Assign it "
                f"in Synapse Studio > Manage > Access control. ([Synapse RBAC roles]({_SYNAPSE_RBAC}))",
                f"Azure role **Storage Blob Data Contributor** on the workspace's primary ADLS Gen2 account (or the "
                f"container with the job's files): Microsoft's access-control guide grants it to the compute "
                f"operators. ([set up access control]({_SYNAPSE_SETUP}))",
            ),
            (
                f"No tenant switch is documented for the Spark batch API. The workspace firewall or public network "
                f"access must let the Airflow hosts reach `{ws}.dev.azuresynapse.net` (or they use a private "
                f"endpoint). ([set up access control]({_SYNAPSE_SETUP}), step 9)",
            ),
        )
    if flavour == "hdinsight" and method != "basic":
        return Access(
            "classic HDInsight (Entra ID)",
            (
                f"The service principal's **object id** added as an Ambari user with **Cluster Administrator** "
                f"(Manage Ambari > Users > Add User, or `updateGatewaySettings` with `restAuthEntraUsers`, "
                f"api-version 2025-01-15-preview or later). Cluster User is view-only; the docs do not say which "
                f"profile Livy needs (not verified). ([Entra ID clusters]({_HDI_ENTRA}))",
            ),
            (
                f"The cluster's authentication method is **Entra ID**, chosen when the cluster is created (one method "
                f"per cluster, for its whole life). Tokens are asked for scope "
                f"`https://<cluster>.clusteraccess.azurehdinsight.net/.default`. ([Entra ID clusters]({_HDI_ENTRA}), "
                f"[Livy with Entra ID]({_HDI_ENTRA_LIVY}))",
            ),
        )
    if flavour == "hdinsight":
        user = f" `{profile.username}`" if profile.username else ""
        return Access(
            "classic HDInsight (Basic)",
            (
                f"The cluster login (HTTP) user{user} and its password: the gateway checks them with HTTP Basic on "
                f"`/livy`. ([Livy on HDInsight]({_HDI_LIVY}))",
            ),
            (
                f"The cluster's authentication method is **Basic**, chosen when the cluster is created. "
                f"([Entra ID clusters]({_HDI_ENTRA}))",
            ),
        )
    if flavour == "hdinsight-aks":
        return Access(
            "HDInsight on AKS (retired 2025-01-31)",
            (
                f"The service principal's object id under the cluster's **Cluster access** "
                f"(`authorizationProfile.userIds`). ([manage cluster access]({_AKS_ACCESS}))",
            ),
            ("None known besides cluster access.",),
        )
    if method in ("service-principal", "device-code"):
        roles: tuple[str, ...] = (
            "Whatever the gateway in front of this Livy asks of the service principal: Apache Livy itself has no "
            "Entra ID roles.",
        )
    elif method == "basic":
        roles = ("The Livy user and its password, as the server (or its proxy) checks them.",)
    else:
        roles = ("None: the server asks for no credentials.",)
    return Access(
        "Apache Livy" if flavour == "livy" else "the local sandbox",
        roles,
        (
            f"Livy's own access control (`livy.server.auth.type`, `livy.server.access-control.enabled`) is off by "
            f"default; with `livy.server.csrf-protection.enabled` on, the task's `X-Requested-By` header is what it "
            f"checks (always sent). ([livy.conf.template]({_LIVY_CONF}))",
        ),
    )


def file_stem(dag_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", dag_id)


def render_setup_sheet(cfg: JobConfig, *, dag_id: str, embed: bool = False, deferrable: bool = True) -> str:
    """Markdown: the Key Vault secrets the DAG reads, the Airflow settings, what the task does."""
    profile = cfg.profile
    prefix = profile.variables_prefix
    vault_url = profile.vault_url or "https://<your-vault>.vault.azure.net"
    host = urlsplit(vault_url).hostname or ""
    vault_name = host.split(".")[0] if host.endswith(".vault.azure.net") else "<your-vault>"
    kwargs = {"connections_prefix": CONNECTIONS_PREFIX, "variables_prefix": prefix, "vault_url": vault_url}
    defers = deferrable and not embed
    needed = variables_for(profile)
    access = access_of(profile)
    lines = [
        f"# Setup for the Airflow DAG `{dag_id}`",
        "",
        f"Generated by hdiaks-widgets for a job on {access.service}. Placeholders only: never commit secret values.",
        "",
        "## Key Vault secrets the DAG reads",
        "",
    ]
    lines += ["| Airflow Variable | Key Vault secret | required | holds |", "|---|---|---|---|"]
    for key, required, what in needed:
        lines.append(f"| `{key}` | `{_kv_name(prefix, key)}` | {'yes' if required else 'no'} | {what} |")
    lines.append("")
    required_keys = [key for key, required, _what in needed if required]
    if required_keys:
        lines.append("```bash")
        for key in required_keys:
            lines.append(
                f"az keyvault secret set --vault-name {shlex.quote(vault_name)} "
                f"--name {_kv_name(prefix, key)} --value {shlex.quote(f'<{key}>')}"
            )
        lines.append("```")
    else:
        lines.append(f"None is required: the profile signs in with `{profile.auth_method}`, which needs no secret.")
    lines += [
        "",
        f"## What {access.service} needs",
        "",
        "Roles:",
        "",
        *(f"- {item}" for item in access.roles),
        "",
        "Admin switches:",
        "",
        *(f"- {item}" for item in access.switches),
        "",
    ]
    install = (
        "Install `apache-airflow-providers-microsoft-azure`, `msal` and `requests` (the DAG file "
        "embeds the hdiaks-widgets modules it needs)"
        if embed
        else "Install `apache-airflow-providers-microsoft-azure` and `hdiaks-widgets[airflow]` "
        '(`pip install "hdiaks-widgets[airflow]"`: requests and msal, no pandas or Jupyter) on the '
        "workers, the triggerer and the DAG processor"
    )
    lines += [
        "## Airflow settings (scheduler, workers, triggerer)",
        "",
        install + ", then:",
        "",
        "```bash",
        f"export AIRFLOW__SECRETS__BACKEND={KEY_VAULT_BACKEND}",
        f"export AIRFLOW__SECRETS__BACKEND_KWARGS={shlex.quote(json.dumps(kwargs))}",
        "# the identity that reads the vault (role Key Vault Secrets User):",
        "export AZURE_CLIENT_ID='<kv-reader-client-id>' AZURE_TENANT_ID='<tenant-id>' "
        "AZURE_CLIENT_SECRET='<kv-reader-secret>'",
        "```",
        "",
        "## Trigger with config",
        "",
        f"Keys: {', '.join(f'`{k}`' for k in trigger_keys_for(profile.flavour))}; an empty value keeps the "
        "exported default. "
        f"See `{file_stem(dag_id)}.trigger-conf.json`.",
        "",
        "## What the task does",
        "",
        "- The Livy batch is named `<job_name>-<12 hex digits of dag_id/run_id/task_id/map_index>` "
        "(plus `-tryN` for try N > 1). A retry of the same DAG run finds its batch by that name "
        "and reattaches instead of submitting a second one, also when the batch finished meanwhile.",
        "- **Clearing a task runs the job again**, also a task that succeeded: batches of the tries "
        "before the clear are never followed (the first try since the clear is Airflow's "
        "`max_tries - retries + 1`), so the next try submits a new batch under its own name "
        "(`-tryN`).",
        "- The batch is killed when the task's own timeout passes and when the task is killed "
        "(marked failed or cleared while it runs, a worker shutting down). A transient Livy or "
        "gateway failure never kills it: the try fails and the retry reattaches.",
    ]
    if defers:
        lines += [
            "- While the batch runs the task is *deferred*: a triggerer watches it and no worker "
            "slot is held (run `airflow triggerer`). Marking a deferred task failed or succeeded "
            "deletes the batch: on Airflow 3.3+ through the trigger's `on_kill`; before 3.3 the "
            "cancelled trigger checks that its task left the deferred state (2.x: metadata database; "
            "3.0-3.2: the task SDK, untested there), so a triggerer restart never kills it. Clearing "
            "a deferred task deletes the batch the same way once the scheduler queues the task "
            "again (not while its DAG is paused).",
        ]
    else:
        lines += [
            "- The task does not defer"
            + (
                " (an embedded DAG cannot: the triggerer cannot import a class that lives only in a DAG file)"
                if embed
                else ""
            )
            + ": it holds a worker slot while the batch runs.",
        ]
    lines.append("")
    return "\n".join(lines)
