import time, psycopg
def test_commit_latency(database):
    with psycopg.connect(database.superuser, autocommit=True) as c:
        c.execute("create table if not exists zz(x int)")
        print(c.execute("show synchronous_commit").fetchone(), c.execute("show fsync").fetchone(), c.execute("show wal_sync_method").fetchone(), c.execute("show shared_buffers").fetchone())
        t=time.monotonic()
        for i in range(200): c.execute("insert into zz values (1)")
        print("commit ms", (time.monotonic()-t)/200*1000)
        c.execute("set synchronous_commit=off")
        t=time.monotonic()
        for i in range(200): c.execute("insert into zz values (1)")
        print("async commit ms", (time.monotonic()-t)/200*1000)
