# images/common.sh — sourced by images/test-deb, images/build-image and images/test-image.

# need_tools COMMAND:PACKAGE… — installs, with apt-get, the package of each command that is missing
# (as root; otherwise says what is missing and stops). A COMMAND given as a path is a file to find.
need_tools() {
  local need=() tool
  for tool in "$@"; do
    case "$tool" in
      /*) [ -e "${tool%%:*}" ] || need+=("${tool#*:}") ;;
      *) command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}") ;;
    esac
  done
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || { echo "needs ${need[*]} (run as root to install)" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# emulate_arm64 — on a machine that is not arm64, runs arm64 programs under qemu-user-static:
# installed, binfmt_misc mounted, qemu's handler enabled.
emulate_arm64() {
  [ "$(dpkg --print-architecture)" = arm64 ] && return 0
  need_tools qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || {
    echo "qemu-aarch64 is not registered with binfmt_misc" >&2
    exit 1
  }
}
