"""The Meltano project as Dagster needs it, read from `meltano.yml` when the code loads.

Nothing here runs the `meltano` CLI: loading the code location stays fast and works where
Meltano's system database is out of reach. What cannot be translated (a task Dagster cannot
run, a schedule with a bad interval or an unknown job) is one line in `problems`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import typing as t

import yaml

from elt.settings import PROJECT_DIR, project_env

# The project's report utility brackets each load (keys before, rows/added/deleted/orphans after);
# in Dagster every load step does that itself for its own tables, so its tasks need no step.
REPORT_UTILITY = "wiserock-report"
# The tag of every run of a Meltano job: the run queue lets one run per value go at a time.
MELTANO_JOB_TAG = "meltano/job"
# Where the staging tables are: without them a machine cannot load (it never starts a database of its own).
STAGING_DATABASE_SETTINGS = ("DB_HOST", "DB_NAME", "DB_SCHEMA")
# Meltano's interval presets (meltano.core.schedule.CRON_INTERVALS); None: never on a clock.
INTERVAL_PRESETS: dict[str, str | None] = {
    "@once": None, "@manual": None, "@none": None,
    "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def project_root(env: t.Mapping[str, str] | None = None) -> pathlib.Path:
    """MELTANO_PROJECT_ROOT when set (a deployment's checkout, a test's copy), else this repository."""
    root = (env if env is not None else os.environ).get("MELTANO_PROJECT_ROOT")
    return pathlib.Path(root).resolve() if root else PROJECT_DIR


def settings(root: pathlib.Path) -> dict[str, str]:
    """The .env keys as Meltano sees them in that project: os.environ over its .env."""
    return {**project_env(root), "MELTANO_PROJECT_ROOT": str(root)}


def expand(value: t.Any, env: t.Mapping[str, str]) -> t.Any:
    """Meltano's `$VAR` / `${VAR}` expansion in a setting's value (unset variables become empty)."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: env.get(match[1] or match[2], ""), value)
    return value


@dataclasses.dataclass(frozen=True)
class Plugin:
    """One plugin of meltano.yml with the active environment's config over its own."""

    name: str
    kind: str  # meltano.yml's section: extractors, loaders, utilities, mappers, ...
    definition: t.Mapping[str, t.Any]
    environment_config: t.Mapping[str, t.Any]

    @property
    def namespace(self) -> str:
        return self.definition.get("namespace") or self.name.replace("-", "_")

    def setting(self, name: str, env: t.Mapping[str, str]) -> t.Any:
        """A setting as Meltano resolves it: `<PLUGIN>_<SETTING>` in the environment, the active
        environment's config, the plugin's config, then the setting's declared default."""
        variable = f"{self.name}_{name}".upper().replace("-", "_")
        if env.get(variable):
            return env[variable]
        for config in (self.environment_config, self.definition.get("config") or {}):
            if name in config:
                return expand(config[name], env)
        declared = {item.get("name"): item for item in self.definition.get("settings") or []}
        return expand(declared.get(name, {}).get("value"), env)


def inherited(item: dict[str, t.Any], declared: t.Mapping[str, tuple[str, dict[str, t.Any]]]) -> dict[str, t.Any]:
    """A plugin's definition over the one it `inherit_from` (namespace, settings, config)."""
    parent = declared.get(item.get("inherit_from") or "")
    if parent is None or parent[1] is item:
        return item
    base = inherited(parent[1], declared)
    return {**base, **item, "config": {**(base.get("config") or {}), **(item.get("config") or {})},
            "settings": [*(base.get("settings") or []), *(item.get("settings") or [])]}


@dataclasses.dataclass(frozen=True)
class Load:
    """An extractor and a loader of a job's task: one `meltano run <extractor> <loader>`."""

    extractor: str
    loader: str

    @property
    def name(self) -> str:
        """A Dagster name: letters, digits and underscores."""
        return re.sub(r"\W", "_", f"{self.extractor}_to_{self.loader}")

    @property
    def args(self) -> list[str]:
        return [self.extractor, self.loader]


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    loads: tuple[Load, ...]

    @property
    def dagster_name(self) -> str:
        return re.sub(r"\W", "_", self.name)


