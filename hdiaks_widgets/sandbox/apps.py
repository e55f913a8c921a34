"""Build the example applications and publish them into the sandbox storage.

The Java examples are compiled once with ``javac --release 17`` against pyspark's jars and
cached under ``<root>/build/<source-hash>/``; later starts only copy files, so they are quick.
Every example is published under ``abfs://examples@sandbox.dfs.core.windows.net/``; see
:mod:`hdiaks_widgets.sandbox` for the exact paths.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hdiaks_widgets.errors import HdiaksError
from hdiaks_widgets.sandbox.storage import Storage, storage_uri

__all__ = [
    "EXAMPLES_ACCOUNT",
    "EXAMPLES_CONTAINER",
    "EXAMPLE_PATHS",
    "Examples",
    "SandboxBuildError",
    "build_examples",
    "spark_home",
]

EXAMPLES_CONTAINER = "examples"
EXAMPLES_ACCOUNT = "sandbox"

# Short name -> path inside the examples container.
EXAMPLE_PATHS: dict[str, str] = {
    "jar": "jars/spark-examples.jar",
    "pi_py": "py/pi.py",
    "wordcount_py": "py/wordcount.py",
    "fail_py": "py/fail.py",
    "lines_py": "py/lines.py",
    "sleep_py": "py/sleep.py",
    "storm_py": "py/storm.py",
    "stages_py": "py/stages.py",
    "words_txt": "data/words.txt",
}

SPARK_PI_CLASS = "org.apache.spark.examples.SparkPi"
WORD_COUNT_CLASS = "org.apache.spark.examples.JavaWordCount"
FAILING_JOB_CLASS = "org.apache.spark.examples.FailingJob"
LOG_STORM_CLASS = "org.apache.spark.examples.LogStorm"
SLOW_STAGES_CLASS = "org.apache.spark.examples.SlowStages"


class SandboxBuildError(HdiaksError):
    """The example applications could not be built (no JDK, compile error)."""


@dataclass(frozen=True)
class Examples:
    """Where the published examples are: storage URIs and local paths, by short name."""

    uris: dict[str, str]
    paths: dict[str, Path]
    spark_pi_class: str = SPARK_PI_CLASS
    word_count_class: str = WORD_COUNT_CLASS

    def to_json(self) -> dict[str, object]:
        return {
            "uris": dict(self.uris),
            "paths": {k: str(v) for k, v in self.paths.items()},
            "spark_pi_class": self.spark_pi_class,
            "word_count_class": self.word_count_class,
        }


def spark_home() -> Path:
    """The pyspark package folder, which is a complete ``SPARK_HOME``."""
    import pyspark  # heavy-ish; only when the sandbox actually runs Spark

    return Path(pyspark.__file__).resolve().parent


def _app_sources() -> Path:
    return Path(str(resources.files("hdiaks_widgets.sandbox") / "apps"))


def _source_hash(src: Path, home: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((src / "java").glob("*.java")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    # A different Spark needs a fresh compile.
    digest.update(str(sorted(p.name for p in (home / "jars").glob("spark-core*.jar"))).encode())
    return digest.hexdigest()[:16]


def _build_jar(src: Path, home: Path, target: Path) -> None:
    javac = shutil.which("javac")
    jar_tool = shutil.which("jar")
    if javac is None or jar_tool is None:
        raise SandboxBuildError("javac and jar (a JDK 17+) are needed to build the example jar")
    with tempfile.TemporaryDirectory(prefix="hdiaks-javac-") as tmp:
        classes = Path(tmp) / "classes"
        classes.mkdir()
        sources = [str(p) for p in sorted((src / "java").glob("*.java"))]
        cmd = [javac, "--release", "17", "-nowarn", "-cp", str(home / "jars" / "*"), "-d", str(classes)]
        done = subprocess.run([*cmd, *sources], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SandboxBuildError(f"javac failed:\n{done.stdout}{done.stderr}")
        partial = target.with_name(target.name + ".part")
        done = subprocess.run(
            [jar_tool, "--create", "--file", str(partial), "-C", str(classes), "."],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SandboxBuildError(f"jar failed:\n{done.stdout}{done.stderr}")
        os.replace(partial, target)


def _publish(source: Path, target: Path) -> None:
    if target.exists() and target.read_bytes() == source.read_bytes():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def build_examples(root: Path, storage: Storage) -> Examples:
    """Compile (if not cached) and publish the examples; return their URIs and local paths."""
    src = _app_sources()
    home = spark_home()
    cache = root / "build" / _source_hash(src, home)
    jar = cache / "spark-examples.jar"
    if not jar.exists():
        cache.mkdir(parents=True, exist_ok=True)
        _build_jar(src, home, jar)
    sources = {"jar": jar}
    for key, rel in EXAMPLE_PATHS.items():
        if key != "jar":
            sources[key] = src / rel
    uris: dict[str, str] = {}
    paths: dict[str, Path] = {}
    for key, rel in EXAMPLE_PATHS.items():
        target = storage.path_for(EXAMPLES_CONTAINER, EXAMPLES_ACCOUNT, rel)
        _publish(sources[key], target)
        uris[key] = storage_uri(EXAMPLES_CONTAINER, EXAMPLES_ACCOUNT, rel)
        paths[key] = target
    return Examples(uris=uris, paths=paths)
