# shellcheck shell=sh
# A MEASUREMENT FLOOR, NOT A WAY TO INSTALL THE KIT: sourced by the floor
# scripts beside it. What the `common` role installs and starts on every
# host, done directly with apt-get and systemctl, nothing configured.
export DEBIAN_FRONTEND=noninteractive
floor_apt() {
    apt-get -q -o Dpkg::Use-Pty=0 install -y --no-install-recommends "$@" >/dev/null
}
apt-get -q update >/dev/null
floor_apt acl ca-certificates curl gnupg iproute2 less procps python3-apt tzdata unzip systemd-timesyncd
systemctl enable --now systemd-timesyncd >/dev/null 2>&1 || systemctl enable systemd-timesyncd >/dev/null
# The Concourse release archive, when the runner copied one in: unpacked,
# as concourse_release does, not configured or started.
if [ -f /opt/floor/concourse.tgz ]; then
    mkdir -p /opt/floor-concourse
    tar -xzf /opt/floor/concourse.tgz -C /opt/floor-concourse
fi
