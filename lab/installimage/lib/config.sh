# shellcheck shell=bash
# Reads an installimage config (/autosetup) into read-only CFG_* variables and arrays.
#
# Parsing never fails: a line it cannot make sense of becomes an entry in CFG_PROBLEMS, which the
# validator reports together with every other mistake, so one run lists everything to fix.
#
#   CFG_DRIVE_NUMBERS[i] CFG_DRIVES[i]            DRIVE<n> <device>, in file order
#   CFG_PART_MOUNT[i] CFG_PART_FS[i] CFG_PART_SIZE[i] CFG_PART_CRYPT[i] (0|1) CFG_PART_LINE[i]
#   CFG_LV_VG[j] CFG_LV_NAME[j] CFG_LV_MOUNT[j] CFG_LV_FS[j] CFG_LV_SIZE[j] CFG_LV_LINE[j]
#   CFG_SWRAID CFG_SWRAIDLEVEL CFG_BOOTLOADER CFG_HOSTNAME CFG_IMAGE CFG_SSHKEYS_URL
#   CFG_TAKEOVER_KEYS CFG_CRYPTPASSWORD

# Keywords Hetzner accepts that change nothing the lab can emulate (CPU governor, KMS, IPv6 on a
# user-mode network); accepted so that real configs validate unchanged.
readonly IGNORED_KEYWORDS=" IPV4_ONLY USE_KERNEL_MODE_SETTING GOVERNOR "

