"""Outcomes of the common role on a fresh Debian 12 and Debian 13 host."""
import re

import pytest


def journal_tail(host, unit):
    return host.run(f"journalctl -u {unit} -n 30 --no-pager").stdout


def test_no_failed_units(host):
    failed = host.run("systemctl list-units --state=failed --plain --no-legend")
    assert failed.rc == 0
    assert failed.stdout.strip() == "", failed.stdout


@pytest.mark.parametrize("package", [
    "acl", "ca-certificates", "curl", "gnupg", "python3-apt", "tzdata",
    "unzip", "systemd-timesyncd", "jq",
])
def test_packages_installed(host, package):
    assert host.package(package).is_installed


def test_timezone(host):
    localtime = host.file("/etc/localtime")
    assert localtime.is_symlink
    assert localtime.linked_to == "/usr/share/zoneinfo/Etc/UTC"
    assert host.file("/etc/timezone").content_string == "Etc/UTC\n"
    assert host.check_output("date +%Z") == "UTC"


def test_journald_settings_in_effect(host):
    merged = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "Storage=persistent" in merged
    assert "SystemMaxUse=64M" in merged
    assert "RateLimitBurst=10000" in merged
    # journald reports the limit it applies when it opens the system journal.
    log = journal_tail(host, "systemd-journald")
    assert re.search(r"System Journal \(/var/log/journal/\S+\) is .*max 64(\.0)?M", log), log


def test_journal_is_persistent(host):
    token = "molecule-probe-" + host.check_output("cat /proc/sys/kernel/random/uuid")
    host.run_expect([0], f"systemd-cat -t molecule-probe echo {token}")
    host.run_expect([0], "journalctl --sync")
    # Read only the persistent store: the line must have landed on disk.
    found = host.run(f"journalctl -D /var/log/journal -t molecule-probe --no-pager -o cat")
    assert token in found.stdout, found.stdout + found.stderr


def test_timesyncd_configured(host):
    merged = host.check_output("systemd-analyze cat-config systemd/timesyncd.conf")
    assert "NTP=0.debian.pool.ntp.org 1.debian.pool.ntp.org 2.debian.pool.ntp.org" in merged
    assert host.service("systemd-timesyncd").is_enabled


def test_timesyncd_left_to_the_container_host(host):
    # Inside a container the host keeps the clock: systemd evaluates the
    # unit's ConditionVirtualization=!container and skips it on purpose.
    virt = host.run("systemd-detect-virt --container").stdout.strip()
    assert virt not in ("", "none"), "these tests run in containers"
    result = host.check_output("systemctl show -p ConditionResult --value systemd-timesyncd")
    assert result == "no", journal_tail(host, "systemd-timesyncd")
