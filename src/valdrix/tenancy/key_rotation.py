"""Re-encrypt every encrypted column under the active key (``valdrix keys rotate``).

Runs through the application role like everything else: tenant tables tenant by tenant (ids from
the resolver function), global tables once. Rows already under the active key are left alone, so
the command is safe to interrupt and re-run.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.kit.crypto import KeyRing, key_id_of
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import Base, EncryptedString
from valdrix.runtime import Runtime
from valdrix.tenancy.repository import CiphertextRepository, TenantRepository

BATCH_SIZE = 500


def encrypted_tables() -> dict[Table, list[str]]:
    found: dict[Table, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        columns = [c.name for c in table.columns if isinstance(c.type, EncryptedString)]
        if columns:
            found[table] = columns
    return found


def _is_tenant_scoped(table: Table) -> bool:
    # users: row-level security shows each tenant its own members, so they go tenant by tenant.
    return "tenant_id" in table.columns or table.name in ("tenants", "users")


async def rotate_keys(runtime: Runtime) -> Counter[str]:
    """Returns how many values were re-encrypted, per ``table.column``."""
    rewritten: Counter[str] = Counter()
    tables = encrypted_tables()
    async with unit_of_work(runtime.sessions, None) as session:
        tenant_ids = await TenantRepository(session).all_tenant_ids()
        for table, columns in tables.items():
            if not _is_tenant_scoped(table):
                rewritten += await _reencrypt(session, runtime.keyring, table, columns)
    for tenant_id in tenant_ids:
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            for table, columns in tables.items():
                if _is_tenant_scoped(table):
                    rewritten += await _reencrypt(session, runtime.keyring, table, columns)
    return rewritten


async def _reencrypt(
    session: AsyncSession, keyring: KeyRing, table: Table, columns: list[str]
) -> Counter[str]:
    counts: Counter[str] = Counter()
    ciphertexts = CiphertextRepository(session)
    last_id: uuid.UUID | None = None
    while True:
        rows = await ciphertexts.page(table, columns, after=last_id, limit=BATCH_SIZE)
        if not rows:
            return counts
        for row in rows:
            values: dict[str, Any] = {}
            for name in columns:
                blob = getattr(row, name)
                if blob is None or key_id_of(bytes(blob)) == keyring.active_kid:
                    continue
                plaintext = keyring.decrypt(bytes(blob))
                values[name] = plaintext  # re-encrypted under the active key on bind
                index_column = table.c[name].info.get("blind_index")
                if index_column:
                    values[index_column] = keyring.blind_index(plaintext)
                counts[f"{table.name}.{name}"] += 1
            if values:
                await ciphertexts.rewrite(table, row.id, values)
        last_id = rows[-1].id
