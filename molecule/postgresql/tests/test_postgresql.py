"""PostgreSQL for Concourse: what listens, who gets in, how secrets are kept."""
import os
import re

import pytest
import testinfra

testinfra_hosts = ["ansible://molecule-postgresql-web", "ansible://molecule-postgresql-db"]

SECRET = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets",
                      "postgresql", "concourse-password")


@pytest.fixture(scope="module")
def password():
    with open(SECRET, encoding="utf-8") as handle:
        return handle.read().split()[0]


def _get(name):
    return testinfra.get_host(f"ansible://{name}",
                              ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


@pytest.fixture(scope="module")
def web():
    return _get("molecule-postgresql-web")


@pytest.fixture(scope="module")
def db():
    return _get("molecule-postgresql-db")


def address_of(host):
    return host.check_output("hostname -I").split()[0]


def sql(host, query, db="postgres"):
    with host.sudo("postgres"):
        return host.check_output(f"psql -d {db} -AtXc \"{query}\"")


def listeners(host):
    out = host.check_output("ss -Htln 'sport = :5432'")
    return sorted(line.split()[3] for line in out.splitlines())


def test_cluster_unit_is_running(host):
    units = host.check_output("systemctl list-units 'postgresql@*' --plain --no-legend --state=running")
    assert re.search(r"postgresql@\d+-main\.service", units), units


def test_listens_only_where_the_web_nodes_reach_it(host):
    name = host.backend.get_hostname()
    found = set(listeners(host))
    # 'localhost' is ::1 as well where the host has IPv6 (these containers do not).
    expected = {"127.0.0.1:5432"} if name.endswith("-web") else {"127.0.0.1:5432", f"{address_of(host)}:5432"}
    assert found - {"[::1]:5432"} == expected, found


def test_password_is_stored_as_scram(host):
    stored = sql(host, "SELECT rolpassword FROM pg_authid WHERE rolname = 'concourse'")
    assert stored.startswith("SCRAM-SHA-256$4096:")


def test_database_belongs_to_concourse_and_is_closed_to_public(host):
    owner, encoding, acl = sql(host, "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), "
                                     "datacl::text FROM pg_database WHERE datname = 'concourse'").split("|")
    assert (owner, encoding) == ("concourse", "UTF8")
    entries = acl.strip("{}").split(",")
    assert not [e for e in entries if e.startswith("=")], f"PUBLIC still has rights: {acl}"


def test_web_node_logs_in_over_loopback(web, password):
    out = web.check_output(f"PGPASSWORD={password} psql -h 127.0.0.1 -U concourse -d concourse -AtXc 'SELECT 42'")
    assert out == "42"


def test_web_node_reaches_the_dedicated_database(web, db, password):
    target = address_of(db)
    ok = web.run(f"PGPASSWORD={password} psql -h {target} -U concourse -d concourse -AtXc 'SELECT 7'")
    assert ok.rc == 0 and ok.stdout.strip() == "7", ok.stderr
    wrong = web.run(f"PGPASSWORD=not-the-password psql -h {target} -U concourse -d concourse -AtXc 'SELECT 1'")
    assert wrong.rc != 0 and "password authentication failed" in wrong.stderr
    other = web.run(f"PGPASSWORD={password} psql -h {target} -U concourse -d postgres -AtXc 'SELECT 1'")
    assert other.rc != 0 and "no pg_hba.conf entry" in other.stderr


def test_addresses_outside_pg_hba_are_refused(db, password):
    # The database host's own private address is not a web node's.
    out = db.run(f"PGPASSWORD={password} psql -h {address_of(db)} -U concourse -d concourse -AtXc 'SELECT 1'")
    assert out.rc != 0 and "no pg_hba.conf entry" in out.stderr, out.stderr


def test_pg_hba_has_no_errors(host):
    assert sql(host, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL") == "0"


def test_backup_playbook_dumps_what_a_restore_brings_back(db, tmp_path):
    """playbooks/backup-db.yml, then the README's restore, on a scratch database."""
    import glob
    import subprocess

    root = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    marker = "marker-" + db.check_output("cat /proc/sys/kernel/random/uuid")
    sql(db, f"SET ROLE concourse; CREATE TABLE IF NOT EXISTS kit_probe (v text); "
            f"INSERT INTO kit_probe VALUES ('{marker}')", db="concourse")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(root, "roles"), ANSIBLE_NOCOLOR="1")
    run = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--limit", "molecule-postgresql-db",
         "-e", f"postgresql_backup_dir={tmp_path}", os.path.join(root, "playbooks/backup-db.yml")],
        env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    (dump,) = glob.glob(str(tmp_path / "molecule-postgresql-db" / "concourse-*Z.dump"))
    assert oct(os.stat(dump).st_mode & 0o777) == "0o600"
    with open(dump, "rb") as handle:
        data = handle.read()
    assert data[:5] == b"PGDMP", "pg_dump's custom format"
    # Restore as the README says, into a scratch database.
    with open(dump, "rb") as handle:
        subprocess.run(["docker", "exec", "-i", "molecule-postgresql-db", "sh", "-c",
                        "cat > /tmp/restore.dump && chown postgres /tmp/restore.dump"],
                       stdin=handle, check=True)
    with db.sudo("postgres"):
        db.check_output("dropdb --if-exists restore_check && createdb -O concourse restore_check")
        db.check_output("pg_restore --no-owner --role=concourse -d restore_check /tmp/restore.dump")
    assert marker in sql(db, "SELECT v FROM kit_probe", db="restore_check")
