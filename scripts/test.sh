#!/usr/bin/env bash
# The whole test suite: what a developer runs before committing and what CI runs (.ci/run).
# Installs the system packages the tests drive (Debian's chromium for the browser test, mosquitto
# clients, dbus-daemon and python3-dbusmock for the mock BlueZ, python3-openpyxl to read the
# exported .xlsx independently, e2fsprogs for the SD-card failure tests, pebble, knot and
# libnss3-tools for the sites' trusted names), then formatting, clippy
# with warnings denied, every test of the workspace, and the Debian package's checks
# (images/test-deb, which installs lintian, debootstrap and network-manager's nmcli itself).
#   OUTPOST_SLOW=1   also run the long variants (e.g. 50 crash-restart cycles instead of 10)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v dbus-daemon >/dev/null 2>&1 || need+=(dbus-daemon)
[ -d /usr/lib/python3/dist-packages/dbusmock ] || need+=(python3-dbusmock)
[ -d /usr/lib/python3/dist-packages/openpyxl ] || need+=(python3-openpyxl)
# The SD-card failure tests: a loop-mounted ext4 image in a private mount namespace.
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
# The sites' trusted names: Let's Encrypt's ACME test CA, a DNS server taking RFC 2136 updates (and
# its dig), and an NSS database tool for a browser profile that trusts the test CA.
command -v pebble >/dev/null 2>&1 || need+=(pebble)
command -v knotd >/dev/null 2>&1 || need+=(knot)
command -v kdig >/dev/null 2>&1 || need+=(knot-dnsutils)
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
# The access point's DNS (NetworkManager's dnsmasq) answering the site's name.
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
# The province on PostgreSQL: a throw-away cluster per test run (initdb, as an unprivileged user),
# with unaccent and pg_trgm from contrib.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing ${need[*]}"
    # The tests start their own throw-away PostgreSQL: the package makes no cluster of its own
    # (Debian's documented switch), so no server is left running on the machine.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/outpost-tests.conf
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "==> missing ${need[*]} (run as root to install them); the tests that need them will fail" >&2
  fi
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo build (the binaries the end-to-end tests drive)"
cargo build --workspace --bins --quiet
echo "==> cargo test"
cargo test --workspace --quiet
echo "==> the Debian package (images/test-deb: lintian, systemd-analyze, installed in a debootstrap root)"
if [ "$(id -u)" = 0 ]; then
  images/test-deb
else
  echo "==> not run: images/test-deb needs root (debootstrap, chroot)" >&2
fi