read_config() {
  local file="$1"
  local -a drive_numbers=() drives=() problems=()
  local -a part_mount=() part_fs=() part_size=() part_crypt=() part_line=()
  local -a lv_vg=() lv_name=() lv_mount=() lv_fs=() lv_size=() lv_line=()
  local -A first_seen_on=()
  local swraid="0" swraidlevel="1" bootloader="grub" hostname="" image="" sshkeys_url=""
  local takeover="yes" cryptpassword=""
  local line line_no=0 keyword rest
  local -a fields

  while IFS= read -r line || [[ -n "$line" ]]; do
    line_no=$((line_no + 1))
    line="${line%$'\r'}"
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    read -r -a fields <<<"$line"
    keyword="${fields[0]}"
    rest="${line#*"$keyword"}"
    rest="${rest#"${rest%%[![:space:]]*}"}"

    case "$keyword" in
      DRIVE[0-9]*)
        if [[ ! "$keyword" =~ ^DRIVE([1-9][0-9]*)$ || ${#fields[@]} -ne 2 ]]; then
          problems+=("${keyword}: expected 'DRIVE<n> <device>' (n from 1), found '${line}' on line ${line_no}")
          continue
        fi
        drive_numbers+=("${BASH_REMATCH[1]}")
        drives+=("${fields[1]}")
        ;;
      PART)
        if [[ ${#fields[@]} -lt 4 || ${#fields[@]} -gt 5 || (${#fields[@]} -eq 5 && "${fields[4]}" != "crypt") ]]; then
          problems+=("PART: expected 'PART <mount|lvm|swap> <fs|vg> <size|all> [crypt]', found '${line}' on line ${line_no}")
          continue
        fi
        part_mount+=("${fields[1]}")
        part_fs+=("${fields[2]}")
        part_size+=("${fields[3]}")
        if [[ ${#fields[@]} -eq 5 ]]; then part_crypt+=(1); else part_crypt+=(0); fi
        part_line+=("$line_no")
        ;;
      LV)
        if [[ ${#fields[@]} -ne 6 ]]; then
          problems+=("LV: expected 'LV <vg> <name> <mount> <fs> <size|all>', found '${line}' on line ${line_no}")
          continue
        fi
        lv_vg+=("${fields[1]}")
        lv_name+=("${fields[2]}")
        lv_mount+=("${fields[3]}")
        lv_fs+=("${fields[4]}")
        lv_size+=("${fields[5]}")
        lv_line+=("$line_no")
        ;;
      SWRAID | SWRAIDLEVEL | BOOTLOADER | HOSTNAME | IMAGE | SSHKEYS_URL | TAKE_OVER_RESCUE_SYSTEM_SSH_PUBLIC_KEYS | CRYPTPASSWORD)
        if [[ -n "${first_seen_on[$keyword]:-}" ]]; then
          problems+=("${keyword}: expected once, found on lines ${first_seen_on[$keyword]} and ${line_no}")
          continue
        fi
        first_seen_on[$keyword]="$line_no"
        if [[ "$keyword" != CRYPTPASSWORD && ${#fields[@]} -ne 2 ]]; then
          problems+=("${keyword}: expected one value, found '${rest}' on line ${line_no}")
          continue
        fi
        case "$keyword" in
          SWRAID) swraid="$rest" ;;
          SWRAIDLEVEL) swraidlevel="$rest" ;;
          BOOTLOADER) bootloader="$rest" ;;
          HOSTNAME) hostname="$rest" ;;
          IMAGE) image="$rest" ;;
          SSHKEYS_URL) sshkeys_url="$rest" ;;
          TAKE_OVER_RESCUE_SYSTEM_SSH_PUBLIC_KEYS) takeover="$rest" ;;
          # The rest of the line, spaces included, as on Hetzner.
          CRYPTPASSWORD) cryptpassword="$rest" ;;
        esac
        ;;
      *)
        if [[ "$IGNORED_KEYWORDS" == *" ${keyword} "* ]]; then
          continue
        fi
        problems+=("${keyword}: unknown keyword on line ${line_no}; the lab installimage knows DRIVE<n> SWRAID SWRAIDLEVEL BOOTLOADER HOSTNAME PART LV IMAGE CRYPTPASSWORD SSHKEYS_URL TAKE_OVER_RESCUE_SYSTEM_SSH_PUBLIC_KEYS")
        ;;
    esac
  done <"$file"

  # Flags win over the file, as on Hetzner.
  [[ -n "$OPT_HOSTNAME" ]] && hostname="$OPT_HOSTNAME"
  [[ -n "$OPT_SSHKEYS" ]] && sshkeys_url="$OPT_SSHKEYS"
  [[ -n "$OPT_TAKEOVER_KEYS" ]] && takeover="$OPT_TAKEOVER_KEYS"

  declare -gra CFG_PROBLEMS=("${problems[@]}")
  declare -gra CFG_DRIVE_NUMBERS=("${drive_numbers[@]}")
  declare -gra CFG_DRIVES=("${drives[@]}")
  declare -gra CFG_PART_MOUNT=("${part_mount[@]}")
  declare -gra CFG_PART_FS=("${part_fs[@]}")
  declare -gra CFG_PART_SIZE=("${part_size[@]}")
  declare -gra CFG_PART_CRYPT=("${part_crypt[@]}")
  declare -gra CFG_PART_LINE=("${part_line[@]}")
  declare -gra CFG_LV_VG=("${lv_vg[@]}")
  declare -gra CFG_LV_NAME=("${lv_name[@]}")
  declare -gra CFG_LV_MOUNT=("${lv_mount[@]}")
  declare -gra CFG_LV_FS=("${lv_fs[@]}")
  declare -gra CFG_LV_SIZE=("${lv_size[@]}")
  declare -gra CFG_LV_LINE=("${lv_line[@]}")
  declare -gr CFG_SWRAID="$swraid"
  declare -gr CFG_SWRAIDLEVEL="$swraidlevel"
  declare -gr CFG_BOOTLOADER="$bootloader"
  declare -gr CFG_HOSTNAME="$hostname"
  declare -gr CFG_IMAGE="$image"
  declare -gr CFG_SSHKEYS_URL="$sshkeys_url"
  declare -gr CFG_TAKEOVER_KEYS="$takeover"
  declare -gr CFG_CRYPTPASSWORD="$cryptpassword"
}

# The config as it goes into the debug log: the password line is redacted. (Hetzner leaves the
# password in /autosetup and in the installed system's /installimage.conf; we emulate that,
# and hetzner-fde's InstallImage resource scrubs both and rotates the passphrase.)
redacted_config() {
  local file="$1" line
  while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" =~ ^[[:space:]]*CRYPTPASSWORD([[:space:]]|$) ]]; then
      printf 'CRYPTPASSWORD [redacted]\n'
    else
      printf '%s\n' "$line"
    fi
  done <"$file"
}

# -n rewrites HOSTNAME in /autosetup too, so the file left behind is the config that was used.
rewrite_hostname_in() {
  local file="$1" hostname="$2" line found=0
  local -a out=()
  while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" =~ ^[[:space:]]*HOSTNAME([[:space:]]|$) ]]; then
      out+=("HOSTNAME ${hostname}")
      found=1
    else
      out+=("$line")
    fi
  done <"$file"
  ((found)) || out+=("HOSTNAME ${hostname}")
  printf '%s\n' "${out[@]}" >"$file"
}

# Size keywords: MiB by default, or with an M/G/T suffix. Prints MiB; fails on anything else.
size_to_mib() {
  local size="$1"
  [[ "$size" =~ ^([0-9]+)([MmGgTt]?)$ ]] || return 1
  local number=$((10#${BASH_REMATCH[1]}))
  case "${BASH_REMATCH[2]}" in
    "" | M | m) printf '%s' "$number" ;;
    G | g) printf '%s' $((number * 1024)) ;;
    T | t) printf '%s' $((number * 1024 * 1024)) ;;
  esac
}
