"""The Celery workers' settings: dagster_celery imports this module when a worker starts (serve.py
puts this folder on the worker's PYTHONPATH). The broker's URL, which may hold a password, is read
from the environment and never written to a file."""

import os

broker_url = os.environ["DAGSTER_CELERY_BROKER_URL"]
result_backend = os.environ.get("DAGSTER_CELERY_BACKEND_URL") or "rpc://"
