"""The code location: every Meltano job a Dagster job, every Meltano schedule a Dagster schedule.

- a job's loads are its steps (one multi-asset each, see assets.py); loads of one job do not depend
  on each other (each writes its own tables in its own transaction), so on the Celery executor
  they run on two workers at once;
- every job carries the tag `meltano/job`, on which the instance allows one run at a time
  (dagster.yaml's tag_concurrency_limits): a tick while a run goes is queued, never forced;
- schedules run from the start (declared means meant to run), in SCHEDULE_TIMEZONE (default UTC);
- DAGSTER_CELERY_BROKER_URL set: steps go to Celery workers, the loads of a run at once; else they
  run one after the other in the run's process;
- the tables' relations (asset dependencies, orphan checks) come from the taps' settings and the API
  tap's own discovery, asked when the code server loads and reused by run workers (discovery.py).
What cannot be translated is one line on stderr, naming it, and is left out.
"""

from __future__ import annotations

import sys
import typing as t
import zoneinfo

import dagster as dg

# Dagster's way to reuse, in run workers, what the code server fetched from a source when it loaded
# (its integrations' StateBackedDefinitionsLoader does the same); dagster 1.13 does not export it.
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType

from wiserock_dagster.alerts import alert_on_run_failure
from wiserock_dagster.assets import load_assets
from wiserock_dagster.discovery import Discoveries
from wiserock_dagster.project import MELTANO_JOB_TAG, Job, Load, MeltanoProject, project_root
from wiserock_dagster.tables import StagingTable, UnknownTables, staging_tables

DEFAULT_TIMEZONE = "UTC"


def executor(env: t.Mapping[str, str]) -> dg.ExecutorDefinition:
    """Celery workers when a broker is configured (its URL stays in the environment, out of run config);
    else the run's own process, one load after the other, as `meltano run <job>` does: two Meltano
    runs of one plugin in one project at once race on its run files (Meltano rewrites
    `.meltano/run/<plugin>/<kind>.singer_sdk_logging.json` at every start), so only workers with a
    checkout each run loads at the same time."""
    if not env.get("DAGSTER_CELERY_BROKER_URL"):
        return dg.in_process_executor
    from dagster_celery import celery_executor  # imported only where used: Celery is heavy

    backend = {"env": "DAGSTER_CELERY_BACKEND_URL"} if env.get("DAGSTER_CELERY_BACKEND_URL") else "rpc://"
    return celery_executor.configured({"broker": {"env": "DAGSTER_CELERY_BROKER_URL"}, "backend": backend},
                                      name="celery_executor")


def timezone(env: t.Mapping[str, str], problems: list[str]) -> str | None:
    name = env.get("SCHEDULE_TIMEZONE") or DEFAULT_TIMEZONE
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(f"SCHEDULE_TIMEZONE {name!r} is not a time zone (e.g. UTC, Europe/Paris): no schedule runs")
        return None
    return name


class Translation:
    """meltano.yml as Dagster definitions, with one line per thing left out."""

    def __init__(self, project: MeltanoProject, discoveries: Discoveries | None = None) -> None:
        self.project = project
        self.discoveries = discoveries or Discoveries()
        self.problems = project.problems
        self.tables: dict[Load, list[StagingTable]] = {}
        self.jobs = {name: job for name, job in project.jobs().items() if self._tables_known(job)}
        self.known = {table.name for tables in self.tables.values() for table in tables}

    def _tables_known(self, job: Job) -> bool:
        """Find the tables of the job's loads; False (and one line) when Dagster cannot run it."""
        owner = {table.name: load for load, tables in self.tables.items() for table in tables}
        found: dict[Load, list[StagingTable]] = {}
        for load in job.loads:
            if load in self.tables or load in found:
                continue
            try:
                found[load] = tables = staging_tables(self.project, load.extractor, self.discoveries)
            except UnknownTables as exc:
                self.problems.append(f"job {job.name!r} is not run by Dagster: the tables of {load.extractor} "
                                     f"cannot be told: {exc}")
                return False
            if clash := next((table.name for table in tables if table.name in owner), None):
                self.problems.append(f"job {job.name!r} is not run by Dagster: table {clash} is also loaded by "
                                     f"{' '.join(owner[clash].args)}, which another job runs")
                return False
        self.tables.update(found)
        return True

    def definitions(self, env: t.Mapping[str, str]) -> dg.Definitions:
        assets = {load: load_assets(load, tables, self.known) for load, tables in self.tables.items()}
        jobs = {name: dg.define_asset_job(
            job.dagster_name, selection=dg.AssetSelection.assets(*(assets[load] for load in job.loads)),
            tags={MELTANO_JOB_TAG: name},
            description=f"Meltano job {name}: " + ", ".join(f"meltano run {' '.join(load.args)}" for load in job.loads))
            for name, job in self.jobs.items()}
        zone = timezone(env, self.problems)
        schedules = []
        for schedule in self.project.schedules(self.jobs) if zone else []:
            try:
                schedules.append(dg.ScheduleDefinition(
                    name=schedule.dagster_name, cron_schedule=schedule.cron, job=jobs[schedule.job],
                    execution_timezone=zone, default_status=dg.DefaultScheduleStatus.RUNNING,
                    description=f"Meltano schedule {schedule.name}: job {schedule.job}, {schedule.cron} ({zone})"))
            except dg.DagsterInvalidDefinitionError:
                self.problems.append(f"schedule {schedule.name!r} is not run by Dagster: interval {schedule.cron!r} "
                                     "is not a cron expression")
        return dg.Definitions(assets=list(assets.values()), jobs=list(jobs.values()), schedules=schedules,
                              sensors=[alert_on_run_failure], executor=executor(env))


def build(env: t.Mapping[str, str] | None = None) -> dg.Definitions:
    """The definitions of the project at MELTANO_PROJECT_ROOT (this repository by default). A run
    worker rebuilds them with what the code server's discovery found (its reconstruction metadata)."""
    context = DefinitionsLoadContext.get()
    known = (context.reconstruction_metadata.get(Discoveries.METADATA_KEY)
             if context.load_type == DefinitionsLoadType.RECONSTRUCTION else None)
    project = MeltanoProject(project_root(env), env)
    translation = Translation(project, Discoveries(known))
    definitions = translation.definitions(project.env)
    context.add_to_pending_reconstruction_metadata(Discoveries.METADATA_KEY, translation.discoveries.state())
    for problem in [*translation.problems, *translation.discoveries.problems]:
        print(f"wiserock-dagster: {problem}", file=sys.stderr, flush=True)  # the code server's log
    return definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build()
