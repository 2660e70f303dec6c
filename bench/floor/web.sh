#!/bin/sh
# A MEASUREMENT FLOOR, NOT A WAY TO INSTALL THE KIT. bench/run.py runs it
# inside a fresh lab container (docker exec) to time the web node's Debian
# package installs and service starts done directly, without Ansible: the
# base packages, PostgreSQL and Nginx, started; the Concourse archive
# unpacked. Nothing is configured, secured or checked; the roles do that.
set -eu
. /opt/floor/common.sh
pg=$(. /etc/os-release; case "$VERSION_ID" in 12) echo 15 ;; *) echo 17 ;; esac)
floor_apt "postgresql-$pg" "postgresql-client-$pg" python3-psycopg2 nginx python3-cryptography
systemctl enable --now "postgresql@$pg-main" nginx >/dev/null 2>&1
