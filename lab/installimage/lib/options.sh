# shellcheck shell=bash
# Command-line flags, parsed once into read-only OPT_* variables.
#
# The flags are Hetzner's (`installimage -h` there); the lab implements the subset hetzner-fde
# uses and refuses the others by name instead of ignoring them, so a caller never believes a
# flag took effect when it did not.

usage() {
  cat <<'USAGE'
Usage: installimage [-a] [-c <config>] [-x <post-install>] [-n <hostname>]
                    [-K <path|url>] [-t yes|no] [-G yes|no] [-h]

  -a            automatic mode: no countdown, no questions (needs -c or an existing /autosetup)
  -c <config>   config file (a path, or a name in <installimage dir>/configs/); copied to /autosetup
  -x <script>   post-install script (a path, or a name in <installimage dir>/post-install/),
                run inside the installed system (chroot) after everything else
  -n <hostname> hostname; overrides HOSTNAME in the config (and rewrites it in /autosetup)
  -K <path|url> install these SSH public keys for root (= SSHKEYS_URL); disables the root password
  -t yes|no     take over the rescue system's Robot keys (/root/.ssh/robot_user_keys); default yes
  -G yes|no     generate new SSH host keys in the installed system; default yes
  -h            this help

Lab extensions (environment):
  INSTALLIMAGE_VALIDATE_ONLY=1   read and validate the config, print the plan, touch nothing
  INSTALLIMAGE_FAKE_DRIVES=...   with VALIDATE_ONLY: '/dev/nvme0n1:20G,/dev/nvme1n1:20G' stand in
                                 for block devices
  INSTALLIMAGE_DEBUG_FILE=...    debug log (default /root/debug.txt)
  INSTALLIMAGE_AUTOSETUP=...     where -c copies the config (default /autosetup)
USAGE
}

# Sets OPT_* from "$@". Flag errors are validation errors: nothing has been touched yet.
parse_options() {
  local automatic=0 config="" post_install="" hostname="" sshkeys="" takeover="" new_host_keys="yes"
  local flag
  OPTIND=1
  while getopts ":ac:x:n:K:t:G:hr:l:i:p:v:d:f:s:z:gu:R:bk" flag; do
    case "$flag" in
      a) automatic=1 ;;
      c) config="$OPTARG" ;;
      x) post_install="$OPTARG" ;;
      n) hostname="$OPTARG" ;;
      K) sshkeys="$OPTARG" ;;
      t) require_yes_no t "$OPTARG"; takeover="$OPTARG" ;;
      G) require_yes_no G "$OPTARG"; new_host_keys="$OPTARG" ;;
      h) usage; exit 0 ;;
      :) die "option -${OPTARG}: expected a value after it, found none" ;;
      \?) die "option -${OPTARG}: unknown option; see installimage -h" ;;
      *) die "option -${flag}: Hetzner's installimage has it, the lab's does not emulate it; put the equivalent keyword in the config instead" ;;
    esac
  done
  shift $((OPTIND - 1))
  (($# == 0)) || die "arguments: expected only options, found '$*'"

  declare -gr OPT_AUTOMATIC="$automatic"
  declare -gr OPT_CONFIG="$config"
  declare -gr OPT_POST_INSTALL="$post_install"
  declare -gr OPT_HOSTNAME="$hostname"
  declare -gr OPT_SSHKEYS="$sshkeys"
  declare -gr OPT_TAKEOVER_KEYS="$takeover"
  declare -gr OPT_NEW_HOST_KEYS="$new_host_keys"
  declare -gr OPT_VALIDATE_ONLY="${INSTALLIMAGE_VALIDATE_ONLY:-0}"
  declare -gr AUTOSETUP_FILE="${INSTALLIMAGE_AUTOSETUP:-/autosetup}"
}

require_yes_no() {
  case "$2" in
    yes | no) ;;
    *) die "option -$1: expected 'yes' or 'no', found '$2'" ;;
  esac
}

# A bare name refers to the bundled directory, as on Hetzner (`-c simple-debian64-raid`).
resolve_bundled_file() {
  local name="$1" bundled_dir="$2"
  if [[ "$name" == */* || -e "$name" ]]; then
    printf '%s' "$name"
  else
    printf '%s' "${bundled_dir}/${name}"
  fi
}
