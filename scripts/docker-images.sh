#!/usr/bin/env bash
# Builds, from Debian's packages, local stand-ins for the base images that the Dockerfiles
# and docker-compose.yml name, on a machine that cannot pull from a container registry (the
# test machine has none). Nothing is pulled. An image already present under its name is
# kept (FORCE_STANDINS=1 rebuilds), so where the real images exist this changes nothing.
#   debian:bookworm-slim  a minbase bookworm root made with debootstrap, `docker import`ed
#   mariadb:10.11         MariaDB 10.11 (Debian's mariadb-server) behind an entrypoint with the
#                         official image's interface (scripts/docker-standins/mariadb)
#   nginx:1.27            Debian's nginx 1.22 and curl (scripts/docker-standins/nginx)
#   rust:1-bookworm       only with DOCKER_STANDIN_RUST=1: this host's Rust toolchain, gcc,
#                         pkg-config and libmariadb-dev-compat, with crates.io replaced by the
#                         crates of Cargo.lock vendored on the host (build containers here
#                         cannot use crates.io). For the Dockerfile's cargo stage
#                         (DOCKER_TEST_BUILD=source); rebuilt when Cargo.lock changes.
# Needs root (debootstrap), Docker, and Debian's mirror (DEBIAN_MIRROR) from the host and
# from build containers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${DOCKER_STANDIN_DIR:-$root/target/docker-standins}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
force=${FORCE_STANDINS:-0}

have() { [ "$force" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
say() { echo "== $*" >&2; }

if ! have debian:bookworm-slim; then
    tarball=$work/bookworm-minbase.tar
    if [ ! -s "$tarball" ] || [ "$force" = 1 ]; then
        command -v debootstrap >/dev/null || {
            say "installing debootstrap from Debian's packages"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
        }
        rootfs=$work/rootfs
        rm -rf "$rootfs"
        mkdir -p "$rootfs"
        say "debootstrap --variant=minbase bookworm (about a minute)"
        debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
            || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
        # As in Debian's official image: the three suites, no documentation, no apt caches
        # (no downloaded packages left in the layers of images built on it).
        rm -f "$rootfs/etc/apt/sources.list"
        cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
        cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
        echo 'APT::Install-Recommends "false";' >"$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
        cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
        tar -C "$rootfs" -cf "$tarball" .
        rm -rf "$rootfs"
    fi
    say "docker import debian:bookworm-slim"
    docker import -c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -m "stand-in: debootstrap minbase bookworm" "$tarball" debian:bookworm-slim >/dev/null
fi

for standin in mariadb:10.11 nginx:1.27; do
    if ! have "$standin"; then
        say "docker build $standin (stand-in: scripts/docker-standins/${standin%%:*})"
        docker build -q -t "$standin" "$root/scripts/docker-standins/${standin%%:*}" >/dev/null
    fi
done
if [ "${DOCKER_STANDIN_RUST:-0}" = 1 ]; then
    lock=$(sha256sum "$root/Cargo.lock" | cut -c1-16)
    if [ "$force" = 1 ] || [ "$(docker image inspect -f '{{index .Config.Labels "org.marquee.cargo-lock"}}' rust:1-bookworm 2>/dev/null)" != "$lock" ]; then
        if docker image inspect rust:1-bookworm >/dev/null 2>&1 \
            && [ -z "$(docker image inspect -f '{{index .Config.Labels "org.marquee.standin"}}' rust:1-bookworm)" ]; then
            say "rust:1-bookworm is a real image here: kept"
        else
            ctx=$work/rust-context
            rm -rf "$ctx"
            mkdir -p "$ctx/rust"
            sysroot=$(rustc --print sysroot)
            say "rust:1-bookworm stand-in: the host's toolchain ($(rustc --version)) and Cargo.lock's crates"
            cp -a "$sysroot/bin" "$sysroot/lib" "$ctx/rust/"
            (cd "$root" && cargo vendor --locked --versioned-dirs "$ctx/vendor" >"$work/vendor.log" 2>&1) \
                || { tail -20 "$work/vendor.log" >&2; exit 1; }
            cp "$root/scripts/docker-standins/rust/Dockerfile" "$ctx/"
            docker build -q --label "org.marquee.cargo-lock=$lock" -t rust:1-bookworm "$ctx" >/dev/null
            rm -rf "$ctx"
        fi
    fi
fi
say "base images ready: debian:bookworm-slim mariadb:10.11 nginx:1.27${DOCKER_STANDIN_RUST:+ rust:1-bookworm}"
