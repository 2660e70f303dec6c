#!/bin/sh
# A MEASUREMENT FLOOR, NOT A WAY TO INSTALL THE KIT. bench/run.py runs it
# inside a fresh lab container (docker exec) to time a Concourse worker's
# Debian package installs done directly, without Ansible: the base packages
# and the worker's iptables and iproute2; the Concourse archive unpacked.
set -eu
. /opt/floor/common.sh
floor_apt iptables iproute2
