"""PostgreSQL for Concourse: what listens, who gets in, how secrets are kept.

Passwords reach psql through a 0600 password file (PGPASSFILE) written over
standard input, never on a command line.
"""
import json
import os
import re
import subprocess

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


def psql_as_concourse(host, password, target, db="concourse", query="SELECT 1"):
    """psql as the concourse role, the password in a 0600 file, not in argv or the environment."""
    name = host.backend.get_hostname()
    path = f"/root/.pgpass-{abs(hash(password)) % 10**8}"
    subprocess.run(["docker", "exec", "-i", name, "sh", "-c", f"umask 077 && cat > {path}"],
                   input=f"*:*:*:concourse:{password}\n".encode(), check=True)
    return host.run(f"PGPASSFILE={path} psql -h {target} -U concourse -d {db} -AtXc '{query}'")


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
    out = psql_as_concourse(web, password, "127.0.0.1", query="SELECT 42")
    assert out.rc == 0 and out.stdout.strip() == "42", out.stderr


def test_web_node_reaches_the_dedicated_database(web, db, password):
    target = address_of(db)
    ok = psql_as_concourse(web, password, target, query="SELECT 7")
    assert ok.rc == 0 and ok.stdout.strip() == "7", ok.stderr
    wrong = psql_as_concourse(web, "not-the-password", target)
    assert wrong.rc != 0 and "password authentication failed" in wrong.stderr
    other = psql_as_concourse(web, password, target, db="postgres")
    assert other.rc != 0 and "no pg_hba.conf entry" in other.stderr


def test_addresses_outside_pg_hba_are_refused(db, password):
    # The database host's own private address is not a web node's.
    out = psql_as_concourse(db, password, address_of(db))
    assert out.rc != 0 and "no pg_hba.conf entry" in out.stderr, out.stderr


def test_pg_hba_has_no_errors(host):
    assert sql(host, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL") == "0"


def run_role(tmp_path, limit, extra):
    """The postgresql role once more on one host, with extra variables.

    The report is read from the JSON callback: ansible-core 2.19 writes a
    failed task's result and error to standard error, not standard output,
    and escapes the module's stderr there, so the play's text is no place to
    look for what the role refused and why.
    """
    root = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    playbook = tmp_path / "again.yml"
    # The web nodes' facts first, as playbooks/database.yml gathers them:
    # pg_hba is derived from their addresses.
    playbook.write_text("- hosts: concourse_web\n  gather_facts: true\n  tasks: []\n"
                        f"- hosts: {limit}\n  become: true\n  roles: [postgresql]\n")
    # profile_tasks (enabled by the kit and by molecule) would print its
    # summary into the JSON; naming the stdout callback here enables no other.
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(root, "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json")
    return subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                           "-e", json.dumps(extra), str(playbook)], env=env, capture_output=True, text=True)


def failures(run):
    """(task name, host, result) for each failed task of a run_role() run."""
    report = json.loads(run.stdout)
    return [(task["task"]["name"], host, result)
            for play in report["plays"] for task in play["tasks"]
            for host, result in task["hosts"].items() if result.get("failed")]


LIVE = "/etc/postgresql/*/main"


@pytest.mark.parametrize("extra, task, live_file, said", [
    # Passes the role's CIDR preflight, but no such mask exists.
    ({"postgresql_client_addresses": ["10.0.0.0/33"]}, "Configure client authentication", "pg_hba.conf",
     'invalid CIDR mask in address "10.0.0.0/33"'),
    ({"postgresql_settings": {"shared_buffers": "lots"}}, "Configure the server",
     "conf.d/50-concourse-gpu-kit.conf", 'invalid value for parameter "shared_buffers": "lots"'),
])
def test_a_bad_configuration_is_refused_and_the_live_file_kept(db, tmp_path, extra, task, live_file, said):
    before = db.check_output(f"sha256sum {LIVE}/{live_file}")
    pid = sql(db, "SELECT pg_postmaster_start_time()")
    run = run_role(tmp_path, "molecule-postgresql-db", extra)
    assert run.returncode == 2, run.stderr[-3000:]
    # The one task that failed is the one that writes the file, refused by its validate:.
    (failed,) = failures(run)
    name, host, result = failed
    assert (name, host) == (f"postgresql : {task}", "molecule-postgresql-db"), failed
    assert result["msg"] == "failed to validate", result
    assert said in result["stderr"], result["stderr"]
    assert db.check_output(f"sha256sum {LIVE}/{live_file}") == before, "the live file was replaced"
    assert sql(db, "SELECT pg_postmaster_start_time()") == pid, "the server was restarted"
    assert sql(db, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL") == "0"
    assert db.check_output("ls /tmp | grep -c pg-config-check || true") == "0", "scratch left behind"


def test_backup_playbook_dumps_what_a_restore_brings_back(db, tmp_path):
    """playbooks/backup-db.yml, then the README's restore, on a scratch database."""
    import glob
    import subprocess

    root = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    marker = "marker-" + db.check_output("cat /proc/sys/kernel/random/uuid")
    sql(db, f"SET ROLE concourse; CREATE TABLE IF NOT EXISTS kit_probe (v text); "
            f"INSERT INTO kit_probe VALUES ('{marker}')", db="concourse")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(root, "roles"), ANSIBLE_NOCOLOR="1")
    # backup-db.yml checks the whole kit's inventory first: the groups this
    # scenario has no instance for come from a second inventory (--limit
    # keeps its worker from being contacted).
    rest = tmp_path / "rest-of-the-kit.yml"
    rest.write_text('{"all": {"children": {"concourse_workers": {"hosts": {"molecule-postgresql-worker": {}}}, '
                    '"log_store": {"hosts": {"molecule-postgresql-db": {}}}}}}')
    run = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-i", str(rest),
         "--limit", "molecule-postgresql-db",
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
                        # A second verify finds the last one's file, owned by postgres: with
                        # fs.protected_regular even root may not open it for writing in /tmp.
                        "rm -f /tmp/restore.dump && cat > /tmp/restore.dump && chown postgres /tmp/restore.dump"],
                       stdin=handle, check=True)
    with db.sudo("postgres"):
        db.check_output("dropdb --if-exists restore_check && createdb -O concourse restore_check")
        db.check_output("pg_restore --no-owner --role=concourse -d restore_check /tmp/restore.dump")
    assert marker in sql(db, "SELECT v FROM kit_probe", db="restore_check")


