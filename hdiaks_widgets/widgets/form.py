"""The job form: the service's own fields and every Livy batch field, checked as the user types;
Save / Load as JSON.

``JobForm.config()`` turns the fields into a :class:`JobConfig` plus every problem (``config``
validates, so the form says what the profile and the CLI say); each problem is shown under its
field. Saved profiles (``hdiaks_widgets.profiles``) fill the Profile list.

The Service list picks the flavour; the form then shows exactly that flavour's fields (Fabric:
workspace, lakehouse, environment, API version; Synapse: workspace, pool, API version; the
HDInsight flavours: the cluster; Livy and the sandbox: the URL) and its sign-in choices, each
with the fields that sign-in uses. Fields of other flavours are hidden with their values kept:
switching back shows what was typed there.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, cast

import ipywidgets as w

from hdiaks_widgets import dialects
from hdiaks_widgets.config import BatchSpec, ClusterProfile, JobConfig
from hdiaks_widgets.config.profile import AuthMethod, Flavour
from hdiaks_widgets.errors import ConfigProblem, HdiaksError
from hdiaks_widgets.monitor import describe_error
from hdiaks_widgets.widgets._common import DESC, WIDE, default_config, message_html, note_html, sandbox_profile

__all__ = ["JobForm"]

_WHOLE = re.compile(r"^[+-]?\d{1,18}$")

_FLAVOUR_CHOICES = (
    ("Local sandbox", "sandbox"),
    ("Apache Livy", "livy"),
    ("HDInsight on AKS", "hdinsight-aks"),
    ("Classic HDInsight", "hdinsight"),
    ("Microsoft Fabric", "fabric"),
    ("Azure Synapse", "synapse"),
)
# The address fields each flavour has (ClusterProfile's docstring), in the order shown. On
# fabric, synapse and hdinsight ``url`` is only another origin for the real host (the sandbox).
_ADDRESS: dict[str, tuple[str, ...]] = {
    "sandbox": ("url",),
    "livy": ("url",),
    "hdinsight-aks": ("fqdn",),
    "hdinsight": ("fqdn", "url"),
    "fabric": ("workspace_id", "lakehouse_id", "environment_id", "api_version", "url"),
    "synapse": ("workspace", "pool", "api_version", "url"),
}
_ADDRESS_FIELDS = ("fqdn", "workspace_id", "lakehouse_id", "environment_id", "workspace", "pool", "api_version",
                   "url")  # fmt: skip
_ORIGIN_ONLY = frozenset({"hdinsight", "fabric", "synapse"})
# Sign-in choices per flavour. "none" on the Entra services and classic HDInsight is for a url
# pointing at the local sandbox (the profile refuses it elsewhere for Fabric and Synapse).
_AUTH_CHOICES: dict[str, tuple[str, ...]] = {
    "sandbox": ("none", "basic", "service-principal", "device-code"),
    "livy": ("none", "basic", "service-principal", "device-code"),
    "hdinsight-aks": ("service-principal", "device-code"),
    "hdinsight": ("basic", "entra", "none"),
    "fabric": ("service-principal", "device-code", "none"),
    "synapse": ("service-principal", "device-code", "none"),
}
_AUTH_LABELS = {
    "none": "None",
    "basic": "Basic (user; password from the secret store)",
    "service-principal": "Service principal (Entra ID)",
    "entra": "Entra ID (service principal)",
    "device-code": "Device code (sign in yourself)",
}
_SANDBOX_ONLY = "None (only with a URL pointing at the local sandbox)"
# The fields each sign-in uses. The secret itself never is one: it stays in the secret store.
_AUTH_FIELDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "basic": ("username",),
    "service-principal": ("tenant_id", "client_id", "scope"),
    "entra": ("tenant_id", "client_id", "scope"),
    "device-code": ("tenant_id", "client_id", "scope"),
}
_AUTH_FIELD_NAMES = ("username", "tenant_id", "client_id", "scope")
# What is kept per flavour while another flavour is shown (the same words mean other things there).
_PER_FLAVOUR = (*_ADDRESS_FIELDS, "scope")
_URL_TEXT = {
    "sandbox": ("Livy URL", "http://127.0.0.1:8998"),
    "livy": ("Livy URL", "https://livy.example.com:8998"),
}
_OTHER_ORIGIN = ("Other origin", "empty for the real service; http://127.0.0.1:8998 for the local sandbox")
_FQDN_TEXT = {
    "hdinsight-aks": ("Cluster FQDN", "mycluster.mypool.<id>.eastus.hdinsightaks.net"),
    "hdinsight": ("Cluster", "mycluster, or mycluster.azurehdinsight.net"),
}
_GUID = "00000000-0000-0000-0000-000000000000"
_API_VERSION_DEFAULT = {"fabric": dialects.FABRIC_API_VERSION, "synapse": dialects.SYNAPSE_API_VERSION}


def _known_profiles() -> tuple[dict[str, ClusterProfile], str | None]:
    """Saved profiles (``hdiaks_widgets.profiles``) and a sentence if they could not be read."""
    try:
        from hdiaks_widgets import profiles as _profiles
    except ImportError:
        return {}, None
    try:
        return dict(_profiles.load_profiles()), None
    except Exception as exc:  # noqa: BLE001 - a broken profiles file must not break the form
        return {}, f"Saved profiles could not be read: {describe_error(exc)[1]}"


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _opt(text: str) -> str | None:
    return text if text.strip() else None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _default_auth(flavour: str) -> str:
    """The sign-in a profile of ``flavour`` uses when ``auth`` is not given."""
    return ClusterProfile(flavour=cast("Flavour", flavour)).auth_method


class JobForm:
    """The job form. ``config()`` turns the fields into a :class:`JobConfig` plus every problem;
    each problem is shown under its field as the user types."""

    def __init__(
        self,
        cfg: JobConfig | None = None,
        *,
        profiles: Mapping[str, ClusterProfile] | None = None,
    ) -> None:
        cfg = cfg or default_config()
        loaded, profile_note = ({}, None) if profiles is not None else _known_profiles()
        self._profiles: dict[str, ClusterProfile] = {"sandbox": sandbox_profile()}
        self._profiles.update(profiles if profiles is not None else loaded)
        self._profiles[cfg.profile.name] = cfg.profile
        self._listeners: list[Callable[[list[ConfigProblem]], None]] = []
        self._quiet = False
        self.problems: list[ConfigProblem] = []

        self.profile = w.Dropdown(
            options=sorted(self._profiles), value=cfg.profile.name, description="Profile", style=DESC
        )
        self.flavour = w.Dropdown(options=_FLAVOUR_CHOICES, value=cfg.profile.flavour
                                  if cfg.profile.flavour in _ADDRESS else "sandbox", description="Service",
                                  style={"description_width": "60px"})  # fmt: skip
        self.flavour.add_class("hdiaks-flavour")
        self.url = w.Text(description="Livy URL", placeholder="http://127.0.0.1:8998", style=DESC, layout=WIDE)
        self.fqdn = w.Text(
            description="Cluster FQDN",
            placeholder="mycluster.mypool.<id>.eastus.hdinsightaks.net",
            style=DESC,
            layout=WIDE,
        )
        self.workspace_id = w.Text(
            description="Workspace id", placeholder=f"a GUID like {_GUID}", style=DESC, layout=WIDE
        )
        self.lakehouse_id = w.Text(
            description="Lakehouse id", placeholder=f"a GUID like {_GUID}", style=DESC, layout=WIDE
        )
        self.environment_id = w.Text(
            description="Environment id", placeholder="optional: the environment's GUID", style=DESC, layout=WIDE
        )
        self.workspace = w.Text(
            description="Workspace", placeholder="myws, as in myws.dev.azuresynapse.net", style=DESC, layout=WIDE
        )
        self.pool = w.Text(description="Spark pool", placeholder="sparkpool01", style=DESC, layout=WIDE)
        self.api_version = w.Text(description="API version", style=DESC, layout=w.Layout(width="60%"))
        self.auth = w.Dropdown(description="Sign-in", style=DESC, layout=w.Layout(width="60%"))
        self.auth.add_class("hdiaks-auth")
        self.username = w.Text(description="User", placeholder="e.g. admin", style=DESC)
        self.tenant_id = w.Text(
            description="Tenant id", placeholder="a GUID or contoso.onmicrosoft.com", style=DESC, layout=WIDE
        )
        self.client_id = w.Text(
            description="Client id", placeholder="the app registration's id", style=DESC, layout=WIDE
        )
        self.scope = w.Text(description="Token scope", style=DESC, layout=WIDE)
        self.file = w.Text(
            description="App file",
            placeholder="abfs://container@account.dfs.core.windows.net/app.jar",
            style=DESC,
            layout=WIDE,
        )
        self.class_name = w.Text(
            description="Main class", placeholder="org.apache.spark.examples.SparkPi", style=DESC, layout=WIDE
        )
        self.args = w.Textarea(
            description="Arguments",
            placeholder="one argument per line",
            style=DESC,
            layout=w.Layout(width="95%", height="60px"),
        )
        self.name = w.Text(description="Job name", placeholder="spark-pi", style=DESC, layout=WIDE)
        self.unique_name = w.Checkbox(
            value=True,
            description="add a unique suffix to the job name on submit",
            indent=False,
            layout=w.Layout(width="auto", margin="0 0 0 155px"),
        )
        self.driver_memory = w.Text(description="Driver memory", placeholder="e.g. 2g", style=DESC)
        self.driver_cores = w.Text(description="Driver cores", placeholder="e.g. 1", style=DESC)
        self.executor_memory = w.Text(description="Executor memory", placeholder="e.g. 4g", style=DESC)
        self.executor_cores = w.Text(description="Executor cores", placeholder="e.g. 2", style=DESC)
        self.num_executors = w.Text(description="Executors", placeholder="e.g. 2", style=DESC)
        self.jars = w.Textarea(description="Extra jars", placeholder="one path per line", style=DESC, layout=WIDE)
        self.py_files = w.Textarea(description="Py files", placeholder="one path per line", style=DESC, layout=WIDE)
        self.files = w.Textarea(description="Files", placeholder="one path per line", style=DESC, layout=WIDE)
        self.archives = w.Textarea(
            description="Archives", placeholder="one per line; #name unpacks it as name, e.g. env.tar.gz#env",
            style=DESC, layout=WIDE,
        )  # fmt: skip
        self.proxy_user = w.Text(description="Proxy user", style=DESC)
        self.queue = w.Text(description="Queue", style=DESC)
        self.conf_rows = w.VBox([])
        self.add_conf_button = w.Button(description="Add Spark setting", icon="plus")
        self.add_conf_button.add_class("hdiaks-add-conf")
        self.config_path = w.Text(value="job.json", description="Config file", style=DESC)
        self.save_button = w.Button(description="Save", icon="save")
        self.load_button = w.Button(description="Load", icon="folder-open")
        self.file_note = w.HTML()
        self.profile_note = w.HTML(note_html(profile_note, ok=False) if profile_note else "")
        self._base = cfg.profile  # what the form does not show comes from here (timeouts, vault, ...)
        self._kept: dict[str, dict[str, str]] = {}  # flavour -> its address fields and scope while hidden
        self._auth_kept: dict[str, str | None] = {}  # flavour -> its profile.auth (None: the default)

        self.messages: dict[str, w.HTML] = {
            key: w.HTML()
            for key in (
                "profile", "profile.flavour", *(f"profile.{f}" for f in (*_ADDRESS_FIELDS, "auth",
                                                                         *_AUTH_FIELD_NAMES)),
                "spec.file", "spec.class_name", "spec.args",
                "spec.name", "spec.driver_memory", "spec.driver_cores", "spec.executor_memory",
                "spec.executor_cores", "spec.num_executors", "spec.conf", "spec.jars", "spec.py_files",
                "spec.files", "spec.archives", "spec.proxy_user", "spec.queue", "other",
            )
        }  # fmt: skip
        m = self.messages
        self._boxes: dict[str, w.VBox] = {
            name: w.VBox([getattr(self, name), m[f"profile.{name}"]]) for name in (*_ADDRESS_FIELDS,
                                                                                   *_AUTH_FIELD_NAMES)
        }  # fmt: skip
        for name, box in self._boxes.items():
            box.add_class(f"hdiaks-field-{name.replace('_', '-')}")
        self._url_box = self._boxes["url"]
        self._fqdn_box = self._boxes["fqdn"]
        resources = w.VBox([
            w.HBox([self.driver_memory, self.driver_cores]),
            m["spec.driver_memory"], m["spec.driver_cores"],
            w.HBox([self.executor_memory, self.executor_cores]),
            m["spec.executor_memory"], m["spec.executor_cores"],
            self.num_executors, m["spec.num_executors"],
        ])  # fmt: skip
        advanced = w.VBox([
            w.HTML("<b>Spark configuration</b>"), self.conf_rows, self.add_conf_button, m["spec.conf"],
            self.jars, m["spec.jars"], self.py_files, m["spec.py_files"], self.files, m["spec.files"],
            self.archives, m["spec.archives"],
            self.proxy_user, m["spec.proxy_user"], self.queue, m["spec.queue"],
        ])  # fmt: skip
        self.advanced = w.Accordion(children=[advanced], titles=("Advanced",), selected_index=None)
        self.widget = w.VBox([
            w.HBox([self.profile, self.flavour]), m["profile"], m["profile.flavour"], self.profile_note,
            *(self._boxes[name] for name in _ADDRESS_FIELDS),
            self.auth, m["profile.auth"], *(self._boxes[name] for name in _AUTH_FIELD_NAMES),
            self.file, m["spec.file"], self.class_name, m["spec.class_name"],
            self.args, m["spec.args"], self.name, m["spec.name"], self.unique_name,
            w.HTML("<b>Resources</b>"), resources, self.advanced, m["other"],
            w.HBox([self.config_path, self.save_button, self.load_button]), self.file_note,
        ])  # fmt: skip
        self.widget.add_class("hdiaks-form")

        self.set_config(cfg)
        for widget in (
            self.url,
            self.fqdn,
            self.workspace_id,
            self.lakehouse_id,
            self.environment_id,
            self.workspace,
            self.pool,
            self.api_version,
            self.username,
            self.tenant_id,
            self.client_id,
            self.scope,
            self.file,
            self.class_name,
            self.args,
            self.name,
            self.driver_memory,
            self.driver_cores,
            self.executor_memory,
            self.executor_cores,
            self.num_executors,
            self.jars,
            self.py_files,
            self.files,
            self.archives,
            self.proxy_user,
            self.queue,
        ):
            widget.observe(self._on_field_change, names="value")
        self.profile.observe(self._on_profile_change, names="value")
        self.flavour.observe(self._on_flavour_change, names="value")
        self.auth.observe(self._on_auth_change, names="value")
        self.add_conf_button.on_click(self._on_add_conf_click)
        self.save_button.on_click(self._on_save_click)
        self.load_button.on_click(self._on_load_click)
        self.validate()

    # -- public ------------------------------------------------------------------------------

    def on_validate(self, listener: Callable[[list[ConfigProblem]], None]) -> None:
        self._listeners.append(listener)

    @property
    def valid(self) -> bool:
        return not self.problems

    def selected_profile(self) -> ClusterProfile:
        """The profile the fields describe: the flavour's shown fields, the sign-in's fields, and
        the rest (timeouts, TLS, secret store, authority) from the selected or loaded profile.
        An empty box is ``None`` (not given: an empty scope means the flavour's own)."""
        base = self._base
        flavour = self.flavour.value
        shown = _ADDRESS[flavour]
        address: dict[str, Any] = {name: (_opt(getattr(self, name).value.strip()) if name in shown else None)
                                   for name in _ADDRESS_FIELDS}  # fmt: skip
        return replace(
            base,
            flavour=cast("Flavour", flavour),
            **address,
            auth=cast("AuthMethod | None", self._auth_value()),
            scope=_opt(self.scope.value.strip()),
            username=_opt(self.username.value.strip()),
            tenant_id=_opt(self.tenant_id.value.strip()),
            client_id=_opt(self.client_id.value.strip()),
            # Livy's path belongs to the flavour it was written for; another flavour uses its own.
            livy_path=base.livy_path if flavour == base.flavour else None,
        )

    def config(self) -> tuple[JobConfig, list[ConfigProblem]]:
        """The configuration the fields describe and every problem with it. Never raises."""
        problems: list[ConfigProblem] = []
        ints: dict[str, int | None] = {}
        for attr in ("driver_cores", "executor_cores", "num_executors"):
            text = getattr(self, attr).value.strip()
            if not text:
                ints[attr] = None
            elif _WHOLE.match(text):
                ints[attr] = int(text)
            else:
                ints[attr] = None
                problems.append(ConfigProblem(f"spec.{attr}", f"must be a whole number like 2, got {text[:40]!r}"))
        conf, conf_problems = self._conf()
        problems += conf_problems
        spec = BatchSpec(
            file=self.file.value.strip(),
            class_name=_opt(self.class_name.value.strip()),
            args=tuple(line for line in self.args.value.split("\n") if line != "") if self.args.value else (),
            name=_opt(self.name.value),
            proxy_user=_opt(self.proxy_user.value),
            jars=_lines(self.jars.value),
            py_files=_lines(self.py_files.value),
            files=_lines(self.files.value),
            archives=_lines(self.archives.value),
            driver_memory=_opt(self.driver_memory.value.strip()),
            executor_memory=_opt(self.executor_memory.value.strip()),
            queue=_opt(self.queue.value),
            conf=conf,
            driver_cores=ints["driver_cores"],
            executor_cores=ints["executor_cores"],
            num_executors=ints["num_executors"],
        )
        cfg = JobConfig(profile=self.selected_profile(), spec=spec)
        try:
            problems = cfg.problems() + problems
        except Exception as exc:  # noqa: BLE001 - validation must answer, not crash the form
            problems.append(ConfigProblem("other", f"could not check the form: {exc}"))
        return cfg, problems

    def validate(self) -> list[ConfigProblem]:
        """Check the fields and show each problem under its field."""
        _, problems = self.config()
        self.problems = problems
        grouped: dict[str, list[str]] = {key: [] for key in self.messages}
        for p in problems:
            key = p.field.split("[", 1)[0]
            detail = p.field[len(key) :]
            text = f"{detail[1:-1]}: {p.message}" if detail.startswith("[") else p.message
            if key.startswith("profile.") and (key not in grouped or not self._shown(key)):
                # No box of its own on show (timeouts, vault, ...): the message names the field.
                key, text = "profile", f"{p.field} {text}"
            grouped.get(key, grouped["other"]).append(text)
        self._sync_scope_hint()
        with contextlib.ExitStack() as stack:
            for widget in self.messages.values():
                stack.enter_context(widget.hold_sync())
            for key, widget in self.messages.items():
                value = message_html(grouped[key])
                if widget.value != value:
                    widget.value = value
        for listener in list(self._listeners):
            listener(problems)
        return problems

    def set_config(self, cfg: JobConfig) -> None:
        """Show a configuration in the fields (used by Load and by ``app(cfg)``)."""
        self._quiet = True
        try:
            name = cfg.profile.name
            self._profiles.setdefault(name, cfg.profile)
            if name not in self.profile.options:
                self.profile.options = sorted(self._profiles)
            self._profiles[name] = cfg.profile
            self.profile.value = name
            self._show_profile(cfg.profile)
            s = cfg.spec
            self.file.value = s.file
            self.class_name.value = s.class_name or ""
            self.args.value = s.args if isinstance(s.args, str) else "\n".join(s.args)  # a string: refused on submit
            self.name.value = s.name or ""
            self.driver_memory.value = s.driver_memory or ""
            self.driver_cores.value = "" if s.driver_cores is None else str(s.driver_cores)
            self.executor_memory.value = s.executor_memory or ""
            self.executor_cores.value = "" if s.executor_cores is None else str(s.executor_cores)
            self.num_executors.value = "" if s.num_executors is None else str(s.num_executors)
            self.jars.value = "\n".join(s.jars)
            self.py_files.value = "\n".join(s.py_files)
            self.files.value = "\n".join(s.files)
            self.archives.value = "\n".join(s.archives)
            self.proxy_user.value = s.proxy_user or ""
            self.queue.value = s.queue or ""
            self.conf_rows.children = ()
            for key, value in s.conf.items():
                self.add_conf_row(str(key), str(value))
        finally:
            self._quiet = False
        self.validate()

    def add_conf_row(self, key: str = "", value: str = "") -> w.HBox:
        key_w = w.Text(value=key, placeholder="spark.executor.memoryOverhead", layout=w.Layout(width="40%"))
        value_w = w.Text(value=value, placeholder="value", layout=w.Layout(width="40%"))
        remove = w.Button(icon="trash", tooltip="Remove this setting", layout=w.Layout(width="40px"))
        row = w.HBox([key_w, value_w, remove])
        row.add_class("hdiaks-conf-row")
        key_w.observe(self._on_field_change, names="value")
        value_w.observe(self._on_field_change, names="value")
        remove.on_click(lambda _b, r=row: self._remove_conf_row(r))
        self.conf_rows.children = (*self.conf_rows.children, row)
        if not self._quiet:
            self.validate()
        return row

    # -- handlers ----------------------------------------------------------------------------

    def _on_field_change(self, change: Mapping[str, Any]) -> None:
        if not self._quiet:
            self.validate()

    def _on_profile_change(self, change: Mapping[str, Any]) -> None:
        profile = self._profiles.get(change["new"])
        if profile is None:
            return
        self._quiet = True
        try:
            self._show_profile(profile)
        finally:
            self._quiet = False
        self.validate()

    def _on_flavour_change(self, change: Mapping[str, Any]) -> None:
        if self._quiet:
            return
        self._kept[str(change["old"])] = {name: getattr(self, name).value for name in _PER_FLAVOUR}
        self._quiet = True
        try:
            self._show_flavour(str(change["new"]))
        finally:
            self._quiet = False
        self.validate()

    def _on_auth_change(self, change: Mapping[str, Any]) -> None:
        if self._quiet:
            return
        self._auth_kept[self.flavour.value] = change["new"]
        self._show_auth_fields()
        self.validate()

    def _on_add_conf_click(self, _button: w.Button) -> None:
        self.add_conf_row()

    def _on_save_click(self, _button: w.Button) -> None:
        cfg, problems = self.config()
        try:
            path = cfg.save(self.config_path.value.strip() or "job.json")
        except (OSError, HdiaksError) as exc:
            self.file_note.value = note_html(f"Could not save: {describe_error(exc)[1]}", ok=False)
            return
        note = f"Saved to {path}."
        if problems:
            note += f" The configuration still has {len(problems)} problem(s) shown above."
        self.file_note.value = note_html(note, ok=not problems)

    def _on_load_click(self, _button: w.Button) -> None:
        try:
            cfg = JobConfig.load(self.config_path.value.strip() or "job.json")
        except Exception as exc:  # noqa: BLE001 - any bad file becomes a sentence
            self.file_note.value = note_html(f"Could not load: {describe_error(exc)[1]}", ok=False)
            return
        self.set_config(cfg)
        self.file_note.value = note_html(f"Loaded {self.config_path.value.strip()}.")

    # -- helpers -----------------------------------------------------------------------------

    def _show_profile(self, profile: ClusterProfile) -> None:
        """Show a profile's own fields; the caller holds ``_quiet`` and validates after."""
        self._base = profile
        flavour = profile.flavour if profile.flavour in _ADDRESS else "sandbox"
        self._kept = {flavour: {name: _text(getattr(profile, name)) for name in _PER_FLAVOUR}}
        self._auth_kept = {flavour: profile.auth}
        for name in ("username", "tenant_id", "client_id"):  # the same person or app on every service
            getattr(self, name).value = _text(getattr(profile, name))
        self.flavour.value = flavour
        self._show_flavour(flavour)

    def _show_flavour(self, flavour: str) -> None:
        """Show exactly ``flavour``'s fields, with the values last typed (or loaded) for it."""
        kept = self._kept.get(flavour, {})
        for name in _PER_FLAVOUR:
            getattr(self, name).value = kept.get(name, "")
        self.url.description, self.url.placeholder = _URL_TEXT.get(flavour, _OTHER_ORIGIN)
        self.fqdn.description, self.fqdn.placeholder = _FQDN_TEXT.get(flavour, _FQDN_TEXT["hdinsight-aks"])
        default_version = _API_VERSION_DEFAULT.get(flavour)
        self.api_version.placeholder = f"{default_version} (the default)" if default_version else ""
        shown = _ADDRESS[flavour]
        for name in _ADDRESS_FIELDS:
            self._boxes[name].layout.display = None if name in shown else "none"
        auth = self._auth_kept.get(flavour)
        current = auth if auth is not None else _default_auth(flavour)
        choices = _AUTH_CHOICES[flavour]
        if current not in choices:  # a loaded profile's method the list does not offer stays shown
            choices = (*choices, current)
        default = _default_auth(flavour)
        labels = []
        for method in choices:
            label = _SANDBOX_ONLY if method == "none" and flavour in _ORIGIN_ONLY else _AUTH_LABELS.get(method, method)
            labels.append((label + (" — the default" if method == default else ""), method))
        with self.auth.hold_sync():
            self.auth.options = labels
            self.auth.value = current
        self._show_auth_fields()

    def _show_auth_fields(self) -> None:
        method = str(self.auth.value)
        fields = _AUTH_FIELDS.get(method, ())
        for name in _AUTH_FIELD_NAMES:
            self._boxes[name].layout.display = None if name in fields else "none"
        from_store = method in ("service-principal", "entra")
        self.tenant_id.placeholder = ("empty: tenant-id from the secret store" if from_store
                                      else "a GUID or contoso.onmicrosoft.com")  # fmt: skip
        self.client_id.placeholder = ("empty: api-client-id from the secret store" if from_store
                                      else "the public client app registration's id")  # fmt: skip

    def _sync_scope_hint(self) -> None:
        try:
            hint = f"empty: {replace(self.selected_profile(), scope=None).token_scope}"
        except Exception:  # noqa: BLE001 - a half-typed cluster name has no scope yet
            hint = "empty: the service's own scope"
        if self.scope.placeholder != hint:
            self.scope.placeholder = hint

    def _auth_value(self) -> str | None:
        """``profile.auth``: ``None`` while the flavour's default is shown and none was chosen."""
        flavour = self.flavour.value
        chosen = self.auth.value
        if self._auth_kept.get(flavour) is None and chosen == _default_auth(flavour):
            return None
        return str(chosen) if chosen is not None else None

    def _shown(self, key: str) -> bool:
        box = self._boxes.get(key[len("profile.") :])
        return box is None or box.layout.display != "none"

    def _remove_conf_row(self, row: w.HBox) -> None:
        self.conf_rows.children = tuple(r for r in self.conf_rows.children if r is not row)
        self.validate()

    def _conf(self) -> tuple[dict[str, str], list[ConfigProblem]]:
        conf: dict[str, str] = {}
        problems: list[ConfigProblem] = []
        for row in self.conf_rows.children:
            key_w, value_w = row.children[0], row.children[1]
            key, value = str(key_w.value).strip(), str(value_w.value)
            if not key and not value.strip():
                continue
            if not key:
                problems.append(ConfigProblem("spec.conf", "a setting has a value but no name"))
            elif key in conf:
                problems.append(ConfigProblem(f"spec.conf[{key}]", "is set twice; keep one row"))
            else:
                conf[key] = value
        return conf, problems
