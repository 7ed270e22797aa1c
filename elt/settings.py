"""The WiseRock .env keys, read the way Meltano reads them: environment first, then .env."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import typing as t

from dotenv import dotenv_values

PROJECT_DIR = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = "wiserock"


def project_env(project_dir: pathlib.Path = PROJECT_DIR) -> dict[str, str]:
    """os.environ over the project's .env (empty values count as unset)."""
    dotenv = {k: v for k, v in dotenv_values(project_dir / ".env").items() if v}
    return {**dotenv, **{k: v for k, v in os.environ.items() if v}}


@dataclasses.dataclass(frozen=True)
class Database:
    """Where the staging tables live: psycopg connection arguments and a printable name."""

    params: dict[str, t.Any]
    schema: str

    @property
    def label(self) -> str:
        host = self.params.get("host") or "localhost"
        where = host if host.startswith("/") else f"{host}:{self.params.get('port') or 5432}"
        return f"{where}/{self.params.get('dbname')}"

    def loader_config(self) -> dict[str, t.Any]:
        """target-wiserock-postgres's settings (its --config file) for this database and schema."""
        params = self.params
        config = {"host": params.get("host"), "port": params.get("port"), "user": params.get("user"),
                  "password": params.get("password"), "database": params.get("dbname"),
                  "sslmode": params.get("sslmode"), "default_target_schema": self.schema}
        return {key: value for key, value in config.items() if value is not None}

    @classmethod
    def from_env(cls, env: t.Mapping[str, str]) -> Database:
        schema = env.get("DB_SCHEMA") or DEFAULT_SCHEMA
        params = {"host": env.get("DB_HOST"), "port": int(env.get("DB_PORT") or 5432),
                  "user": env.get("DB_USER"), "password": env.get("DB_PASSWORD") or None,
                  "dbname": env.get("DB_NAME"), "sslmode": env.get("DB_SSLMODE") or "prefer"}
        return cls({k: v for k, v in params.items() if v is not None}, schema)