SCHEDULED = "/var/backups/concourse-gpu-kit/scheduled"


def journal(host, unit):
    """The unit's messages since its last start, with their priorities."""
    out = host.check_output(f"journalctl -u {unit} -o json --no-pager -n 20")
    return [(int(entry["PRIORITY"]), entry["MESSAGE"]) for entry in map(json.loads, out.splitlines())
            if isinstance(entry.get("MESSAGE"), str)]


def test_scheduled_backups_are_timed(db):
    """Issue 22: backups were manual only."""
    for timer, calendar in (("concourse-gpu-kit-pg-backup.timer", "*-*-* 03:15:00"),
                            ("concourse-gpu-kit-pg-backup-age.timer", "hourly")):
        assert db.service(timer).is_enabled and db.service(timer).is_running, timer
        assert calendar in db.check_output(f"cat /etc/systemd/system/{timer}")
        assert db.run(f"systemctl list-timers --no-pager {timer}").stdout.count(timer) == 1


def test_scheduled_backups_are_private_kept_and_restorable(db):
    """Each dump is postgres's alone from its first byte, the newest 3 are kept, and a dump restores."""
    marker = "scheduled-" + db.check_output("cat /proc/sys/kernel/random/uuid")
    sql(db, f"SET ROLE concourse; CREATE TABLE IF NOT EXISTS kit_probe (v text); "
            f"INSERT INTO kit_probe VALUES ('{marker}')", db="concourse")
    for _ in range(5):
        db.check_output("systemctl start concourse-gpu-kit-pg-backup.service")
        db.check_output("sleep 1.1")
    names = db.check_output(f"ls -A {SCHEDULED}").split()
    assert len(names) == 3 and all(re.fullmatch(r"concourse-\d{8}T\d{6}Z\.dump", n) for n in names), names
    assert db.file(SCHEDULED).mode == 0o700 and db.file(SCHEDULED).user == "postgres"
    for name in names:
        dump = db.file(f"{SCHEDULED}/{name}")
        assert (dump.mode, dump.user, dump.group) == (0o600, "postgres", "postgres"), name
    messages = [m for _, m in journal(db, "concourse-gpu-kit-pg-backup.service")]
    assert any(m.startswith("backup written: ") and m.endswith("3 kept") for m in messages), messages
    assert any(m.startswith("removed concourse-") for m in messages), messages
    newest = sorted(names)[-1]
    with db.sudo("postgres"):
        db.check_output("dropdb --if-exists scheduled_check && createdb -O concourse scheduled_check")
        db.check_output(f"pg_restore --no-owner --role=concourse -d scheduled_check {SCHEDULED}/{newest}")
    assert marker in sql(db, "SELECT v FROM kit_probe", db="scheduled_check")


def test_a_failed_dump_leaves_nothing_behind(db):
    """pg_dump fails (the server is stopped): no .partial and no broken dump stay, and the script fails."""
    before = db.check_output(f"ls -A {SCHEDULED}")
    unit = db.check_output("systemctl list-units --plain --no-legend 'postgresql@*-main.service'").split()[0]
    db.check_output(f"systemctl stop {unit}")
    try:
        failed = db.run("runuser -u postgres -- /usr/local/libexec/concourse-gpu-kit/pg-backup dump")
    finally:
        db.check_output(f"systemctl start {unit}")
    assert failed.rc != 0, failed.stdout
    assert db.check_output(f"ls -A {SCHEDULED}") == before, "a .partial or a broken dump was left"


def test_the_newest_backups_age_is_logged(db):
    """Hourly, into the journal that the log agent ships; a warning once it is too old."""
    db.check_output("systemctl start concourse-gpu-kit-pg-backup-age.service")
    priority, message = [e for e in journal(db, "concourse-gpu-kit-pg-backup-age.service")
                         if e[1].startswith("backup age: ")][-1]
    assert priority == 6 and "age_seconds=" in message and "limit_seconds=93600" in message, message
    newest = sorted(db.check_output(f"ls -A {SCHEDULED}").split())[-1]
    db.check_output(f"touch -d '3 days ago' {SCHEDULED}/{newest}")
    db.check_output("systemctl start concourse-gpu-kit-pg-backup-age.service")
    priority, message = [e for e in journal(db, "concourse-gpu-kit-pg-backup-age.service")
                         if e[1].startswith("backup age: ")][-1]
    assert priority == 4 and int(message.split("age_seconds=")[1].split(",")[0]) > 2 * 86400, message
