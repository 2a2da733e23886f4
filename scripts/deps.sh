#!/usr/bin/env bash
# Install every Debian 12 package Portico needs to build, test and run.
# Idempotent and non-interactive: a second run only checks dpkg and exits.
set -euo pipefail

PACKAGES=(
    build-essential clang libclang-rt-14-dev pkg-config
    libssl-dev libuv1-dev liblmdb-dev lmdb-utils
    libprotobuf-c-dev protobuf-c-compiler
    libldap-dev libinih-dev libcmocka-dev zlib1g-dev libhttp-parser-dev
    libunistring-dev
    slapd ldap-utils
    python3-pytest python3-aiosmtpd curl openssl iproute2 haproxy chromium
    fetchmail getmail6 isync offlineimap3
    dovecot-imapd dovecot-pop3d
    swaks libnet-ssleay-perl postfix libnss-wrapper
)

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    echo "deps.sh: not root and sudo is not available" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$status" in
        ii*) ;;
        *) missing+=("$p") ;;
    esac
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps.sh: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

slapd_was_missing=0
for p in "${missing[@]}"; do
    [ "$p" = slapd ] && slapd_was_missing=1
done

# slapd's postinst must not ask anything nor build a system directory:
# the stack script runs its own slapd with its own configuration.
if [ "$slapd_was_missing" -eq 1 ]; then
    if ! command -v debconf-set-selections >/dev/null 2>&1; then
        "${SUDO[@]}" apt-get update -qq
        "${SUDO[@]}" apt-get install -y -qq debconf >/dev/null
    fi
    echo "slapd slapd/no_configuration boolean true" |
        "${SUDO[@]}" debconf-set-selections
fi

"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    --no-install-recommends "${missing[@]}" >/dev/null

# If the postinst started a system slapd, stop it: nothing of ours uses it
# and it would hold port 389.
if [ "$slapd_was_missing" -eq 1 ]; then
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        "${SUDO[@]}" systemctl stop slapd >/dev/null 2>&1 || true
        "${SUDO[@]}" systemctl disable slapd >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/slapd ]; then
        "${SUDO[@]}" /etc/init.d/slapd stop >/dev/null 2>&1 || true
    fi
    # Last resort: a system slapd still running (only the packaged binary
    # with the system configuration, never a stack's own slapd).
    for pidfile in /run/slapd/slapd.pid /var/run/slapd/slapd.pid; do
        if [ -r "$pidfile" ]; then
            pid=$(cat "$pidfile" 2>/dev/null || true)
            if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
               tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '^/usr/sbin/slapd '; then
                "${SUDO[@]}" kill "$pid" 2>/dev/null || true
            fi
        fi
    done
fi

echo "deps.sh: installed ${#missing[@]} package(s): ${missing[*]}"
