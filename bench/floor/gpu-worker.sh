#!/bin/sh
# A MEASUREMENT FLOOR, NOT A WAY TO INSTALL THE KIT. bench/run.py runs it
# inside a fresh lab container (docker exec) to time a GPU worker's Debian
# package installs done directly, without Ansible: what worker.sh does plus
# cache_hub's packages (the lab installs no NVIDIA toolkit: no GPU here).
set -eu
. /opt/floor/common.sh
floor_apt iptables iproute2 python3 util-linux e2fsprogs