@dataclasses.dataclass(frozen=True)
class Schedule:
    name: str
    job: str
    cron: str

    @property
    def dagster_name(self) -> str:
        return re.sub(r"\W", "_", self.name)


class MeltanoProject:
    """meltano.yml of one project directory, and the environment (os.environ over its .env)."""

    def __init__(self, root: pathlib.Path, env: t.Mapping[str, str] | None = None) -> None:
        self.root = root
        self.env = {**settings(root), **(env or {})}
        self.manifest: dict[str, t.Any] = yaml.safe_load((root / "meltano.yml").read_text(encoding="utf-8")) or {}
        self.environment = self.env.get("MELTANO_ENVIRONMENT") or self.manifest.get("default_environment")
        self.plugins = self._plugins()
        self.problems: list[str] = []

    def _plugins(self) -> dict[str, Plugin]:
        overrides: dict[tuple[str, str], dict] = {}
        for environment in self.manifest.get("environments") or []:
            if environment.get("name") == self.environment:
                for kind, items in ((environment.get("config") or {}).get("plugins") or {}).items():
                    for item in items or []:
                        overrides[kind, item["name"]] = item.get("config") or {}
        declared = {item["name"]: (kind, item) for kind, items in (self.manifest.get("plugins") or {}).items()
                    for item in items or []}
        return {name: Plugin(name, kind, inherited(item, declared), overrides.get((kind, name), {}))
                for name, (kind, item) in declared.items()}

    def job_tasks(self) -> dict[str, list[str]]:
        """Each job's tasks as Meltano flattens them: one word per plugin or plugin:command."""
        jobs = {}
        for job in self.manifest.get("jobs") or []:
            tasks = job.get("tasks") or []
            tasks = [tasks] if isinstance(tasks, str) else tasks
            words: list[str] = []
            for task in tasks:
                for part in [task] if isinstance(task, str) else task:
                    words += str(part).split()
            jobs[job["name"]] = words
        return jobs

    def jobs(self) -> dict[str, Job]:
        """The jobs Dagster can run; the others are one line each in `problems`."""
        jobs = {}
        for name, words in self.job_tasks().items():
            loads, problem = self._loads(words)
            if problem:
                self.problems.append(f"job {name!r} is not run by Dagster: {problem}")
            elif not loads:
                self.problems.append(f"job {name!r} is not run by Dagster: it loads nothing")
            else:
                jobs[name] = Job(name, tuple(loads))
        return jobs

    def _loads(self, words: list[str]) -> tuple[list[Load], str | None]:
        loads: list[Load] = []
        extractor: str | None = None
        for word in words:
            plugin = self.plugins.get(word.split(":", 1)[0])
            kind = plugin.kind if plugin else None
            if kind == "extractors" and extractor is None:
                extractor = word
            elif kind == "loaders" and extractor is not None:
                loads.append(Load(extractor, word))
                extractor = None
            elif kind == "utilities" and plugin and plugin.name == REPORT_UTILITY and extractor is None:
                continue
            else:
                return [], f"task {word!r} is not an extractor and loader pair nor a {REPORT_UTILITY} command"
        if extractor is not None:
            return [], f"extractor {extractor!r} has no loader"
        return loads, None

    def schedules(self, jobs: t.Mapping[str, Job]) -> list[Schedule]:
        """Schedules of runnable jobs with a clock interval; the others are one line each in `problems`."""
        found = []
        for schedule in self.manifest.get("schedules") or []:
            name, interval = schedule.get("name"), str(schedule.get("interval") or "").strip()
            job = schedule.get("job")
            cron = INTERVAL_PRESETS.get(interval.lower(), interval)
            if not job:
                self.problems.append(f"schedule {name!r} is not run by Dagster: it names no job "
                                     "(extractor/loader schedules: put the pair in a job)")
            elif job not in jobs:
                known = "unknown job" if job not in self.job_tasks() else "a job Dagster does not run"
                self.problems.append(f"schedule {name!r} is not run by Dagster: {known} {job!r}")
            elif cron is None:
                self.problems.append(f"schedule {name!r} is not run by Dagster: interval {interval!r} never fires")
            else:
                found.append(Schedule(name, job, cron))
        return found
