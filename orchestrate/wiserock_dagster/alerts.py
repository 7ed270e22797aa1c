"""A failed run raises an alert: the job, the run's page and the one-line error, posted as JSON to
ALERT_WEBHOOK_URL (a Slack-style `text` field, plus the fields on their own); unset: logged only."""

from __future__ import annotations

import json
import typing as t
import urllib.error
import urllib.parse
import urllib.request

import dagster as dg

from wiserock_dagster.project import MELTANO_JOB_TAG, project_root, settings

TIMEOUT_SECONDS = 10


def web_url(env: t.Mapping[str, str]) -> str:
    """The web UI's address as people reach it (DAGSTER_URL), else the local one."""
    return (env.get("DAGSTER_URL") or f"http://127.0.0.1:{env.get('DAGSTER_PORT') or 3000}").rstrip("/")


def failure_line(context: dg.RunFailureSensorContext) -> str:
    """The first failed step's own one-line error, else Dagster's message about the run."""
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            return data.user_failure_data.description
        if data.error:
            return " ".join(data.error.message.split())
    return " ".join((context.failure_event.message or "the run failed").split())


def alert(context: dg.RunFailureSensorContext, env: t.Mapping[str, str]) -> dict[str, str]:
    run = context.dagster_run
    job = run.tags.get(MELTANO_JOB_TAG) or run.job_name
    url = f"{web_url(env)}/runs/{run.run_id}"
    error = failure_line(context)
    return {"text": f"WiseRock ELT: job {job} failed: {error} ({url})", "job": job, "run_id": run.run_id,
            "run_url": url, "error": error}


def post(webhook: str, payload: dict[str, str]) -> str | None:
    """POST the payload; None when delivered, else one line saying why not (never the URL: it is a secret)."""
    request = urllib.request.Request(webhook, data=json.dumps(payload).encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    host = urllib.parse.urlsplit(webhook).hostname
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (a configured URL)
            response.read()
    except urllib.error.HTTPError as exc:
        return f"the alert webhook at {host} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"the alert webhook at {host} is unreachable: {getattr(exc, 'reason', exc)}"
    return None


@dg.run_failure_sensor(name="alert_on_run_failure", default_status=dg.DefaultSensorStatus.RUNNING,
                       minimum_interval_seconds=10,
                       description="Posts the job, the run's page and the one-line error to ALERT_WEBHOOK_URL")
def alert_on_run_failure(context: dg.RunFailureSensorContext) -> None:
    env = settings(project_root())
    payload = alert(context, env)
    webhook = env.get("ALERT_WEBHOOK_URL")
    if not webhook:
        context.log.warning(f"{payload['text']} (ALERT_WEBHOOK_URL is not set: logged only)")
        return
    if problem := post(webhook, payload):
        context.log.error(f"{problem}; the alert was: {payload['text']}")
    else:
        context.log.info(f"alert sent: {payload['text']}")
