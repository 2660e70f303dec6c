"""labkit: the controller-side tooling of the Concourse GPU kit.

It builds the systemd base images (debootstrap + docker import), brings the
local lab up and down, and builds upstream release artifacts from the Go
module proxy when the release sites cannot be reached.
"""
